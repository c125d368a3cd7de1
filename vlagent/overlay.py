"""Actions drawn over a screenshot: the palette, labels and marker geometry the report's SVG
overlay shares, and `draw_action`, which draws the same markers into a PIL image (for
`vlagent ground` and the run video export).
"""

from __future__ import annotations

import math
from typing import Any

from PIL import Image, ImageDraw, ImageFont

from vlagent.actions import Action, ActionError

# One palette for both renderers (the report's SVG and PIL).
COLORS = {
    "click": "#ff3b30",
    "double_click": "#ff3b30",
    "triple_click": "#af52de",
    "right_click": "#ff9500",
    "middle_click": "#af52de",
    "long_press": "#ff2d55",
    "move": "#8e8e93",
    "drag": "#007aff",
    "swipe": "#007aff",
    "scroll": "#34c759",
    "label": "#1c1c1e",
}
SCROLL_VECTORS = {"up": (0, -1), "down": (0, 1), "left": (-1, 0), "right": (1, 0)}


def step_actions(step: dict[str, Any]) -> list[Action]:
    """The actions of a trajectory step that can be drawn."""
    actions = []
    for a in step.get("actions") or []:
        try:
            actions.append(Action.from_dict(a))
        except (ActionError, TypeError):
            continue  # an unreadable record is not drawn (the report shows its raw JSON)
    return actions


def label_for(action: Action) -> str | None:
    """Text drawn for actions that have no (or not only a) position."""
    k = action.kind
    if k == "type":
        return f"type {_clip(action.text or '')!r}"
    if k == "key":
        return "key " + "+".join(action.keys or ())
    if k == "scroll":
        return f"scroll {action.direction}" + (f" ×{action.amount:g}" if action.amount is not None else "")
    if k == "open_app":
        return f"open app {action.text!r}"
    if k == "wait":
        return "wait" + (f" {action.seconds:g}s" if action.seconds is not None else "")
    if k in ("back", "home"):
        return k
    if k == "answer":
        return f"answer: {_clip(action.text or '')}"
    if k == "done":
        return "done" if action.success is not False else "done (failure)"
    if k == "long_press":
        return "long press" + (f" {action.seconds:g}s" if action.seconds is not None else "")
    return None


def _clip(text: str, n: int = 48) -> str:
    text = text.replace("\n", "⏎")
    return text if len(text) <= n else text[: n - 1] + "…"


def scroll_segment(action: Action, w: float, h: float) -> tuple[tuple[float, float], tuple[float, float]]:
    x, y = action.point if action.point is not None else (0.5, 0.5)
    dx, dy = SCROLL_VECTORS[action.direction or "down"]
    length = 0.12 * min(w, h)
    sx, sy = x * w, y * h
    return (sx, sy), (sx + dx * length, sy + dy * length)


def draw_action(image: Image.Image, action: Action) -> Image.Image:
    """A copy of `image` with `action` drawn on it (click ring + crosshair, arrows, labels)."""
    out = image.convert("RGB")  # always a new image
    w, h = out.size
    unit = max(w, h) / 100.0
    r = max(7, round(2.1 * unit))
    width = max(2, round(0.33 * unit))
    d = ImageDraw.Draw(out)
    font = _pil_font(max(12, round(1.5 * unit)))
    color = COLORS.get(action.kind, COLORS["click"])
    kind = action.kind

    def ring(cx: float, cy: float, rr: float, dashed: bool = False) -> None:
        box = (cx - rr, cy - rr, cx + rr, cy + rr)
        d.ellipse(box, outline="white", width=width + 2)
        if dashed:
            for start in range(0, 360, 40):
                d.arc(box, start, start + 25, fill=color, width=width)
        else:
            d.ellipse(box, outline=color, width=width)

    def arrow(x1: float, y1: float, x2: float, y2: float) -> None:
        d.line((x1, y1, x2, y2), fill="white", width=width + 3)
        d.line((x1, y1, x2, y2), fill=color, width=width)
        ang = math.atan2(y2 - y1, x2 - x1)
        head = 2.2 * r / 1.6
        pts = [(x2, y2)] + [
            (x2 - head * math.cos(ang + s * 0.45), y2 - head * math.sin(ang + s * 0.45)) for s in (-1, 1)
        ]
        d.polygon(pts, fill=color, outline="white")

    last = None
    if kind in ("drag", "swipe") and action.point and action.end:
        x1, y1, x2, y2 = action.point[0] * w, action.point[1] * h, action.end[0] * w, action.end[1] * h
        d.ellipse((x1 - r / 2, y1 - r / 2, x1 + r / 2, y1 + r / 2), fill=color)
        arrow(x1, y1, x2, y2)
        last = (x2, y2)
    elif kind == "scroll":
        (x1, y1), (x2, y2) = scroll_segment(action, w, h)
        arrow(x1, y1, x2, y2)
        last = (x1, y1)
    elif action.point is not None:
        cx, cy = action.point[0] * w, action.point[1] * h
        last = (cx, cy)
        if kind == "move":
            d.polygon([(cx, cy - r), (cx + r, cy), (cx, cy + r), (cx - r, cy)], outline=color, width=width)
        elif kind == "long_press":
            d.ellipse((cx - r, cy - r, cx + r, cy + r), fill=color, outline="white", width=width)
        else:
            ring(cx, cy, r, dashed=kind in ("right_click", "middle_click"))
            if kind in ("double_click", "triple_click"):
                ring(cx, cy, r * 1.45)
            for sx, sy in ((1, 0), (-1, 0), (0, 1), (0, -1)):
                d.line((cx + sx * 0.45 * r, cy + sy * 0.45 * r, cx + sx * 1.9 * r, cy + sy * 1.9 * r), fill=color, width=max(1, width - 1))
        d.ellipse((cx - 2, cy - 2, cx + 2, cy + 2), fill=color)
    label = label_for(action)
    if label and kind not in ("click", "double_click", "triple_click", "right_click", "middle_click", "move", "drag", "swipe"):
        lx, ly = (last[0] + 1.6 * r, last[1] + 1.2 * r) if last else (10, h - 10 - font.size * 1.8)
        bbox = d.textbbox((0, 0), label, font=font)
        tw, th = bbox[2] - bbox[0], bbox[3] - bbox[1]
        lx, ly = min(max(2, lx), max(2, w - tw - 14)), min(max(2, ly), max(2, h - th - 12))
        d.rounded_rectangle((lx, ly, lx + tw + 12, ly + th + 10), radius=4, fill=COLORS["label"])
        d.text((lx + 6, ly + 5 - bbox[1]), label, fill="white", font=font)
    return out


def _pil_font(size: int) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    for name in ("DejaVuSans.ttf", "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"):
        try:
            return ImageFont.truetype(name, size)
        except OSError:
            continue
    return ImageFont.load_default(size=size)


__all__ = ["COLORS", "draw_action", "label_for", "scroll_segment", "step_actions"]


def draw_grounding(image: Image.Image, point: tuple[float, float] | None,
                   candidates: list[tuple[float, float]] = ()) -> Image.Image:  # fmt: skip
    """A copy of `image` with the grounded point (a filled ring) and the other candidates (hollow rings)."""
    out = image.convert("RGB").copy()
    draw = ImageDraw.Draw(out)
    w, h = out.size
    r = max(6, round(min(w, h) / 80))
    for i, (x, y) in enumerate(candidates):
        cx, cy = x * w, y * h
        draw.ellipse([cx - r, cy - r, cx + r, cy + r], outline=(255, 170, 0), width=max(2, r // 3))
        draw.text((cx + r + 2, cy - r), str(i + 1), fill=(255, 170, 0), font=_pil_font(max(10, r * 2)))
    if point is not None:
        cx, cy = point[0] * w, point[1] * h
        draw.ellipse([cx - r, cy - r, cx + r, cy + r], outline=(230, 0, 60), width=max(3, r // 2))
        draw.ellipse([cx - 2, cy - 2, cx + 2, cy + 2], fill=(230, 0, 60))
    return out
