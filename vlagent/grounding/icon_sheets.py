"""Icon sheets: icons drawn in the styles real interfaces use, for the icon recognizer's training.

The synthetic screens (synth_screens.py) draw each icon one way: thin strokes on a plain background. Real
pages also draw icons hollow (an outlined arrow), inside a framed bar or a tinted button, and use a few
web icons the screens never show (a theme toggle, a sidebar's « », a column's sort triangle). A sheet is
one strip of such icons between words, at one text height; its blobs are found as on a screenshot
(icon_finder.screen_blobs) and named by the icon drawn where they lie, so the recognizer learns the styles
without the screen generator (and the datasets drawn from it) changing.

    pictures, shapes, labels = sheet_examples(seed=0, sheets=1500)

Every icon of synth_icons.ICONS and SHEET_ICONS is drawn in turn, in a random style, size and colour.
"""
from __future__ import annotations

import math
import random
from typing import Callable

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageOps

from vlagent.grounding.synth_icons import ICONS, _Pen

Color = tuple[int, int, int]


def _contrast(p: _Pen) -> None:  # a circle, half filled: "toggle theme (auto)"
    p.circle(0.5, 0.5, 0.4)
    p.d.pieslice([p.p(0.1, 0.1), p.p(0.9, 0.9)], 90, 270, fill=p.color)


def _sun(p: _Pen) -> None:
    p.circle(0.5, 0.5, 0.18, fill=True)
    for k in range(8):
        a = k * math.pi / 4
        p.line((0.5 + 0.3 * math.cos(a), 0.5 + 0.3 * math.sin(a)), (0.5 + 0.44 * math.cos(a), 0.5 + 0.44 * math.sin(a)))


def _moon(p: _Pen) -> None:  # a crescent: a disc less a disc beside it (drawn on a mask: 0 erases)
    p.circle(0.5, 0.5, 0.38, fill=True)
    p.d.ellipse([p.p(0.36, 0.04), p.p(1.0, 0.68)], fill=0)


def _chevrons(direction: int) -> Callable[[_Pen], None]:  # « (-1) or » (+1)
    def draw(p: _Pen) -> None:
        for x in (0.3, 0.6):
            tip, back = (x - 0.15, x + 0.15) if direction < 0 else (x + 0.15, x - 0.15)
            p.line((back, 0.25), (tip, 0.5), (back, 0.75), width=max(1, round(p.s / 7)))

    return draw


def _triangle(up: bool) -> Callable[[_Pen], None]:  # a sort column's ▲ / ▼
    def draw(p: _Pen) -> None:
        p.poly(*(((0.2, 0.7), (0.5, 0.3), (0.8, 0.7)) if up else ((0.2, 0.3), (0.5, 0.7), (0.8, 0.3))))

    return draw


def _block_arrow(dx: int, dy: int) -> Callable[[_Pen], None]:  # ⇨ ⇦ ⇧: a broad shaft and a wide head
    def draw(p: _Pen) -> None:
        right = ((0.1, 0.36), (0.52, 0.36), (0.52, 0.14), (0.9, 0.5), (0.52, 0.86), (0.52, 0.64), (0.1, 0.64))
        # turned from "right" to (dx, dy): x' = 0.5 + dx (x - .5) - dy (y - .5), y' = 0.5 + dy (x - .5) + dx (y - .5)
        p.poly(*((0.5 + dx * (x - 0.5) - dy * (y - 0.5), 0.5 + dy * (x - 0.5) + dx * (y - 0.5)) for x, y in right))

    return draw


# name -> (drawer, the words people use for it), as synth_icons.ICONS: web icons the screens never draw
SHEET_ICONS: dict[str, tuple[Callable[[_Pen], None], tuple[str, ...]]] = {
    "theme-auto": (_contrast, ("toggle theme", "theme", "contrast", "appearance", "color scheme")),
    "theme-light": (_sun, ("light mode", "light theme", "toggle theme", "theme", "brightness", "sun")),
    "theme-dark": (_moon, ("dark mode", "dark theme", "toggle theme", "theme", "night mode", "moon")),
    "sidebar-collapse": (_chevrons(-1), ("toggle navigation", "toggle sidebar", "collapse sidebar",
                                         "hide sidebar", "collapse")),
    "sidebar-expand": (_chevrons(+1), ("toggle navigation", "toggle sidebar", "expand sidebar", "show sidebar",
                                       "expand")),
    "sort-up": (_triangle(True), ("toggle sorting", "sort", "sort ascending", "ascending")),
    "sort-down": (_triangle(False), ("toggle sorting", "sort", "sort descending", "descending")),
}
# Other words for icons the screens draw: what web pages label them
EXTRA_MEANINGS: dict[str, tuple[str, ...]] = {
    "menu": ("toggle navigation", "toggle menu", "open menu"),
}
# Other drawings of the screens' icons: block arrows (drawn hollow too, by the "outline" style)
ALTERNATES: dict[str, tuple[Callable[[_Pen], None], ...]] = {
    "forward": (_block_arrow(1, 0),), "go-next": (_block_arrow(1, 0),),
    "back": (_block_arrow(-1, 0),), "go-previous": (_block_arrow(-1, 0),),
    "go-up": (_block_arrow(0, -1),), "upload": (_block_arrow(0, -1),), "download": (_block_arrow(0, 1),),
}
# Icons drawn either way round (a theme toggle fills its left or its right half)
MIRRORED = frozenset({"theme-auto", "theme-dark"})
STYLES = ("plain", "outline", "framed", "button")
_WORDS = "Home Next Prev Up Edit View Search Settings Users Groups Log out Site admin Recent actions".split()


def sheet_icon_names() -> list[str]:
    """Every icon a sheet draws: the screens' own (synth_icons.ICONS, theme icons included) and SHEET_ICONS."""
    return sorted(ICONS) + sorted(SHEET_ICONS)


def icon_mask(name: str, side: int, style: str, variant: int = 0, mirror: bool = False) -> Image.Image:
    """Icon `name` as an "L" mask side x side: its drawing number `variant` (0: its own; then ALTERNATES',
    round), mirrored where asked (for MIRRORED icons). "outline" draws the shape hollow: its strokes
    thickened into a solid, then only that solid's rim kept (an outlined arrow)."""
    drawers = (SHEET_ICONS[name][0] if name in SHEET_ICONS else ICONS[name][0],) + ALTERNATES.get(name, ())
    hollow = style == "outline" and side >= 16  # smaller, a hollow stroke is a smudge
    grow = max(3, (side // 6) | 1)  # how far strokes are thickened before the rim is taken
    inset = grow // 2 + 1 if hollow else 0  # room for the thickening inside the mask
    mask = Image.new("L", (side, side), 0)
    drawers[variant % len(drawers)](_Pen(ImageDraw.Draw(mask), (inset, inset, side - inset, side - inset),
                                         255))  # type: ignore[arg-type]
    if mirror:
        mask = ImageOps.mirror(mask)
    if hollow:
        solid = mask.filter(ImageFilter.MaxFilter(grow))
        inner = solid.filter(ImageFilter.MinFilter(max(3, (side // 12) | 1)))
        rim = np.clip(np.asarray(solid, np.float32) - np.asarray(inner, np.float32), 0, None)
        mask = Image.fromarray((rim * (255 / max(float(rim.max()), 1.0))).astype(np.uint8))
    return mask


def _colours(rng: random.Random) -> tuple[Color, Color, Color]:
    """(background, ink, frame): light or dark, sometimes tinted."""
    hue = rng.random()
    dark = rng.random() < 0.35
    base = rng.randint(20, 60) if dark else rng.randint(215, 255)
    tint = rng.randint(0, 25)
    bg = tuple(max(0, min(255, base + round(tint * math.cos(2 * math.pi * (hue + k / 3))))) for k in range(3))
    ink_level = rng.randint(190, 250) if dark else rng.randint(0, 110)
    ink = tuple(max(0, min(255, ink_level + rng.randint(-60, 60))) for _ in range(3))
    frame = tuple(max(0, min(255, (b + i) // 2 + rng.randint(-20, 20))) for b, i in zip(bg, ink))
    return bg, ink, frame  # type: ignore[return-value]


PxBox = tuple[int, int, int, int]


def draw_sheet(rng: random.Random, names: list[str], width: int = 720
               ) -> tuple[Image.Image, float, list[tuple[str, PxBox]], list[PxBox]]:  # fmt: skip
    """One strip: (image, text height in px, [(icon name, its drawn square box)], text boxes)."""
    from vlagent.grounding.synth_canvas import load_font

    unit = rng.randint(13, 26)
    height = 4 * unit
    bg, ink, frame = _colours(rng)
    image = Image.new("RGB", (width, height), bg)
    draw = ImageDraw.Draw(image)
    font = load_font(rng.choice(("sans", "serif")), max(8, round(unit * 0.72)))
    icons, texts = [], []
    x = rng.randint(4, 3 * unit)
    for name in names:
        if rng.random() < 0.5:  # a word between icons: text the recognizer must call "none"
            word = rng.choice(_WORDS)
            box = draw.textbbox((x, height // 2), word, font=font, anchor="lm")
            if box[2] < width - 4:
                draw.text((x, height // 2), word, fill=ink, font=font, anchor="lm")
                texts.append(box)
                x = box[2] + rng.randint(unit // 2, 2 * unit)
        side = max(8, round(unit * rng.uniform(0.5, 1.5)))
        style = rng.choice(STYLES)
        pad = round(side * rng.uniform(0.25, 0.8))
        if x + side + 2 * pad + (3 * unit if style == "framed" else 0) >= width - 4:
            break
        y = (height - side) // 2 + rng.randint(-unit // 4, unit // 4)
        if style == "framed":  # a bordered bar reaching left of the icon (a page's Prev/Next bar)
            reach = rng.randint(0, 3 * unit)
            fill = tuple(max(0, min(255, c + rng.randint(-12, 12))) for c in bg)
            draw.rectangle((x, y - pad, x + reach + side + 2 * pad, y + side + pad), fill=fill, outline=frame)
            x += reach + pad
        elif style == "button":  # a tinted button behind the icon
            fill = tuple(max(0, min(255, c + rng.choice((-1, 1)) * rng.randint(15, 40))) for c in bg)
            draw.rounded_rectangle((x, y - pad, x + side + 2 * pad, y + side + pad), radius=pad, fill=fill)
            x += pad
        mask = icon_mask(name, side, "outline" if style == "outline" else "plain", variant=rng.randrange(2),
                         mirror=name in MIRRORED and rng.random() < 0.5)
        image.paste(ink, (x, y), mask)
        icons.append((name, (x, y, x + side, y + side)))
        x += side + (pad if style in ("framed", "button") else 0) + rng.randint(unit // 2, 2 * unit)
    return image, float(unit), icons, texts


PART = 0.3  # a blob at least this share of its icon's side shows the icon (smaller: a part of it)
FRAME = 1.3  # a blob this many times the icon's side or more is the frame around it, not the icon


def sheet_examples(seed: int, sheets: int, progress: Callable[[int, int], object] | None = None
                   ) -> tuple[np.ndarray, np.ndarray, list[str]]:  # fmt: skip
    """(pictures N x SIDE x SIDE, shapes N x 2, labels: icon name or "none") from `sheets` strips; every icon
    is drawn about equally often."""
    from vlagent.grounding.icon_finder import screen_blobs
    from vlagent.grounding.icon_recognizer import NONE, blob_picture, blob_shape

    rng = random.Random(f"vlagent-icon-sheets:{seed}")
    names = sheet_icon_names()
    queue: list[str] = []
    pictures, shapes, labels = [], [], []
    for index in range(sheets):
        if progress:
            progress(index, sheets)
        while len(queue) < 8:
            queue += rng.sample(names, len(names))
        image, unit, icons, _ = draw_sheet(rng, queue[:8])
        queue = queue[len(icons):] if icons else queue[1:]
        rgb = np.asarray(image)
        for box in screen_blobs(image, unit):
            label = _label(box, icons)
            if label is None or (label == NONE and rng.random() < 0.5):  # most "none" comes from the screens
                continue
            pictures.append(blob_picture(rgb, box))
            shapes.append(blob_shape(box, unit))
            labels.append(label)
    return np.stack(pictures), np.array(shapes, dtype=np.float32), labels


def _label(box: tuple[int, int, int, int], icons: list) -> str | None:
    from vlagent.grounding.icon_recognizer import NONE

    cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    size = max(box[2] - box[0], box[3] - box[1])
    for name, (x0, y0, x1, y1) in icons:
        if x0 <= cx <= x1 and y0 <= cy <= y1:
            if size >= FRAME * (x1 - x0):
                return NONE if size >= 2 * (x1 - x0) else None  # a frame; just around the icon: left out
            return name if size >= PART * (x1 - x0) else None
    return NONE  # a word, a frame, a button's edge


__all__ = ["ALTERNATES", "EXTRA_MEANINGS", "MIRRORED", "SHEET_ICONS", "STYLES", "draw_sheet", "icon_mask",
           "sheet_examples", "sheet_icon_names"]
