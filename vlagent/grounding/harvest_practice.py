"""Harvest our practice environments: boxes from their own widget state.

    vlagent grounding-data harvest --source practice --out DIR [--option targets=desktop,android]
    (targets=desktop-held-out: the desktop app in the looks training never sees, a test source)

- desktop: the Tk practice app (environments/practice/desktop_app.py) on a
  private Xvfb, in each theme (light, dark) and layout (standard, swapped),
  at two window sizes, with and without its File menu open. Boxes come from
  the app's state file (`boxes`, `menu_boxes`, screen pixels); the
  screenshot is the whole screen, taken with mss.
- android: the virtual phone's screens (home, settings scrolled and not,
  a settings page, notes, contacts, a contact, clock, recents) in light and
  dark mode and both orientations. Boxes are the elements of the phone's
  own `state` (what `adb shell state` returns); the screenshot is what
  `screencap` returns. The phone runs in-process: no adb server is needed
  to read its state.

Records: source "practice:desktop" / "practice:android"; split by source.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

from vlagent.grounding.dataset import GroundingRecord
from vlagent.grounding.harvest import HarvestError
from vlagent.grounding.harvest_common import ScreenBudget, ScreenTarget, save_screenshot, screen_records

# Practice-app widget -> (name a person reads on screen, element kind, role word)
DESKTOP_WIDGETS: dict[str, tuple[str, str, str | None]] = {
    "button_save": ("Save", "button", None),
    "button_open": ("Open", "button", None),
    "button_delete": ("Delete", "button", None),
    "entry": ("Name", "field", "text field"),
    "checkbox": ("Remember me", "checkbox", None),
    "click_pad": ("Click pad", "button", "pad"),
    "hover_zone": ("Hover here", "text", None),
    "drag_token": ("Drag me", "button", "token"),
    "drop_target": ("Drop here", "text", None),
}
DESKTOP_SCREEN = (1280, 720)
DESKTOP_GEOMETRIES = ("800x560+240+80", "1000x640+120+40")
HELD_OUT_GEOMETRIES = ("1080x600+100+40", "900x620+200+60")  # the first is the demo's window

# Phone element kind -> record element kind (None: not a target)
ANDROID_KINDS: dict[str, str | None] = {
    "button": "button", "toggle": "switch", "edit_text": "field", "list_item": "list item",
    "icon": "icon", "text": "text", "list": None,
}  # fmt: skip


# --------------------------------------------------------------------------- desktop


def _grab(display: str, size: tuple[int, int]) -> Any:
    import mss
    from PIL import Image

    with mss.MSS(display=display) as sct:
        shot = sct.grab({"left": 0, "top": 0, "width": size[0], "height": size[1]})
        return Image.frombytes("RGB", shot.size, shot.bgra, "raw", "BGRX")


def _desktop_targets(state: dict[str, Any]) -> list[ScreenTarget]:
    targets = []
    for widget, box in state["boxes"].items():
        if widget in DESKTOP_WIDGETS:
            name, kind, role_word = DESKTOP_WIDGETS[widget]
            targets.append(ScreenTarget(name, kind, tuple(box), role_word=role_word, meta={"widget": widget}))
    for key, box in state["menu_boxes"].items():
        # "File" is a menubar entry; "File/Say hello" an item of its open dropdown.
        name = key.split("/")[-1]
        targets.append(ScreenTarget(name, "menu", tuple(box), role_word="menu item" if "/" in key else "menu",
                                    meta={"widget": f"menu:{key}"}))  # fmt: skip
    return targets


def _settle(state_file: Path, read_state: Callable[[Path], dict[str, Any]], timeout: float = 5.0) -> dict[str, Any]:
    """The app's state once its seq stops moving (layout and menus reported)."""
    deadline = time.monotonic() + timeout
    last = read_state(state_file)
    while time.monotonic() < deadline:
        time.sleep(0.15)
        now = read_state(state_file)
        if now["seq"] == last["seq"]:
            return now
        last = now
    raise HarvestError(f"the practice app kept changing its state for {timeout:g}s")


def harvest_practice_desktop(
    out_dir: Path, log: Callable[[str], Any] = print, budget: ScreenBudget | None = None, held_out: bool = False
) -> list[GroundingRecord]:
    """The practice app in every training look (themes x layouts x window sizes), or with `held_out` in
    the looks training never sees (source "practice:desktop-held-out", a test source)."""
    from vlagent.environments.practice import desktop_app
    from vlagent.environments.xserver import binaries_available, start_virtual_display

    reason = binaries_available()
    if reason:
        raise HarvestError(f"cannot harvest the practice app: {reason}")
    if shutil.which("xdotool") is None:
        raise HarvestError("xdotool not installed (apt-get install xdotool)")
    budget = budget or ScreenBudget()
    records: list[GroundingRecord] = []
    themes = desktop_app.HELD_OUT_THEMES if held_out else desktop_app.THEMES
    layouts = desktop_app.HELD_OUT_LAYOUTS if held_out else desktop_app.LAYOUTS
    geometries = HELD_OUT_GEOMETRIES if held_out else DESKTOP_GEOMETRIES
    source = "practice:desktop-held-out" if held_out else "practice:desktop"
    with start_virtual_display(*DESKTOP_SCREEN) as display, tempfile.TemporaryDirectory() as tmp:
        for theme in themes:
            for layout in layouts:
                for g, geometry in enumerate(geometries):
                    if budget.exhausted:
                        return records
                    state_file = Path(tmp) / "state.json"
                    proc = desktop_app.launch(state_file, display.name, geometry=geometry, env=display.env,
                                              extra_args=("--theme", theme, "--layout", layout))  # fmt: skip
                    try:
                        for menu_open in (False, True):
                            if not budget.take():
                                break
                            state = _settle(state_file, desktop_app.read_state)
                            if menu_open:
                                x0, y0, x1, y1 = state["menu_boxes"]["File"]
                                subprocess.run(["xdotool", "mousemove", str((x0 + x1) // 2), str((y0 + y1) // 2),
                                                "click", "1"], env=display.env, check=True, timeout=10)  # fmt: skip
                                desktop_app.wait_for_state(
                                    state_file, lambda s: any(k.startswith("File/") for k in s["menu_boxes"]),
                                    timeout=5, what="the File menu to open",
                                )  # fmt: skip
                                state = _settle(state_file, desktop_app.read_state)
                            image = _grab(display.name, DESKTOP_SCREEN)
                            screen_id = f"desktop-{theme}-{layout}-{g}{'-menu' if menu_open else ''}"
                            rel = save_screenshot(image, out_dir, f"practice/{screen_id}.png")
                            targets = _desktop_targets(state)
                            if menu_open:  # widgets the dropdown covers are not targets
                                targets = _uncovered(targets, [b for k, b in state["menu_boxes"].items() if "/" in k])
                            got = screen_records(rel, image.size, targets, source, "desktop", screen_id,
                                                 meta={"theme": theme, "layout": layout})  # fmt: skip
                            log(f"practice: {screen_id}: {len(got)} targets")
                            records += got
                    finally:
                        proc.terminate()
                        try:
                            proc.wait(timeout=5)
                        except subprocess.TimeoutExpired:
                            proc.kill()
    return records


def _uncovered(targets: list[ScreenTarget], covers: list[list[int]]) -> list[ScreenTarget]:
    if not covers:
        return targets
    cover = (min(b[0] for b in covers), min(b[1] for b in covers), max(b[2] for b in covers), max(b[3] for b in covers))
    out = []
    for t in targets:
        if t.role_word == "menu item":
            out.append(t)
            continue
        x0, y0, x1, y1 = t.box
        if x1 <= cover[0] or x0 >= cover[2] or y1 <= cover[1] or y0 >= cover[3]:
            out.append(t)
    return out


# --------------------------------------------------------------------------- android


# A row cut by its list's edge to less than this share of its height shows none of its label (drawn at its
# middle): no target, as no one could find it on the screenshot.
MIN_SHOWN = 0.5


def _android_targets(state: dict[str, Any]) -> list[ScreenTarget]:
    targets = []
    for el in state["elements"]:
        kind = ANDROID_KINDS.get(el["kind"])
        if kind is None:
            continue
        drawn = el.get("drawn_bounds")
        if drawn and el["bounds"][3] - el["bounds"][1] < MIN_SHOWN * (drawn[3] - drawn[1]):
            continue
        name = el["label"] or el.get("hint") or ""
        role_word = {"switch": "switch", "icon": "app icon"}.get(kind)
        targets.append(ScreenTarget(name, kind, tuple(el["bounds"]), role_word=role_word, meta={"id": el["id"]}))
    return targets


def _android_scenes(ui: Any) -> list[tuple[str, Callable[[], None]]]:
    """(name, how to get there from the home screen) for each phone screen harvested."""

    def tap_label(label: str) -> None:
        el = next(e for e in ui.layout() if e.label == label)
        ui.tap(*el.center)

    def scroll(app: str, by: int) -> None:
        # A swipe up through the middle of the screen, as `input swipe` does it.
        w, h = ui.size
        ui.swipe(w / 2, h * 0.75, w / 2, h * 0.75 - by, 300)

    return [
        ("home", lambda: None),
        ("settings", lambda: ui.open_app("settings")),
        ("settings-scrolled", lambda: (ui.open_app("settings"), scroll("settings", int(900 * ui.unit)))),
        ("settings-page", lambda: (ui.open_app("settings"),
                                   tap_label(next(e.label for e in ui.layout() if e.kind == "list_item")))),
        ("notes", lambda: ui.open_app("notes")),
        ("contacts", lambda: ui.open_app("contacts")),
        ("contact", lambda: (ui.open_app("contacts"), tap_label(next(e.label for e in ui.layout()
                                                                     if e.kind == "list_item")))),
        ("clock", lambda: ui.open_app("clock")),
        ("recents", lambda: (ui.open_app("clock"), ui.go_home(), ui.open_app("notes"), ui.go_home(),
                             ui.key(187))),
    ]  # fmt: skip


def harvest_practice_android(
    out_dir: Path, log: Callable[[str], Any] = print, budget: ScreenBudget | None = None
) -> list[GroundingRecord]:
    from vlagent.environments.practice.virtual_android import PhoneUI

    budget = budget or ScreenBudget()
    records: list[GroundingRecord] = []
    for dark in (False, True):
        for rotation in (0, 1):
            probe = PhoneUI(status_time="12:00")
            for name, _go in _android_scenes(probe):
                if not budget.take():
                    return records
                ui = PhoneUI(status_time="12:00")  # each scene from a fresh phone, so scenes do not leak
                ui.s.toggles["dark_mode"] = dark
                ui.set_rotation(rotation)
                try:
                    dict(_android_scenes(ui))[name]()
                except StopIteration:
                    log(f"practice: android {name} skipped: its element is not on screen")
                    continue
                state = ui.state()
                image = ui.render()
                screen_id = f"android-{name}-{'dark' if dark else 'light'}-{'land' if rotation else 'port'}"
                rel = save_screenshot(image, out_dir, f"practice/{screen_id}.png")
                got = screen_records(rel, image.size, _android_targets(state), "practice:android", "android",
                                     screen_id, meta={"app": state["app"], "page": state["page"]})  # fmt: skip
                log(f"practice: {screen_id}: {len(got)} targets")
                records += got
    return records


def harvest_practice(
    out_dir: Path, targets: Any = "desktop,android", count: int | None = None, seed: int | None = None,
    log: Callable[[str], Any] = print,
) -> list[GroundingRecord]:
    """Harvest the practice environments named in `targets` (desktop, android, desktop-held-out: the
    desktop app in the looks training never sees).

    `count` stops after that many screens; `seed` is unused (the screens are fixed).
    """
    del seed
    names = [t.strip() for t in str(targets).split(",") if t.strip()]
    known = ("desktop", "android", "desktop-held-out")
    unknown = [n for n in names if n not in known]
    if unknown or not names:
        raise HarvestError(f"unknown practice target(s) {', '.join(unknown) or '(none)'} (known: {', '.join(known)})")
    budget = ScreenBudget(count)
    records: list[GroundingRecord] = []
    for name in names:
        if name == "android":
            records += harvest_practice_android(Path(out_dir), log=log, budget=budget)
        else:
            records += harvest_practice_desktop(Path(out_dir), log=log, budget=budget, held_out=name != "desktop")
    return records


__all__ = ["harvest_practice", "harvest_practice_android", "harvest_practice_desktop"]
