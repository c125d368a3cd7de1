"""The fault catalogue, measured: runs the fault-injection suite and writes docs/reliability.md.

    python benchmarks/reliability.py                       # the suite as in CI, figures to docs/reliability.md
    python benchmarks/reliability.py --fuzz-inputs 100000 --video-cuts 100 --video-corruptions 60
    python benchmarks/reliability.py --classes fuzz,files --out /tmp/reliability.md   (no X server needed)

It runs tests/test_faults_{server,devices,machine,files,fuzz}.py in this process through pytest, with a
small plugin that collects what each fault test reports (`fault_checks.record_fault`: the fault, whether
it was meant to be survived or to end the run cleanly, the exit code, whether the run folder and its
report read back) and each test's outcome. A test that fails counts its faults as not survived. The
fuzz input count and the number of damaged videos per container are raised through the variables the
tests read (VLAGENT_FUZZ_INPUTS, VLAGENT_FAULT_VIDEO_CUTS, VLAGENT_FAULT_VIDEO_CORRUPTIONS).

Leaks are measured independently of the tests' own asserts: after the run, every run folder the suite
left under its temporary root (any folder holding a trajectory.jsonl, report-only copies included) is
searched, file by file, for every written form of the secret the suite types (raw, JSON-escaped, JSON
in JSON, repr, percent-encoded, HTML-escaped, UTF-16).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

from machine_info import cpu_name  # noqa: E402  (benchmarks/ is first on sys.path)

ROOT = Path(__file__).resolve().parents[1]
CLASSES = ("server", "devices", "machine", "files", "fuzz")
CLASS_TITLES = {
    "server": "Model server (fake OpenAI-compatible server misbehaving on its socket)",
    "devices": "Devices (virtual phone, adb server, X server, screenshots)",
    "machine": "The machine (signals, run folder full / unwritable)",
    "files": "Files (videos, checkpoints, run folders)",
    "fuzz": "Fuzzing (parse_actions on mutated real replies)",
}


class Collector:
    """A pytest plugin: the `fault` user properties and the outcome of every test."""

    def __init__(self) -> None:
        self.records: list[dict] = []
        self.tests: dict[str, str] = {}

    def pytest_runtest_logreport(self, report) -> None:  # noqa: ANN001 - pytest's hook signature
        if report.when != "call":  # a setup that skipped or failed, a teardown that failed
            if report.outcome != "passed" and (report.nodeid not in self.tests or report.outcome == "failed"):
                self.tests[report.nodeid] = report.outcome
            return
        self.tests[report.nodeid] = report.outcome
        for name, value in report.user_properties:
            if name == "fault":
                self.records.append({**json.loads(value), "test": report.nodeid, "outcome": report.outcome})


def class_of(nodeid: str) -> str:
    name = Path(nodeid.split("::")[0]).stem
    return name.removeprefix("test_faults_")


def scan_leaks(root: Path) -> tuple[int, int, list[str]]:
    """(run folders, files, leaks) under `root`: every file of every folder that holds a trajectory."""
    sys.path.insert(0, str(ROOT / "tests"))
    from fault_checks import SECRET, leaks

    folders = {p.parent for p in root.rglob("trajectory.jsonl")}
    files = sum(1 for f in folders for p in f.rglob("*") if p.is_file())
    found = [hit for f in sorted(folders) for hit in leaks(f, value=SECRET)]
    return len(folders), files, found


def run_suite(classes: list[str], basetemp: Path, extra: list[str]) -> tuple[Collector, int, float]:
    import pytest

    collector = Collector()
    files = [str(ROOT / "tests" / f"test_faults_{c}.py") for c in classes]
    t = time.perf_counter()
    code = pytest.main(["-q", "-p", "no:cacheprovider", "--basetemp", str(basetemp), *extra, *files],
                       plugins=[collector])
    return collector, int(code), time.perf_counter() - t


def figures(collector: Collector, classes: list[str]) -> dict:
    per: dict[str, dict] = {c: defaultdict(int) for c in classes}
    for rec in collector.records:
        c = rec["class"]
        n = int(rec.get("tried", 1))
        ok = rec["outcome"] == "passed" and rec["survived"]
        per[c]["tried"] += n
        per[c]["survived"] += n if ok else 0
        kind = "transient" if rec["transient"] else "permanent"
        per[c][f"{kind}_tried"] += n
        per[c][f"{kind}_ok"] += n if ok else 0
        per[c]["runs"] += int(rec["run_folder"])
        per[c]["readable"] += int(rec["run_folder"] and rec["report_readable"])
        per[c]["leaked"] += int(rec.get("leaked", 0))
        per[c]["fuzz_inputs"] += int(rec.get("fuzz_inputs", 0))
    failed = defaultdict(list)
    for nodeid, outcome in collector.tests.items():
        if outcome == "failed":
            failed[class_of(nodeid)].append(nodeid)
    for c in classes:
        per[c]["failed_tests"] = len(failed[c])
        per[c]["tests"] = sum(1 for n in collector.tests if class_of(n) == c)
        per[c]["skipped_tests"] = sum(1 for n, o in collector.tests.items() if class_of(n) == c and o == "skipped")
    return {"per_class": per, "failed": dict(failed)}


def _fault_rows(collector: Collector, fault_class: str) -> list[str]:
    rows = []
    for rec in sorted((r for r in collector.records if r["class"] == fault_class), key=lambda r: r["fault"]):
        ok = rec["outcome"] == "passed" and rec["survived"]
        what = ("survived (run went on)" if rec["transient"] else
                "a clear error or a correct result" if fault_class in ("files", "fuzz") else "clean end")
        if not ok:
            what = "**not handled**"
        code = rec.get("exit_code")
        if isinstance(rec.get("exit_codes"), dict):
            code = ", ".join(f"{v}" for v in sorted(set(rec["exit_codes"].values())))
        elif isinstance(rec.get("exit_codes"), list):
            code = ", ".join(str(v) for v in sorted(set(rec["exit_codes"])))
        detail = []
        for key, label in (("tried", "tried"), ("clear_errors", "clear errors"), ("sampled", "sampled"),
                           ("sampled_with_wrong_frames", "with a wrong frame"), ("loaded", "loaded"),
                           ("parsed", "parsed (auto)")):
            if key in rec:
                detail.append(f"{rec[key]} {label}")
        report = "yes" if rec["report_readable"] else ("–" if not rec["run_folder"] else "no")
        rows.append(f"| {rec['fault']} | {what} | {code if code is not None else '–'} | {report} | "
                    f"{'; '.join(detail) or ''} |")
    return rows


def write_markdown(path: Path, collector: Collector, figs: dict, leak_scan: tuple[int, int, list[str]],
                   seconds: float, args: argparse.Namespace, classes: list[str]) -> str:
    per = figs["per_class"]
    folders, files, found = leak_scan
    total = defaultdict(int)
    for c in classes:
        for k, v in per[c].items():
            total[k] += v
    lines = [
        "# Reliability under faults",
        "",
        "Measured by `benchmarks/reliability.py`, which runs the fault-injection suite",
        "(`tests/test_faults_*.py`) and counts what each injected fault did. Re-measure with",
        "",
        "    python benchmarks/reliability.py " + " ".join(args.argv),
        "",
        f"Machine: {cpu_name()} ({platform.machine()}), {os.cpu_count()} cores, Python "
        f"{platform.python_version()}; suite time {seconds:.0f} s; load average "
        f"{os.getloadavg()[0]:.1f} at the end.",
        "",
        "Each fault is injected for real (a socket reset, a killed X server, a full tmpfs, bytes overwritten",
        "in a file) and checked for: a clear message and the documented exit code (README, `vlagent --help`);",
        "a run folder whose trajectory.jsonl and report.html read back up to the fault; nothing executed",
        "after it (the practice app's and the virtual phone's own records are compared with the",
        "trajectory); no form of the secret (every run is given `--secret password`) in any file.",
        "*Transient* faults are meant to be survived: retried, and the run goes on to succeed. *Permanent*",
        "ones are meant to end the run cleanly.",
        "",
        "## Summary",
        "",
        "| class | faults tried | handled as designed | transient: survived | permanent: clean end (or clear error) | "
        "runs with a readable report | tests (failed / skipped) |",
        "|---|---|---|---|---|---|---|",
    ]
    for c in classes:
        f = per[c]
        lines.append(f"| {c} | {f['tried']} | {f['survived']} | {f['transient_ok']} / {f['transient_tried']} | "
                     f"{f['permanent_ok']} / {f['permanent_tried']} | {f['readable']} / {f['runs']} | "
                     f"{f['tests']} ({f['failed_tests']} / {f['skipped_tests']}) |")
    lines += [
        f"| **all** | **{total['tried']}** | **{total['survived']}** | {total['transient_ok']} / "
        f"{total['transient_tried']} | {total['permanent_ok']} / {total['permanent_tried']} | "
        f"{total['readable']} / {total['runs']} | {total['tests']} ({total['failed_tests']} / "
        f"{total['skipped_tests']}) |",
        "",
        f"- **Secret values leaked: {len(found)}** — {folders} run folders ({files} files) left by the suite",
        "  searched for every written form of the secret after the run"
        + (":" if found else "."),
    ]
    lines += [f"  - {hit}" for hit in found[:20]]
    lines += [
        f"- **Fuzz inputs tried: {total['fuzz_inputs']}** mutated model replies, each through every reply format"
        " (6 parser calls each): only `ActionParseError` escaped, no point outside [0, 1] came out"
        + ("." if per.get("fuzz", {}).get("failed_tests", 0) == 0 else " — **except where the fuzz test failed**."),
        "",
        "A fault counts as tried once per injection (a damaged file, a mutated reply, a run); a test that",
        "fails counts the faults it reported as not handled, and one that fails before reporting shows in",
        "the failed-tests column.",
    ]
    for c in classes:
        lines += ["", f"## {CLASS_TITLES[c]}", "", "| fault | outcome | exit code | report readable | detail |",
                  "|---|---|---|---|---|"]
        lines += _fault_rows(collector, c)
        if figs["failed"].get(c):
            lines += ["", "Failed tests:"] + [f"- `{n}`" for n in figs["failed"][c]]
    lines += ["", "## Found and fixed while building the suite", "", FOUND.strip()]
    lines += ["", "## What the numbers leave out", "", LIMITS.strip(), ""]
    text = "\n".join(lines)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return text


LIMITS = """
- Overwritten bytes in a video give frames that still decode: inside a frame's data the decoder conceals
  the damage (a smeared picture, or the damage carried on to the next keyframe), inside the container's
  index (sample times, sizes) a real frame comes back at a time the index wrongly claims. Nothing in MP4,
  WebM, MPEG-TS or AVI can tell (no checksums), so the tables count those samples ("with a wrong frame")
  rather than fail them. Cut-short files must give only correct frames, and do (a frame cut short by the
  end of the file is flagged by the demuxer and refused).
- A safetensors file has no checksum either: a flipped byte inside the tensor data loads. Header damage
  is caught ("loaded" counts the header bytes whose change still left a consistent header, e.g. a digit of
  a float in the metadata).
- A full disk is noticed at the next write: the step in flight when the disk filled up may finish, and
  if its own trajectory line cannot be written it is the one missing (no step starts after a failed
  write). SIGKILL and power loss are not injected: the trajectory is flushed line by line, and
  `load_trajectory` ignores a last line cut short, but no result line and no report are written.
- Mounting a tmpfs needs CAP_SYS_ADMIN (root in a container usually has it); without it the run-folder
  tests are skipped and the tables say so. chmod does not stop root, so it is not used.
"""


FOUND = """
Faults the suite found on its first runs, each fixed in its own module with its test:

- Model server: a 200 answer that is not a chat completion (a proxy's HTML page: the openai client hands
  back the text, and `.choices` crashed the step; JSON cut short: a bare JSONDecodeError) is now retried
  like a 5xx, then a clear backend error (exit 4); a completion without choices or without a message is
  named. `vlagent run --request-timeout` bounds each reply.
- Model output: a reply of megabytes could hang the agent for minutes to hours (three quadratic scans:
  unclosed `<tool_call>` tags, unclosed `<think>`, end-of-turn tokens not at the end); a 400-digit
  coordinate (OverflowError), a 5000-digit one (ValueError) and JSON or UI-TARS calls nested thousands
  deep (RecursionError) escaped `parse_actions`; `\\{` in a UI-TARS reply printed a Python warning.
- Devices: the first adb blip ended the run; AndroidEnv now waits `reconnect_s` for the phone (restarting
  a killed adb server, reconnecting a network device the server had left offline for good) and resends
  what cannot act twice. A screenshot cut short or empty is taken again once (desktop: it was a PIL
  ValueError, or an empty image sent to the model; phone: PNG became the mode for good).
- The machine: SIGTERM killed `vlagent run` with no result line and no report (now as Ctrl+C, exit 130);
  a run folder that cannot be created, or that fills up, was a traceback (now exit 2, or the run ends
  with error kind `recording`, exit 1, no step started after the failed write).
- Files: a corrupt metadata tag made a video unreadable (UnicodeDecodeError), a cut AVI raised PyAV's
  PermissionError on seek, and a frame cut short came back concealed as a correct frame; a safetensors
  header length with a flipped high byte asked for petabytes (MemoryError) and malformed entries raised
  KeyError; `vlagent report` crashed on any record of the wrong shape and inlined whatever file a step's
  screenshot field named (`../../` included); `report` / `replay` on an unreadable trajectory were
  tracebacks, and replay of an unreadable recorded screenshot was a policy error.
"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--classes", default=",".join(CLASSES), help="which fault classes (default all)")
    parser.add_argument("--fuzz-inputs", type=int, default=20000, help="mutated replies for the fuzz test")
    parser.add_argument("--video-cuts", type=int, default=60, help="cut-short copies per video container")
    parser.add_argument("--video-corruptions", type=int, default=40, help="copies with overwritten bytes per container")
    parser.add_argument("--out", default=str(ROOT / "docs" / "reliability.md"))
    parser.add_argument("--json", default=None, help="also write the raw records here")
    args, extra = parser.parse_known_args(argv)
    args.argv = list(argv if argv is not None else sys.argv[1:])
    classes = [c.strip() for c in args.classes.split(",") if c.strip()]
    unknown = set(classes) - set(CLASSES)
    if unknown:
        parser.error(f"unknown classes {sorted(unknown)}; choose from {CLASSES}")
    os.environ["VLAGENT_FUZZ_INPUTS"] = str(args.fuzz_inputs)
    os.environ["VLAGENT_FAULT_VIDEO_CUTS"] = str(args.video_cuts)
    os.environ["VLAGENT_FAULT_VIDEO_CORRUPTIONS"] = str(args.video_corruptions)
    os.chdir(ROOT)
    with tempfile.TemporaryDirectory(prefix="vlagent-reliability-") as tmp:
        basetemp = Path(tmp) / "pytest"
        collector, code, seconds = run_suite(classes, basetemp, extra)
        leak_scan = scan_leaks(basetemp)
    figs = figures(collector, classes)
    text = write_markdown(Path(args.out), collector, figs, leak_scan, seconds, args, classes)
    if args.json:
        Path(args.json).write_text(json.dumps({"records": collector.records, "tests": collector.tests,
                                               "leaks": leak_scan[2]}, indent=2))
    summary = text.split("## Summary", 1)[1].split("\nA fault counts", 1)[0]
    print(summary.strip())
    print(f"\nwritten: {args.out}")
    return 0 if code == 0 and not leak_scan[2] else 1


if __name__ == "__main__":
    sys.exit(main())
