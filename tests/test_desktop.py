"""DesktopEnv against a real X server (Xvfb / Xorg dummy) and the Tk practice app.

Every desktop action kind is executed through DesktopEnv; the assertions are on
what the practice app itself reports (its state file), so a click that lands
on the wrong widget, a lost character or a scroll that never arrives fails.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from display_fixtures import (  # noqa: F401
    HIDPI_SCALES,
    PracticeSession,
    practice_desktop,
    practice_dual_monitor,
    practice_hidpi,
    x_display,
)
from vlagent.actions import Action
from vlagent.environments.base import EnvironmentLost, EnvironmentUnavailable, UnsupportedAction
from vlagent.environments.desktop import (
    DesktopEnv,
    FailSafeTriggered,
    MonitorGeometry,
    _split_ascii,
    normalize_key,
    screenshot_scale,
    to_device_pixels,
)
from vlagent.environments.practice.desktop_app import ACCENT, LIST_ITEMS

UNICODE_TEXT = "Grüße, 你好"


def _rgb(hex_color: str) -> tuple[int, int, int]:
    return tuple(int(hex_color[i : i + 2], 16) for i in (1, 3, 5))


# --------------------------------------------------------------------------- pure mapping


def test_mapping_applies_monitor_offset_and_hidpi_scale():
    # A 2x Retina-like monitor to the right of a 1920-wide one: the screenshot
    # is 2560x1600 while the mouse works in 1280x800 logical coordinates.
    monitor = MonitorGeometry(left=1920, top=0, width=1280, height=800)
    image = (2560, 1600)
    assert screenshot_scale(image, monitor) == (2.0, 2.0)
    # The center of screenshot pixel (1001, 501) is logical pixel (500, 250) of that monitor.
    point = ((1001 + 0.5) / 2560, (501 + 0.5) / 1600)
    assert to_device_pixels(point, monitor) == (1920 + 500, 250)
    assert to_device_pixels((0.0, 0.0), monitor) == (1920, 0)
    # The far edge stays on the monitor (last pixel), never one past it.
    assert to_device_pixels((1.0, 1.0), monitor) == (1920 + 1279, 799)


def test_mapping_negative_offsets_and_fractional_scale():
    # A 1.5x monitor placed left of and above the primary one.
    monitor = MonitorGeometry(left=-1600, top=-200, width=1600, height=900)
    image = (2400, 1350)
    assert screenshot_scale(image, monitor) == (1.5, 1.5)
    # Screenshot pixel (1200, 675) is the middle: logical (800, 450) of the monitor.
    assert to_device_pixels((1200.5 / 2400, 675.5 / 1350), monitor) == (-800, 250)
    with pytest.raises(ValueError, match="normalized"):
        to_device_pixels((1.2, 0.5), monitor)


def test_mapping_unequal_hidpi_scales():
    # A screen scaled 2x across and 1.5x down (a HiDPI setting per axis), right of and above another:
    # the screenshot is 2560x1200 while the mouse works in 1280x800 logical coordinates.
    monitor = MonitorGeometry(left=1920, top=-100, width=1280, height=800)
    image = (2560, 1200)
    assert screenshot_scale(image, monitor) == (2.0, 1.5)
    # Screenshot pixel (1001, 450) lies in logical pixel (500, 300) of that monitor.
    assert to_device_pixels((1001.5 / 2560, 450.5 / 1200), monitor) == (1920 + 500, -100 + 300)
    # A point near the right edge and the top maps by the horizontal size alone, and the reverse.
    assert to_device_pixels((2559.5 / 2560, 0.5 / 1200), monitor) == (1920 + 1279, -100)
    assert to_device_pixels((0.5 / 2560, 1199.5 / 1200), monitor) == (1920, -100 + 799)


def test_mapping_unscaled_single_monitor():
    monitor = MonitorGeometry(0, 0, 1280, 720)
    assert to_device_pixels((0.5, 0.5), monitor) == (640, 360)
    assert to_device_pixels((0.25, 0.75), monitor) == (320, 540)


def test_key_names_are_normalized():
    assert normalize_key("Control") == "ctrl"
    assert normalize_key("cmd") == normalize_key("super") == normalize_key("Meta") == "win"
    assert normalize_key("Return") == "enter"
    assert normalize_key("Escape") == "esc"
    assert normalize_key("Page Down") == normalize_key("page_down") == "pagedown"
    assert normalize_key("ArrowUp") == "up"
    assert normalize_key("F5") == "f5"
    assert normalize_key("A") == "a"


def test_text_is_split_into_ascii_and_other_runs():
    assert _split_ascii("ab Grüße") == [("ab Gr", True), ("üß", False), ("e", True)]
    assert _split_ascii("a<b") == [("a", True), ("<", False), ("b", True)]


# --------------------------------------------------------------------------- no display


def test_missing_display_gives_a_clear_error(monkeypatch):
    monkeypatch.delenv("DISPLAY", raising=False)
    with pytest.raises(EnvironmentUnavailable) as info:
        DesktopEnv()
    message = str(info.value)
    assert "DISPLAY" in message and "xvfb-run" in message and "Xvfb" in message


def test_unreachable_display_gives_a_clear_error():
    # A display number nobody serves (no socket, no lock file).
    number = next(n for n in range(5900, 6000) if not os.path.exists(f"/tmp/.X11-unix/X{n}"))
    with pytest.raises(EnvironmentUnavailable, match="xvfb-run"):
        DesktopEnv(display=f":{number}")


@pytest.mark.display
def test_unknown_monitor_and_missing_xauthority(x_display, monkeypatch, tmp_path, capsys):
    # python-xlib (pyautogui) refuses to connect without an Xauthority file; the env copes, and python-xlib's
    # warning about the empty file it is given instead stays out of the script's own output
    monkeypatch.setenv("XAUTHORITY", str(tmp_path / "does-not-exist"))
    monkeypatch.setenv("HOME", str(tmp_path))
    with pytest.raises(EnvironmentUnavailable, match="monitor 3 does not exist"):
        DesktopEnv(monitor=3, display=x_display.name)
    with DesktopEnv(display=x_display.name) as env:
        env.execute(Action("move", point=(0.5, 0.5)))
        assert env.gui.position() == (640, 360)
        assert os.path.exists(os.environ["XAUTHORITY"])
        env.focus()  # its own python-xlib connection
    assert "xauth" not in capsys.readouterr().out


@pytest.mark.display
def test_display_going_away_is_environment_lost(x_display):
    env = DesktopEnv(display=x_display.name)
    env.execute(Action("click", point=(0.5, 0.5)))
    env.observe()
    x_display.process.kill()
    x_display.process.wait(timeout=5)
    with pytest.raises(EnvironmentLost, match="cannot capture"):
        env.observe()
    with pytest.raises(EnvironmentLost, match="went away"):
        env.execute(Action("click", point=(0.5, 0.5)))
    env.close()


# --------------------------------------------------------------------------- one monitor, two sizes


@pytest.mark.display
def test_observe_captures_the_monitor_in_rgb(practice_desktop: PracticeSession):
    session = practice_desktop
    obs = session.observe()
    width, height = session.display.size
    assert obs.image.mode == "RGB" and obs.image.size == (width, height)
    assert obs.screen_size == (width, height)
    assert obs.info["platform"] == "desktop"
    assert obs.info["monitor"] == {"left": 0, "top": 0, "width": width, "height": height}
    assert obs.info["scale"] == [1.0, 1.0]
    # The drag token is painted in the accent color: the pixel inside its box proves
    # the screenshot and the reported widget geometry agree, and that channels are RGB.
    x1, y1, _, _ = session.state()["boxes"]["drag_token"]
    assert obs.image.getpixel((x1 + 6, y1 + 6)) == _rgb(ACCENT)


@pytest.mark.display
def test_click_reaches_the_right_button(practice_desktop: PracticeSession):
    session = practice_desktop
    for name in ("open", "delete", "save"):
        session.env.execute(Action("click", point=session.point(f"button_{name}")))
        session.wait(lambda s, n=name: s["last_clicked"] == n, f"a click on {name}")
    assert session.state()["clicks"][-3:] == ["open", "delete", "save"]


@pytest.mark.display
def test_type_unicode_text_and_keys(practice_desktop: PracticeSession):
    session = practice_desktop
    env = session.env
    env.execute(Action("click", point=session.point("entry")))
    text = "Hi <there> & 100% — " + UNICODE_TEXT
    env.execute(Action("type", text=text))
    state = session.wait(lambda s: s["text"] == text, f"the text {text!r}")
    assert state["text"] == text
    env.execute(Action("key", keys=("Return",)))
    session.wait(lambda s: s["submitted"] == text, "enter submitting the field")
    env.execute(Action("key", keys=("ctrl", "a")))
    session.wait(lambda s: s["last_key_combo"] == "ctrl+a", "ctrl+a")
    env.execute(Action("key", keys=("control", "shift", "k")))
    session.wait(lambda s: s["last_key_combo"] == "ctrl+shift+k", "ctrl+shift+k")
    env.execute(Action("key", keys=("Alt+x",)))  # one "a+b" name is the same combo
    session.wait(lambda s: s["last_key_combo"] == "alt+x", "alt+x")
    env.execute(Action("key", keys=("page down",)))
    session.wait(lambda s: s["last_key_combo"] == "next", "page down (Tk calls it Next)")
    env.execute(Action("key", keys=("F5",)))
    session.wait(lambda s: s["last_key_combo"] == "f5", "f5")
    with pytest.raises(UnsupportedAction, match="unknown key"):
        env.execute(Action("key", keys=("hyperdrive",)))
    # The text itself was not disturbed by the combos (ctrl+a only moves the cursor in Tk).
    assert session.state()["text"] == text


@pytest.mark.display
def test_checkbox_toggles(practice_desktop: PracticeSession):
    session = practice_desktop
    start = session.state()["checkbox"]
    session.env.execute(Action("click", point=session.point("checkbox", at=(0.1, 0.5))))
    session.wait(lambda s: s["checkbox"] is (not start), "the checkbox toggled")
    session.env.execute(Action("click", point=session.point("checkbox", at=(0.1, 0.5))))
    session.wait(lambda s: s["checkbox"] is start, "the checkbox toggled back")


@pytest.mark.display
def test_mouse_buttons_and_multi_clicks(practice_desktop: PracticeSession):
    session = practice_desktop
    env = session.env
    pad = session.point("click_pad")

    def last_pad(expected: str) -> None:
        session.wait(lambda s: s["pad"]["events"][-1:] == [expected], f"pad event {expected}")

    env.execute(Action("right_click", point=pad))
    last_pad("rightx1")
    env.execute(Action("middle_click", point=pad))
    last_pad("middlex1")
    env.execute(Action("click", point=pad, button="right"))
    last_pad("rightx1")
    env.execute(Action("double_click", point=pad))
    last_pad("leftx2")
    # Tk counts presses within its double-click time as one sequence: let it expire.
    started = time.monotonic()
    env.execute(Action("wait", seconds=0.6))
    assert time.monotonic() - started >= 0.6
    env.execute(Action("triple_click", point=pad))
    state = session.wait(lambda s: s["pad"]["events"][-3:] == ["leftx1", "leftx2", "leftx3"], "a triple click")
    assert state["pad"] == {"button": "left", "count": 3, "events": state["pad"]["events"]}


@pytest.mark.display
def test_move_hovers(practice_desktop: PracticeSession):
    session = practice_desktop
    session.env.execute(Action("move", point=session.point("hover_zone")))
    session.wait(lambda s: s["hovered"] == "hover_zone", "the pointer over the hover zone")
    session.env.execute(Action("move", point=session.point("entry")))
    session.wait(lambda s: s["hovered"] is None, "the pointer leaving the hover zone")


@pytest.mark.display
def test_scroll_moves_the_list(practice_desktop: PracticeSession):
    session = practice_desktop
    env = session.env
    assert session.state()["list_first_visible"] == 0
    # Tk scrolls a Listbox 5 lines per wheel click on X11.
    env.execute(Action("scroll", point=session.point("list"), direction="down", amount=3))
    session.wait(lambda s: s["list_first_visible"] == 15, "3 wheel clicks down (15 lines)")
    env.execute(Action("scroll", direction="up", amount=1))  # no point: scrolls where the pointer is
    session.wait(lambda s: s["list_first_visible"] == 10, "1 wheel click up")
    # Clicking a row after scrolling selects an item from the scrolled part.
    env.execute(Action("click", point=session.point("list", at=(0.3, 0.05))))
    state = session.wait(lambda s: s["list_selected"] is not None, "a list selection")
    assert state["list_selected"] == LIST_ITEMS[10]


@pytest.mark.display
def test_horizontal_and_vertical_wheel_over_the_pad(practice_desktop: PracticeSession):
    session = practice_desktop
    env = session.env
    env.execute(Action("scroll", point=session.point("click_pad"), direction="right", amount=3))
    session.wait(lambda s: s["wheel"][-3:] == ["right"] * 3, "3 wheel clicks right over the pad")
    env.execute(Action("scroll", direction="left", amount=2))  # no point: where the pointer is
    session.wait(lambda s: s["wheel"][-5:] == ["right"] * 3 + ["left"] * 2, "2 wheel clicks left")
    env.execute(Action("scroll", point=session.point("click_pad", at=(0.2, 0.8)), direction="left"))
    session.wait(lambda s: s["wheel"][-3:] == ["left"] * 3, "3 wheel clicks left (the default amount)")
    env.execute(Action("scroll", direction="up", amount=1))
    state = session.wait(lambda s: s["wheel"][-1:] == ["up"], "a wheel click up")
    assert state["wheel"][-9:] == ["right"] * 3 + ["left"] * 5 + ["up"]  # nothing else arrived
    env.execute(Action("scroll", direction="right", amount=0))  # zero clicks: nothing
    assert session.settle()["wheel"] == state["wheel"]


@pytest.mark.display
def test_xdotool_typing_fallback(practice_desktop: PracticeSession, monkeypatch):
    """Without xclip, non-ASCII text is typed with `xdotool type`; unicode_typing="xdotool" uses it
    even where xclip is installed, and leaves the clipboard alone."""
    import vlagent.environments.desktop as desktop_module

    session = practice_desktop
    real_which = desktop_module.shutil.which
    runs: list[list[str]] = []

    def typing_env(**kwargs) -> DesktopEnv:
        env = DesktopEnv(display=session.display.name, **kwargs)
        real_run = env._run
        monkeypatch.setattr(env, "_run", lambda argv: (runs.append(argv), real_run(argv)))
        monkeypatch.setattr(env, "_paste", lambda *a: pytest.fail("the clipboard path was taken"))
        return env

    def clear_entry(env: DesktopEnv) -> None:
        env.execute(Action("triple_click", point=session.point("entry")))
        env.execute(Action("key", keys=("backspace",)))
        session.wait(lambda s: s["text"] == "", "the field cleared")

    with monkeypatch.context() as patch:
        patch.setattr(desktop_module.shutil, "which", lambda name: None if name == "xclip" else real_which(name))
        env = typing_env()  # unicode_typing="auto"
        try:
            clear_entry(env)
            env.execute(Action("type", text="ab " + UNICODE_TEXT))
            session.wait(lambda s: s["text"] == "ab " + UNICODE_TEXT, "text typed by xdotool")
        finally:
            env.close()
    assert [argv[1:] for argv in runs] == [["type", "--delay", "30", "--", "üß"], ["type", "--delay", "30", "--", "你好"]]
    assert Path(runs[0][0]).name == "xdotool"

    if real_which("xclip") and real_which("xdotool"):
        clipboard = ["xclip", "-selection", "clipboard"]
        subprocess.run([*clipboard, "-i"], input=b"kept", env=session.display.env, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL, check=True, timeout=5)  # fmt: skip
        runs.clear()
        env = typing_env(unicode_typing="xdotool")
        try:
            clear_entry(env)
            env.execute(Action("type", text="π≈3"))
            session.wait(lambda s: s["text"] == "π≈3", "text typed by xdotool with xclip present")
        finally:
            env.close()
        assert [argv[-1] for argv in runs] == ["π≈"]
        out = subprocess.run([*clipboard, "-o"], env=session.display.env, capture_output=True, timeout=5).stdout
        assert out == b"kept"


@pytest.mark.display
def test_drag_drops_on_target_and_swipe_drags_back(practice_desktop: PracticeSession):
    session = practice_desktop
    env = session.env
    env.execute(Action("drag", point=session.point("drag_token"), end=session.point("drop_target")))
    state = session.wait(lambda s: s["drag"]["drops"] == 1, "a drop")
    assert state["drag"]["result"] == "target"
    x1, y1, x2, y2 = state["boxes"]["drop_target"]
    cx, cy = state["drag"]["token_center"]
    assert x1 <= cx <= x2 and y1 <= cy <= y2
    # swipe is a left-button drag on the desktop: pull the token off the target again.
    canvas = state["boxes"]["canvas"]
    env.execute(Action("swipe", point=session.point("drag_token"), end=session.point_of(canvas, at=(0.2, 0.5))))
    state = session.wait(lambda s: s["drag"]["drops"] == 2, "a second drop")
    assert state["drag"]["result"] == "outside"
    # long_press holds the left button at one spot: the token is grabbed and let go in place.
    started = time.monotonic()
    env.execute(Action("long_press", point=session.point("drag_token"), seconds=0.3))
    assert time.monotonic() - started >= 0.3
    state = session.wait(lambda s: s["drag"]["drops"] == 3, "a press and release on the token")
    assert state["drag"]["result"] == "outside"


@pytest.mark.display
def test_menu_command_via_clicks(practice_desktop: PracticeSession):
    session = practice_desktop
    env = session.env
    env.execute(Action("click", point=session.point_of(session.state()["menu_boxes"]["File"])))
    state = session.wait(lambda s: "File/Say hello" in s["menu_boxes"], "the File menu to open")
    env.execute(Action("click", point=session.point_of(state["menu_boxes"]["File/Say hello"])))
    state = session.wait(lambda s: s["menu_commands"][-1:] == ["File/Say hello"], "the menu command")
    assert state["menu_commands"] == ["File/Say hello"]


@pytest.mark.display
def test_unsupported_and_no_op_actions(practice_desktop: PracticeSession):
    session = practice_desktop
    before = session.settle()
    for action in (Action("back"), Action("home"), Action("open_app", text="Files")):
        with pytest.raises(UnsupportedAction, match=action.kind):
            session.env.execute(action)
    # Non-ASCII text without xclip and xdotool: a clear error naming both, nothing typed.
    import vlagent.environments.desktop as desktop_module

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(desktop_module.shutil, "which", lambda name: None)
        with pytest.raises(UnsupportedAction, match="xclip or xdotool"):
            session.env.execute(Action("type", text="ü"))
    session.env.execute(Action("answer", text="42"))
    session.env.execute(Action("done", success=True))
    after = session.settle()
    assert {k: v for k, v in after.items() if k != "seq"} == {k: v for k, v in before.items() if k != "seq"}


@pytest.mark.display
def test_failsafe_corner_aborts_unless_disabled(practice_desktop: PracticeSession):
    session = practice_desktop
    env = session.env
    width, height = session.display.size
    # The agent's own points on a corner pixel are moved in, so they never trip it.
    env.execute(Action("move", point=(1.0, 1.0)))
    assert env.gui.position() == (width - 2, height - 2)
    env.execute(Action("move", point=(0.0, 0.0)))
    assert env.gui.position() == (1, 1)
    # A person slamming the mouse into a corner of *this* display (the fail-safe
    # points follow the display size) stops the next action.
    clicks_before = session.settle()["clicks"]
    env.gui.moveTo(width - 1, height - 1)
    with pytest.raises(FailSafeTriggered, match="fail-safe"):
        env.execute(Action("click", point=session.point("button_open")))
    assert isinstance(FailSafeTriggered("x"), EnvironmentLost)  # the agent loop ends the run on it
    assert session.settle()["clicks"] == clicks_before  # the click was not executed
    relaxed = DesktopEnv(display=session.display.name, failsafe=False)
    try:
        relaxed.execute(Action("move", point=session.point("entry")))
        assert relaxed.gui.position() != (width - 1, height - 1)
    finally:
        relaxed.close()
        env.gui  # restores the fail-safe setting of the session's env


# --------------------------------------------------------------------------- two monitors


@pytest.mark.display
def test_second_monitor_click_type_drag(practice_dual_monitor: PracticeSession):
    session = practice_dual_monitor
    env = session.env
    obs = session.observe()
    assert obs.image.size == (1024, 768) and obs.screen_size == (1024, 768)
    assert obs.info["monitor"] == {"left": 1280, "top": 0, "width": 1024, "height": 768}
    assert obs.info["monitors"] == [
        {"left": 0, "top": 0, "width": 1280, "height": 720},
        {"left": 1280, "top": 0, "width": 1024, "height": 768},
    ]
    boxes = session.state()["boxes"]
    x1, y1, _, _ = boxes["drag_token"]
    assert obs.image.getpixel((x1 + 6 - 1280, y1 + 6)) == _rgb(ACCENT)

    env.execute(Action("click", point=session.point("button_delete")))
    session.wait(lambda s: s["last_clicked"] == "delete", "a click on delete on monitor 2")
    env.execute(Action("click", point=session.point("entry")))
    env.execute(Action("type", text="x2 " + UNICODE_TEXT))
    session.wait(lambda s: s["text"] == "x2 " + UNICODE_TEXT, "the text on monitor 2")
    env.execute(Action("drag", point=session.point("drag_token"), end=session.point("drop_target")))
    assert session.wait(lambda s: s["drag"]["drops"] == 1, "a drop")["drag"]["result"] == "target"
    env.execute(Action("scroll", point=session.point("list"), direction="down", amount=2))
    session.wait(lambda s: s["list_first_visible"] == 10, "2 wheel clicks down")


@pytest.mark.display
def test_all_monitors_as_one_image(practice_dual_monitor: PracticeSession):
    session = practice_dual_monitor
    whole = DesktopEnv(monitor=0, display=session.display.name)
    try:
        obs = whole.observe()
        assert obs.image.size == (2304, 768)
        assert obs.info["monitor"] == {"left": 0, "top": 0, "width": 2304, "height": 768}
        box = session.state()["boxes"]["button_open"]
        point = ((box[0] + box[2]) / 2 / 2304, (box[1] + box[3]) / 2 / 768)
        whole.execute(Action("click", point=point))
        session.wait(lambda s: s["last_clicked"] == "open", "a click on open through monitor=0")
    finally:
        whole.close()


@pytest.mark.display
@pytest.mark.skipif(shutil.which("xclip") is None, reason="xclip not installed")
def test_clipboard_typing_restores_the_clipboard(practice_dual_monitor: PracticeSession):
    session = practice_dual_monitor
    env_vars = session.display.env
    subprocess.run(["xclip", "-selection", "clipboard", "-i"], input=b"kept", env=env_vars,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True, timeout=5)  # fmt: skip
    pasting = DesktopEnv(monitor=2, display=session.display.name, unicode_typing="clipboard")
    try:
        pasting.execute(Action("triple_click", point=session.point("entry")))  # selects the whole line
        pasting.execute(Action("key", keys=("backspace",)))
        session.wait(lambda s: s["text"] == "", "the field cleared")
        pasting.execute(Action("type", text="π≈3.14 " + UNICODE_TEXT))
        session.wait(lambda s: s["text"] == "π≈3.14 " + UNICODE_TEXT, "pasted text")
    finally:
        pasting.close()
    clipboard = subprocess.run(["xclip", "-selection", "clipboard", "-o"], env=env_vars, capture_output=True,
                               timeout=5).stdout  # fmt: skip
    assert clipboard == b"kept"


# --------------------------------------------------------------------------- HiDPI, unequal scales


@pytest.mark.display
def test_hidpi_screen_with_unequal_scales(practice_hidpi: PracticeSession):
    """Screenshots at 2x across and 1.5x down while the mouse works in logical pixels: the
    observation reports each scale on its own axis, and points of the screenshot land on the widgets."""
    session = practice_hidpi
    env = session.env
    obs = session.observe()
    sx, sy = HIDPI_SCALES
    assert obs.image.size == (1280 * sx, 720 * sy) and obs.screen_size == (1280, 720)
    assert obs.info["scale"] == [sx, sy]
    assert obs.info["monitor"] == {"left": 0, "top": 0, "width": 1280, "height": 720}
    # The drag token's accent colour sits where the scales put it in the screenshot.
    x1, y1, _, _ = session.state()["boxes"]["drag_token"]
    assert obs.image.getpixel((int((x1 + 6) * sx), int((y1 + 6) * sy))) == _rgb(ACCENT)

    for name in ("delete", "save"):
        env.execute(Action("click", point=session.point(f"button_{name}")))
        session.wait(lambda s, n=name: s["last_clicked"] == n, f"a click on {name}")
    env.execute(Action("click", point=session.point("entry")))
    env.execute(Action("type", text="hidpi " + UNICODE_TEXT))
    session.wait(lambda s: s["text"].endswith("hidpi " + UNICODE_TEXT), "the text typed")
    env.execute(Action("scroll", point=session.point("click_pad"), direction="right", amount=2))
    session.wait(lambda s: s["wheel"][-2:] == ["right", "right"], "2 wheel clicks right over the pad")
    env.execute(Action("scroll", point=session.point("list"), direction="down", amount=1))
    session.wait(lambda s: s["list_first_visible"] == 5, "a wheel click down over the list")
    env.execute(Action("drag", point=session.point("drag_token"), end=session.point("drop_target")))
    assert session.wait(lambda s: s["drag"]["drops"] == 1, "a drop")["drag"]["result"] == "target"
    # The pointer is where the screenshot point says, in logical pixels.
    box = session.state()["boxes"]["hover_zone"]
    env.execute(Action("move", point=session.point("hover_zone", at=(0.25, 0.5))))
    x, y = env.gui.position()
    assert (x, y) == (int(box[0] + (box[2] - box[0]) * 0.25), int(box[1] + (box[3] - box[1]) * 0.5))
    session.wait(lambda s: s["hovered"] == "hover_zone", "the pointer over the hover zone")
