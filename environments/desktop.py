"""The desktop: screenshots with mss, mouse and keyboard with pyautogui.

Coordinates: `to_device_pixels` (through base.py's `pixel_of`, shared with
Android) is the only coordinate arithmetic: an action point is
a fraction of the observed screenshot; it becomes a pixel in the logical
coordinates pyautogui clicks in, shifted by the monitor's offset on the
virtual desktop. On HiDPI screens (macOS Retina, scaled Windows displays) the
screenshot has more pixels than the monitor has logical coordinates; the
ratio is reported as `scale` in `Observation.info`.
"""

from __future__ import annotations

import contextlib
import importlib
import io
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Sequence

from PIL import Image

from vlagent.actions import Action
from vlagent.environments.base import (
    BaseEnvironment,
    EnvironmentLost,
    EnvironmentUnavailable,
    Focus,
    Observation,
    UnsupportedAction,
    pixel_of,
)

IS_X11 = sys.platform.startswith("linux") or "bsd" in sys.platform

NO_DISPLAY_HELP = (
    "Set DISPLAY to a running X server (e.g. DISPLAY=:0 on a desktop session), "
    "or run under a virtual one: `xvfb-run -s '-screen 0 1280x720x24' vlagent ...`, "
    "or start `Xvfb :99 -screen 0 1280x720x24 -nolisten tcp &` and `export DISPLAY=:99`."
)


# --------------------------------------------------------------------------- geometry


@dataclass(frozen=True)
class MonitorGeometry:
    """A monitor's rectangle in the logical desktop coordinates the mouse uses."""

    left: int
    top: int
    width: int
    height: int

    @classmethod
    def from_mss(cls, monitor: dict[str, int]) -> "MonitorGeometry":
        return cls(int(monitor["left"]), int(monitor["top"]), int(monitor["width"]), int(monitor["height"]))

    def as_dict(self) -> dict[str, int]:
        return {"left": self.left, "top": self.top, "width": self.width, "height": self.height}


def screenshot_scale(image_size: tuple[int, int], monitor: MonitorGeometry) -> tuple[float, float]:
    """Screenshot pixels per logical coordinate (2.0 on a Retina display, 1.0 on X11)."""
    return image_size[0] / monitor.width, image_size[1] / monitor.height


def to_device_pixels(point: tuple[float, float], monitor: MonitorGeometry) -> tuple[int, int]:
    """Map a normalized point of the observed screenshot to a logical desktop pixel.

    The screenshot shows the whole monitor (at the HiDPI scale, which cancels
    out), so the point is that fraction of the monitor's logical size, and the
    monitor's offset places it on the virtual desktop.
    """
    x, y = pixel_of(point, (monitor.width, monitor.height))
    return monitor.left + x, monitor.top + y


# --------------------------------------------------------------------------- keys

# Names models and users write -> pyautogui key names.
KEY_ALIASES: dict[str, str] = {
    "control": "ctrl", "ctl": "ctrl", "lctrl": "ctrlleft", "rctrl": "ctrlright",
    "option": "alt", "opt": "alt", "lalt": "altleft", "ralt": "altright", "altgr": "altright",
    "cmd": "win", "command": "win", "super": "win", "meta": "win", "windows": "win", "os": "win",
    "return": "enter", "kp_enter": "enter",
    "escape": "esc",
    "del": "delete",
    "back": "backspace", "bksp": "backspace",
    "arrowup": "up", "arrowdown": "down", "arrowleft": "left", "arrowright": "right",
    "arrow_up": "up", "arrow_down": "down", "arrow_left": "left", "arrow_right": "right",
    "up_arrow": "up", "down_arrow": "down", "left_arrow": "left", "right_arrow": "right",
    "page_up": "pageup", "pgup": "pageup", "prior": "pageup",
    "page_down": "pagedown", "pgdn": "pagedown", "next": "pagedown",
    "spacebar": "space", "ins": "insert", "caps_lock": "capslock",
    "printscreen": "printscreen", "print_screen": "printscreen",
    "plus": "+", "minus": "-",
}  # fmt: skip


# pyautogui's names of the keys a click or a drag may hold down ("ctrl+click" to add to a selection)
MODIFIER_KEYS = frozenset({"ctrl", "ctrlleft", "ctrlright", "shift", "shiftleft", "shiftright", "alt", "altleft",
                           "altright", "win", "winleft", "winright"})


def normalize_key(name: str) -> str:
    """A pyautogui key name for `name` ("Page Up", "cmd", "Return", "a", "F5", "num_lock")."""
    key = name.strip().lower()
    if len(key) == 1:
        return key
    key = key.replace(" ", "_").replace("-", "_")
    return KEY_ALIASES.get(key) or KEY_ALIASES.get(key.replace("_", "")) or key.replace("_", "")


def _key_names(keys: Sequence[str]) -> list[str]:
    """Key names one by one: "ctrl+c" given as one name is the same combo as ("ctrl", "c")."""
    return [part for k in keys for part in (k.split("+") if len(k) > 1 else [k]) if part]


def _held_keys(action: Action) -> list[str]:
    """The modifier keys a click or drag holds down (its `keys`), as pyautogui names; UnsupportedAction for
    any other key (a click holding "a" means nothing)."""
    names = _key_names(action.keys or ())
    keys = [normalize_key(k) for k in names]
    other = [n for n, k in zip(names, keys) if k not in MODIFIER_KEYS]
    if other:
        raise UnsupportedAction(f"a {action.kind} holds only modifier keys (ctrl, shift, alt, super); got {other}")
    return keys


@contextlib.contextmanager
def _holding(gui: Any, keys: Sequence[str]) -> Iterator[None]:
    """Hold `keys` down for the body; released (last first) however it ends."""
    pressed = []
    try:
        for key in keys:
            gui.keyDown(key)
            pressed.append(key)
        yield
    finally:
        for key in reversed(pressed):
            gui.keyUp(key)


# --------------------------------------------------------------------------- X plumbing


def ensure_xauthority() -> None:
    """python-xlib refuses to connect when ~/.Xauthority is missing (even for a server
    without access control). Point XAUTHORITY at an empty file in that case."""
    if not IS_X11:
        return
    current = os.environ.get("XAUTHORITY")
    if current and Path(current).exists():
        return
    if not current and (Path.home() / ".Xauthority").exists():
        return
    # One empty file per user, reused: no cookies in it, nothing to clean up.
    path = Path(tempfile.gettempdir()) / f"vlagent-empty-xauthority-{os.getuid()}"
    if not path.exists():
        path.touch(mode=0o600)
    os.environ["XAUTHORITY"] = str(path)


@contextlib.contextmanager
def _display_env(display: str) -> Iterator[None]:
    """DISPLAY set to `display` for the block, and python-xlib's "Xlib.xauth: warning, no xauthority details
    available" (printed to stdout on every connection through the empty file of ensure_xauthority, where a
    script's own output goes) dropped."""
    old = os.environ.get("DISPLAY")
    os.environ["DISPLAY"] = display
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            yield
    finally:
        if old is None:
            os.environ.pop("DISPLAY", None)
        else:
            os.environ["DISPLAY"] = old


def _pyautogui_for(display: str | None) -> Any:
    """Import pyautogui, bound to `display` on X11.

    pyautogui opens its X connection (and builds its keycode table) when it is
    first imported, from $DISPLAY. To drive a different display in the same
    process (tests start several X servers) its X11 backend module is reloaded
    with DISPLAY pointing at the new server.
    """
    if not IS_X11:
        import pyautogui

        return pyautogui
    assert display is not None
    already_imported = "pyautogui" in sys.modules
    with _display_env(display):
        import pyautogui

        backend = pyautogui.platformModule
        bound = getattr(backend, "_vlagent_display", None)
        if bound != display or not _connection_alive(backend):
            if bound is not None or already_imported:
                # Bound to another (or an unknown) display: reconnect to ours.
                with contextlib.suppress(Exception):
                    backend._display.close()
                importlib.reload(backend)
            backend._vlagent_display = display
            # The corner fail-safe points were computed for the first display's size.
            right, bottom = pyautogui.size()
            pyautogui.FAILSAFE_POINTS[:] = [(0, 0), (0, bottom - 1), (right - 1, 0), (right - 1, bottom - 1)]
    return pyautogui


def _connection_alive(backend: Any) -> bool:
    """False when pyautogui's X connection died (its server was stopped; a new
    server may now use the same display number)."""
    try:
        backend._display.get_input_focus()  # one cheap round trip
        return True
    except Exception:
        return False


def _check_display(display: str | None) -> str | None:
    if not IS_X11:
        return None
    display = display or os.environ.get("DISPLAY")
    if not display:
        wayland = " (a Wayland session without XWayland?)" if os.environ.get("WAYLAND_DISPLAY") else ""
        raise EnvironmentUnavailable(f"No X display: DISPLAY is not set{wayland}. {NO_DISPLAY_HELP}")
    return display


# --------------------------------------------------------------------------- environment


class FailSafeTriggered(EnvironmentLost):
    """The user moved the mouse into a screen corner: the run must stop (pyautogui's fail-safe)."""


class DesktopEnv(BaseEnvironment):
    """The local desktop (or a virtual X display) as an agent environment.

    `monitor=0` observes all monitors as one image; `monitor=N` the Nth monitor
    as mss numbers them (1 = first). `display` picks an X display (default
    $DISPLAY). The observed screenshot is what action points are fractions of.

    Actions: click / double_click / triple_click / right_click / middle_click
    (`button` overrides the mouse button of a click), move, drag (press, move
    in steps, release — apps see real motion events), scroll (up/down/left/
    right, `amount` wheel clicks, default 3, at `point` if given), type, key
    (keys pressed together, common names mapped: ctrl, alt, shift,
    cmd/super/win/meta, enter/return, esc, arrows, page up/down, f1..f12 ...),
    wait (`seconds`, default 1). `answer`/`done` do nothing here. Desktop
    meanings: `long_press` = press the left button at `point` for `seconds`
    (default 1); `swipe` = a left-button drag. `back`, `home` and `open_app`
    have no single desktop meaning and raise UnsupportedAction.

    Typing: ASCII goes through `pyautogui.write`. Other text (accents, CJK,
    emoji) is pasted: a one-shot `xclip` owns the CLIPBOARD, ctrl+v is
    pressed, and once the app has read the text (xclip exits after serving
    one request) the previous clipboard content is put back. This is exact
    into Tk/GTK/Qt fields even on a loaded machine. Without xclip (or with
    `unicode_typing="xdotool"`, for apps that do not paste with ctrl+v, like
    terminals) `xdotool type` is used; it remaps a spare keycode per
    character and can drop a character when the app lags behind, so it is
    the fallback. With neither tool present, typing non-ASCII text raises
    UnsupportedAction naming the packages to install.

    The pyautogui fail-safe stays on unless `failsafe=False`: when a person
    moves the mouse into a corner of the screen, the next action raises
    `FailSafeTriggered` (an `EnvironmentLost`, so the agent loop stops).
    Points the agent itself sends to a corner pixel are moved one pixel in.

    A display that dies mid-run raises `EnvironmentLost`. `drag_steps` and
    `step_delay` shape drags (motion events and the pause between them);
    `paste_timeout` is how long the clipboard path waits for the app to read.
    """

    name = "desktop"

    def __init__(
        self,
        monitor: int = 1,
        display: str | None = None,
        failsafe: bool = True,
        unicode_typing: str = "auto",
        drag_steps: int = 12,
        step_delay: float = 0.005,
        paste_timeout: float = 3.0,
    ) -> None:
        if not isinstance(monitor, int) or monitor < 0:
            raise ValueError(f"monitor must be 0 (all monitors) or a monitor number >= 1, got {monitor!r}")
        if unicode_typing not in ("auto", "xdotool", "clipboard"):
            raise ValueError(f"unicode_typing must be 'auto', 'xdotool' or 'clipboard', got {unicode_typing!r}")
        self.display = _check_display(display)
        self.monitor_index = monitor
        self.failsafe = failsafe
        self.unicode_typing = unicode_typing
        self.drag_steps = max(1, int(drag_steps))
        self.step_delay = float(step_delay)
        self.paste_timeout = float(paste_timeout)
        ensure_xauthority()
        try:
            import mss
        except ImportError as e:  # pragma: no cover - depends on the install
            raise EnvironmentUnavailable("the desktop environment needs mss: pip install 'vlagent[desktop]'") from e
        try:
            self._mss = mss.MSS(display=self.display) if IS_X11 else mss.MSS()
        except Exception as e:
            raise EnvironmentUnavailable(f"cannot open X display {self.display!r}: {e}. {NO_DISPLAY_HELP}") from e
        monitors = self._mss.monitors
        if monitor >= len(monitors):
            self._mss.close()
            raise EnvironmentUnavailable(
                f"monitor {monitor} does not exist; this display has {len(monitors) - 1} monitor(s) "
                f"(use 0 for all of them together)"
            )
        self.monitor = MonitorGeometry.from_mss(monitors[monitor])
        self._pyautogui: Any = None

    # ---- observing

    @property
    def monitors(self) -> list[MonitorGeometry]:
        """All monitors as mss numbers them (index 0 = the whole desktop)."""
        return [MonitorGeometry.from_mss(m) for m in self._mss.monitors]

    def observe(self) -> Observation:
        shot = self._grab()
        # One C-level pass from BGRA to RGB straight from mss' buffer (`shot.bgra`
        # would first copy the 8 MB of a 1080p frame into a bytes object).
        image = Image.frombytes("RGB", shot.size, shot.raw, "raw", "BGRX")
        scale = screenshot_scale(image.size, self.monitor)
        return Observation(
            image=image,
            screen_size=(self.monitor.width, self.monitor.height),
            info={
                "platform": "desktop",
                "display": self.display,
                "monitor_index": self.monitor_index,
                "monitor": self.monitor.as_dict(),
                "monitors": [m.as_dict() for m in self.monitors[1:]],
                "scale": [scale[0], scale[1]],
            },
        )

    def _grab(self) -> Any:
        """The monitor's capture, checked whole (a BGRX pixel for every pixel of a non-empty size); one more
        try after an empty or cut-short one, then EnvironmentLost."""
        problem = ""
        for _ in range(2):
            try:
                shot = self._mss.grab(self.monitor.as_dict())
            except Exception as e:
                raise EnvironmentLost(f"cannot capture the screen of display {self.display!r}: {e}") from e
            w, h = shot.size
            if w > 0 and h > 0 and len(shot.raw) >= w * h * 4:
                return shot
            problem = f"{len(shot.raw)} bytes for {w}x{h} pixels"
        raise EnvironmentLost(f"the screen capture of display {self.display!r} came back empty or cut short twice "
                              f"({problem})")

    def focus(self) -> Focus:
        """The window typed text goes to now: its title (what a scoped secret is matched against).

        X's input focus when it names a window; when it is PointerRoot or the root window (no window
        manager, as on a bare Xvfb) keys go to the top-level window under the pointer. The title is the
        _NET_WM_NAME (else WM_NAME) of that window or its nearest ancestor that has one, else of the
        client window inside a window manager's frame.
        """
        if not IS_X11:  # pragma: no cover - exercised only on macOS/Windows
            return Focus(None, "window", {"error": "reading the focused window is implemented for X11 only"})
        try:
            return _x11_focus(self._xlib())
        except Exception as e:
            if not self._display_alive():
                raise EnvironmentLost(f"display {self.display!r} went away while reading the focused window") from e
            self._close_xlib()
            return Focus(None, "window", {"error": f"{type(e).__name__}: {e}"})

    def _xlib(self) -> Any:
        if getattr(self, "_xdisplay", None) is None:
            from Xlib import display as xdisplay

            with contextlib.redirect_stdout(io.StringIO()):  # python-xlib's xauth warning (_display_env)
                self._xdisplay = xdisplay.Display(self.display)
        return self._xdisplay

    def _close_xlib(self) -> None:
        x, self._xdisplay = getattr(self, "_xdisplay", None), None
        if x is not None:
            with contextlib.suppress(Exception):
                x.close()

    # ---- acting

    @property
    def gui(self) -> Any:
        """pyautogui, configured and bound to this environment's display."""
        try:
            gui = _pyautogui_for(self.display)
        except Exception as e:
            raise EnvironmentUnavailable(f"pyautogui cannot reach display {self.display!r}: {e}. {NO_DISPLAY_HELP}") from e
        gui.FAILSAFE = self.failsafe
        gui.PAUSE = 0.0  # no sleep after every call; the few needed delays are explicit below
        self._pyautogui = gui
        return gui

    def to_device(self, point: tuple[float, float]) -> tuple[int, int]:
        """Desktop pixel for a normalized point of the last observed screenshot.

        With the fail-safe on, a point on one of the desktop's four corner pixels
        is moved one pixel inward: the fail-safe is for a human who slams the
        mouse into a corner, not for a model clicking at (0, 0).
        """
        x, y = to_device_pixels(point, self.monitor)
        if self.failsafe:
            desktop = self.monitors[0]
            left, top = desktop.left, desktop.top
            right, bottom = left + desktop.width - 1, top + desktop.height - 1
            if x in (left, right) and y in (top, bottom):
                x += 1 if x == left else -1
                y += 1 if y == top else -1
        return x, y

    def execute(self, action: Action) -> None:
        handler = getattr(self, f"_do_{action.kind}", None)
        if handler is None:
            hint = " (a desktop has no system-wide back/home/app launcher; use key or click)"
            raise UnsupportedAction(
                f"the desktop has no '{action.kind}' action" + (hint if action.kind in ("back", "home", "open_app") else "")
            )
        try:
            handler(action)
        except (UnsupportedAction, EnvironmentLost):
            raise
        except Exception as e:
            if self._pyautogui is not None and isinstance(e, self._pyautogui.FailSafeException):
                raise FailSafeTriggered(
                    "pyautogui fail-safe: the mouse is in a corner of the screen (someone moved it there to stop "
                    "the agent); nothing more is executed. Move it away to go on, or use DesktopEnv(failsafe=False)."
                ) from e
            if not self._display_alive():
                raise EnvironmentLost(f"display {self.display!r} went away while executing {action.describe()}") from e
            raise

    def _display_alive(self) -> bool:
        try:
            self._mss.grab({"left": self.monitor.left, "top": self.monitor.top, "width": 1, "height": 1})
            return True
        except Exception:
            return False

    def _click(self, action: Action, button: str, clicks: int) -> None:
        gui = self.gui
        x, y = self.to_device(action.point)
        held = _held_keys(action)
        gui.moveTo(x, y)
        with _holding(gui, held):
            gui.click(x, y, clicks=clicks, interval=0.0, button=action.button or button)

    def _do_click(self, action: Action) -> None:
        self._click(action, "left", 1)

    def _do_double_click(self, action: Action) -> None:
        self._click(action, "left", 2)

    def _do_triple_click(self, action: Action) -> None:
        self._click(action, "left", 3)

    def _do_right_click(self, action: Action) -> None:
        self._click(action, "right", 1)

    def _do_middle_click(self, action: Action) -> None:
        self._click(action, "middle", 1)

    def _do_move(self, action: Action) -> None:
        self.gui.moveTo(*self.to_device(action.point))

    def _do_drag(self, action: Action) -> None:
        gui = self.gui
        (x0, y0), (x1, y1) = self.to_device(action.point), self.to_device(action.end)
        button = action.button or "left"
        held = _held_keys(action)
        gui.moveTo(x0, y0)
        with _holding(gui, held):
            gui.mouseDown(x0, y0, button=button)
            # Intermediate motion events, so apps see B1-Motion as with a real hand.
            for i in range(1, self.drag_steps + 1):
                time.sleep(self.step_delay)
                t = i / self.drag_steps
                gui.moveTo(round(x0 + (x1 - x0) * t), round(y0 + (y1 - y0) * t))
            time.sleep(self.step_delay)
            gui.mouseUp(x1, y1, button=button)

    _do_swipe = _do_drag

    def _do_long_press(self, action: Action) -> None:
        gui = self.gui
        x, y = self.to_device(action.point)
        gui.moveTo(x, y)
        gui.mouseDown(x, y, button=action.button or "left")
        time.sleep(1.0 if action.seconds is None else action.seconds)
        gui.mouseUp(x, y, button=action.button or "left")

    def _do_scroll(self, action: Action) -> None:
        gui = self.gui
        clicks = 3 if action.amount is None else round(action.amount)
        if action.point is not None:
            gui.moveTo(*self.to_device(action.point))
        if clicks == 0:
            return
        if action.direction in ("up", "down"):
            gui.scroll(clicks if action.direction == "up" else -clicks)
        else:
            gui.hscroll(clicks if action.direction == "right" else -clicks)

    def _do_key(self, action: Action) -> None:
        gui = self.gui
        names = _key_names(action.keys)
        keys = [normalize_key(k) for k in names]
        unknown = [k for k, n in zip(names, keys) if n not in gui.KEY_NAMES]
        if unknown:
            raise UnsupportedAction(f"unknown key name(s) {unknown}; known names include ctrl, alt, shift, cmd, enter, esc, tab, arrows, pageup, f1..f12")
        gui.hotkey(*keys, interval=0.0)

    def _do_type(self, action: Action) -> None:
        text = action.text.replace("\r\n", "\n").replace("\r", "\n")
        for chunk, ascii_only in _split_ascii(text):
            if ascii_only:
                self.gui.write(chunk, interval=0.0)
            else:
                self._type_unicode(chunk)

    def _do_wait(self, action: Action) -> None:
        time.sleep(1.0 if action.seconds is None else action.seconds)

    def _do_answer(self, action: Action) -> None:
        pass

    def _do_done(self, action: Action) -> None:
        pass

    # ---- non-ASCII text

    def _type_unicode(self, text: str) -> None:
        if not IS_X11:  # pragma: no cover - exercised only on macOS/Windows
            raise UnsupportedAction("typing non-ASCII text is implemented for X11 only")
        xclip, xdotool = shutil.which("xclip"), shutil.which("xdotool")
        if self.unicode_typing in ("auto", "clipboard") and xclip:
            self._paste(text, xclip)
        elif self.unicode_typing in ("auto", "xdotool") and xdotool:
            # xdotool binds each character to a spare keycode, types it and unbinds
            # it; an app that reads the keymap late (a loaded machine) can miss one,
            # hence the generous per-character delay.
            self._run([xdotool, "type", "--delay", "30", "--", text])
        else:
            needed = {"auto": "xclip or xdotool", "xdotool": "xdotool", "clipboard": "xclip"}[self.unicode_typing]
            raise UnsupportedAction(
                f"typing non-ASCII text {text!r} needs {needed} "
                f"(Debian/Ubuntu: apt-get install {needed.replace(' or ', ' ')})"
            )

    def _run(self, argv: list[str]) -> None:
        result = subprocess.run(argv, env=self._subprocess_env(), capture_output=True, timeout=60)
        if result.returncode != 0:
            raise UnsupportedAction(f"{Path(argv[0]).name} failed: {result.stderr.decode(errors='replace').strip()}")

    def _subprocess_env(self) -> dict[str, str]:
        return {**os.environ, "DISPLAY": self.display or ""}

    def _paste(self, text: str, xclip: str) -> None:
        """Paste `text` with ctrl+v from a one-shot clipboard owner, then restore the clipboard.

        `xclip -l 1 -quiet` owns the CLIPBOARD until it has served one request,
        so waiting for it to exit tells when the app has really read the text:
        no sleep, no race with restoring the previous content.
        """
        gui = self.gui
        xdisplay = gui.platformModule._display
        clipboard = xdisplay.intern_atom("CLIPBOARD")

        def owner() -> int:
            window = xdisplay.get_selection_owner(clipboard)
            return int(getattr(window, "id", window))

        previous = _clipboard_get(self, xclip)
        owner_before = owner()
        server = subprocess.Popen(
            [xclip, "-selection", "clipboard", "-i", "-t", "UTF8_STRING", "-l", "1", "-quiet"],
            stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=self._subprocess_env(),
        )  # fmt: skip
        try:
            server.stdin.write(text.encode("utf-8"))
            server.stdin.close()
            deadline = time.monotonic() + 5.0
            while owner() == owner_before:  # xclip takes the selection after reading its input
                if server.poll() is not None or time.monotonic() > deadline:
                    raise UnsupportedAction("xclip could not take the clipboard to paste non-ASCII text")
                time.sleep(0.002)
            gui.hotkey("ctrl", "v", interval=0.0)
            try:
                server.wait(timeout=self.paste_timeout)
            except subprocess.TimeoutExpired:
                raise UnsupportedAction(
                    f"the focused window did not read the clipboard within {self.paste_timeout:g}s after ctrl+v "
                    "(it may not paste with ctrl+v, e.g. a terminal); try DesktopEnv(unicode_typing='xdotool')"
                ) from None
        finally:
            if server.poll() is None:
                server.kill()
                server.wait()
            if previous is not None:
                _clipboard_set(self, xclip, previous)

    def close(self) -> None:
        self._close_xlib()
        with contextlib.suppress(Exception):
            self._mss.close()


def _x11_focus(xd: Any) -> Focus:
    """Focus of an open python-xlib Display (see DesktopEnv.focus)."""
    from Xlib import X

    root = xd.screen().root
    focus = xd.get_input_focus().focus
    how = "input focus"
    if isinstance(focus, int) or focus is None or focus.id == root.id:  # PointerRoot / None / the root window
        child = root.query_pointer().child
        if isinstance(child, int) or child is None or child == X.NONE:
            return Focus(None, "window", {"how": "pointer over the bare root window"})
        focus, how = child, "window under the pointer (no window holds the input focus)"
    window, title = focus, None
    chain = []
    while window is not None and window.id != root.id:  # the window and its ancestors up to the top level
        chain.append(window)
        title = title or _window_title(xd, window)
        window = window.query_tree().parent
    if title is None and chain:  # a window manager's frame: the client with WM_STATE inside it has the title
        title = _client_title(xd, chain[-1])
    top = chain[-1] if chain else focus
    wm_class = None
    with contextlib.suppress(Exception):
        wm_class = next((w.get_wm_class() for w in chain if w.get_wm_class()), None)
    return Focus(title, "window", {"window": hex(top.id), "class": wm_class[1] if wm_class else None, "how": how})


def _window_title(xd: Any, window: Any) -> str | None:
    prop = window.get_full_property(xd.intern_atom("_NET_WM_NAME"), xd.intern_atom("UTF8_STRING"))
    if prop is not None and prop.value:
        value = prop.value
        return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
    name = window.get_wm_name()
    if name:
        return name.decode("latin-1") if isinstance(name, bytes) else str(name)
    return None


def _client_title(xd: Any, frame: Any, depth: int = 0) -> str | None:
    wm_state = xd.intern_atom("WM_STATE")
    for child in frame.query_tree().children:
        if child.get_full_property(wm_state, 0) is not None or _window_title(xd, child):
            title = _window_title(xd, child)
            if title:
                return title
        if depth < 3:
            title = _client_title(xd, child, depth + 1)
            if title:
                return title
    return None


def _clipboard_get(env: DesktopEnv, xclip: str) -> bytes | None:
    result = subprocess.run(
        [xclip, "-selection", "clipboard", "-o"], env=env._subprocess_env(), capture_output=True, timeout=5
    )
    return result.stdout if result.returncode == 0 else None


def _clipboard_set(env: DesktopEnv, xclip: str, data: str | bytes) -> None:
    payload = data.encode("utf-8") if isinstance(data, str) else data
    # xclip forks a child that serves the selection until someone else owns it;
    # that child inherits stdout/stderr, so they must not be pipes we wait on.
    subprocess.run(
        [xclip, "-selection", "clipboard", "-i", "-t", "UTF8_STRING"],
        input=payload, env=env._subprocess_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=5, check=True,
    )  # fmt: skip


# What pyautogui.write types correctly. "<" is left out: pyautogui presses shift
# plus the keycode of `less`, which on the common pc105 keymap is the <> key whose
# shifted symbol is ">"; the xdotool path types it right.
_TYPABLE_ASCII = (frozenset(chr(c) for c in range(32, 127)) - {"<"}) | {"\n", "\t"}


def _split_ascii(text: str) -> list[tuple[str, bool]]:
    """Split text into runs of (chunk, is_plain_ascii)."""
    runs: list[tuple[str, bool]] = []
    for ch in text:
        plain = ch in _TYPABLE_ASCII
        if runs and runs[-1][1] == plain:
            runs[-1] = (runs[-1][0] + ch, plain)
        else:
            runs.append((ch, plain))
    return runs


__all__ = [
    "DesktopEnv",
    "FailSafeTriggered",
    "MonitorGeometry",
    "to_device_pixels",
    "screenshot_scale",
    "normalize_key",
    "ensure_xauthority",
    "NO_DISPLAY_HELP",
]
