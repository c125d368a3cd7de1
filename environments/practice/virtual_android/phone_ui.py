"""A small phone UI: screen state, layout, touch and keys (drawn by phone_render.py).

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

import threading
import time
from dataclasses import dataclass, field
from typing import Any

from PIL import Image

from vlagent.environments.practice.virtual_android.apps import (
    APPS,
    CONTACTS,
    KEYCODE_NAMES,
    LAUNCHER_PACKAGE,
    MODIFIERS,
    SETTINGS_ROWS,
    TOGGLE_LABELS,
    TOGGLES,
)
from vlagent.environments.practice.virtual_android.phone_render import draw_screen

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
        if self.draw_bounds is not None and tuple(self.draw_bounds) != tuple(self.bounds):
            out["drawn_bounds"] = list(self.draw_bounds)  # the whole row, where the list's edge cuts it
        return out


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
    """State machine + layout + input; `render()` draws it (phone_render.py). Thread-safe through `lock`."""

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

    def bars(self) -> tuple[int, int]:
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
        top, _ = self.bars()
        w, _ = self.size
        h = round(168 * u)
        el = Element(f"{app}.title", "text", text, (0, top, w, top + h), clickable=False,
                     resource_id=f"{APPS[app]['package']}:id/title")
        return [el], top + h

    def _layout_home(self) -> list[Element]:
        u = self.unit
        w, h = self.size
        top, bottom = self.bars()
        cols = 4 if w <= h else 6
        cell_w = w // cols
        cell_h = round(300 * u)
        y0 = top + round(420 * u)
        out = [Element("home.clock", "text", self.time_text(clock=True), (0, top + round(60 * u), w, top + round(300 * u)),
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
        top, bottom = self.bars()
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
        _, bottom = self.bars()
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
        top, _ = self.bars()
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
        _, bottom = self.bars()
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
        out.append(Element("clock.face", "text", self.time_text(clock=True), (x1, y + round(60 * u), x1 + size, y + round(60 * u) + size),
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

    def time_text(self, clock: bool = False) -> str:
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
            key = (self.size, self.dark, self.time_text(), repr([el.to_dict() for el in elements]), self.s.focused)
            if self._render_cache is not None and self._render_cache[0] == key:
                return self._render_cache[1]
            img = draw_screen(self, elements)
            self._render_cache = (key, img)
            return img

