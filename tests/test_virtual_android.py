"""The virtual phone, driven through the real adb server and client.

Everything here goes over the adb wire protocol: `adb connect`, `adb shell`,
`adb exec-out`, and adbutils — exactly the path a phone would take.
"""

from __future__ import annotations

import io
import json
import os
import signal
import struct
import subprocess
import sys
import threading

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageStat

from android_fixtures import AdbServer, adb_server, free_port, phone, start_phone  # noqa: F401
from vlagent.environments.android import parse_ui_xml
from vlagent.environments.practice.virtual_android.device import VirtualPhone
from vlagent.environments.practice.virtual_android.shell import parse


def _exec_out(adb: AdbServer, serial: str, command: str) -> bytes:
    env = dict(os.environ, ANDROID_ADB_SERVER_PORT=str(adb.port))
    res = subprocess.run(["adb", "-P", str(adb.port), "-s", serial, "exec-out", command], capture_output=True,
                         timeout=30, env=env, stdin=subprocess.DEVNULL)
    assert res.returncode == 0, res.stderr
    return res.stdout


def test_adb_lists_the_phone_with_its_banner(phone):
    out = phone.adb.run("devices", "-l").stdout
    line = next(ln for ln in out.splitlines() if ln.startswith(phone.serial))
    assert line.split()[1] == "device"
    assert "model:vlagent_Virtual_Phone" in line and "product:vlagent_phone" in line


def test_shell_quoting_status_and_unknown_commands(phone):
    assert phone.shell("echo 'a  b' \"$HOME\" '$HOME'; false; echo X:$?") == "a  b / $HOME\nX:1\n"
    assert phone.shell("true && echo yes || echo no; false && echo yes || echo no") == "yes\nno\n"
    assert phone.shell("nosuchtool -x") == "/system/bin/sh: nosuchtool: inaccessible or not found\n"
    assert phone.shell("nosuchtool 2>/dev/null; echo $?") == "127\n"
    assert phone.shell("getprop ro.build.version.sdk") == "34\n"
    assert "SurfaceOrientation: 0" in phone.shell("dumpsys input | grep SurfaceOrientation")
    # adbutils' exit-status trick (`cmd; echo X4EXIT:$?`) sees the real status
    import adbutils

    device = adbutils.AdbClient(host="127.0.0.1", port=phone.adb.port).device(phone.serial)
    assert device.shell2("false").returncode == 1
    assert device.shell2("wm size").output == "Physical size: 1080x2400\n"


def test_sh_parser_keeps_operators_inside_quotes():
    [(_, [cmd])] = parse("input text 'a;b && c | d > e'")
    assert [w.literal for w in cmd.argv] == ["input", "text", "a;b && c | d > e"]
    phone = VirtualPhone()
    assert phone.run_line("echo \"it's\" 'say \"hi\"' a\\ b") == b"it's say \"hi\" a b\n"
    assert phone.run_line("echo 'unterminated").startswith(b"/system/bin/sh:")


def test_streams_run_at_once(phone):
    """A stream that blocks does not hold up another one on the same connection.

    The slow stream runs a command that waits (with the phone's lock released, like `sleep`) until
    the test lets it go, and the test lets it go only after the fast stream has answered: if streams
    were served one after another the fast one could never answer. No race between two sleeps,
    so a loaded machine changes nothing; the 20 s and 60 s limits only turn a hang into a failure.
    """
    import adbutils

    from vlagent.environments.practice.virtual_android.device import Result

    vphone = phone.device.phone
    started, release = threading.Event(), threading.Event()

    def hold(args: list[str], stdin: bytes) -> Result:
        vphone.lock.release()  # as cmd_sleep does, so that other streams keep working
        try:
            started.set()
            release.wait(60)
        finally:
            vphone.lock.acquire()
        return Result()

    vphone.commands["hold"] = hold
    device = adbutils.AdbClient(host="127.0.0.1", port=phone.adb.port).device(phone.serial)
    order: list[str] = []

    def slow() -> None:
        order.append(device.shell("hold; echo slow"))

    thread = threading.Thread(target=slow)
    thread.start()
    try:
        assert started.wait(60), "the slow stream never started"
        assert device.shell("echo fast", timeout=20) == "fast"
        order.append("fast")
        assert thread.is_alive() and order == ["fast"]  # the slow one is still held
    finally:
        release.set()
        thread.join(60)
    assert order == ["fast", "slow"]


def test_raw_screencap_streams_megabytes_with_flow_control(phone):
    raw = _exec_out(phone.adb, phone.serial, "screencap")
    w, h, fmt, dataspace = struct.unpack_from("<4I", raw)
    assert (w, h, fmt) == (1080, 2400, 1) and len(raw) == 16 + w * h * 4  # >10 MB in 256 KB WRTEs, each acked
    png = Image.open(io.BytesIO(_exec_out(phone.adb, phone.serial, "screencap -p")))
    assert png.size == (w, h)
    assert Image.frombuffer("RGBA", (w, h), raw[16:], "raw", "RGBA", 0, 1).tobytes() == png.convert("RGBA").tobytes()


def test_touch_typing_and_keys_change_the_state(phone):
    state = phone.state()
    assert state["app"] == "home"
    icon = phone.element("Notes", state)
    x, y = (icon["bounds"][0] + icon["bounds"][2]) // 2, (icon["bounds"][1] + icon["bounds"][3]) // 2
    phone.shell(f"input tap {x} {y}")
    state = phone.state()
    taps = [e for e in state["events"] if e["type"] == "tap"]
    assert state["app"] == "notes" and taps[-1]["target"] == "home.icon.notes"
    field = phone.element("Note", state)
    phone.shell(f"input tap {field['bounds'][0] + 10} {field['bounds'][1] + 10}")
    phone.shell("input text 'a%sb&c'; input keyevent KEYCODE_DEL 67; input text x")
    state = phone.state()
    assert state["focused"] == "notes.input" and state["note_draft"] == "a bx"
    # non-ASCII through `input text` fails like on a phone, and types nothing
    assert "Exception" in phone.shell("input text 'é'")
    assert phone.state()["note_draft"] == "a bx"
    save = phone.element("Save")
    phone.shell(f"input tap {save['bounds'][0] + 5} {save['bounds'][1] + 5}")
    state = phone.state()
    assert state["notes"] == ["a bx"] and state["note_draft"] == ""
    # long press on a saved note deletes it
    note = phone.element("a bx", state)
    x, y = note["bounds"][0] + 20, note["bounds"][1] + 20
    phone.shell(f"input swipe {x} {y} {x} {y} 700")
    assert phone.state()["notes"] == []
    phone.shell("input keyevent KEYCODE_APP_SWITCH")
    assert phone.state()["app"] == "recents"
    phone.shell("input keyevent KEYCODE_HOME; input keyevent 24 24")
    state = phone.state()
    assert state["app"] == "home" and state["volume"] == 9


def test_settings_toggle_scroll_and_dark_mode(phone):
    phone.shell("monkey -p com.android.settings -c android.intent.category.LAUNCHER 1")
    before = Image.open(io.BytesIO(_exec_out(phone.adb, phone.serial, "screencap -p"))).convert("L")
    state = phone.state()
    toggle = phone.element("Dark mode", state, kind="toggle")
    assert toggle["value"] is False
    phone.shell("input tap {} {}".format(*[(toggle["bounds"][0] + toggle["bounds"][2]) // 2,
                                           (toggle["bounds"][1] + toggle["bounds"][3]) // 2]))
    state = phone.state()
    assert state["dark_mode"] is True and phone.element("Dark mode", state)["value"] is True
    after = Image.open(io.BytesIO(_exec_out(phone.adb, phone.serial, "screencap -p"))).convert("L")
    assert ImageStat.Stat(after).mean[0] < ImageStat.Stat(before).mean[0] / 2
    # finger moves up by 600 px -> the list shows what is 600 px further down
    phone.shell("input swipe 540 1800 540 1200 300")
    state = phone.state()
    assert state["scroll"]["settings"] == 600
    assert "About phone" not in [e["label"] for e in state["elements"]]
    phone.shell("input swipe 540 400 540 2300 300; input swipe 540 1900 540 100 200; input swipe 540 1900 540 100 200;"
                "input swipe 540 1900 540 100 200; input swipe 540 1900 540 100 200")
    assert "About phone" in [e["label"] for e in phone.state()["elements"]]


def test_rotation_turns_the_framebuffer_and_touch_space(phone):
    phone.shell("settings put system user_rotation 1")
    assert "SurfaceOrientation: 1" in phone.shell("dumpsys input")
    raw = _exec_out(phone.adb, phone.serial, "screencap")
    assert struct.unpack_from("<2I", raw) == (2400, 1080)
    state = phone.state()
    assert state["size"] == [2400, 1080]
    clock = phone.element("Clock", state)
    assert clock["bounds"][2] <= 2400 and clock["bounds"][3] <= 1080
    phone.shell("input tap {} {}".format((clock["bounds"][0] + clock["bounds"][2]) // 2, (clock["bounds"][1] + clock["bounds"][3]) // 2))
    assert phone.state()["app"] == "clock"


def test_uiautomator_dump_matches_state(phone):
    phone.shell("monkey -p com.android.settings -c android.intent.category.LAUNCHER 1")
    out = phone.shell("uiautomator dump /sdcard/window_dump.xml")
    assert out == "UI hierchary dumped to: /sdcard/window_dump.xml\n"
    xml = phone.shell("cat /sdcard/window_dump.xml")
    assert xml.startswith("<?xml version='1.0' encoding='UTF-8' standalone='yes' ?><hierarchy rotation=\"0\">")
    parsed = parse_ui_xml(xml)
    state = phone.state()
    assert [(e["label"], e["bounds"]) for e in parsed] == [(e["label"], e["bounds"]) for e in state["elements"]]
    assert [e["kind"] for e in parsed] == [e["kind"] for e in state["elements"]]
    assert [e["value"] for e in parsed if e["kind"] == "toggle"] == [e["value"] for e in state["elements"] if e["kind"] == "toggle"]
    tty = phone.shell("uiautomator dump /dev/tty")
    assert tty.endswith("UI hierchary dumped to: /dev/tty\n") and parse_ui_xml(tty) == parsed


def test_adbkeyboard_broadcast_only_reaches_the_active_ime(phone):
    phone.shell("monkey -p com.vlagent.notes -c android.intent.category.LAUNCHER 1")
    field = phone.element("Note")
    phone.shell(f"input tap {field['bounds'][0] + 10} {field['bounds'][1] + 10}")
    assert "com.android.adbkeyboard/.AdbIME" in phone.shell("ime list -a -s")
    phone.shell("am broadcast -a ADB_INPUT_TEXT --es msg 'ignored'")
    assert phone.state()["note_draft"] == ""  # LatinIME is active: nobody listens
    assert "selected" in phone.shell("ime enable com.android.adbkeyboard/.AdbIME; ime set com.android.adbkeyboard/.AdbIME")
    phone.shell("am broadcast -a ADB_INPUT_B64 --es msg 5L2g5aW9IPCfmYI=")  # "你好 🙂"
    phone.shell("am broadcast -a ADB_INPUT_TEXT --es msg ' Grüße'")
    assert phone.state()["note_draft"] == "你好 🙂 Grüße"


def test_without_adbkeyboard_the_ime_is_absent(adb_server):
    with start_phone(adb_server, adbkeyboard=False, width=540, height=1200) as ph:
        assert ph.shell("ime list -a -s") == "com.android.inputmethod.latin/.LatinIME\n"
        assert "Unknown input method" in ph.shell("ime set com.android.adbkeyboard/.AdbIME")


def test_command_line_device_runs_until_sigterm(adb_server):
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "vlagent.environments.practice.virtual_android", "--port", str(port),
                             "--width", "540", "--height", "1200", "--no-adbkeyboard"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()
        assert f"127.0.0.1:{port}" in line, line + proc.stderr.read()
        serial = f"127.0.0.1:{port}"
        adb_server.connect(serial)
        res = adb_server.run("-s", serial, "shell", "wm size; state")
        lines = res.stdout.splitlines()
        assert lines[0] == "Physical size: 540x1200"
        assert json.loads(lines[1])["app"] == "home"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
        adb_server.disconnect(f"127.0.0.1:{port}")


@pytest.mark.parametrize("line", ["cat /nope", "wm frobnicate", "input tap x y", "am start -n com.nope/.X"])
def test_bad_commands_answer_like_a_phone(line):
    out = VirtualPhone().run_line(line + "; echo status=$?")
    assert out.rsplit(b"status=", 1)[1].strip() != b"0", out


def test_services_it_does_not_offer_are_refused_cleanly(phone, tmp_path):
    res = phone.adb.run("-s", phone.serial, "pull", "/sdcard/x", str(tmp_path / "x"), timeout=20)  # sync: service
    assert res.returncode != 0
    assert phone.shell("echo still here") == "still here\n"


def _ink(img: Image.Image) -> np.ndarray:
    """Dark pixels of a glyph crop, trimmed to their bounding box."""
    ink = np.asarray(img.convert("L")) < 128
    ys, xs = np.nonzero(ink)
    assert len(xs), "no glyph drawn here"
    return ink[ys.min():ys.max() + 1, xs.min():xs.max() + 1]


def _same_glyph(a: np.ndarray, b: np.ndarray) -> bool:
    """Equal up to a pixel of size and anti-aliasing (sub-pixel placement differs per position)."""
    if abs(a.shape[0] - b.shape[0]) > 1 or abs(a.shape[1] - b.shape[1]) > 1:
        return False
    h, w = min(a.shape[0], b.shape[0]), min(a.shape[1], b.shape[1])
    a, b = a[:h, :w], b[:h, :w]
    return (a & b).sum() / max((a | b).sum(), 1) > 0.8


def test_notes_draw_cjk_through_a_fallback_font():
    """DejaVu has no CJK; without fallback 你 and 好 come out as the same .notdef box."""
    from vlagent.environments.practice.virtual_android import fonts
    from vlagent.environments.practice.virtual_android.phone_ui import PhoneUI

    if fonts.cjk_font_file() is None:
        pytest.skip("no CJK-capable font here (setup.sh installs Debian's fonts-wqy-microhei)")
    if fonts.primary_font_file() is None:
        pytest.skip("no primary TrueType font here (setup.sh installs fonts-dejavu-core)")
    ui = PhoneUI(status_time="12:00")
    ui.open_app("notes")
    ui.s.focused = "notes.input"
    text = "你好\u0378"  # U+0378 is unassigned: no font has it, the primary font's box is drawn
    assert ui.commit_text(text, "test")
    ui.s.focused = None  # no caret next to the last glyph
    img = ui.render()
    field = next(el for el in ui.layout() if el.id == "notes.input")
    u, size = ui.unit, round(44 * ui.unit)
    x0, y0 = field.bounds[0] + round(30 * u), field.bounds[1] + round(30 * u)
    glyphs = []
    for i in range(len(text)):
        left, right = fonts.text_length(text[:i], size), fonts.text_length(text[:i + 1], size)
        glyphs.append(_ink(img.crop((round(x0 + left), y0 - round(10 * u), round(x0 + right), y0 + round(60 * u)))))
    ni, hao, missing = glyphs

    ref = Image.new("L", (3 * size, 3 * size), 255)
    ImageDraw.Draw(ref).text((size, size), "\U0010ffff", fill=0, font=fonts.font(size))
    notdef = _ink(ref)
    assert _same_glyph(missing, notdef)  # the check itself recognises the box
    assert not _same_glyph(ni, hao)
    assert not _same_glyph(ni, notdef) and not _same_glyph(hao, notdef)
    assert fonts.runs("Grüße 你好 🙂", size)[0] == ("Grüße ", fonts.font(size))
