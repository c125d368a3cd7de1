"""Drawing the virtual phone's screen with Pillow, from the elements `PhoneUI.layout()` returns."""

from __future__ import annotations

import functools
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image, ImageDraw

from vlagent.environments.practice.virtual_android.apps import APPS
from vlagent.environments.practice.virtual_android.fonts import draw_text, text_length

if TYPE_CHECKING:
    from vlagent.environments.practice.virtual_android.phone_ui import Element, PhoneUI


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


def draw_screen(ui: PhoneUI, elements: list[Element]) -> Image.Image:
    """The screen as an RGB image: each element, then the status bar and the navigation pill."""
    w, h = ui.size
    u = ui.unit
    th = Theme.of(ui.dark)
    on_home = ui.s.app in ("home", "recents")
    img = wallpaper(w, h, ui.dark).copy() if on_home else Image.new("RGB", (w, h), th.background)
    d = ImageDraw.Draw(img)
    lists = {el.id: el for el in elements if el.kind == "list"}
    for el in elements:
        if el.parent in lists:
            continue
        _draw_element(ui, d, el, th)
        if el.id in lists:
            _draw_list_rows(ui, img, el, [r for r in elements if r.parent == el.id], th)
    # status bar: time left, battery right
    top, bottom = ui.bars()
    fg = "#ffffff" if on_home or ui.dark else "#202124"
    draw_text(d, (round(40 * u), top // 2), ui.time_text(), fill=fg, size=round(36 * u), anchor="lm")
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

def _draw_list_rows(ui: PhoneUI, img: Image.Image, lst: Element, rows: list[Element], th: Theme) -> None:
    """Rows at their unclipped place on a scratch layer, then only the list's viewport pasted."""
    layer = Image.new("RGB", img.size, th.background)
    d = ImageDraw.Draw(layer)
    for row in rows:
        clipped, row.bounds = row.bounds, row.draw_bounds or row.bounds
        _draw_element(ui, d, row, th)
        row.bounds = clipped
    x1, y1, x2, y2 = lst.bounds
    top_line = max(1, round(2 * ui.unit))
    img.paste(layer.crop((x1, y1 + top_line, x2, y2)), (x1, y1 + top_line))

def _draw_element(ui: PhoneUI, d: ImageDraw.ImageDraw, el: Element, th: Theme) -> None:
    u = ui.unit
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
        draw_text(d, (pad, (y1 + y2) // 2), el.label, fill=th.text if ui.s.app != "recents" else "#ffffff",
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
        radius = (y2 - y1) // 2 if ui.s.app != "recents" else round(30 * u)
        fill = th.accent if ui.s.app != "recents" else th.surface
        d.rounded_rectangle((x1, y1, x2, y2), radius=radius, fill=fill)
        color = th.text if ui.s.app == "recents" else ("#202124" if ui.dark else "#ffffff")
        draw_text(d, ((x1 + x2) // 2, (y1 + y2) // 2), el.label, fill=color, size=round(44 * u), anchor="mm")
