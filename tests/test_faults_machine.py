"""Fault injection, the machine: signals to a running `vlagent run`, and a run folder that cannot be written.

- SIGTERM and SIGINT reach a `vlagent run` subprocess mid-step (while it waits for the model's reply,
  sent by the fake server's reply callable): exit 130, the message says which signal, the steps so far
  and the broken-off one are in trajectory.jsonl with the result, report.html is written, the step's
  click never happens.
- The run folder cannot be written. Tests run as root, whom chmod does not stop, so the faults are
  made with what does stop root: a small tmpfs (`mount -t tmpfs -o size=...`) filled up mid-run, or
  full from the start; a read-only tmpfs; a --run-dir whose parent is a file. Mounting needs
  CAP_SYS_ADMIN: those tests are skipped (with the reason) where it is refused.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from fault_app import app, display, grid_point  # noqa: F401  (fixtures)
from fake_openai_server import FakeOpenAIServer, tool_call
from fault_checks import SECRET, SECRET_NAME, check_run_folder, leaks, record_fault
from vlagent.cli import EXIT_INTERRUPTED, EXIT_NOT_SUCCESS, EXIT_OK, EXIT_USAGE, main
from vlagent.environments.practice import desktop_app

pytestmark = pytest.mark.display

TASK = "type the password into the field and save it"


def _type_secret(state_file: Path) -> str:
    return tool_call("left_click", coordinate=grid_point(state_file, "entry")) + "\n" + tool_call(
        "type", text="{{" + SECRET_NAME + "}}")


def _save(state_file: Path) -> str:
    return "Saving.\n" + tool_call("left_click", coordinate=grid_point(state_file, "button_save"))


def _clicks(state_file: Path) -> list[str]:
    return desktop_app.wait_for_state(state_file, lambda s: True)["clicks"]


def _argv(server: FakeOpenAIServer, run_dir: Path, *extra: str) -> list[str]:
    return ["run", TASK, "--json", "--run-dir", str(run_dir), "--api-base", server.base_url, "--model", "fake-model",
            "--secret", SECRET_NAME, "--request-timeout", "30", "--max-steps", "6", *extra]


# --------------------------------------------------------------------------- signals


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_signal_mid_step_records_the_run_and_writes_the_report(sig, app, tmp_path, record_property):
    run_dir = tmp_path / "run"
    proc: list[subprocess.Popen] = []

    def signal_then_answer(body: dict) -> str:
        """Step 2's request: the signal arrives while the agent waits for this reply."""
        proc[0].send_signal(sig)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc[0].wait(timeout=30)  # the reply comes too late: the process has ended
        return _save(app)

    with FakeOpenAIServer(["Typing.\n" + _type_secret(app), signal_then_answer, tool_call("answer", text="x")]) as server:
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        # A shell's background job starts with SIGINT ignored, and Python then never raises KeyboardInterrupt:
        # give the child the default disposition, as a terminal would.
        proc.append(subprocess.Popen([sys.executable, "-m", "vlagent", *_argv(server, run_dir)], env=env,
                                     preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
        out, err = proc[0].communicate(timeout=60)
    assert proc[0].returncode == EXIT_INTERRUPTED, err
    result = json.loads(out)
    words = "terminated by SIGTERM" if sig == signal.SIGTERM else "interrupted by the user"
    assert result["status"] == "interrupted" and words in result["error"] and "Traceback" not in err
    run = check_run_folder(run_dir)
    assert run.status == "interrupted" and len(run.steps) == 2
    assert "interrupted" in run.steps[1]["error"] and run.steps[1]["screenshot"] == "step-001.png"
    assert (run_dir / "step-001.png").stat().st_size > 0  # the writer thread was drained
    assert run.executed == [(0, "click"), (0, "type")] and _clicks(app) == []  # the Save step never ran
    leaked = leaks(run_dir) + (["console"] if SECRET in out + err else [])
    assert not leaked, leaked
    record_fault(record_property, "machine", sig.name, transient=False, survived=True, run=run,
                 exit_code=proc[0].returncode)


# --------------------------------------------------------------------------- the run folder


@contextlib.contextmanager
def tmpfs(path: Path, options: str):
    """A tmpfs mounted at `path` (skips the test where mounting is not permitted)."""
    path.mkdir(parents=True, exist_ok=True)
    res = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)], capture_output=True, text=True)
    if res.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({res.stderr.strip() or res.returncode}); run as root with CAP_SYS_ADMIN")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], capture_output=True)


def _fill(folder: Path) -> Path:
    """Write a file into `folder` until the filesystem has no byte left."""
    filler = folder / "filler"
    with open(filler, "wb", buffering=0) as fh:
        for size in (1 << 16, 1 << 12, 1 << 9, 1):
            with contextlib.suppress(OSError):
                while True:
                    fh.write(b"\0" * size)
    return filler


def _run_in_process(capsys, argv: list[str]) -> tuple[int, dict, str]:
    code = main(argv)
    out, err = capsys.readouterr()
    return code, (json.loads(out) if out.strip() else {}), err


def test_the_disk_fills_up_mid_run(app, tmp_path, capsys, record_property):
    mount = tmp_path / "small"
    with tmpfs(mount, "size=1m"):
        run_dir = mount / "run"

        def fill_then_save(body: dict) -> str:
            """Step 2's request: once step 1's screenshot is on disk, nothing more fits."""
            desktop_app.wait_for_state(app, lambda s: True)
            deadline = time.monotonic() + 10
            shot = run_dir / "step-001.png"
            while not (shot.exists() and shot.read_bytes().endswith(b"IEND\xaeB`\x82")) and time.monotonic() < deadline:
                time.sleep(0.02)
            _fill(mount)
            return _save(app)

        script = ["Typing.\n" + _type_secret(app), fill_then_save] + [_save(app)] * 4
        with FakeOpenAIServer(script) as server:
            code, out, err = _run_in_process(capsys, _argv(server, run_dir))
        assert code == EXIT_NOT_SUCCESS, (out, err)
        assert out["status"] == "error" and out["error_kind"] == "recording"
        assert f"cannot write the run folder {run_dir}" in out["error"] and "No space left on device" in out["error"]
        assert "nothing more was executed" in out["error"] and "Traceback" not in err
        # The run stopped at the fault. The disk filled up while step 1 was being decided; a write fails
        # (and is seen) at the earliest with step 1's line, at the latest with step 2's screenshot, which
        # the writer thread may finish failing only after step 2 was decided and acted on. So of the four
        # Saves the script holds, steps 1 and 2 may have clicked; no later one.
        clicks = _clicks(app)
        assert len(clicks) <= 2 and out["steps"] <= 4, (clicks, out)
        (mount / "filler").unlink()  # room again: what was written reads back, and the report builds
        run = check_run_folder(run_dir, report=False, result=False)
        assert len(run.steps) >= 1 and run.executed[:2] == [(0, "click"), (0, "type")]
        recorded_saves = [i for i, k in run.executed if k == "click" and i > 0]
        assert len(recorded_saves) <= len(clicks) <= len(recorded_saves) + 1  # at most the line in flight missing
        code, _, err = _run_in_process(capsys, ["report", str(run_dir), "--json"])
        assert code == EXIT_OK, err
        run = check_run_folder(run_dir, result=False)
        leaked = leaks(run_dir) + (["console"] if SECRET in json.dumps(out) + err else [])
        assert not leaked, leaked
    record_fault(record_property, "machine", "disk_full_mid_run", transient=False, survived=True, run=run,
                 exit_code=EXIT_NOT_SUCCESS, steps=out["steps"], saves_clicked=len(clicks), error=out["error"])


def test_a_full_disk_from_the_start_runs_nothing(app, tmp_path, capsys, record_property):
    mount = tmp_path / "full"
    with tmpfs(mount, "size=64k"):
        run_dir = mount / "run"
        run_dir.mkdir()
        _fill(mount)
        with FakeOpenAIServer(["Typing.\n" + _type_secret(app), _save(app)]) as server:
            code, out, err = _run_in_process(capsys, _argv(server, run_dir))
        assert code == EXIT_NOT_SUCCESS, (out, err)
        assert out["status"] == "error" and out["error_kind"] == "recording" and out["steps"] == 0
        assert "No space left on device" in out["error"] and server.chat_calls == 0
        assert desktop_app.read_state(app)["text"] == "" and _clicks(app) == []
    record_fault(record_property, "machine", "disk_full_at_start", transient=False, survived=True, exit_code=code)


@pytest.mark.parametrize("where", ["read_only_tmpfs", "parent_is_a_file"])
def test_a_run_folder_that_cannot_be_made_is_a_usage_error(where, app, tmp_path, capsys, record_property):
    if where == "parent_is_a_file":
        (tmp_path / "a-file").write_text("not a folder")
        run_dir, mount = tmp_path / "a-file" / "run", None
    else:
        mount = tmp_path / "ro"
    with tmpfs(mount, "ro,size=64k") if mount else contextlib.nullcontext():
        if mount:
            run_dir = mount / "run"
        with FakeOpenAIServer(["Typing.\n" + _type_secret(app)]) as server:
            code, out, err = _run_in_process(capsys, _argv(server, run_dir))
    assert code == EXIT_USAGE, (out, err)
    squash = lambda text: "".join(text.split())  # noqa: E731 - the console folds long paths
    assert squash(f"cannot create the run folder {run_dir}") in squash(err) and "writable--run-dir" in squash(err)
    assert "Traceback" not in err and server.chat_calls == 0 and _clicks(app) == []
    assert desktop_app.read_state(app)["text"] == ""
    record_fault(record_property, "machine", f"run_dir_{where}", transient=False, survived=True, exit_code=code)
