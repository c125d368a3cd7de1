"""What every fault-injection test (tests/test_faults_*.py) checks after its fault, and how it reports it.

    check_run_folder(run_dir)          -> RunFolder: the trajectory read back, the report parsed
    leaks(path, ...)                   -> files under path holding any written form of the secret
    record_fault(record_property, ...) -> one line of the fault catalogue (benchmarks/reliability.py)

Every run of the suite is given the secret SECRET (`--secret password`, typed as {{password}}); it needs
escaping in JSON, HTML, URLs and repr(), so a scrubber that misses one written form is caught.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from typing import Any, Callable

from vlagent.recorder import REPORT, load_trajectory

SECRET_NAME = "password"
SECRET = 'Fault-"pw"\\<&>/ö 9%'
SECRET_ENV = {f"VLAGENT_SECRET_{SECRET_NAME.upper()}": SECRET}


def secret_needles(value: str = SECRET) -> dict[str, bytes]:
    """Every written form of `value` searched for (as in test_redaction.py)."""
    from test_redaction import needles

    return needles(value)


def leaks(*roots: Path, value: str = SECRET) -> list[str]:
    """'path (form)' for each file under `roots` that holds `value` in any written form."""
    found = []
    needles = secret_needles(value)
    for root in roots:
        paths = [root] if root.is_file() else [p for p in root.rglob("*") if p.is_file()] if root.exists() else []
        for path in paths:
            try:
                data = path.read_bytes()
            except OSError:
                continue
            found += [f"{path} ({name})" for name, needle in needles.items() if needle in data]
    return found


class _ReportParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.sections: list[str] = []
        self.text: list[str] = []
        self.title = ""
        self._in_title = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        d = dict(attrs)
        if tag == "section" and "step" in (d.get("class") or ""):
            self.sections.append(d.get("id") or "")
        self._in_title = tag == "title"

    def handle_endtag(self, tag: str) -> None:
        self._in_title = False

    def handle_data(self, data: str) -> None:
        self.text.append(data)
        if self._in_title:
            self.title += data


@dataclass
class RunFolder:
    """A run folder as read back after a fault."""

    path: Path
    header: dict[str, Any]
    steps: list[dict[str, Any]]
    result: dict[str, Any] | None
    report_steps: int | None = None  # step sections in report.html (None: no report)
    report_text: str = ""
    files: list[str] = field(default_factory=list)

    @property
    def executed(self) -> list[tuple[int, str]]:
        """(step index, action kind) of every action the trajectory says was executed."""
        return [(s["index"], a.get("kind")) for s in self.steps
                for a, o in zip(s.get("actions") or [], s.get("outcomes") or []) if o.get("status") == "executed"]

    @property
    def status(self) -> str | None:
        return (self.result or {}).get("status")

    @property
    def report_readable(self) -> bool:
        return self.report_steps is not None and self.report_steps == len(self.steps)


def check_run_folder(run_dir: Path, *, report: bool = True, result: bool = True, intact: bool = True) -> RunFolder:
    """Read `run_dir` back as a user would: trajectory.jsonl (a last line cut short is allowed), and the
    report, whose step sections must match the trajectory's steps. Asserts what must hold after any fault.
    `intact=False` for a folder damaged on purpose: no header or numbered steps required."""
    assert run_dir.is_dir(), f"no run folder at {run_dir}"
    header, steps, res = load_trajectory(run_dir)
    if intact:
        assert header.get("task"), f"{run_dir}: the trajectory has no header"
        assert [s["index"] for s in steps] == list(range(len(steps))), "steps missing or out of order"
    if result:
        assert res is not None and res.get("status"), f"{run_dir}: the run's result was not written"
        assert res.get("steps") == len(steps)
    folder = RunFolder(run_dir, header, steps, res, files=sorted(p.name for p in run_dir.iterdir()))
    page = run_dir / REPORT
    if report:
        assert page.is_file(), f"{run_dir}: no {REPORT}"
    if page.is_file():
        parser = _ReportParser()
        parser.feed(page.read_text(encoding="utf-8"))
        parser.close()
        folder.report_steps = len(parser.sections)
        folder.report_text = " ".join(" ".join(parser.text).split())
        assert folder.report_steps == len(steps), f"report shows {folder.report_steps} steps of {len(steps)}"
        if intact:
            assert header["task"].split("{{")[0].strip()[:20] in parser.title
        if res is not None and isinstance(res.get("status"), str):
            assert res["status"] in folder.report_text
    return folder


def record_fault(record_property: Callable[[str, Any], None], fault_class: str, fault: str, *, transient: bool,
                 survived: bool, run: RunFolder | None = None, leaked: int = 0, exit_code: int | None = None,
                 **extra: Any) -> None:
    """One line of the fault catalogue, kept as a pytest user property that benchmarks/reliability.py reads.

    `transient`: the fault was meant to be survived (retried, the run went on to succeed); else the
    run was meant to end cleanly. `survived`: it was handled as designed (the test checks that too).
    """
    line = {
        "class": fault_class,
        "fault": fault,
        "transient": transient,
        "survived": survived,
        "run_folder": run is not None,
        "report_readable": bool(run and run.report_readable),
        "leaked": leaked,
        "exit_code": exit_code,
        **extra,
    }
    record_property("fault", json.dumps(line))
