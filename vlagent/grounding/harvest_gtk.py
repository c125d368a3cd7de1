"""Harvest real GTK3 applications: screenshots + element boxes from AT-SPI.

    vlagent grounding-data harvest --source gtk --out DIR [--option apps=galculator,zenity-forms]
                                   [--option themes=light,dark] [--option crop=window|screen]

Each application (Debian packages: galculator, gucharmap, mousepad, zenity,
gtk-3-examples: the widget factory and the icon browser) runs on a private
Xvfb inside its own `dbus-run-session` with accessibility on (see
atspi_session.py). For each scene — the window as
it opens, then with a menu opened or another tab shown — the harvester dumps
the accessibility tree, takes the screenshot with mss (as DesktopEnv does),
dumps the tree again and keeps the screen only if nothing moved in between.
Boxes come from the tree (atspi_targets.py), normalized to the screenshot,
which is the application's window (`crop=window`, default) or the whole
screen (`crop=screen`). Themes: Adwaita light and dark.

Records: platform "desktop", source "gtk:<app>", split by application
(harvest_common.TEST_SOURCES).
"""

from __future__ import annotations

import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from PIL import Image

from vlagent.grounding.atspi_session import AtspiSession, atspi_unavailable
from vlagent.grounding.atspi_targets import Node, node_name, targets_from_tree, tree_signature, window_box
from vlagent.grounding.dataset import GroundingRecord
from vlagent.grounding.harvest import HarvestError
from vlagent.grounding.harvest_common import ScreenBudget, save_screenshot, screen_records


@dataclass(frozen=True)
class Step:
    """One thing done to reach a scene: an AT-SPI action on the node with
    `role` and `name` ("do"), or a key pressed with xdotool ("key")."""

    kind: str  # "do" | "key"
    role: str = ""
    name: str = ""
    action: str = "click"
    key: str = ""


def do(role: str, name: str, action: str = "click") -> Step:
    return Step("do", role=role, name=name, action=action)


def key(keysym: str) -> Step:
    return Step("key", key=keysym)


@dataclass(frozen=True)
class Scene:
    """A screen of an application: `steps` from the previous scene's end state, then a capture;
    `undo` brings the application back (close the menu) before the next scene."""

    name: str
    steps: tuple[Step, ...] = ()
    undo: tuple[Step, ...] = ()


def menu_scene(menu: str) -> Scene:
    return Scene(f"menu-{menu.lower()}", (do("menu", menu),), (key("Escape"),))


@dataclass(frozen=True)
class GtkApp:
    name: str  # records get source "gtk:<source or name>"
    argv: tuple[str, ...]
    package: str  # the Debian package, for the error when it is missing
    scenes: tuple[Scene, ...] = (Scene("main"),)
    size: tuple[int, int] | None = None  # resize the window (no window manager here) before capturing
    source: str | None = None  # several invocations of one program can share a source

    @property
    def source_name(self) -> str:
        return f"gtk:{self.source or self.name}"


_MENUS = lambda *names: tuple(menu_scene(n) for n in names)  # noqa: E731

APPS: tuple[GtkApp, ...] = (
    GtkApp("galculator", ("galculator",), "galculator",
           (Scene("main"), *_MENUS("File", "Edit", "View", "Calculator"),
            Scene("scientific", (do("menu", "View"), do("radio menu item", "Scientific Mode"))),
            Scene("preferences", (do("menu", "Edit"), do("menu item", "Preferences...")), (key("Escape"),)))),
    GtkApp("gucharmap", ("gucharmap",), "gucharmap",
           (Scene("main"), *_MENUS("View", "Search", "Go"),
            Scene("details", (do("page tab", "Character Details", "select"),))),
           size=(900, 620)),
    GtkApp("mousepad", ("mousepad",), "mousepad",
           (Scene("main"),
            # Mousepad hides its toolbar by default; its icon buttons are the icon targets.
            Scene("toolbar", (do("menu", "View"), do("menu item", "Toolbar"))),
            *_MENUS("File", "Edit", "Search", "View", "Document"),
            # The preferences dialog: named check boxes, spin buttons and tabs.
            Scene("preferences", (do("menu", "Edit"), do("menu item", "Preferences...")), (key("Escape"),))),
           size=(900, 620)),
    GtkApp("widget-factory", ("gtk3-widget-factory",), "gtk-3-examples",
           (Scene("page-1"), Scene("page-2", (do("radio button", "Page 2"),)),
            Scene("page-3", (do("radio button", "Page 3"),)))),
    # A list of named rows (the icon browser's contexts): list items from real GTK for training, beside the
    # test split's gucharmap list. (gtk3-demo's tree is left out: AT-SPI reports its rows' boxes shifted
    # right by the expander column, so their left edge cuts into the label.)
    GtkApp("icon-browser", ("gtk3-icon-browser",), "gtk-3-examples", size=(900, 620)),
    GtkApp("zenity-forms", ("zenity", "--forms", "--title=New account", "--text=Create an account",
                            "--add-entry=First name", "--add-entry=Last name", "--add-entry=Email",
                            "--add-password=Password", "--add-calendar=Birthday",
                            "--add-combo=Country", "--combo-values=France|Japan|Peru"),
           "zenity", source="zenity"),
    GtkApp("zenity-list", ("zenity", "--list", "--checklist", "--title=Install packages", "--width=520",
                           "--height=420", "--column=Pick", "--column=Package", "--column=Size",
                           "TRUE", "curl", "420 kB", "FALSE", "git", "9 MB", "FALSE", "htop", "380 kB",
                           "TRUE", "tmux", "1 MB", "FALSE", "ripgrep", "5 MB"), "zenity", source="zenity"),
    GtkApp("zenity-question", ("zenity", "--question", "--title=Unsaved changes",
                               "--text=Save the changes to report.txt before closing?",
                               "--ok-label=Save", "--cancel-label=Discard"), "zenity", source="zenity"),
    GtkApp("zenity-scale", ("zenity", "--scale", "--title=Volume", "--text=Output volume",
                            "--value=40"), "zenity", source="zenity"),
    GtkApp("zenity-entry", ("zenity", "--entry", "--title=Rename", "--text=New file name:",
                            "--entry-text=notes.txt"), "zenity", source="zenity"),
    GtkApp("file-chooser", ("zenity", "--file-selection", "--title=Open a file", "--filename=/usr/share/doc/"),
           "zenity", size=(900, 600)),
    GtkApp("file-chooser-save", ("zenity", "--file-selection", "--save", "--title=Save as",
                                 "--filename=/tmp/report.txt"), "zenity", size=(900, 600),
           source="file-chooser"),
)  # fmt: skip
APPS_BY_NAME = {app.name: app for app in APPS}

THEMES: dict[str, dict[str, str]] = {
    "light": {"GTK_THEME": "Adwaita"},
    "dark": {"GTK_THEME": "Adwaita:dark"},
}
SCREEN_SIZE = (1440, 900)


def _xdotool(display: str, *args: str) -> str:
    result = subprocess.run(["xdotool", *args], capture_output=True, text=True, timeout=10,
                            env={"DISPLAY": display, "PATH": "/usr/bin:/bin"})  # fmt: skip
    return result.stdout


def _grab(display: str, screen: tuple[int, int]) -> Image.Image:
    import mss

    with mss.MSS(display=display) as sct:
        shot = sct.grab({"left": 0, "top": 0, "width": screen[0], "height": screen[1]})
        return Image.frombytes("RGB", shot.size, shot.bgra, "raw", "BGRX")


class _AppRun:
    """One application in one session: waiting, acting, capturing."""

    def __init__(self, session: AtspiSession, display: str, app: GtkApp, screen: tuple[int, int]) -> None:
        self.session, self.display, self.app, self.screen = session, display, app, screen
        self.pid = session.launch(list(app.argv))

    def wait_stable(self, timeout: float = 20.0, quiet: float = 0.4) -> list[Node]:
        """The tree once the window exists and two dumps `quiet` seconds apart agree."""
        deadline = time.monotonic() + timeout
        last: list[Node] | None = None
        error = "no window yet"
        while time.monotonic() < deadline:
            try:
                nodes = self.session.tree(self.pid)
            except HarvestError as exc:  # not on the bus yet
                error = str(exc)
                nodes = []
            if nodes and window_box(nodes, self.screen) is not None:
                if last is not None and tree_signature(last) == tree_signature(nodes):
                    return nodes
                last = nodes
            elif not self.session.alive(self.pid):
                raise HarvestError(f"{self.app.name} exited before showing a window:\n{self.session.log_tail()}")
            time.sleep(quiet)
        raise HarvestError(f"{self.app.name}'s accessibility tree did not settle in {timeout:g}s ({error})")

    def resize(self, size: tuple[int, int]) -> None:
        for wid in _xdotool(self.display, "search", "--onlyvisible", "--pid", str(self.pid), "").split():
            _xdotool(self.display, "windowsize", wid, str(size[0]), str(size[1]))

    def run_steps(self, steps: Sequence[Step]) -> None:
        for step in steps:
            if step.kind == "key":
                _xdotool(self.display, "key", step.key)
                continue
            # The node may belong to a popup the previous step has just opened: give it a moment.
            deadline = time.monotonic() + 3.0
            while True:
                nodes = self.session.tree(self.pid)
                match = [n for n in nodes if n["role"] == step.role and node_name(n, nodes) == step.name]
                if match:
                    break
                if time.monotonic() > deadline:
                    raise HarvestError(f"{self.app.name}: no {step.role} named {step.name!r} to {step.action}")
                time.sleep(0.2)
            self.session.action(self.pid, match[0]["path"], step.action)

    def capture(self, attempts: int = 4) -> tuple[Image.Image, list[Node]]:
        """A screenshot and the tree it shows (the tree is dumped before and after the grab)."""
        for _ in range(attempts):
            before = self.wait_stable()
            image = _grab(self.display, self.screen)
            after = self.session.tree(self.pid)
            if tree_signature(before) == tree_signature(after):
                return image, after
        raise HarvestError(f"{self.app.name} kept changing while being captured")


def _apps_option(apps: Any) -> list[GtkApp]:
    if apps is None:
        return list(APPS)
    names = [a.strip() for a in (apps.split(",") if isinstance(apps, str) else apps) if a.strip()]
    unknown = [n for n in names if n not in APPS_BY_NAME]
    if unknown:
        raise HarvestError(f"unknown GTK application(s) {', '.join(unknown)} (known: {', '.join(APPS_BY_NAME)})")
    return [APPS_BY_NAME[n] for n in names]


def _list_option(value: Any, known: dict[str, Any], what: str) -> list[str]:
    names = [v.strip() for v in (value.split(",") if isinstance(value, str) else value) if v.strip()]
    unknown = [n for n in names if n not in known]
    if unknown or not names:
        raise HarvestError(f"unknown {what} {', '.join(unknown) or '(none given)'} (known: {', '.join(known)})")
    return names


def harvest_gtk(
    out_dir: Path,
    apps: Any = None,
    themes: Any = "light,dark",
    crop: str = "window",
    count: int | None = None,
    seed: int | None = None,
    log: Any = print,
) -> list[GroundingRecord]:
    """Harvest the GTK applications `apps` (names from APPS, comma-separated; default all)
    in each of `themes`; returns the records (images written under out_dir/gtk/).

    `count` stops after that many screens; `seed` is accepted for the
    command line's sake but unused (the screens are what the applications show).
    """
    del seed
    if crop not in ("window", "screen"):
        raise HarvestError(f"crop must be 'window' or 'screen', got {crop!r}")
    reason = atspi_unavailable()
    if reason:
        raise HarvestError(f"cannot harvest GTK applications: {reason}")
    chosen = _apps_option(apps)
    theme_names = _list_option(themes, THEMES, "theme(s)")
    missing = sorted({f"{a.argv[0]} (apt-get install {a.package})" for a in chosen if shutil.which(a.argv[0]) is None})
    if missing:
        raise HarvestError(f"GTK applications not installed: {', '.join(missing)}")
    if shutil.which("xdotool") is None:
        raise HarvestError("xdotool not installed (apt-get install xdotool)")
    from vlagent.environments.xserver import start_virtual_display

    budget = ScreenBudget(count)
    records: list[GroundingRecord] = []
    with start_virtual_display(*SCREEN_SIZE) as display:
        for theme in theme_names:
            for app in chosen:
                if budget.exhausted:
                    return records
                records += _harvest_app(Path(out_dir), display.name, app, theme, crop, log, budget)
    return records


def _harvest_app(
    out_dir: Path, display: str, app: GtkApp, theme: str, crop: str, log: Any, budget: ScreenBudget
) -> list[GroundingRecord]:
    records: list[GroundingRecord] = []
    with AtspiSession(display, extra_env=THEMES[theme]) as session:
        run = _AppRun(session, display, app, SCREEN_SIZE)
        run.wait_stable()
        if app.size:
            run.resize(app.size)
        for scene in app.scenes:
            if not budget.take():
                break
            try:
                run.run_steps(scene.steps)
                image, nodes = run.capture()
            except HarvestError as exc:
                # One scene that cannot be reached (a menu renamed in another
                # version) should not lose the application's other screens.
                log(f"gtk: {app.name}/{scene.name} ({theme}) skipped: {exc}")
                _xdotool(display, "key", "Escape")  # close whatever menu the scene had opened
                continue
            box = window_box(nodes, SCREEN_SIZE) if crop == "window" else (0, 0, *SCREEN_SIZE)
            if box is None:
                log(f"gtk: {app.name}/{scene.name} ({theme}) skipped: no window on screen")
                continue
            shot = image.crop(box)
            targets = targets_from_tree(nodes, box, SCREEN_SIZE)
            screen_id = f"{app.name}-{scene.name}-{theme}"
            image_rel = save_screenshot(shot, out_dir, f"gtk/{screen_id}.png")
            got = screen_records(
                image_rel, shot.size, targets, app.source_name, "desktop", screen_id,
                meta={"app": app.name, "scene": scene.name, "theme": theme},
            )  # fmt: skip
            log(f"gtk: {screen_id}: {len(got)} targets of {len(targets)} candidates")
            records += got
            run.run_steps(scene.undo)
    return records


__all__ = ["APPS", "GtkApp", "Scene", "Step", "THEMES", "harvest_gtk"]
