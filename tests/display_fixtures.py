"""X server + practice app fixtures for desktop tests.

Import what a test module needs:

    from display_fixtures import x_display, practice_desktop  # noqa: F401

`x_display` is a bare 1280x720 Xvfb (function scope). `practice_desktop`
(module scope, parametrized over 1280x720 and 1920x1080) and
`practice_dual_monitor` (module scope, app on the second of two monitors)
start an X server, the practice app and a `DesktopEnv`, and hand back a
`PracticeSession` with helpers to find widgets as normalized points of the
observed screenshot. `practice_hidpi` (module scope) is the practice app on a
screen whose screenshots come at HIDPI_SCALES, unequal across and down (see
`HiDpiCapture`). Tests are skipped (with the reason) only when the X server
binaries are not installed.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import pytest

from vlagent.environments.practice import desktop_app
from vlagent.environments.xserver import (
    VirtualDisplay,
    binaries_available,
    start_dual_monitor_display,
    start_virtual_display,
)

SCREEN_SIZES = [(1280, 720), (1920, 1080)]
DUAL_MONITORS = ((1280, 720), (1024, 768))
# Screenshot pixels per logical pixel, across and down: unequal, so a mapping that mixes them up misses.
HIDPI_SCALES = (2.0, 1.5)


def _skip_without_binaries(dual: bool = False) -> None:
    reason = binaries_available(dual_monitor=dual)
    if reason:
        pytest.skip(f"no X server to test with ({reason})")


@dataclass
class PracticeSession:
    """A running practice app on a display, driven through `env` (a DesktopEnv)."""

    display: VirtualDisplay
    state_file: Path
    process: Any
    env: Any
    observation: Any = field(default=None)

    def observe(self) -> Any:
        self.observation = self.env.observe()
        return self.observation

    def state(self) -> dict[str, Any]:
        return desktop_app.read_state(self.state_file)

    def wait(self, predicate: Callable[[dict[str, Any]], bool], what: str, timeout: float = 5.0) -> dict[str, Any]:
        return desktop_app.wait_for_state(self.state_file, predicate, timeout=timeout, what=what)

    def settle(self, timeout: float = 5.0) -> dict[str, Any]:
        """Wait until the app has handled everything sent so far (its seq stops moving)."""
        deadline = time.monotonic() + timeout
        time.sleep(0.05)
        last = self.state()["seq"]
        while time.monotonic() < deadline:
            time.sleep(0.1)
            now = self.state()["seq"]
            if now == last:
                return self.state()
            last = now
        raise TimeoutError(f"the practice app kept changing its state for {timeout:g}s")

    def point_of(self, box: list[int], at: tuple[float, float] = (0.5, 0.5)) -> tuple[float, float]:
        """A normalized point of the last observed screenshot inside `box` (screen pixels).

        Independent of DesktopEnv's mapping: uses only the monitor rectangle and
        image size the observation reports.
        """
        obs = self.observation or self.observe()
        monitor = obs.info["monitor"]
        width, height = obs.image.size
        scale_x, scale_y = width / monitor["width"], height / monitor["height"]
        x = box[0] + (box[2] - box[0]) * at[0] - monitor["left"]
        y = box[1] + (box[3] - box[1]) * at[1] - monitor["top"]
        return ((int(x) + 0.5) * scale_x / width, (int(y) + 0.5) * scale_y / height)

    def point(self, widget: str, at: tuple[float, float] = (0.5, 0.5)) -> tuple[float, float]:
        return self.point_of(self.state()["boxes"][widget], at)


class HiDpiCapture:
    """The screen capture of a HiDPI display (macOS Retina, scaled Windows): `grab` returns
    `scales` screenshot pixels per logical pixel, while the monitor rectangles (and the mouse)
    stay in logical pixels. X11 has no such split, so this wraps a DesktopEnv's mss object: the
    screenshot is the real screen, enlarged (nearest neighbour) by the scales; everything else is mss."""

    def __init__(self, inner: Any, scales: tuple[float, float]) -> None:
        self._inner, self.scales = inner, scales

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def grab(self, monitor: dict[str, int]) -> Any:
        from types import SimpleNamespace

        from PIL import Image

        shot = self._inner.grab(monitor)
        size = (round(shot.size[0] * self.scales[0]), round(shot.size[1] * self.scales[1]))
        image = Image.frombytes("RGB", shot.size, shot.raw, "raw", "BGRX").resize(size, Image.Resampling.NEAREST)
        return SimpleNamespace(size=size, raw=image.tobytes("raw", "BGRX"))


@contextlib.contextmanager
def practice_session(
    display: VirtualDisplay, tmp_dir: Path, geometry: str, monitor: int = 1,
    hidpi: tuple[float, float] | None = None, **env_kwargs: Any,
) -> Iterator[PracticeSession]:
    from vlagent.environments.desktop import DesktopEnv

    state_file = tmp_dir / "practice-state.json"
    proc = desktop_app.launch(state_file, display.name, geometry=geometry, env=display.env)
    env = DesktopEnv(monitor=monitor, display=display.name, **env_kwargs)
    if hidpi is not None:
        env._mss = HiDpiCapture(env._mss, hidpi)
    try:
        session = PracticeSession(display, state_file, proc, env)
        session.observe()
        yield session
    finally:
        env.close()
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except Exception:
            proc.kill()


@pytest.fixture
def x_display() -> Iterator[VirtualDisplay]:
    """A fresh 1280x720 Xvfb for one test."""
    _skip_without_binaries()
    with start_virtual_display(1280, 720) as display:
        yield display


@pytest.fixture(scope="module", params=SCREEN_SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def practice_desktop(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[PracticeSession]:
    """The practice app on a single-monitor Xvfb, placed away from the screen corner."""
    _skip_without_binaries()
    width, height = request.param
    with start_virtual_display(width, height) as display:
        app_w, app_h = 800, 560
        # Centered-ish, so each screen size puts the widgets at other fractions.
        geometry = f"{app_w}x{app_h}+{(width - app_w) // 2 + 37}+{(height - app_h) // 3}"
        with practice_session(display, tmp_path_factory.mktemp("practice"), geometry) as session:
            yield session


@pytest.fixture(scope="module")
def practice_dual_monitor(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PracticeSession]:
    """Two monitors (1280x720 at +0+0, 1024x768 at +1280+0); the app on the second,
    observed and driven through DesktopEnv(monitor=2)."""
    _skip_without_binaries(dual=True)
    with start_dual_monitor_display(DUAL_MONITORS) as display:
        geometry = "760x560+1400+60"
        with practice_session(display, tmp_path_factory.mktemp("practice2"), geometry, monitor=2) as session:
            yield session


@pytest.fixture(scope="module")
def practice_hidpi(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PracticeSession]:
    """The practice app on a 1280x720 screen captured at HIDPI_SCALES (2560x1080 screenshots)."""
    _skip_without_binaries()
    with start_virtual_display(1280, 720) as display:
        geometry = "800x560+211+97"
        with practice_session(display, tmp_path_factory.mktemp("practice_hidpi"), geometry, hidpi=HIDPI_SCALES) as session:
            yield session


# A Tk form of two read-only combo boxes (Size, Colour) that writes its choices to a JSON file.
_COMBO_APP = r'''
import json, os, sys, tkinter as tk
from tkinter import ttk

state = sys.argv[1]
root = tk.Tk()
root.title("Preferences")
root.geometry("520x300+100+80")
form = ttk.Frame(root, padding=30)
form.pack(fill="both", expand=True)
boxes = {}
for row, (name, values) in enumerate((("Size", ["Small", "Medium", "Large"]), ("Colour", ["Red", "Green", "Blue"]))):
    ttk.Label(form, text=name).grid(row=row, column=0, sticky="w", padx=(0, 16), pady=10)
    box = ttk.Combobox(form, values=values, state="readonly", width=18)
    box.set(values[0])
    box.grid(row=row, column=1, pady=10)
    boxes[name.lower()] = box


def save(*_):
    with open(state + ".tmp", "w") as f:
        json.dump({name: box.get() for name, box in boxes.items()}, f)
    os.replace(state + ".tmp", state)


for box in boxes.values():
    box.bind("<<ComboboxSelected>>", save)
root.after(300, save)
root.mainloop()
'''


@dataclass
class ComboApp:
    state_file: Path

    def read(self) -> dict:
        return json.loads(self.state_file.read_text()) if self.state_file.exists() else {}

    def wait(self, check: Callable[[dict], bool], what: str, timeout: float = 15.0) -> dict:
        deadline = time.monotonic() + timeout
        while not check(self.read()):
            assert time.monotonic() < deadline, f"{what}: the app says {self.read()}"
            time.sleep(0.1)
        return self.read()


@contextlib.contextmanager
def running(command: Sequence[str], env: dict, **popen: Any) -> Iterator[subprocess.Popen]:
    """`command` started with `env`, terminated (and waited for) however the body ends."""
    proc = subprocess.Popen(list(command), env=env, **popen)
    try:
        yield proc
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@contextlib.contextmanager
def combo_app(display: VirtualDisplay, state_file: Path) -> Iterator[ComboApp]:
    """The combo-box form on `display`, started and seen to write its first state (Small, Red)."""
    with running([sys.executable, "-c", _COMBO_APP, str(state_file)], display.env):
        app = ComboApp(state_file)
        app.wait(lambda s: s.get("size") == "Small", "the app never started")
        yield app


# Two buttons; while the pointer is on Undo, its tooltip covers Redo (as galculator's "One KP 1" tooltip
# covered its "0" and "." keys after a click on "1").
_TOOLTIP_APP = r'''
import sys, tkinter as tk

state = sys.argv[1]
root = tk.Tk()
root.geometry("360x220+60+60")
undo = tk.Button(root, text="Undo", width=10)
undo.place(x=30, y=30)
redo = tk.Button(root, text="Redo", width=10, command=lambda: open(state, "a").write("redo\n"))
root.bind_all("<Control-s>", lambda _event: open(state, "a").write("ctrl+s\n"))
redo.place(x=30, y=100)
tip = []


def show(_event):
    window = tk.Toplevel(root)
    window.overrideredirect(True)
    window.geometry(f"300x90+{root.winfo_rootx() + 10}+{root.winfo_rooty() + 75}")
    tk.Label(window, text="Undo the last change\n(Ctrl+Z)", bg="#ffffe0", relief="solid").pack(fill="both", expand=True)
    tip.append(window)


def hide(_event):
    while tip:
        tip.pop().destroy()


undo.bind("<Enter>", show)
undo.bind("<Leave>", hide)
root.mainloop()
'''


@dataclass
class TooltipApp:
    state_file: Path

    def wait_for_redo(self, timeout: float = 5.0) -> None:
        self.wait_for("redo", timeout)

    def wait_for(self, event: str, timeout: float = 5.0) -> None:
        """Wait until the app has written `event` ("redo": Redo clicked; "ctrl+s": the keys pressed in it)."""
        deadline = time.monotonic() + timeout
        while event not in (self.state_file.read_text().split() if self.state_file.exists() else ()):
            assert time.monotonic() < deadline, f"no {event} in the app: it says {self.state_file.read_text() if self.state_file.exists() else ''!r}"
            time.sleep(0.1)


@contextlib.contextmanager
def tooltip_app(display: VirtualDisplay, state_file: Path) -> Iterator[TooltipApp]:
    """The Undo/Redo window on `display`; `wait_for_redo` checks that Redo was clicked, `wait_for("ctrl+s")`
    that ctrl+s reached it."""
    with running([sys.executable, "-c", _TOOLTIP_APP, str(state_file)], display.env):
        yield TooltipApp(state_file)


# A list of 80 orders, 12 rows showing; the selection is written to a state file.
_LONG_LIST_APP = r'''
import json, os, sys, tkinter as tk

state = sys.argv[1]
root = tk.Tk()
root.geometry("360x340+80+80")
orders = tk.Listbox(root, font=("DejaVu Sans", 14), height=12, activestyle="none")
for number in range(1001, 1081):
    orders.insert("end", f"Order {number}")
orders.pack(fill="both", expand=True, padx=20, pady=20)


def save(_event=None):
    with open(state + ".tmp", "w") as f:
        json.dump({"selected": [orders.get(i) for i in orders.curselection()]}, f)
    os.replace(state + ".tmp", state)


orders.bind("<<ListboxSelect>>", save)
root.after(300, save)
root.mainloop()
'''


@contextlib.contextmanager
def long_list_app(display: VirtualDisplay, state_file: Path) -> Iterator[ComboApp]:
    """A list of 80 orders on `display`, 12 showing, seen to write its first state (nothing selected)."""
    with running([sys.executable, "-c", _LONG_LIST_APP, str(state_file)], display.env):
        app = ComboApp(state_file)
        app.wait(lambda s: s.get("selected") == [], "the app never started")
        yield app


# A Tk scale (a knob in a trough) and a ttk scale, beside their labels; their values go to a state file.
_SLIDERS_APP = r'''
import json, os, sys, tkinter as tk
from tkinter import ttk

state = sys.argv[1]
root = tk.Tk()
root.geometry("520x200+60+60")
volume, brightness = tk.DoubleVar(root, 20.0), tk.DoubleVar(root, 50.0)


def save(*_):
    with open(state + ".tmp", "w") as f:
        json.dump({"volume": volume.get(), "brightness": brightness.get()}, f)
    os.replace(state + ".tmp", state)


font = ("DejaVu Sans", 12)
tk.Label(root, text="Volume", font=font).grid(row=0, column=0, padx=12, pady=20, sticky="w")
tk.Scale(root, from_=0, to=100, orient="horizontal", variable=volume, length=300, showvalue=False,
         command=save).grid(row=0, column=1, padx=12)
tk.Label(root, text="Brightness", font=font).grid(row=1, column=0, padx=12, pady=20, sticky="w")
ttk.Scale(root, from_=0, to=100, orient="horizontal", variable=brightness, length=300,
          command=save).grid(row=1, column=1, padx=12)
root.after(300, save)
root.mainloop()
'''


class SlidersApp(ComboApp):
    def wait_near(self, timeout: float = 5.0, **values: float) -> dict:
        """Wait until each named value is within 2 of the one given."""
        return self.wait(lambda s: bool(s) and all(abs(s[k] - v) <= 2 for k, v in values.items()),
                         f"values near {values}", timeout)


@contextlib.contextmanager
def sliders_app(display: VirtualDisplay, state_file: Path) -> Iterator[SlidersApp]:
    """The Volume (Tk) and Brightness (ttk) sliders on `display`, seen to write their first values (20, 50)."""
    with running([sys.executable, "-c", _SLIDERS_APP, str(state_file)], display.env):
        app = SlidersApp(state_file)
        app.wait_near(timeout=20, volume=20, brightness=50)
        yield app
