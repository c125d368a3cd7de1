"""AndroidEnv against the virtual phone, over the real adb server.

The agent loop test drives a whole task with a ScriptedPolicy whose points
come from the device's own `state` bounds, then checks the device state.
"""

from __future__ import annotations

import io
import json
import struct
import time

import pytest
from PIL import Image, ImageStat

from android_fixtures import adb_server, start_phone  # noqa: F401
from vlagent.actions import Action
from vlagent.agent import Agent
from vlagent.environments.android import (
    AndroidEnv,
    android_keycode,
    decode_png_screencap,
    decode_raw_screencap,
    input_text_commands,
    logical_size,
    parse_rotation,
    parse_ui_xml,
    parse_wm_density,
    parse_wm_size,
    quote_sh,
)
from vlagent.environments.base import EnvironmentLost, EnvironmentUnavailable, UnsupportedAction, pixel_of
from vlagent.environments.practice.virtual_android.device import VirtualPhone
from vlagent.policy.scripted import ScriptedPolicy

TEXT = "Hello & <world> $HOME 'quoted' \"double\" Grüße 你好 🙂"
ASCII_TEXT = "a b; c && d | e > f < g (h) $HOME `id` 'q' \"dq\" \\ 100%sure ~!#*?[]{}"


def make_env(session, **kw) -> AndroidEnv:
    kw.setdefault("settle", 0)
    return AndroidEnv(session.serial, adb_port=session.adb.port, **kw)


# --------------------------------------------------------------------------- pure helpers


def test_point_mapping_is_one_function_over_the_rotated_display():
    assert pixel_of((0.0, 0.0), (1080, 2400)) == (0, 0)
    assert pixel_of((1.0, 1.0), (1080, 2400)) == (1079, 2399)
    assert pixel_of((0.5, 0.25), (1080, 2400)) == (540, 600)
    assert logical_size((1080, 2400), 1) == (2400, 1080) and logical_size((1080, 2400), 2) == (1080, 2400)
    assert pixel_of((0.5, 0.25), logical_size((1080, 2400), 3)) == (1200, 270)
    with pytest.raises(ValueError):
        pixel_of((1.2, 0.5), (1080, 2400))


def test_parsers_for_wm_and_dumpsys():
    assert parse_wm_size("Physical size: 1080x2400\n") == (1080, 2400)
    assert parse_wm_size("Physical size: 1440x3120\nOverride size: 1080x2340\n") == (1080, 2340)
    with pytest.raises(ValueError, match="wm size"):
        parse_wm_size("error: no display")
    assert parse_wm_density("Physical density: 560\nOverride density: 480\n") == 480
    assert parse_rotation("      SurfaceOrientation: 3\n") == 3
    assert parse_rotation("  mCurrentRotation=ROTATION_90\n") == 1
    assert parse_rotation("nothing") is None


def test_raw_screencap_headers_old_and_new():
    img = Image.new("RGB", (3, 2), (10, 20, 30))
    img.putpixel((2, 1), (200, 100, 50))
    pixels = img.convert("RGBA").tobytes()
    old = struct.pack("<3I", 3, 2, 1) + pixels  # Android < 12: 12-byte header
    new = struct.pack("<4I", 3, 2, 1, 142671872) + pixels  # 16-byte header with the dataspace
    for data in (old, new):
        out = decode_raw_screencap(data)
        assert out.mode == "RGB" and out.tobytes() == img.tobytes()
    with pytest.raises(ValueError, match="size mismatch"):
        decode_raw_screencap(old[:-1])
    # multi-display phones print a warning before the frame
    warning = b"[Warning] Multiple displays were found, but no display id was specified!\nUse [-d display-id].\n"
    assert decode_raw_screencap(warning + new).tobytes() == img.tobytes()
    png = io.BytesIO()
    img.save(png, format="PNG")
    assert decode_png_screencap(warning + png.getvalue()).tobytes() == img.tobytes()


def test_input_text_commands_type_exactly_what_was_asked():
    phone = VirtualPhone()
    phone.ui.open_app("notes")
    phone.ui.s.focused = "notes.input"
    commands = input_text_commands(ASCII_TEXT + "\nnext\tline %s")
    assert all("%s" not in c.replace("%s", "", c.count("%s")) for c in commands)
    for command in commands:
        assert phone.run_line(command + "; echo rc=$?").endswith(b"rc=0\n"), command
    assert phone.ui.s.note_draft == ASCII_TEXT + "\nnext\tline %s"
    assert quote_sh("it's") == "'it'\\''s'"
    with pytest.raises(ValueError):
        input_text_commands("é")


def test_key_names():
    assert android_keycode("Back") == "KEYCODE_BACK"
    assert android_keycode("enter") == "KEYCODE_ENTER"
    assert android_keycode("backspace") == "KEYCODE_DEL"
    assert android_keycode("recent apps") == "KEYCODE_APP_SWITCH"
    assert android_keycode("volume-up") == "KEYCODE_VOLUME_UP"
    assert android_keycode("a") == "KEYCODE_A"
    assert android_keycode("KEYCODE_TAB") == "KEYCODE_TAB"
    with pytest.raises(UnsupportedAction, match="unknown Android key"):
        android_keycode("hyperdrive")


def test_ui_xml_parser_is_tolerant():
    xml = ("junk before<?xml version='1.0' encoding='UTF-8' standalone='yes' ?><hierarchy rotation=\"0\">"
           "<node bounds=\"[0,0][100,200]\" class=\"android.widget.FrameLayout\" text=\"\">"
           "<node text=\"OK\" class=\"android.widget.Button\" clickable=\"true\" bounds=\"[10,20][50,60]\" />"
           "<node text=\"\" class=\"android.view.View\" bounds=\"[0,0][0,0]\" clickable=\"true\" />"
           "<node text=\"x\" class=\"android.widget.TextView\" bounds=\"garbage\" />"
           "</node></hierarchy>UI hierchary dumped to: /dev/tty")
    [el] = parse_ui_xml(xml, scale=(0.5, 0.5))
    assert el["kind"] == "button" and el["label"] == "OK" and el["bounds"] == [5, 10, 25, 30]
    with pytest.raises(ValueError):
        parse_ui_xml("ERROR: could not get idle state.")


# --------------------------------------------------------------------------- the agent loop


def test_agent_loop_notes_settings_dark_mode_scroll(adb_server, tmp_path):
    with start_phone(adb_server) as ph:
        # Survey the screens the script will touch (through adb, like a person reading the screen).
        home = ph.state()
        ph.shell("monkey -p com.vlagent.notes -c android.intent.category.LAUNCHER 1")
        notes = ph.state()
        ph.shell("monkey -p com.android.settings -c android.intent.category.LAUNCHER 1")
        settings = ph.state()
        env = make_env(ph)
        light = env.screenshot()
        ph.shell("input keyevent KEYCODE_HOME")
        script = ScriptedPolicy([
            Action("click", point=ph.point("Notes", home)),
            Action("click", point=ph.point("Note", notes)),
            Action("type", text=TEXT),
            Action("click", point=ph.point("Save", notes)),
            Action("home"),
            Action("open_app", text="Settings"),
            Action("click", point=ph.point("Dark mode", settings, kind="toggle")),
            Action("scroll", direction="down", point=ph.point("Settings", settings, kind="list")),
            Action("done"),
        ])
        result = Agent(script, env, max_steps=12, run_dir=tmp_path / "run").run("write a note, then dark mode")
        assert result.status == "done", result.error
        state = ph.state()
        assert state["notes"] == [TEXT]
        assert state["note_draft"] == ""
        assert state["app"] == "settings" and state["dark_mode"] is True
        assert state["toggles"]["wifi"] is True  # nothing else toggled
        assert state["scroll"]["settings"] > 0
        assert "Wi-Fi" not in [e["label"] for e in state["elements"]]  # scrolled past the top rows
        assert state["ime"] == "com.android.inputmethod.latin/.LatinIME"  # IME switched back after typing
        dark = env.screenshot()
        assert ImageStat.Stat(dark.convert("L")).mean[0] < ImageStat.Stat(light.convert("L")).mean[0] / 2
        lines = (tmp_path / "run" / "trajectory.jsonl").read_text().splitlines()
        assert len(lines) >= 9
        obs_info = env.observe().info
        assert obs_info["platform"] == "android" and obs_info["serial"] == ph.serial
        assert obs_info["density"] == 420 and obs_info["rotation"] == 0


def test_cli_run_on_android_with_the_api_policy(adb_server, tmp_path, monkeypatch, capsys):
    """`vlagent run TASK --env android:SERIAL --api-base URL --model NAME` over the real adb server."""
    from fake_openai_server import FakeOpenAIServer, tool_call
    from vlagent.cli import main as vlagent_main

    with start_phone(adb_server, width=540, height=1200) as ph:
        x, y = ph.point("Notes")
        ph.shell("monkey -p com.vlagent.notes -c android.intent.category.LAUNCHER 1")
        fx, fy = ph.point("Note")  # where the note field will be
        ph.shell("input keyevent KEYCODE_HOME")

        def at(px: float, py: float) -> list[int]:
            return [round(px * 1000), round(py * 1000)]

        replies = [  # several tool calls in one reply run in order
            "I see the home screen; I open Notes and tap the note field.\n"
            + tool_call("click", tool="mobile_use", coordinate=at(x, y))
            + tool_call("click", tool="mobile_use", coordinate=at(fx, fy)),
            tool_call("type", tool="mobile_use", text="Grüße 🙂 & <ok>")
            + tool_call("terminate", tool="mobile_use", status="success"),
        ]
        monkeypatch.setenv("ANDROID_ADB_SERVER_PORT", str(adb_server.port))
        monkeypatch.delenv("ANDROID_SERIAL", raising=False)
        with FakeOpenAIServer(replies) as server:
            rc = vlagent_main([
                "run", "write a note in Notes", "--env", f"android:{ph.serial}", "--api-base", server.base_url,
                "--model", "fake-model", "--max-steps", "2", "--run-dir", str(tmp_path / "run"), "--json",
            ])
        result = json.loads(capsys.readouterr().out)
        assert rc == 0, result
        assert not server.problems
        assert result["status"] == "done" and result["steps"] == 2
        state = ph.state()
        assert state["app"] == "notes" and state["note_draft"] == "Grüße 🙂 & <ok>"
        assert [e["target"] for e in state["events"] if e["type"] == "tap"][-2:] == ["home.icon.notes", "notes.input"]
        # The model was told about the phone tool, not the desktop one, and saw the phone's screen.
        system = server.texts(server.requests[0])[0]
        assert server.requests[0]["messages"][0]["role"] == "system"
        assert '"name": "mobile_use"' in system and "operating a phone" in system
        assert "computer_use" not in system
        assert server.image_sizes[0] and server.image_sizes[0][-1][0] < server.image_sizes[0][-1][1]  # portrait
        assert (tmp_path / "run" / "trajectory.jsonl").is_file()


# --------------------------------------------------------------------------- typing


def test_typing_without_adbkeyboard(adb_server):
    with start_phone(adb_server, adbkeyboard=False, width=540, height=1200) as ph:
        env = make_env(ph, read_elements=False)
        env.open_app("com.vlagent.notes")
        env.execute(Action("click", point=ph.point("Note")))
        env.execute(Action("type", text=ASCII_TEXT))
        assert ph.state()["note_draft"] == ASCII_TEXT
        with pytest.raises(UnsupportedAction, match="ADBKeyboard") as err:
            env.execute(Action("type", text="more Grüße"))
        assert "Nothing was typed" in str(err.value)
        assert ph.state()["note_draft"] == ASCII_TEXT  # not even the ASCII part


def test_keys_long_press_double_tap_and_open_app(adb_server):
    with start_phone(adb_server, width=540, height=1200) as ph:
        env = make_env(ph)
        env.execute(Action("open_app", text="clock"))  # by label, case-insensitive
        assert ph.state()["app"] == "clock"
        env.execute(Action("double_click", point=ph.point("12:00 PM")))
        assert ph.state()["clock_24h"] is True
        env.execute(Action("key", keys=("recent apps",)))
        assert ph.state()["app"] == "recents"
        env.execute(Action("key", keys=("volume_up",)))
        env.execute(Action("back"))
        state = ph.state()
        assert state["volume"] == 8 and state["app"] == "clock"  # BACK leaves the recent apps screen
        env.execute(Action("open_app", text="com.vlagent.notes"))
        env.execute(Action("click", point=ph.point("Note")))
        env.execute(Action("type", text="first"))
        env.execute(Action("key", keys=("ctrl", "a")))
        env.execute(Action("key", keys=("backspace",)))
        env.execute(Action("type", text="kept"))
        env.execute(Action("click", point=ph.point("Save")))
        assert ph.state()["notes"] == ["kept"]
        env.execute(Action("long_press", point=ph.point("kept")))
        assert ph.state()["notes"] == []
        with pytest.raises(UnsupportedAction, match="no app called"):
            env.execute(Action("open_app", text="Photoshop"))
        with pytest.raises(UnsupportedAction):
            env.execute(Action("right_click", point=(0.5, 0.5)))
        with pytest.raises(UnsupportedAction, match="no keys to hold during a click"):  # ctrl+click
            env.execute(Action("click", point=(0.5, 0.5), keys=("ctrl",)))


def test_swipe_duration_scroll_directions_and_wait(adb_server, monkeypatch):
    with start_phone(adb_server, width=540, height=1200) as ph:
        env = make_env(ph, read_elements=False)
        env.execute(Action("swipe", point=(0.5, 0.8), end=(0.25, 0.3), seconds=0.6))
        swipe = [e for e in ph.state()["events"] if e["type"] == "swipe"][-1]
        assert (swipe["x1"], swipe["y1"], swipe["x2"], swipe["y2"], swipe["ms"]) == (270, 960, 135, 360, 600)
        env.open_app("Settings")
        center = ph.point("Settings", kind="list")
        # "down" shows what is further down: the finger moves up, by half the screen unless `amount` says
        for direction, amount, dx, dy in (("down", None, 0, -600), ("up", 2, 0, 360), ("right", 1, -81, 0), ("left", None, 270, 0)):
            env.execute(Action("scroll", point=center, direction=direction, amount=amount))
            ev = [e for e in ph.state()["events"] if e["type"] == "swipe"][-1]
            assert (ev["x2"] - ev["x1"], ev["y2"] - ev["y1"]) == (dx, dy), (direction, ev)
            assert 0 <= min(ev["x1"], ev["x2"]) and max(ev["x1"], ev["x2"]) < 540
            assert 0 <= min(ev["y1"], ev["y2"]) and max(ev["y1"], ev["y2"]) < 1200
        assert ph.state()["scroll"]["settings"] == 600 - 360
        # wait pauses once, for the time asked (1 s when none is), and sends nothing to the phone. The
        # pauses are read off the module's sleep calls, not off a clock: a loaded machine is slower.
        events = ph.state()["events"]
        pauses = _record_sleeps(monkeypatch)
        env.execute(Action("wait", seconds=0.3))
        env.execute(Action("wait"))
        assert pauses == [0.3, 1.0]
        assert ph.state()["events"] == events


def _record_sleeps(monkeypatch) -> list[float]:
    """Make vlagent.environments.android's time.sleep record its argument instead of sleeping."""
    import types

    import vlagent.environments.android as android_module

    pauses: list[float] = []
    clock = types.SimpleNamespace(**{k: getattr(time, k) for k in dir(time) if not k.startswith("_")})
    clock.sleep = pauses.append
    monkeypatch.setattr(android_module, "time", clock)
    return pauses


# --------------------------------------------------------------------------- rotation and elements


def test_rotation_changes_the_mapping(adb_server):
    with start_phone(adb_server, width=540, height=1200) as ph:
        env = make_env(ph)
        assert env.observe().image.size == (540, 1200)
        ph.shell("settings put system user_rotation 1")
        obs = env.observe()
        assert obs.image.size == (1200, 540) and obs.screen_size == (1200, 540)
        assert obs.info["rotation"] == 1
        state = ph.state()
        el = ph.element("Contacts", state)
        # the element's normalized position in the landscape screenshot
        x1, y1, x2, y2 = el["bounds"]
        point = ((x1 + x2) / 2 / obs.image.width, (y1 + y2) / 2 / obs.image.height)
        env.execute(Action("click", point=point))
        state = ph.state()
        taps = [e for e in state["events"] if e["type"] == "tap"]
        assert taps[-1]["target"] == "home.icon.contacts" and state["app"] == "contacts"


def test_raw_and_png_screenshots_match_and_elements_match_state(adb_server):
    with start_phone(adb_server, width=720, height=1600) as ph:
        ph.shell("monkey -p com.android.contacts -c android.intent.category.LAUNCHER 1")
        env = make_env(ph)
        raw = env.screenshot("raw")
        png = env.screenshot("png")
        assert raw.size == png.size == (720, 1600) and raw.tobytes() == png.tobytes()
        obs = env.observe()
        state = ph.state()
        assert [(e["label"], e["bounds"], e["kind"]) for e in obs.elements] == [
            (e["label"], e["bounds"], e["kind"]) for e in state["elements"]
        ]
        assert sum(e["kind"] == "list_item" for e in obs.elements) > 5


def test_unreadable_raw_screencap_falls_back_to_png(adb_server):
    with start_phone(adb_server, width=540, height=1200) as ph:
        env = make_env(ph, read_elements=False)
        expected = env.screenshot("png")
        real_exec_out = env.exec_out
        asked = []

        def exec_out(command, timeout=None):  # a device whose raw screencap output cannot be read
            asked.append(command)
            return bytearray(b"unexpected output") if command == "screencap" else real_exec_out(command, timeout)

        env.exec_out = exec_out
        obs = env.observe()
        assert obs.image.tobytes() == expected.tobytes() and obs.info["screencap"] == "png"
        env.observe()
        # raw is tried twice (a capture cut short by a glitch is not a device without raw output), then never again
        assert asked == ["screencap", "screencap", "screencap -p", "screencap -p"]


# --------------------------------------------------------------------------- failures


def test_device_killed_mid_run_ends_the_run_cleanly(adb_server, tmp_path):
    with start_phone(adb_server, width=540, height=1200) as ph:
        env = make_env(ph, read_elements=False, timeout=5, reconnect_s=0)  # gone for good (test_faults_devices.py: back)

        def kill_after_first(record) -> None:
            if record.index == 0:
                ph.device.stop()

        script = ScriptedPolicy([Action("home"), Action("back"), Action("done")])
        result = Agent(script, env, max_steps=5, run_dir=tmp_path / "run", on_step=kill_after_first).run("go home")
        assert result.status == "error"
        assert "gone" in result.error and ph.serial in result.error
        lines = [json.loads(x) for x in (tmp_path / "run" / "trajectory.jsonl").read_text().splitlines()]
        assert any(rec.get("index") == 0 for rec in lines)
        with pytest.raises(EnvironmentLost):
            env.observe()


def test_no_device_and_several_devices(adb_server):
    with pytest.raises(EnvironmentUnavailable, match="no Android device attached") as err:
        AndroidEnv(adb_port=adb_server.port)
    assert "adb connect" in str(err.value)
    with start_phone(adb_server, width=540, height=1200) as a, start_phone(adb_server, width=540, height=1200) as b:
        with pytest.raises(EnvironmentUnavailable, match="several Android devices") as err:
            AndroidEnv(adb_port=adb_server.port)
        assert a.serial in str(err.value) and b.serial in str(err.value)
        env = AndroidEnv(b.serial, adb_port=adb_server.port, settle=0)
        assert env.serial == b.serial
    with pytest.raises(EnvironmentUnavailable, match="is not attached"):
        AndroidEnv("127.0.0.1:1", adb_port=adb_server.port)


def test_a_script_scrolls_the_settings_list_to_a_switch(adb_server, tmp_path):
    """The NFC switch is below the settings list's first screen: scroll_to() swipes until it shows (the
    row rule picks the switch on NFC's row), and the phone's state says only it was turned on."""
    import vlagent

    pytest.importorskip("rapidocr_onnxruntime")
    with start_phone(adb_server) as ph:
        ph.shell("monkey -p com.android.settings -c android.intent.category.LAUNCHER 1")
        assert "NFC" not in [e["label"] for e in ph.state()["elements"]]
        with vlagent.connect("android", env=make_env(ph), run_dir=tmp_path / "run") as bot:
            bot.scroll_to("the switch for NFC")
            bot.click("the switch for NFC")
        state = ph.state()
        assert state["toggles"]["nfc"] is True and state["scroll"]["settings"] > 0
        assert [key for key, on in state["toggles"].items() if on] == ["wifi", "bluetooth", "location", "nfc"]
