"""Drawing surface and widgets for synthetic screens.

A `Canvas` is one screenshot being drawn: a Pillow image, a theme (light or
dark, with a random accent), a font family, a UI scale (1x, 1.5x, 2x) and the
list of `Element`s drawn so far. Each widget method draws one control and
records its real drawn box in pixels, with what an instruction can say about
it (label, icon, the label beside it, its place in a list), so the boxes of
the dataset are exactly what is on the screen.
"""

from __future__ import annotations

import colorsys
import random
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Sequence

from PIL import Image, ImageDraw, ImageFont

from vlagent.grounding.synth_icons import draw_icon

Color = tuple[int, int, int]
PxBox = tuple[int, int, int, int]

_FONT_DIRS = ("/usr/share/fonts/truetype/dejavu", "/usr/share/fonts/truetype/wqy", "/usr/share/fonts")
# Families from Debian's fonts-dejavu-core and fonts-wqy-microhei (setup.sh installs both).
FONT_FILES = {
    "sans": ("DejaVuSans.ttf", "DejaVuSans-Bold.ttf"),
    "serif": ("DejaVuSerif.ttf", "DejaVuSerif-Bold.ttf"),
    "wqy": ("wqy-microhei.ttc", "wqy-microhei.ttc"),
}


@lru_cache(maxsize=None)
def _font_path(name: str) -> str:
    for folder in _FONT_DIRS:
        hits = sorted(Path(folder).rglob(name)) if Path(folder).is_dir() else []
        if hits:
            return str(hits[0])
    raise FileNotFoundError(
        f"font {name} not found under {', '.join(_FONT_DIRS)}: install fonts-dejavu-core and fonts-wqy-microhei"
    )


@lru_cache(maxsize=256)
def load_font(family: str, size: int, bold: bool = False) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(_font_path(FONT_FILES[family][1 if bold else 0]), size)


@dataclass(frozen=True)
class Theme:
    dark: bool
    bg: Color
    surface: Color
    surface2: Color
    text: Color
    muted: Color
    border: Color
    accent: Color
    on_accent: Color
    link: Color
    field_bg: Color

    @classmethod
    def random(cls, rng: random.Random, dark: bool | None = None) -> "Theme":
        dark = rng.random() < 0.35 if dark is None else dark
        hue = rng.random()
        acc = _hls(hue, 0.58 if dark else 0.42, 0.65)
        link = _hls((hue + 0.05) % 1, 0.7 if dark else 0.38, 0.7)
        if dark:
            base = rng.randint(18, 40)
            return cls(True, (base, base, base + 3), (base + 14,) * 3, (base + 26,) * 3, (232, 232, 236),
                       (160, 160, 168), (base + 46,) * 3, acc, (15, 15, 18), link, (base + 8,) * 3)  # fmt: skip
        base = rng.randint(236, 250)
        return cls(False, (base, base, base + 2 if base < 254 else 255), (255, 255, 255), (base - 10,) * 3,
                   (25, 25, 30), (105, 105, 115), (190, 190, 198), acc, (255, 255, 255), link, (255, 255, 255))  # fmt: skip


def _hls(h: float, lum: float, s: float) -> Color:
    r, g, b = colorsys.hls_to_rgb(h, lum, s)
    return (int(r * 255), int(g * 255), int(b * 255))


@dataclass
class Element:
    """One drawn control that a target can point at (box in pixels)."""

    kind: str  # one of dataset.ELEMENTS
    box: PxBox
    label: str | None = None  # the text drawn on or for it
    icon: str | None = None  # synth_icons name, for icon controls
    near: str | None = None  # the text label beside/above it (fields, checkboxes, radios, switches, sliders)
    container: str | None = None  # "toolbar", "dialog", "app bar", "bottom navigation", "list", "menu bar", ...
    index: int | None = None  # 0-based place among its siblings in the container
    siblings: int | None = None  # how many siblings the container has
    role: str | None = None  # how to name it in words: "button", "close button", "key", ...
    extra: dict[str, Any] = field(default_factory=dict)


class Canvas:
    def __init__(self, size: tuple[int, int], scale: float, theme: Theme, family: str, lang: str,
                 rng: random.Random) -> None:  # fmt: skip
        self.w, self.h = size
        self.scale, self.theme, self.family, self.lang, self.rng = scale, theme, family, lang, rng
        self.img = Image.new("RGB", size, theme.bg)
        self.draw = ImageDraw.Draw(self.img)
        self.elements: list[Element] = []
        self.used_labels: set[str] = set()
        self.texts: list[tuple[str, PxBox]] = []  # every string drawn and its ink box: what a perfect OCR reads

    # ------------------------------------------------------------------ basics

    def u(self, v: float) -> int:
        """Logical units -> pixels at this screen's scale."""
        return int(round(v * self.scale))

    def font(self, size: float, bold: bool = False) -> ImageFont.FreeTypeFont:
        return load_font(self.family, max(8, self.u(size)), bold)

    def text_size(self, text: str, size: float, bold: bool = False) -> tuple[int, int]:
        x0, y0, x1, y1 = self.draw.textbbox((0, 0), text, font=self.font(size, bold))
        return x1 - x0, y1 - y0

    def text(self, xy: tuple[int, int], text: str, size: float, color: Color | None = None, bold: bool = False,
             anchor: str = "la") -> PxBox:  # fmt: skip
        """Draw text; returns its ink box in pixels."""
        font = self.font(size, bold)
        self.draw.text(xy, text, font=font, fill=color or self.theme.text, anchor=anchor)
        box = tuple(int(v) for v in self.draw.textbbox(xy, text, font=font, anchor=anchor))
        if text.strip():
            self.texts.append((text, box))  # type: ignore[arg-type]
        return box  # type: ignore[return-value]

    def pick(self, options: Sequence[str], n: int = 1) -> list[str]:
        """Up to `n` labels not yet used on this screen (labels are unique per screen, so instructions are too)."""
        free = [o for o in options if o not in self.used_labels]
        if not free:
            raise ValueError(f"every label of {options[:3]}... is already used on this screen")
        chosen = self.rng.sample(free, min(n, len(free)))
        self.used_labels.update(chosen)
        return chosen

    def fits(self, y: int) -> bool:
        return y < self.h - self.u(8)

    def add(self, kind: str, box: Sequence[float], **info: Any) -> Element:
        x0, y0, x1, y1 = (int(round(v)) for v in box)
        x0, y0 = max(0, x0), max(0, y0)
        x1, y1 = min(self.w, x1), min(self.h, y1)
        if x1 - x0 < 2 or y1 - y0 < 2:
            raise ValueError(f"element {kind} box {box} is empty after clipping to the screen")
        el = Element(kind=kind, box=(x0, y0, x1, y1), **info)
        self.elements.append(el)
        return el

    # ------------------------------------------------------------------ widgets

    def button(self, x: int, y: int, label: str, primary: bool = False, size: float = 13, **info: Any) -> Element:
        t = self.theme
        tw, th = self.text_size(label, size)
        pad_x, pad_y = self.u(14), self.u(7)
        box = (x, y, x + tw + 2 * pad_x, y + max(th, self.u(size)) + 2 * pad_y)
        radius = self.u(self.rng.choice((0, 3, 6, 14)))
        fill = t.accent if primary else t.surface2
        self.draw.rounded_rectangle(box, radius=radius, fill=fill, outline=None if primary else t.border, width=1)
        self.text(((box[0] + box[2]) // 2, (box[1] + box[3]) // 2), label, size,
                  t.on_accent if primary else t.text, anchor="mm")  # fmt: skip
        info.setdefault("role", "button")
        return self.add("button", box, label=label, **info)

    def icon_button(self, x: int, y: int, icon: str, size: float = 20, pad: float = 6, color: Color | None = None,
                    background: Color | None = None, round_: bool = False, **info: Any) -> Element:  # fmt: skip
        s, p = self.u(size), self.u(pad)
        box = (x, y, x + s + 2 * p, y + s + 2 * p)
        if background is not None:
            if round_:
                self.draw.ellipse(box, fill=background)
            else:
                self.draw.rounded_rectangle(box, radius=self.u(4), fill=background)
        draw_icon(self.draw, icon, (x + p, y + p, x + p + s, y + p + s), color or self.theme.text)
        return self.add("icon", box, icon=icon, **info)

    def field(self, x: int, y: int, width: int, label: str | None, placeholder: str | None = None,
              size: float = 13, label_above: bool = True, **info: Any) -> tuple[Element, int]:  # fmt: skip
        """A labelled text field; returns the element and the y below it."""
        t = self.theme
        if label and label_above:
            lb = self.text((x, y), label, size - 1, t.text)
            y = lb[3] + self.u(5)
        h = self.u(size + 16)
        box = (x, y, x + width, y + h)
        self.draw.rounded_rectangle(box, radius=self.u(self.rng.choice((0, 3, 5))), fill=t.field_bg,
                                    outline=t.border, width=max(1, self.u(1)))  # fmt: skip
        if placeholder:
            self.text((x + self.u(8), (box[1] + box[3]) // 2), placeholder, size, t.muted, anchor="lm")
        el = self.add("field", box, near=label, label=placeholder, role="field", **info)
        return el, box[3]

    def check(self, x: int, y: int, label: str, kind: str = "checkbox", on: bool | None = None, size: float = 13,
              **info: Any) -> tuple[Element, int]:  # fmt: skip
        """A checkbox or radio button with its label on the right; returns the element and the row height."""
        t = self.theme
        on = self.rng.random() < 0.4 if on is None else on
        s = self.u(size + 2)
        box = (x, y, x + s, y + s)
        if kind == "radio":
            self.draw.ellipse(box, fill=t.field_bg, outline=t.accent if on else t.border, width=max(1, self.u(1.5)))
            if on:
                m = self.u(4)
                self.draw.ellipse((box[0] + m, box[1] + m, box[2] - m, box[3] - m), fill=t.accent)
        else:
            self.draw.rounded_rectangle(box, radius=self.u(3), fill=t.accent if on else t.field_bg,
                                        outline=t.accent if on else t.border, width=max(1, self.u(1.5)))  # fmt: skip
            if on:
                draw_icon(self.draw, "check", (box[0] + 2, box[1] + 2, box[2] - 2, box[3] - 2), t.on_accent)
        self.text((box[2] + self.u(8), (box[1] + box[3]) // 2), label, size, t.text, anchor="lm")
        el = self.add(kind, box, near=label, role=kind, extra={"checked": on}, **info)
        return el, s

    def switch(self, x1: int, cy: int, label: str | None = None, on: bool | None = None, **info: Any) -> Element:
        """A toggle switch whose right edge is at x1, vertically centred on cy."""
        t = self.theme
        on = self.rng.random() < 0.5 if on is None else on
        w, h = self.u(40), self.u(22)
        box = (x1 - w, cy - h // 2, x1, cy - h // 2 + h)
        self.draw.rounded_rectangle(box, radius=h // 2, fill=t.accent if on else t.border)
        m = self.u(3)
        kx = box[2] - h + m if on else box[0] + m
        self.draw.ellipse((kx, box[1] + m, kx + h - 2 * m, box[3] - m), fill=(255, 255, 255))
        return self.add("switch", box, near=label, role="switch", extra={"on": on}, **info)

    def slider(self, x: int, y: int, width: int, label: str, size: float = 13, **info: Any) -> tuple[Element, int]:
        t = self.theme
        lb = self.text((x, y), label, size - 1, t.text)
        cy = lb[3] + self.u(14)
        knob = self.u(8)
        self.draw.rounded_rectangle((x, cy - self.u(2), x + width, cy + self.u(2)), radius=self.u(2), fill=t.border)
        kx = x + int(width * self.rng.uniform(0.1, 0.9))
        self.draw.rounded_rectangle((x, cy - self.u(2), kx, cy + self.u(2)), radius=self.u(2), fill=t.accent)
        self.draw.ellipse((kx - knob, cy - knob, kx + knob, cy + knob), fill=t.accent)
        # The slider's box is its whole track with the knob's height: clicking anywhere on it acts.
        el = self.add("slider", (x, cy - knob, x + width, cy + knob), near=label, role="slider", **info)
        return el, cy + knob

    def link(self, x: int, y: int, label: str, size: float = 13, underline: bool = True, **info: Any) -> Element:
        box = self.text((x, y), label, size, self.theme.link)
        if underline:
            self.draw.line((box[0], box[3] + 1, box[2], box[3] + 1), fill=self.theme.link, width=max(1, self.u(1)))
        return self.add("link", (box[0], box[1], box[2], box[3] + 2), label=label, role="link", **info)

    def tab_row(self, x: int, y: int, labels: Sequence[str], size: float = 13, **info: Any) -> int:
        """A row of tabs (the first selected); returns the y below it."""
        t = self.theme
        h = self.u(size + 18)
        cx = x
        for i, label in enumerate(labels):
            tw, _ = self.text_size(label, size)
            box = (cx, y, cx + tw + self.u(28), y + h)
            if i == 0:
                self.draw.rectangle((box[0], box[3] - self.u(3), box[2], box[3]), fill=t.accent)
            self.text(((box[0] + box[2]) // 2, (box[1] + box[3]) // 2), label, size, t.text if i == 0 else t.muted,
                      bold=i == 0, anchor="mm")  # fmt: skip
            self.add("tab", box, label=label, container="tabs", index=i, siblings=len(labels), role="tab", **info)
            cx = box[2]
        self.draw.line((x, y + h, self.w - x, y + h), fill=t.border, width=1)
        return y + h
