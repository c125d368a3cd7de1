"""A small phone UI: apps, layout, touch and keys, drawn with Pillow.

One `layout()` produces the visible elements of the current screen; the same
list is drawn, hit-tested by touches, exported by `state` and by the
uiautomator dump, so what a test asserts on is exactly what was drawn and
touched. Coordinates are logical display pixels of the current rotation
(what `input tap` takes and what `screencap` returns).

Apps: a home screen (launcher icons), Settings (40 rows, ten of them toggles,
one is "Dark mode" which darkens every screen), Notes (a text field, Save,
the saved notes; long-press a note to delete it), Contacts (40 people, tap
for details), Clock (double-tap the face for 24-hour time) and the recent
apps screen (APP_SWITCH).
"""

from __future__ import annotations

import functools
import os
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from PIL import Image, ImageDraw

from vlagent.environments.practice.virtual_android.fonts import draw_text, text_length

# --------------------------------------------------------------------------- apps and data

APPS: dict[str, dict[str, str]] = {
    # app key -> launcher label, package, launcher activity, icon colour
    "settings": {"label": "Settings", "package": "com.android.settings", "activity": ".Settings", "color": "#5f6368"},
    "notes": {"label": "Notes", "package": "com.vlagent.notes", "activity": ".MainActivity", "color": "#f9ab00"},
    "contacts": {"label": "Contacts", "package": "com.android.contacts", "activity": ".activities.PeopleActivity", "color": "#1a73e8"},
    "clock": {"label": "Clock", "package": "com.android.deskclock", "activity": ".DeskClock", "color": "#188038"},
}
LAUNCHER_PACKAGE = "com.android.launcher3"

TOGGLES: list[tuple[str, str, bool]] = [
    # key, label, initial value
    ("wifi", "Wi-Fi", True),
    ("bluetooth", "Bluetooth", True),
    ("airplane_mode", "Airplane mode", False),
    ("dark_mode", "Dark mode", False),
    ("location", "Location", True),
    ("do_not_disturb", "Do not disturb", False),
    ("auto_rotate", "Auto-rotate screen", False),
    ("nfc", "NFC", False),
    ("battery_saver", "Battery saver", False),
    ("hotspot", "Hotspot", False),
]
SETTINGS_PAGES: list[str] = [
    "Network & internet", "Connected devices", "Apps", "Notifications", "Battery", "Storage",
    "Sound & vibration", "Display", "Wallpaper & style", "Accessibility", "Security & privacy",
    "Passwords & accounts", "Digital wellbeing", "Google", "System", "Languages", "Keyboard",
    "Date & time", "Backup", "Reset options", "Multiple users", "Developer options", "Gestures",
    "Default apps", "Permission manager", "Special app access", "Emergency SOS", "Lock screen",
    "Printing", "About phone",
]
SETTINGS_ROWS: list[tuple[str, str]] = (
    [("toggle", key) for key, _, _ in TOGGLES[:5]] + [("page", p) for p in SETTINGS_PAGES[:8]]
    + [("toggle", key) for key, _, _ in TOGGLES[5:]] + [("page", p) for p in SETTINGS_PAGES[8:]]
)
assert len(SETTINGS_ROWS) == 40
TOGGLE_LABELS = {key: label for key, label, _ in TOGGLES}

_FIRST = ["Ada", "Alan", "Barbara", "Claude", "Dennis", "Edsger", "Frances", "Grace", "Hedy", "Ivan",
          "John", "Ken", "Linus", "Margaret", "Niklaus", "Ole", "Radia", "Sophie", "Tim", "Whitfield"]
_LAST = ["Lovelace", "Turing", "Liskov", "Shannon", "Ritchie", "Dijkstra", "Allen", "Hopper", "Lamarr",
         "Sutherland", "McCarthy", "Thompson", "Torvalds", "Hamilton", "Wirth", "Dahl", "Perlman",
         "Wilson", "Berners-Lee", "Diffie"]
CONTACTS: list[tuple[str, str]] = sorted(
    [(f"{_FIRST[i % 20]} {_LAST[(i * 7) % 20]}", f"+1 555 01{i:02d}") for i in range(40)]
)

KEYCODES: dict[str, int] = {
    "HOME": 3, "BACK": 4, "CALL": 5, "ENDCALL": 6, "DPAD_UP": 19, "DPAD_DOWN": 20, "DPAD_LEFT": 21,
    "DPAD_RIGHT": 22, "DPAD_CENTER": 23, "VOLUME_UP": 24, "VOLUME_DOWN": 25, "POWER": 26, "CAMERA": 27,
    "CLEAR": 28, "COMMA": 55, "PERIOD": 56, "ALT_LEFT": 57, "ALT_RIGHT": 58, "SHIFT_LEFT": 59,
    "SHIFT_RIGHT": 60, "TAB": 61, "SPACE": 62, "ENTER": 66, "DEL": 67, "MENU": 82, "SEARCH": 84,
    "PAGE_UP": 92, "PAGE_DOWN": 93, "ESCAPE": 111, "FORWARD_DEL": 112, "CTRL_LEFT": 113,
    "CTRL_RIGHT": 114, "META_LEFT": 117, "MOVE_HOME": 122, "MOVE_END": 123, "VOLUME_MUTE": 164,
    "APP_SWITCH": 187, "SLEEP": 223, "WAKEUP": 224,
}
KEYCODES.update({chr(ord("A") + i): 29 + i for i in range(26)})
KEYCODES.update({str(d): 7 + d for d in range(10)})
KEYCODE_NAMES = {v: k for k, v in KEYCODES.items()}
MODIFIERS = {"SHIFT_LEFT", "SHIFT_RIGHT", "CTRL_LEFT", "CTRL_RIGHT", "ALT_LEFT", "ALT_RIGHT", "META_LEFT"}

LONG_PRESS_MS = 500
DOUBLE_TAP_S = 0.5
TOUCH_SLOP = 24  # pixels a finger may move and still be a tap


# --------------------------------------------------------------------------- elements


@dataclass
class Element:
    """One visible thing. `bounds` are logical display pixels [x1, y1, x2, y2)."""

    id: str
    kind: str  # button, toggle, edit_text, list, list_item, icon, text
    label: str
    bounds: tuple[int, int, int, int]
    value: Any = None
    focused: bool = False
    clickable: bool = True
    long_clickable: bool = False
    scrollable: bool = False
    parent: str | None = None
    resource_id: str = ""
    hint: str = ""
    draw_bounds: tuple[int, int, int, int] | None = None  # unclipped, for drawing rows cut by a list's edge

    def contains(self, x: float, y: float) -> bool:
        x1, y1, x2, y2 = self.bounds
        return x1 <= x < x2 and y1 <= y < y2

    @property
    def center(self) -> tuple[int, int]:
        x1, y1, x2, y2 = self.bounds
        return (x1 + x2) // 2, (y1 + y2) // 2

    def to_dict(self) -> dict[str, Any]:
        out = {"id": self.id, "kind": self.kind, "label": self.label, "bounds": list(self.bounds),
               "value": self.value, "focused": self.focused}
        if self.scrollable:
            out["scrollable"] = True
        return out


@dataclass
class Theme:
    background: str
    surface: str
    text: str
    subtle: str
    divider: str
    accent: str
    field: str

    @classmethod
    def of(cls, dark: bool) -> "Theme":
        if dark:
            return cls("#121212", "#1e1e1e", "#e8eaed", "#9aa0a6", "#3c4043", "#8ab4f8", "#2d2e30")
        return cls("#ffffff", "#f1f3f4", "#202124", "#5f6368", "#dadce0", "#1a73e8", "#f1f3f4")


# --------------------------------------------------------------------------- wallpaper

@functools.lru_cache(maxsize=8)
def wallpaper(width: int, height: int, dark: bool) -> Image.Image:
    """A diagonal two-colour gradient (computed once per size and theme)."""
    top, bottom = ((32, 33, 80), (10, 60, 70)) if dark else ((120, 160, 255), (255, 190, 150))
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    t = (yy / max(height - 1, 1)) * 0.8 + (xx / max(width - 1, 1)) * 0.2
    rgb = np.empty((height, width, 3), np.uint8)
    for c in range(3):
        rgb[..., c] = (top[c] + (bottom[c] - top[c]) * t).astype(np.uint8)
    return Image.fromarray(rgb, "RGB")


def _wrap(text: str, size: int, width: int) -> list[str]:
    lines: list[str] = []
    for paragraph in text.split("\n"):
        line = ""
        for ch in paragraph:
            if text_length(line + ch, size) > width and line:
                lines.append(line)
                line = ch
            else:
                line += ch
        lines.append(line)
    return lines


# --------------------------------------------------------------------------- the phone


@dataclass
class PhoneState:
    app: str = "home"
    page: str | None = None  # settings page / contact shown on top of the app's main screen
    stack: list[tuple[str, str | None]] = field(default_factory=list)  # for BACK
    recents: list[str] = field(default_factory=list)  # most recent first
    toggles: dict[str, bool] = field(default_factory=lambda: {k: v for k, _, v in TOGGLES})
    scroll: dict[str, int] = field(default_factory=lambda: {"settings": 0, "contacts": 0, "notes": 0})
    note_draft: str = ""
    notes: list[str] = field(default_factory=list)
    focused: str | None = None  # element id of the focused text field
    select_all: bool = False
    clock_24h: bool = False
    volume: int = 7
    events: list[dict[str, Any]] = field(default_factory=list)


class PhoneUI:
    """State machine + layout + renderer. Thread-safe through `lock`."""

    def __init__(self, width: int = 1080, height: int = 2400, density: int = 420, status_time: str | None = None) -> None:
        if width <= 0 or height <= 0:
            raise ValueError(f"screen size must be positive, got {width}x{height}")
        self.natural = (width, height)
        self.density = density
        self.rotation = 0
        self.status_time = status_time  # fixed clock text (tests), else the host's time
        self.s = PhoneState()
        self.lock = threading.RLock()
        self._last_tap: tuple[float, str] | None = None
        self._render_cache: tuple[Any, Image.Image] | None = None

    # -- geometry ---------------------------------------------------------

    @property
    def size(self) -> tuple[int, int]:
        """Logical display size in the current rotation."""
        w, h = self.natural
        return (h, w) if self.rotation % 2 else (w, h)

    @property
    def unit(self) -> float:
        return min(self.natural) / 1080

    @property
    def dark(self) -> bool:
        return self.s.toggles["dark_mode"]

    def set_rotation(self, rotation: int) -> None:
        if rotation not in (0, 1, 2, 3):
            raise ValueError(f"rotation must be 0, 1, 2 or 3, got {rotation}")
        self.rotation = rotation
        self._clamp_scrolls()

    def _bars(self) -> tuple[int, int]:
        u = self.unit
        return round(72 * u), round(64 * u)  # status bar, navigation hint bar

    # -- layout -----------------------------------------------------------

    def layout(self) -> list[Element]:
        s = self.s
        if s.app == "home":
            return self._layout_home()
        if s.app == "recents":
            return self._layout_recents()
        if s.app == "settings":
            return self._layout_settings_page() if s.page else self._layout_settings()
        if s.app == "notes":
            return self._layout_notes()
        if s.app == "contacts":
            return self._layout_contact() if s.page else self._layout_contacts()
        if s.app == "clock":
            return self._layout_clock()
        raise AssertionError(f"unknown app {s.app!r}")

    def _title(self, text: str, app: str) -> tuple[list[Element], int]:
        u = self.unit
        top, _ = self._bars()
        w, _ = self.size
        h = round(168 * u)
        el = Element(f"{app}.title", "text", text, (0, top, w, top + h), clickable=False,
                     resource_id=f"{APPS[app]['package']}:id/title")
        return [el], top + h

    def _layout_home(self) -> list[Element]:
        u = self.unit
        w, h = self.size
        top, bottom = self._bars()
        cols = 4 if w <= h else 6
        cell_w = w // cols
        cell_h = round(300 * u)
        y0 = top + round(420 * u)
        out = [Element("home.clock", "text", self._time_text(clock=True), (0, top + round(60 * u), w, top + round(300 * u)),
                       clickable=False, resource_id="com.android.launcher3:id/clock")]
        for i, (key, app) in enumerate(APPS.items()):
            r, c = divmod(i, cols)
            x1, y1 = c * cell_w, y0 + r * cell_h
            out.append(Element(f"home.icon.{key}", "icon", app["label"], (x1, y1, x1 + cell_w, y1 + cell_h),
                               long_clickable=True))
        return out

    def _layout_recents(self) -> list[Element]:
        u = self.unit
        w, h = self.size
        top, bottom = self._bars()
        out = [Element("recents.title", "text", "Recent apps", (0, top, w, top + round(160 * u)), clickable=False)]
        y = top + round(200 * u)
        card_h = round(260 * u)
        for key in self.s.recents:
            if y + card_h > h - bottom - round(200 * u):
                break
            out.append(Element(f"recents.card.{key}", "button", APPS[key]["label"],
                               (round(80 * u), y, w - round(80 * u), y + card_h)))
            y += card_h + round(40 * u)
        bw = round(360 * u)
        out.append(Element("recents.clear_all", "button", "Clear all",
                           ((w - bw) // 2, h - bottom - round(170 * u), (w + bw) // 2, h - bottom - round(40 * u))))
        return out

    def _list_viewport(self, y_top: int) -> tuple[int, int]:
        _, bottom = self._bars()
        return y_top, self.size[1] - bottom

    def _scroll_list(self, app: str, y_top: int, rows: list[Element], row_h: int, list_label: str) -> list[Element]:
        """Place rows (bounds relative to list top) in a scrolled, clipped viewport."""
        w, _ = self.size
        v_top, v_bottom = self._list_viewport(y_top)
        offset = self.s.scroll.get(app, 0)
        lst = Element(f"{app}.list", "list", list_label, (0, v_top, w, v_bottom), clickable=False, scrollable=True,
                      resource_id=f"{APPS[app]['package']}:id/list")
        out = [lst]
        for row in rows:
            x1, y1, x2, y2 = row.bounds
            y1, y2 = y1 + v_top - offset, y2 + v_top - offset
            if y2 <= v_top or y1 >= v_bottom:
                continue
            row.draw_bounds = (x1, y1, x2, y2)
            row.bounds = (x1, max(y1, v_top), x2, min(y2, v_bottom))
            row.parent = lst.id
            out.append(row)
        return out

    def _max_scroll(self, app: str) -> int:
        top, _ = self._bars()
        title_h = round(168 * self.unit)
        v_top, v_bottom = self._list_viewport(top + title_h)
        content = self._content_height(app)
        return max(0, content - (v_bottom - v_top))

    def _content_height(self, app: str) -> int:
        u = self.unit
        if app == "settings":
            return len(SETTINGS_ROWS) * round(150 * u)
        if app == "contacts":
            return len(CONTACTS) * round(150 * u)
        return 0

    def _clamp_scrolls(self) -> None:
        for app in ("settings", "contacts"):
            self.s.scroll[app] = min(max(self.s.scroll[app], 0), self._max_scroll(app))

    def _layout_settings(self) -> list[Element]:
        u = self.unit
        w, _ = self.size
        out, y_top = self._title("Settings", "settings")
        row_h = round(150 * u)
        rows = []
        for i, (kind, key) in enumerate(SETTINGS_ROWS):
            b = (0, i * row_h, w, (i + 1) * row_h)
            if kind == "toggle":
                rows.append(Element(f"settings.toggle.{key}", "toggle", TOGGLE_LABELS[key], b, value=self.s.toggles[key],
                                    resource_id=f"com.android.settings:id/switch_{key}"))
            else:
                slug = "".join(ch if ch.isalnum() else "_" for ch in key.lower())
                rows.append(Element(f"settings.item.{slug}", "list_item", key, b))
        return out + self._scroll_list("settings", y_top, rows, row_h, "Settings")

    def _layout_settings_page(self) -> list[Element]:
        u = self.unit
        w, _ = self.size
        out, y = self._title(self.s.page or "", "settings")
        out.append(Element("settings.page.text", "text", "Nothing to change here yet.",
                           (round(60 * u), y + round(40 * u), w - round(60 * u), y + round(140 * u)), clickable=False))
        return out

    def _layout_notes(self) -> list[Element]:
        u = self.unit
        w, h = self.size
        pad = round(48 * u)
        out, y = self._title("Notes", "notes")
        field_h = round(300 * u)
        out.append(Element("notes.input", "edit_text", "Note", (pad, y, w - pad, y + field_h), value=self.s.note_draft,
                           focused=self.s.focused == "notes.input", resource_id="com.vlagent.notes:id/note_input",
                           hint="Write a note"))
        y += field_h + round(32 * u)
        bw, bh = round(260 * u), round(120 * u)
        out.append(Element("notes.save", "button", "Save", (w - pad - bw, y, w - pad, y + bh),
                           resource_id="com.vlagent.notes:id/save"))
        y += bh + round(40 * u)
        out.append(Element("notes.saved_title", "text", f"Saved notes ({len(self.s.notes)})", (pad, y, w - pad, y + round(90 * u)),
                           clickable=False))
        y += round(100 * u)
        _, bottom = self._bars()
        row_h = round(130 * u)
        for i, note in enumerate(self.s.notes):
            if y + row_h > h - bottom:
                break
            out.append(Element(f"notes.saved.{i}", "list_item", note, (pad, y, w - pad, y + row_h), long_clickable=True))
            y += row_h
        return out

    def _layout_contacts(self) -> list[Element]:
        u = self.unit
        w, _ = self.size
        out, y_top = self._title("Contacts", "contacts")
        row_h = round(150 * u)
        rows = [Element(f"contacts.item.{i}", "list_item", name, (0, i * row_h, w, (i + 1) * row_h))
                for i, (name, _) in enumerate(CONTACTS)]
        return out + self._scroll_list("contacts", y_top, rows, row_h, "Contacts")

    def _layout_contact(self) -> list[Element]:
        u = self.unit
        w, _ = self.size
        name = self.s.page or ""
        phone = dict(CONTACTS).get(name, "")
        out, y = self._title(name, "contacts")
        out.append(Element("contacts.phone", "text", phone, (round(60 * u), y + round(40 * u), w - round(60 * u),
                                                             y + round(140 * u)), clickable=False))
        return out

    def _layout_clock(self) -> list[Element]:
        u = self.unit
        w, h = self.size
        out, y = self._title("Clock", "clock")
        size = min(w, h - y) - round(200 * u)
        x1 = (w - size) // 2
        out.append(Element("clock.face", "text", self._time_text(clock=True), (x1, y + round(60 * u), x1 + size, y + round(60 * u) + size),
                           value="24h" if self.s.clock_24h else "12h"))
        return out

    # -- events -----------------------------------------------------------

    def _log(self, **event: Any) -> None:
        self.s.events.append({"t": round(time.time(), 3), **event})
        del self.s.events[:-50]

    def hit(self, x: float, y: float) -> Element | None:
        for el in reversed(self.layout()):
            if el.contains(x, y) and (el.clickable or el.long_clickable):
                return el
        return None

    def scrollable_at(self, x: float, y: float) -> Element | None:
        for el in reversed(self.layout()):
            if el.scrollable and el.contains(x, y):
                return el
        return None

    def tap(self, x: float, y: float) -> str | None:
        with self.lock:
            el = self.hit(x, y)
            target = el.id if el else None
            now = time.monotonic()
            double = self._last_tap is not None and self._last_tap[1] == target and now - self._last_tap[0] < DOUBLE_TAP_S
            self._last_tap = (now, target)
            self._log(type="double_tap" if double and target else "tap", x=round(x), y=round(y), target=target)
            if el is not None:
                self._activate(el, double=double)
            elif self.s.focused:
                self.s.focused = None  # tapping outside a field hides the keyboard
            return target

    def long_press(self, x: float, y: float) -> str | None:
        with self.lock:
            el = self.hit(x, y)
            target = el.id if el else None
            self._log(type="long_press", x=round(x), y=round(y), target=target)
            if el is not None and el.id.startswith("notes.saved."):
                del self.s.notes[int(el.id.rsplit(".", 1)[1])]
            elif el is not None and el.clickable and not el.long_clickable:
                self._activate(el, double=False)  # a long touch on a plain button still clicks it
            return target

    def swipe(self, x1: float, y1: float, x2: float, y2: float, ms: int) -> None:
        with self.lock:
            if abs(x2 - x1) <= TOUCH_SLOP and abs(y2 - y1) <= TOUCH_SLOP:
                if ms >= LONG_PRESS_MS:
                    self.long_press(x1, y1)
                else:
                    self.tap(x1, y1)
                return
            lst = self.scrollable_at(x1, y1)
            self._log(type="swipe", x1=round(x1), y1=round(y1), x2=round(x2), y2=round(y2), ms=ms,
                      target=lst.id if lst else None)
            if lst is not None and abs(y2 - y1) >= abs(x2 - x1):
                app = lst.id.split(".")[0]
                # Finger moves up (y2 < y1): the content follows it, showing what is further down.
                self.s.scroll[app] = self.s.scroll.get(app, 0) + round(y1 - y2)
                self._clamp_scrolls()

    def _activate(self, el: Element, double: bool) -> None:
        s = self.s
        parts = el.id.split(".")
        if parts[0] == "home" and parts[1] == "icon":
            self.open_app(parts[2])
        elif parts[0] == "recents":
            if parts[1] == "card":
                self.open_app(parts[2])
            elif parts[1] == "clear_all":
                s.recents.clear()
                self.go_home()
        elif parts[0] == "settings":
            if parts[1] == "toggle":
                s.toggles[parts[2]] = not s.toggles[parts[2]]
            elif parts[1] == "item":
                s.stack.append((s.app, s.page))
                s.page = el.label
        elif parts[0] == "contacts" and parts[1] == "item":
            s.stack.append((s.app, s.page))
            s.page = el.label
        elif el.id == "notes.input":
            s.focused = el.id
        elif el.id == "notes.save":
            if s.note_draft:
                s.notes.append(s.note_draft)
                s.note_draft = ""
            s.focused = None
        elif el.id == "clock.face" and double:
            s.clock_24h = not s.clock_24h

    def open_app(self, key: str) -> None:
        if key not in APPS:
            raise KeyError(key)
        s = self.s
        if s.app not in ("home", "recents"):
            s.stack.append((s.app, s.page))
        s.app, s.page, s.focused, s.select_all = key, None, None, False
        if key in s.recents:
            s.recents.remove(key)
        s.recents.insert(0, key)
        self._log(type="open_app", app=key)

    def go_home(self) -> None:
        s = self.s
        s.app, s.page, s.focused, s.select_all = "home", None, None, False
        s.stack.clear()

    def back(self) -> None:
        s = self.s
        if s.focused:
            s.focused = None  # first BACK hides the keyboard
        elif s.page is not None:
            s.page = None
            if s.stack and s.stack[-1][0] == s.app:
                s.stack.pop()
        elif s.app == "home":
            pass
        elif s.stack and s.stack[-1][0] == "home":
            self.go_home()
        elif s.stack:
            s.app, s.page = s.stack.pop()
        else:
            self.go_home()

    def key(self, code: int, modifiers: frozenset[str] = frozenset()) -> None:
        with self.lock:
            name = KEYCODE_NAMES.get(code, str(code))
            self._log(type="key", key=name, modifiers=sorted(modifiers))
            s = self.s
            ctrl = bool(modifiers & {"CTRL_LEFT", "CTRL_RIGHT"})
            if name in ("BACK", "ESCAPE"):
                self.back()
            elif name == "HOME":
                self.go_home()
            elif name == "APP_SWITCH":
                if s.app != "recents":
                    s.stack.append((s.app, s.page))  # BACK returns to where you were
                    s.app, s.page, s.focused = "recents", None, None
            elif name == "VOLUME_UP":
                s.volume = min(15, s.volume + 1)
            elif name == "VOLUME_DOWN":
                s.volume = max(0, s.volume - 1)
            elif name == "VOLUME_MUTE":
                s.volume = 0
            elif name in MODIFIERS:
                pass
            elif s.focused == "notes.input":
                if ctrl and name == "A":
                    s.select_all = True
                elif name in ("DEL", "FORWARD_DEL"):
                    if s.select_all:
                        s.note_draft = ""
                    elif name == "DEL":
                        s.note_draft = s.note_draft[:-1]
                    s.select_all = False
                elif name == "ENTER":
                    self._insert("\n")
                elif name == "TAB":
                    self._insert("\t")
                elif name == "SPACE":
                    self._insert(" ")
                elif len(name) == 1:
                    shift = bool(modifiers & {"SHIFT_LEFT", "SHIFT_RIGHT"})
                    self._insert(name if shift or name.isdigit() else name.lower())

    def _insert(self, text: str) -> None:
        s = self.s
        if s.select_all:
            s.note_draft, s.select_all = "", False
        s.note_draft += text

    def commit_text(self, text: str, source: str) -> bool:
        """Text from the IME into the focused field; False when nothing has focus."""
        with self.lock:
            self._log(type="text", source=source, text=text, target=self.s.focused)
            if self.s.focused != "notes.input":
                return False
            self._insert(text)
            return True

    # -- state ------------------------------------------------------------

    def state(self) -> dict[str, Any]:
        with self.lock:
            s = self.s
            app = APPS.get(s.app)
            return {
                "app": s.app,
                "package": app["package"] if app else LAUNCHER_PACKAGE,
                "page": s.page,
                "rotation": self.rotation,
                "size": list(self.size),
                "density": self.density,
                "dark_mode": self.dark,
                "toggles": dict(s.toggles),
                "focused": s.focused,
                "scroll": dict(s.scroll),
                "note_draft": s.note_draft,
                "notes": list(s.notes),
                "clock_24h": s.clock_24h,
                "volume": s.volume,
                "recents": list(s.recents),
                "elements": [el.to_dict() for el in self.layout()],
                "events": list(s.events[-20:]),
            }

    @property
    def package(self) -> str:
        app = APPS.get(self.s.app)
        return app["package"] if app else LAUNCHER_PACKAGE

    # -- drawing ----------------------------------------------------------

    def _time_text(self, clock: bool = False) -> str:
        if self.status_time and not clock:
            return self.status_time
        t = time.localtime()
        if self.status_time:
            hh, mm = (int(p) for p in self.status_time.split(":"))
        else:
            hh, mm = t.tm_hour, t.tm_min
        if clock and not self.s.clock_24h:
            return f"{(hh - 1) % 12 + 1}:{mm:02d} {'AM' if hh < 12 else 'PM'}"
        return f"{hh:02d}:{mm:02d}"

    def render(self) -> Image.Image:
        """The current screen as an RGB image of `size` (cached until the state changes)."""
        with self.lock:
            elements = self.layout()
            key = (self.size, self.dark, self._time_text(), repr([el.to_dict() for el in elements]), self.s.focused)
            if self._render_cache is not None and self._render_cache[0] == key:
                return self._render_cache[1]
            img = self._draw(elements)
            self._render_cache = (key, img)
            return img

    def _draw(self, elements: list[Element]) -> Image.Image:
        w, h = self.size
        u = self.unit
        th = Theme.of(self.dark)
        on_home = self.s.app in ("home", "recents")
        img = wallpaper(w, h, self.dark).copy() if on_home else Image.new("RGB", (w, h), th.background)
        d = ImageDraw.Draw(img)
        lists = {el.id: el for el in elements if el.kind == "list"}
        for el in elements:
            if el.parent in lists:
                continue
            self._draw_element(d, el, th)
            if el.id in lists:
                self._draw_list_rows(img, el, [r for r in elements if r.parent == el.id], th)
        # status bar: time left, battery right
        top, bottom = self._bars()
        fg = "#ffffff" if on_home or self.dark else "#202124"
        draw_text(d, (round(40 * u), top // 2), self._time_text(), fill=fg, size=round(36 * u), anchor="lm")
        bx2, by = w - round(40 * u), top // 2
        bw, bh = round(64 * u), round(30 * u)
        d.rounded_rectangle((bx2 - bw, by - bh // 2, bx2, by + bh // 2), radius=round(6 * u), outline=fg, width=max(1, round(3 * u)))
        d.rectangle((bx2 - bw + round(6 * u), by - bh // 2 + round(6 * u), bx2 - bw + round(6 * u) + round((bw - 12 * u) * 0.87),
                     by + bh // 2 - round(6 * u)), fill=fg)
        draw_text(d, (bx2 - bw - round(12 * u), by), "87%", fill=fg, size=round(30 * u), anchor="rm")
        # navigation hint (gesture pill)
        pw, ph = round(220 * u), round(12 * u)
        d.rounded_rectangle(((w - pw) // 2, h - bottom // 2 - ph // 2, (w + pw) // 2, h - bottom // 2 + ph // 2),
                            radius=ph // 2, fill=fg)
        return img

    def _draw_list_rows(self, img: Image.Image, lst: Element, rows: list[Element], th: Theme) -> None:
        """Rows at their unclipped place on a scratch layer, then only the list's viewport pasted."""
        layer = Image.new("RGB", img.size, th.background)
        d = ImageDraw.Draw(layer)
        for row in rows:
            clipped, row.bounds = row.bounds, row.draw_bounds or row.bounds
            self._draw_element(d, row, th)
            row.bounds = clipped
        x1, y1, x2, y2 = lst.bounds
        top_line = max(1, round(2 * self.unit))
        img.paste(layer.crop((x1, y1 + top_line, x2, y2)), (x1, y1 + top_line))

    def _draw_element(self, d: ImageDraw.ImageDraw, el: Element, th: Theme) -> None:
        u = self.unit
        x1, y1, x2, y2 = el.bounds
        pad = round(48 * u)
        if el.kind == "icon":
            app = APPS[el.id.rsplit(".", 1)[1]]
            s = round(150 * u)
            cx = (x1 + x2) // 2
            d.rounded_rectangle((cx - s // 2, y1 + round(30 * u), cx + s // 2, y1 + round(30 * u) + s), radius=round(40 * u),
                                fill=app["color"])
            draw_text(d, (cx, y1 + round(30 * u) + s // 2), app["label"][0], fill="#ffffff", size=round(80 * u), anchor="mm")
            draw_text(d, (cx, y1 + round(30 * u) + s + round(40 * u)), el.label, fill="#ffffff", size=round(36 * u), anchor="mm")
        elif el.id == "home.clock":
            draw_text(d, ((x1 + x2) // 2, y1 + round(90 * u)), el.label.split()[0], fill="#ffffff", size=round(150 * u), anchor="mm")
            draw_text(d, ((x1 + x2) // 2, y1 + round(200 * u)), time.strftime("%A, %B %-d"), fill="#ffffff",
                   size=round(40 * u), anchor="mm")
        elif el.kind == "text" and el.id.endswith(".title"):
            draw_text(d, (pad, (y1 + y2) // 2), el.label, fill=th.text if self.s.app != "recents" else "#ffffff",
                   size=round(64 * u), anchor="lm")
        elif el.id == "clock.face":
            d.ellipse((x1, y1, x2, y2), outline=th.accent, width=max(2, round(10 * u)))
            draw_text(d, ((x1 + x2) // 2, (y1 + y2) // 2), el.label, fill=th.text, size=round(110 * u), anchor="mm")
        elif el.kind == "text":
            draw_text(d, (x1, (y1 + y2) // 2), el.label, fill=th.subtle, size=round(40 * u), anchor="lm")
        elif el.kind == "list":
            d.line((0, y1, x2, y1), fill=th.divider, width=max(1, round(2 * u)))
        elif el.kind in ("list_item", "toggle"):
            if el.id.startswith("notes.saved."):
                d.rounded_rectangle((x1, y1 + round(8 * u), x2, y2 - round(8 * u)), radius=round(20 * u), fill=th.surface)
                draw_text(d, (x1 + round(30 * u), (y1 + y2) // 2), el.label.replace("\n", " ⏎ "), fill=th.text,
                       size=round(40 * u), anchor="lm")
                return
            d.line((pad, y2 - 1, x2 - pad, y2 - 1), fill=th.divider, width=max(1, round(2 * u)))
            draw_text(d, (pad, (y1 + y2) // 2), el.label, fill=th.text, size=round(44 * u), anchor="lm")
            if el.kind == "toggle":
                tw, tht = round(130 * u), round(70 * u)
                cy = (y1 + y2) // 2
                tx2 = x2 - pad
                on = bool(el.value)
                d.rounded_rectangle((tx2 - tw, cy - tht // 2, tx2, cy + tht // 2), radius=tht // 2,
                                    fill=th.accent if on else th.divider)
                r = tht // 2 - round(8 * u)
                kx = tx2 - tht // 2 if on else tx2 - tw + tht // 2
                d.ellipse((kx - r, cy - r, kx + r, cy + r), fill="#ffffff")
        elif el.kind == "edit_text":
            d.rounded_rectangle((x1, y1, x2, y2), radius=round(24 * u), fill=th.field,
                                outline=th.accent if el.focused else th.divider, width=max(1, round(4 * u)))
            size = round(44 * u)
            text = el.value or ""
            lines = _wrap(text, size, x2 - x1 - round(60 * u)) if text else [el.hint]
            color = th.text if text else th.subtle
            y = y1 + round(30 * u)
            for line in lines:
                if y + round(50 * u) > y2:
                    break
                draw_text(d, (x1 + round(30 * u), y), line, fill=color, size=size)
                y += round(56 * u)
            if el.focused:  # caret after the last line
                last = lines[-1] if text else ""
                cx = x1 + round(30 * u) + round(text_length(last, size))
                cy = y1 + round(30 * u) + (len(lines) - 1) * round(56 * u) if text else y1 + round(30 * u)
                d.line((cx + 2, cy, cx + 2, cy + round(50 * u)), fill=th.accent, width=max(2, round(4 * u)))
        elif el.kind == "button":
            radius = (y2 - y1) // 2 if self.s.app != "recents" else round(30 * u)
            fill = th.accent if self.s.app != "recents" else th.surface
            d.rounded_rectangle((x1, y1, x2, y2), radius=radius, fill=fill)
            color = th.text if self.s.app == "recents" else ("#202124" if self.dark else "#ffffff")
            draw_text(d, ((x1 + x2) // 2, (y1 + y2) // 2), el.label, fill=color, size=round(44 * u), anchor="mm")
