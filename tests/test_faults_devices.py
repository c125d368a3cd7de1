"""Fault injection, devices: the phone, the adb server and the X server go away mid-run; screenshots
come back cut short or empty.

Each fault is injected while the agent waits for the model's reply to a step (the fake server's reply
callable does it), so it lands between seeing the screen and acting on it:

- the virtual phone disappears (its adb endpoint closes) and comes back a second later: the tap the
  model asked for was refused by adb before it reached the phone, so AndroidEnv waits for the phone and
  sends it then (once); the run goes on (exit 0). A phone that stays away ends the run (exit 3) after
  `reconnect_s`, and nothing is executed after;
- the adb server is killed: AndroidEnv starts it again and reconnects the phone, as the adb client would;
- the X server dies: the click fails, exit 3, "display went away";
- a screenshot comes back cut short or empty (a wrapper on DesktopEnv's mss capture; on the phone a
  screencap command cut short, over the real adb protocol): taken again once; if it stays bad, exit 3.

Every run types the secret; every run folder reads back with its report, and holds no form of it.
"""

from __future__ import annotations

import json
import subprocess
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from android_fixtures import adb_server, start_phone  # noqa: F401
from display_fixtures import _skip_without_binaries
from fake_openai_server import FakeOpenAIServer, tool_call
from fault_checks import SECRET, SECRET_ENV, SECRET_NAME, check_run_folder, leaks, record_fault
from vlagent import cli
from vlagent.cli import EXIT_ENV, EXIT_OK, main
from vlagent.environments.practice import desktop_app
from vlagent.environments.xserver import start_virtual_display

PHONE = (540, 1200)


@pytest.fixture(autouse=True)
def _env(monkeypatch):
    for name in ("VLAGENT_API_BASE", "VLAGENT_MODEL", "OPENAI_API_KEY", "VLAGENT_API_KEY", "ANDROID_SERIAL"):
        monkeypatch.delenv(name, raising=False)
    for key, value in SECRET_ENV.items():
        monkeypatch.setenv(key, value)


def _run(capsys, server: FakeOpenAIServer, run_dir: Path, env: str, task: str) -> tuple[int, dict, str]:
    code = main(["run", task, "--env", env, "--json", "--run-dir", str(run_dir), "--api-base", server.base_url,
                 "--model", "fake-model", "--secret", SECRET_NAME, "--max-steps", "6"])
    out, err = capsys.readouterr()
    return code, (json.loads(out) if out.strip() else {}), err


def _no_leaks(run_dir: Path, out: dict, err: str) -> None:
    leaked = leaks(run_dir) + (["console"] if SECRET in json.dumps(out) + err else [])
    assert not leaked, leaked


# --------------------------------------------------------------------------- the phone and adb


@pytest.fixture
def phone(adb_server, monkeypatch):  # noqa: F811 - the module-scoped adb server from android_fixtures
    monkeypatch.setenv("ANDROID_ADB_SERVER_PORT", str(adb_server.port))
    with start_phone(adb_server, width=PHONE[0], height=PHONE[1]) as ph:
        yield ph


def _phone_at(ph, label: str, state: dict | None = None) -> list[int]:
    x, y = ph.point(label, state)
    return [round(x * 1000), round(y * 1000)]


def _notes_script(ph, fault_step) -> list:
    """Open Notes; [the fault] tap the note field and type the secret; tap Save; answer."""
    home = ph.state()
    ph_notes = {"Note": [500, 200], "Save": [500, 300]}  # replaced below once the Notes page is known

    def on_notes(body: dict) -> str:
        state = ph.state()
        ph_notes.update(Note=_phone_at(ph, "Note", state), Save=_phone_at(ph, "Save", state))
        fault_step()
        return (tool_call("left_click", coordinate=ph_notes["Note"]) + "\n"
                + tool_call("type", text="{{" + SECRET_NAME + "}}"))

    return [tool_call("left_click", coordinate=_phone_at(ph, "Notes", home)), on_notes,
            lambda body: tool_call("left_click", coordinate=ph_notes["Save"]), tool_call("answer", text="saved")]


def _taps(ph) -> list[str]:
    return [e.get("target") for e in ph.device.phone.ui.s.events if e["type"] == "tap"]


def _wait_until(predicate, what: str, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(what)
        time.sleep(0.05)


def test_the_phone_disappears_mid_step_and_comes_back(phone, tmp_path, capsys, record_property):
    def disappear_for_a_second() -> None:
        port = phone.device.port
        phone.device.stop()
        _wait_until(lambda: phone.adb.devices().get(phone.serial) != "device", "adb never noticed the phone left")

        def come_back() -> None:
            time.sleep(1.0)
            phone.device.server.requested_port = port
            phone.device.start()

        threading.Thread(target=come_back, daemon=True).start()

    run_dir = tmp_path / "run"
    with FakeOpenAIServer(_notes_script(phone, disappear_for_a_second)) as server:
        code, out, err = _run(capsys, server, run_dir, f"android:{phone.serial}", "save the password as a note")
    assert code == EXIT_OK and out["status"] == "answered", (out, err)
    run = check_run_folder(run_dir)
    assert run.executed == [(0, "click"), (1, "click"), (1, "type"), (2, "click")]
    taps = _taps(phone)
    assert len(taps) == 3 and taps[0] == "home.icon.notes"  # the refused tap went through once, after
    assert phone.state()["notes"] and SECRET in phone.state()["notes"][-1]
    _no_leaks(run_dir, out, err)
    record_fault(record_property, "devices", "phone gone for 1 s mid-step", transient=True, survived=True, run=run,
                 exit_code=code)


def test_the_adb_server_is_killed_mid_run(phone, tmp_path, capsys, record_property):
    def kill_adb() -> None:
        assert phone.adb.run("kill-server").returncode == 0

    run_dir = tmp_path / "run"
    with FakeOpenAIServer(_notes_script(phone, kill_adb)) as server:
        code, out, err = _run(capsys, server, run_dir, f"android:{phone.serial}", "save the password as a note")
    assert code == EXIT_OK and out["status"] == "answered", (out, err)
    assert phone.adb.devices().get(phone.serial) == "device"  # a new server, the phone reconnected
    run = check_run_folder(run_dir)
    assert run.executed == [(0, "click"), (1, "click"), (1, "type"), (2, "click")] and len(_taps(phone)) == 3
    assert SECRET in phone.state()["notes"][-1]
    _no_leaks(run_dir, out, err)
    record_fault(record_property, "devices", "adb server killed mid-run", transient=True, survived=True, run=run,
                 exit_code=code)


def test_a_phone_that_stays_away_ends_the_run_and_nothing_runs_after(phone, tmp_path, record_property):
    from vlagent.agent import Agent
    from vlagent.environments.android import AndroidEnv
    from vlagent.policy.openai_policy import OpenAIPolicy

    run_dir = tmp_path / "run"
    with FakeOpenAIServer(_notes_script(phone, phone.device.stop)) as server:
        env = AndroidEnv(phone.serial, adb_port=phone.adb.port, reconnect_s=1.0, settle=0.1)
        policy = OpenAIPolicy("fake-model", base_url=server.base_url)
        result = Agent(policy, env, secrets=[SECRET_NAME], run_dir=run_dir).run("save the password as a note")
    assert result.status == "error" and result.error_kind == "environment"
    assert cli._result_exit_code(result) == EXIT_ENV
    assert phone.serial in result.error and "did not come back within 1 s" in result.error
    run = check_run_folder(run_dir)
    assert run.executed == [(0, "click")]
    assert [o["status"] for o in run.steps[1]["outcomes"]] == ["failed"]  # the typing after the tap never ran
    # It comes back (after the run): the phone saw nothing but the first tap.
    phone.device.server.requested_port = int(phone.serial.rsplit(":", 1)[1])
    phone.device.start()
    phone.adb.disconnect(phone.serial)
    phone.adb.connect(phone.serial)
    assert _taps(phone) == ["home.icon.notes"] and phone.state()["note_draft"] == ""
    assert not leaks(run_dir)
    record_fault(record_property, "devices", "phone gone for good mid-step", transient=False, survived=True, run=run,
                 exit_code=EXIT_ENV)


def _cut_screencap(phone, times: int | None) -> None:
    """The phone's screencap answers cut short, `times` times (None: always), over the real adb protocol."""
    real = phone.device.phone.commands["screencap"]
    left = [times]

    def screencap(args, stdin):
        res = real(args, stdin)
        if left[0] is None or left[0] > 0:
            left[0] = None if left[0] is None else left[0] - 1
            return type(res)(res.out[: len(res.out) // 3], res.err, res.code)
        return res

    phone.device.phone.commands["screencap"] = screencap


@pytest.mark.parametrize("times", [1, None], ids=["once", "always"])
def test_a_phone_screenshot_cut_short(times, phone, tmp_path, capsys, record_property):
    run_dir = tmp_path / "run"
    with FakeOpenAIServer(_notes_script(phone, lambda: _cut_screencap(phone, times))) as server:
        code, out, err = _run(capsys, server, run_dir, f"android:{phone.serial}", "save the password as a note")
    run = check_run_folder(run_dir)
    if times == 1:
        assert code == EXIT_OK and out["status"] == "answered", (out, err)
        assert SECRET in phone.state()["notes"][-1]
    else:
        assert code == EXIT_ENV and out["error_kind"] == "environment", (out, err)
        assert "unreadable screenshot twice" in out["error"] and phone.serial in out["error"]
        assert len(run.steps) == 3 and run.steps[2]["screenshot"] is None
        assert run.executed == [(0, "click"), (1, "click"), (1, "type")] and len(_taps(phone)) == 2  # no Save
    _no_leaks(run_dir, out, err)
    record_fault(record_property, "devices", f"phone screenshot cut short ({'once' if times else 'always'})",
                 transient=times == 1, survived=True, run=run, exit_code=code)


# --------------------------------------------------------------------------- the X server

SCREEN = (1280, 720)


@pytest.fixture
def desktop(monkeypatch, tmp_path):
    """A fresh Xvfb (this module kills some) with the practice app, found by the CLI through $DISPLAY."""
    _skip_without_binaries()
    with start_virtual_display(*SCREEN) as display:
        monkeypatch.setenv("DISPLAY", display.name)
        monkeypatch.setenv("XAUTHORITY", display.env["XAUTHORITY"])
        state_file = tmp_path / "app-state.json"
        proc = desktop_app.launch(state_file, display.name, geometry="800x560+200+80", env=display.env)
        try:
            yield SimpleNamespace(display=display, state_file=state_file, app=proc)
        finally:
            proc.kill()
            proc.wait(timeout=10)


def _desk_at(state_file: Path, widget: str) -> list[int]:
    x1, y1, x2, y2 = desktop_app.read_state(state_file)["boxes"][widget]
    return [round(((x1 + x2) // 2 + 0.5) / SCREEN[0] * 1000), round(((y1 + y2) // 2 + 0.5) / SCREEN[1] * 1000)]


def _desk_script(state_file: Path, fault_step) -> list:
    def step2(body: dict) -> str:
        fault_step()
        return "Saving.\n" + tool_call("left_click", coordinate=_desk_at(state_file, "button_save"))

    return [tool_call("left_click", coordinate=_desk_at(state_file, "entry")) + "\n"
            + tool_call("type", text="{{" + SECRET_NAME + "}}"), step2, tool_call("answer", text="saved")]


@pytest.mark.display
def test_the_x_server_dies_mid_run(desktop, tmp_path, capsys, record_property):
    def kill_x() -> None:
        desktop_app.wait_for_state(desktop.state_file, lambda s: SECRET in s["text"], what="the typed secret")
        desktop.display.process.kill()
        desktop.display.process.wait(timeout=10)

    run_dir = tmp_path / "run"
    with FakeOpenAIServer(_desk_script(desktop.state_file, kill_x)) as server:
        code, out, err = _run(capsys, server, run_dir, "desktop", "type the password into the field and save it")
    assert code == EXIT_ENV and out["status"] == "error" and out["error_kind"] == "environment", (out, err)
    assert f"display {desktop.display.name!r} went away" in out["error"] and "Traceback" not in err
    run = check_run_folder(run_dir)
    assert run.executed == [(0, "click"), (0, "type")] and len(run.steps) == 2
    assert desktop_app.read_state(desktop.state_file)["clicks"] == []  # Save never clicked
    _no_leaks(run_dir, out, err)
    record_fault(record_property, "devices", "X server killed mid-run", transient=False, survived=True, run=run,
                 exit_code=code)


class FaultyCapture:
    """Wraps a DesktopEnv's mss object: after `arm()`, the next `times` grabs (None: all) come back damaged."""

    def __init__(self, inner, damage: str, times: int | None) -> None:
        self._inner, self.damage, self.left, self.armed, self.damaged = inner, damage, times, False, 0

    def __getattr__(self, name):
        return getattr(self._inner, name)

    def arm(self) -> None:
        self.armed = True

    def grab(self, monitor):
        shot = self._inner.grab(monitor)
        if not self.armed or self.left == 0 or monitor.get("width") == 1:  # (1x1: the liveness probe)
            return shot
        self.left = None if self.left is None else self.left - 1
        self.damaged += 1
        if self.damage == "empty":
            return SimpleNamespace(size=(0, 0), raw=b"")
        return SimpleNamespace(size=shot.size, raw=bytes(shot.raw)[: len(shot.raw) // 2])


@pytest.mark.display
@pytest.mark.parametrize("damage", ["cut_short", "empty"])
@pytest.mark.parametrize("times", [1, None], ids=["once", "always"])
def test_a_desktop_screenshot_cut_short_or_empty(damage, times, desktop, tmp_path, capsys, monkeypatch,
                                                 record_property):
    captures = []
    real_make_env = cli.make_env

    def make_env(spec, monitor=1):
        env = real_make_env(spec, monitor)
        env._mss = FaultyCapture(env._mss, damage, times)
        captures.append(env._mss)
        return env

    monkeypatch.setattr(cli, "make_env", make_env)
    run_dir = tmp_path / "run"
    with FakeOpenAIServer(_desk_script(desktop.state_file, lambda: captures[0].arm())) as server:
        code, out, err = _run(capsys, server, run_dir, "desktop", "type the password into the field and save it")
    run = check_run_folder(run_dir)
    clicks = desktop_app.wait_for_state(desktop.state_file, lambda s: True)["clicks"]
    if times == 1:
        assert code == EXIT_OK and out["status"] == "answered", (out, err)
        assert captures[0].damaged == 1 and clicks == ["save"]
    else:
        assert code == EXIT_ENV and out["error_kind"] == "environment", (out, err)
        assert "came back empty or cut short twice" in out["error"] and "Traceback" not in err
        assert captures[0].damaged == 2 and run.executed[-1] == (1, "click") and len(run.steps) == 3
        assert run.steps[2]["screenshot"] is None and clicks == ["save"]  # nothing after the bad screenshot
    _no_leaks(run_dir, out, err)
    record_fault(record_property, "devices", f"desktop screenshot {damage} ({'once' if times else 'always'})",
                 transient=times == 1, survived=True, run=run, exit_code=code)
