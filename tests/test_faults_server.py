"""Fault injection, model server: `vlagent run` against the fake OpenAI-compatible server made to misbehave.

Each test runs the real command line (in-process, `vlagent.cli.main`) on a fresh practice app on Xvfb,
with `--secret password`: step 1 clicks the app's text field and types {{password}}; step 2, the step
the fault hits, clicks Save; step 3 answers. The server misbehaves for real on its socket (see
fake_openai_server.py's fault modes): an error status, a hang past `--request-timeout`, a TCP reset
mid-response, a body cut short, an HTML page, JSON of the wrong shape, empty choices, a reply of
megabytes, tool calls with NaN or off-screen coordinates.

Transient faults (once) must be retried (chat_client.py) and survived: exit 0, the reply after the fault
acted on exactly once. Permanent ones (every request) must end the run cleanly: exit 4 (backend) or 1
(the model kept writing unusable calls), a message naming the endpoint and the fault, Save never
clicked. After every fault the run folder reads back (trajectory and report up to the fault) and holds
no form of the secret; neither does the console output.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fault_app import app, display, grid_point  # noqa: F401  (fixtures)
from fake_openai_server import FakeOpenAIServer, tool_call
from fault_checks import SECRET, SECRET_NAME, check_run_folder, leaks, record_fault
from vlagent.cli import EXIT_NOT_SUCCESS, EXIT_OK, EXIT_POLICY, main
from vlagent.environments.practice import desktop_app

pytestmark = pytest.mark.display

TASK = "type the password into the field and save it"


def _script(state_file: Path, step2: str | None = None) -> list[str]:
    type_secret = tool_call("left_click", coordinate=grid_point(state_file, "entry")) + "\n" + tool_call(
        "type", text="{{" + SECRET_NAME + "}}")
    save = step2 if step2 is not None else "Saving.\n" + tool_call("left_click", coordinate=grid_point(state_file, "button_save"))
    return ["Typing the password.\n" + type_secret, save, tool_call("answer", text="saved")]


def _run(capsys, server: FakeOpenAIServer, run_dir: Path, *extra: str) -> tuple[int, dict, str]:
    code = main(["run", TASK, "--json", "--run-dir", str(run_dir), "--api-base", server.base_url, "--model",
                 "fake-model", "--secret", SECRET_NAME, "--request-timeout", "1", "--max-steps", "6", *extra])
    out, err = capsys.readouterr()
    return code, (json.loads(out) if out.strip() else {}), err


def _clicks(state_file: Path) -> list[str]:
    return desktop_app.wait_for_state(state_file, lambda s: True)["clicks"]


def _after_fault(state_file: Path, run_dir: Path, out: dict, err: str):
    run = check_run_folder(run_dir)
    leaked = leaks(run_dir) + [f"console ({k})" for k, text in (("stdout", json.dumps(out)), ("stderr", err))
                               if SECRET in text]
    assert not leaked, leaked
    # The secret was really typed (into the app, whose own state file is not ours to scrub).
    assert desktop_app.wait_for_state(state_file, lambda s: SECRET in s["text"], what="the typed secret")
    return run


TRANSIENT = ["http500", "http503", "http429", "hang", "reset", "truncated", "not_json", "bad_json"]


@pytest.mark.parametrize("fault", TRANSIENT)
def test_a_transient_fault_is_retried_and_survived(fault, app, tmp_path, capsys, record_property):
    run_dir = tmp_path / "run"
    retry_after = 1 if fault == "http429" else 0
    with FakeOpenAIServer(_script(app), faults=[None, fault], retry_after=retry_after) as server:
        code, out, err = _run(capsys, server, run_dir)
    assert code == EXIT_OK, (out, err)
    assert out["status"] == "answered" and out["steps"] == 3
    assert server.fault_log == [(2, fault)] and server.chat_calls == 4  # step 2 was asked twice
    if fault == "http429":  # Retry-After is honoured
        assert server.call_times[2] - server.call_times[1] >= 0.9
    if fault == "hang":  # the client gave up at --request-timeout and asked again
        assert server.call_times[2] - server.call_times[1] >= 1.0
    run = _after_fault(app, run_dir, out, err)
    assert run.steps[1]["policy_timings"]["attempts"] == 2.0
    assert run.executed == [(0, "click"), (0, "type"), (1, "click")]
    assert _clicks(app) == ["save"]  # the retried step acted once
    record_fault(record_property, "server", fault, transient=True, survived=True, run=run, exit_code=code)


PERMANENT = {
    # fault: words the message must hold besides the endpoint
    "http500": ["failed 4 time(s)", "HTTP 500", "injected http500"],
    "http503": ["failed 4 time(s)", "HTTP 503"],
    "http429": ["failed 4 time(s)", "HTTP 429"],
    "hang": ["failed 4 time(s)", "Timeout"],
    "reset": ["failed 4 time(s)", "Connection"],
    "not_json": ["failed 4 time(s)", "not JSON", "502 Bad Gateway"],
    "bad_json": ["failed 4 time(s)", "not valid JSON"],
    "truncated": ["failed 4 time(s)"],
    "empty_choices": ["without choices"],
    "no_message": ["has no message"],
}


@pytest.mark.parametrize("fault", sorted(PERMANENT))
def test_a_permanent_fault_ends_the_run_cleanly(fault, app, tmp_path, capsys, record_property, monkeypatch):
    monkeypatch.setattr("vlagent.policy.chat_client.MAX_RETRY_WAIT_S", 0.05)  # the backoff itself is tested above
    run_dir = tmp_path / "run"
    with FakeOpenAIServer(_script(app), faults=[None], fault_always=fault) as server:
        code, out, err = _run(capsys, server, run_dir)
    assert code == EXIT_POLICY, (out, err)
    assert out["status"] == "error" and out["error_kind"] == "policy"
    message = " ".join(out["error"].split())
    for words in [server.base_url, *PERMANENT[fault]]:
        assert words in message, (words, message)
    retried = not fault.endswith(("choices", "message"))
    assert server.chat_calls == (5 if retried else 2)
    run = _after_fault(app, run_dir, out, err)
    assert run.status == "error" and len(run.steps) == 2 and run.steps[1]["error"]
    assert run.executed == [(0, "click"), (0, "type")]  # nothing after the fault
    assert _clicks(app) == []
    assert message[:60] in run.report_text
    record_fault(record_property, "server", f"{fault} (always)", transient=False, survived=True, run=run, exit_code=code)


def _nan_call(state_file: Path) -> str:
    # json.dumps writes NaN as the bare word NaN, as a sloppy server's JSON does.
    return tool_call("left_click", coordinate=[float("nan"), grid_point(state_file, "button_save")[1]])


BAD_CALLS = {
    "nan_coordinate": (_nan_call, "must be finite"),
    "off_screen_coordinate": (lambda s: tool_call("left_click", coordinate=[1500, 400]), "off the screen"),
}  # (infinite, negative and enormous coordinates: test_faults_fuzz.py)


@pytest.mark.parametrize("fault", sorted(BAD_CALLS))
def test_a_tool_call_with_bad_coordinates_clicks_nothing(fault, app, tmp_path, capsys, record_property):
    make, words = BAD_CALLS[fault]
    # Once: the model is told and its next reply is acted on.
    run_dir = tmp_path / "once"
    with FakeOpenAIServer(_script(app, step2=make(app))) as server:
        code, out, err = _run(capsys, server, run_dir)
    assert code == EXIT_OK and out["status"] == "answered", (out, err)
    run = _after_fault(app, run_dir, out, err)
    assert words in run.steps[1]["error"] and run.steps[1]["outcomes"] == []
    assert words in " ".join(server.texts(server.requests[2]))  # the model was told why
    assert run.executed == [(0, "click"), (0, "type")] and _clicks(app) == []
    record_fault(record_property, "server", fault, transient=True, survived=True, run=run, exit_code=code)

    # Always: two unusable replies in a row end the run (exit 1), nothing clicked.
    run_dir = tmp_path / "always"
    script = _script(app, step2=make(app))
    with FakeOpenAIServer([script[0], script[1], script[1], script[1]]) as server:
        code, out, err = _run(capsys, server, run_dir)
    assert code == EXIT_NOT_SUCCESS and out["status"] == "failed", (out, err)
    assert "2 failed steps in a row" in out["error"] and words in out["error"]
    run = _after_fault(app, run_dir, out, err)
    assert run.executed == [(0, "click"), (0, "type")] and _clicks(app) == []
    record_fault(record_property, "server", f"{fault} (always)", transient=False, survived=True, run=run, exit_code=code)


def test_a_reply_of_megabytes_is_read_recorded_and_reported(app, tmp_path, capsys, record_property):
    save = tool_call("left_click", coordinate=grid_point(app, "button_save"))
    huge = "Let me think about this at length. " * 120_000 + "\n" + save  # 4.2 MB
    run_dir = tmp_path / "run"
    with FakeOpenAIServer(_script(app, step2=huge)) as server:
        code, out, err = _run(capsys, server, run_dir)
    assert code == EXIT_OK and out["status"] == "answered", (out, err)
    run = _after_fault(app, run_dir, out, err)
    assert len(run.steps[1]["raw_output"]) == len(huge)
    assert run.executed[-1] == (1, "click") and _clicks(app) == ["save"]
    assert (run_dir / "report.html").stat().st_size > len(huge)
    record_fault(record_property, "server", "reply_of_4_MB", transient=True, survived=True, run=run, exit_code=code)
