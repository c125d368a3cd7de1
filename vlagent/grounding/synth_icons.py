"""Common UI icons drawn as vector shapes with Pillow, for synthetic screens.

`draw_icon(draw, name, box, color)` draws icon `name` inside the square
pixel box (x0, y0, x1, y1) with strokes scaled to the box, so icons stay
crisp at 1x, 1.5x and 2x. `ICONS[name]` lists what people call the icon
("settings" for the gear): the words an instruction uses to mean it.
"""

from __future__ import annotations

import math
from typing import Callable

from PIL import ImageDraw

from vlagent.grounding.synth_theme_icons import THEME_ICON_MEANINGS, available_theme_icons, theme_icon_mask

Color = tuple[int, int, int]
Box = tuple[float, float, float, float]


class _Pen:
    """Drawing helpers in a unit square [0, 1]² mapped onto the icon's box."""

    def __init__(self, draw: ImageDraw.ImageDraw, box: Box, color: Color) -> None:
        self.d, self.color = draw, color
        self.x0, self.y0 = box[0], box[1]
        self.s = min(box[2] - box[0], box[3] - box[1])
        self.w = max(1, round(self.s / 11))

    def p(self, x: float, y: float) -> tuple[float, float]:
        return (self.x0 + x * self.s, self.y0 + y * self.s)

    def line(self, *pts: tuple[float, float], width: int | None = None) -> None:
        self.d.line([self.p(*q) for q in pts], fill=self.color, width=width or self.w, joint="curve")

    def poly(self, *pts: tuple[float, float], fill: bool = True) -> None:
        xy = [self.p(*q) for q in pts]
        if fill:
            self.d.polygon(xy, fill=self.color)
        else:
            self.d.polygon(xy, outline=self.color, width=self.w)

    def rect(self, x0: float, y0: float, x1: float, y1: float, fill: bool = False, r: float = 0.0) -> None:
        xy = [self.p(x0, y0), self.p(x1, y1)]
        if r:
            self.d.rounded_rectangle(xy, radius=r * self.s, fill=self.color if fill else None,
                                     outline=None if fill else self.color, width=self.w)  # fmt: skip
        else:
            self.d.rectangle(xy, fill=self.color if fill else None, outline=None if fill else self.color, width=self.w)

    def circle(self, cx: float, cy: float, r: float, fill: bool = False) -> None:
        xy = [self.p(cx - r, cy - r), self.p(cx + r, cy + r)]
        self.d.ellipse(xy, fill=self.color if fill else None, outline=None if fill else self.color, width=self.w)

    def arc(self, cx: float, cy: float, r: float, start: float, end: float) -> None:
        xy = [self.p(cx - r, cy - r), self.p(cx + r, cy + r)]
        self.d.arc(xy, start, end, fill=self.color, width=self.w)


def _gear(p: _Pen) -> None:
    for k in range(8):
        a = k * math.pi / 4
        p.line((0.5 + 0.22 * math.cos(a), 0.5 + 0.22 * math.sin(a)),
               (0.5 + 0.42 * math.cos(a), 0.5 + 0.42 * math.sin(a)), width=max(2, round(p.s / 7)))  # fmt: skip
    p.circle(0.5, 0.5, 0.28)
    p.circle(0.5, 0.5, 0.1)


def _trash(p: _Pen) -> None:
    p.line((0.15, 0.25), (0.85, 0.25))
    p.line((0.38, 0.25), (0.4, 0.12), (0.6, 0.12), (0.62, 0.25))
    p.poly((0.22, 0.3), (0.78, 0.3), (0.72, 0.9), (0.28, 0.9), fill=False)
    p.line((0.42, 0.4), (0.42, 0.8))
    p.line((0.58, 0.4), (0.58, 0.8))


def _search(p: _Pen) -> None:
    p.circle(0.42, 0.42, 0.27)
    p.line((0.62, 0.62), (0.9, 0.9), width=max(2, round(p.s / 8)))


def _close(p: _Pen) -> None:
    p.line((0.2, 0.2), (0.8, 0.8))
    p.line((0.8, 0.2), (0.2, 0.8))


def _back(p: _Pen) -> None:
    p.line((0.85, 0.5), (0.15, 0.5))
    p.line((0.45, 0.2), (0.15, 0.5), (0.45, 0.8))


def _forward(p: _Pen) -> None:
    p.line((0.15, 0.5), (0.85, 0.5))
    p.line((0.55, 0.2), (0.85, 0.5), (0.55, 0.8))


def _menu(p: _Pen) -> None:
    for y in (0.25, 0.5, 0.75):
        p.line((0.15, y), (0.85, y))


def _more(p: _Pen) -> None:
    for y in (0.2, 0.5, 0.8):
        p.circle(0.5, y, 0.07, fill=True)


def _plus(p: _Pen) -> None:
    p.line((0.5, 0.15), (0.5, 0.85))
    p.line((0.15, 0.5), (0.85, 0.5))


def _share(p: _Pen) -> None:
    p.line((0.72, 0.22), (0.28, 0.5), (0.72, 0.78))
    for x, y in ((0.72, 0.22), (0.28, 0.5), (0.72, 0.78)):
        p.circle(x, y, 0.11, fill=True)


def _download(p: _Pen) -> None:
    p.line((0.5, 0.1), (0.5, 0.65))
    p.line((0.25, 0.42), (0.5, 0.67), (0.75, 0.42))
    p.line((0.15, 0.7), (0.15, 0.88), (0.85, 0.88), (0.85, 0.7))


def _upload(p: _Pen) -> None:
    p.line((0.5, 0.67), (0.5, 0.12))
    p.line((0.25, 0.37), (0.5, 0.12), (0.75, 0.37))
    p.line((0.15, 0.7), (0.15, 0.88), (0.85, 0.88), (0.85, 0.7))


def _star(p: _Pen) -> None:
    pts = []
    for k in range(10):
        r = 0.45 if k % 2 == 0 else 0.19
        a = -math.pi / 2 + k * math.pi / 5
        pts.append((0.5 + r * math.cos(a), 0.53 + r * math.sin(a)))
    p.poly(*pts, fill=False)


def _bell(p: _Pen) -> None:
    p.arc(0.5, 0.45, 0.27, 180, 360)
    p.line((0.23, 0.45), (0.23, 0.68), (0.13, 0.78), (0.87, 0.78), (0.77, 0.68), (0.77, 0.45))
    p.circle(0.5, 0.87, 0.07, fill=True)


def _home(p: _Pen) -> None:
    p.line((0.1, 0.5), (0.5, 0.12), (0.9, 0.5))
    p.line((0.22, 0.42), (0.22, 0.88), (0.78, 0.88), (0.78, 0.42))
    p.rect(0.42, 0.62, 0.58, 0.88)


def _user(p: _Pen) -> None:
    p.circle(0.5, 0.32, 0.18)
    p.arc(0.5, 0.95, 0.38, 180, 360)


def _pencil(p: _Pen) -> None:
    p.poly((0.7, 0.12), (0.88, 0.3), (0.35, 0.83), (0.17, 0.65), fill=False)
    p.line((0.17, 0.65), (0.12, 0.88), (0.35, 0.83))


def _refresh(p: _Pen) -> None:
    p.arc(0.5, 0.5, 0.33, 40, 330)
    p.poly((0.86, 0.2), (0.88, 0.5), (0.6, 0.42))


def _lock(p: _Pen) -> None:
    p.rect(0.2, 0.45, 0.8, 0.88, r=0.06)
    p.arc(0.5, 0.45, 0.2, 180, 360)
    p.line((0.3, 0.45), (0.3, 0.4))
    p.line((0.7, 0.45), (0.7, 0.4))
    p.circle(0.5, 0.66, 0.06, fill=True)


def _folder(p: _Pen) -> None:
    p.poly((0.1, 0.22), (0.4, 0.22), (0.48, 0.32), (0.9, 0.32), (0.9, 0.82), (0.1, 0.82), fill=False)
    p.line((0.1, 0.42), (0.9, 0.42))


def _calendar(p: _Pen) -> None:
    p.rect(0.12, 0.2, 0.88, 0.88, r=0.05)
    p.line((0.12, 0.38), (0.88, 0.38))
    p.line((0.32, 0.1), (0.32, 0.28))
    p.line((0.68, 0.1), (0.68, 0.28))
    for x in (0.3, 0.5, 0.7):
        for y in (0.55, 0.73):
            p.circle(x, y, 0.045, fill=True)


def _play(p: _Pen) -> None:
    p.poly((0.28, 0.15), (0.85, 0.5), (0.28, 0.85))


def _pause(p: _Pen) -> None:
    p.rect(0.25, 0.18, 0.42, 0.82, fill=True)
    p.rect(0.58, 0.18, 0.75, 0.82, fill=True)


def _heart(p: _Pen) -> None:
    pts = []
    for k in range(40):
        t = 2 * math.pi * k / 40
        x = 16 * math.sin(t) ** 3
        y = 13 * math.cos(t) - 5 * math.cos(2 * t) - 2 * math.cos(3 * t) - math.cos(4 * t)
        pts.append((0.5 + x / 38, 0.45 - y / 38))
    p.poly(*pts, fill=False)


def _mail(p: _Pen) -> None:
    p.rect(0.1, 0.22, 0.9, 0.78)
    p.line((0.1, 0.22), (0.5, 0.55), (0.9, 0.22))


def _camera(p: _Pen) -> None:
    p.rect(0.1, 0.3, 0.9, 0.82, r=0.06)
    p.line((0.35, 0.3), (0.42, 0.18), (0.58, 0.18), (0.65, 0.3))
    p.circle(0.5, 0.56, 0.16)


def _image(p: _Pen) -> None:
    p.rect(0.1, 0.18, 0.9, 0.82)
    p.line((0.15, 0.76), (0.4, 0.48), (0.58, 0.66), (0.7, 0.55), (0.87, 0.76))
    p.circle(0.7, 0.35, 0.07, fill=True)


def _filter(p: _Pen) -> None:
    p.poly((0.1, 0.18), (0.9, 0.18), (0.58, 0.55), (0.58, 0.85), (0.42, 0.75), (0.42, 0.55), fill=False)


def _info(p: _Pen) -> None:
    p.circle(0.5, 0.5, 0.4)
    p.circle(0.5, 0.3, 0.05, fill=True)
    p.line((0.5, 0.45), (0.5, 0.72))


def _help(p: _Pen) -> None:
    p.circle(0.5, 0.5, 0.4)
    p.arc(0.5, 0.38, 0.13, 180, 400)
    p.line((0.5, 0.5), (0.5, 0.6))
    p.circle(0.5, 0.72, 0.045, fill=True)


def _check(p: _Pen) -> None:
    p.line((0.15, 0.52), (0.4, 0.77), (0.85, 0.25))


def _clock(p: _Pen) -> None:
    p.circle(0.5, 0.5, 0.4)
    p.line((0.5, 0.25), (0.5, 0.5), (0.68, 0.62))


def _globe(p: _Pen) -> None:
    p.circle(0.5, 0.5, 0.4)
    p.d.ellipse([p.p(0.33, 0.1), p.p(0.67, 0.9)], outline=p.color, width=p.w)
    p.line((0.1, 0.5), (0.9, 0.5))


def _copy(p: _Pen) -> None:
    p.rect(0.32, 0.32, 0.88, 0.88, r=0.05)
    p.line((0.22, 0.68), (0.12, 0.68), (0.12, 0.12), (0.68, 0.12), (0.68, 0.22))


def _link(p: _Pen) -> None:
    p.d.rounded_rectangle([p.p(0.08, 0.36), p.p(0.55, 0.64)], radius=0.14 * p.s, outline=p.color, width=p.w)
    p.d.rounded_rectangle([p.p(0.45, 0.36), p.p(0.92, 0.64)], radius=0.14 * p.s, outline=p.color, width=p.w)


def _cloud(p: _Pen) -> None:
    p.arc(0.35, 0.58, 0.17, 90, 270)
    p.arc(0.52, 0.45, 0.22, 180, 330)
    p.arc(0.7, 0.6, 0.15, 270, 450)
    p.line((0.35, 0.75), (0.7, 0.75))


def _eye(p: _Pen) -> None:
    p.arc(0.5, 0.85, 0.5, 225, 315)
    p.arc(0.5, 0.15, 0.5, 45, 135)
    p.circle(0.5, 0.5, 0.12, fill=True)


def _mic(p: _Pen) -> None:
    p.rect(0.37, 0.1, 0.63, 0.6, r=0.13)
    p.arc(0.5, 0.45, 0.27, 0, 180)
    p.line((0.5, 0.72), (0.5, 0.9))


def _location(p: _Pen) -> None:
    p.arc(0.5, 0.38, 0.27, 150, 390)
    p.line((0.27, 0.52), (0.5, 0.9), (0.73, 0.52))
    p.circle(0.5, 0.38, 0.09)


def _cart(p: _Pen) -> None:
    p.line((0.08, 0.15), (0.22, 0.15), (0.32, 0.65), (0.82, 0.65), (0.9, 0.3), (0.26, 0.3))
    p.circle(0.38, 0.82, 0.07, fill=True)
    p.circle(0.76, 0.82, 0.07, fill=True)


def _phone(p: _Pen) -> None:
    p.rect(0.28, 0.08, 0.72, 0.92, r=0.08)
    p.line((0.45, 0.8), (0.55, 0.8))


def _volume(p: _Pen) -> None:
    p.poly((0.1, 0.38), (0.28, 0.38), (0.5, 0.18), (0.5, 0.82), (0.28, 0.62), (0.1, 0.62))
    p.arc(0.5, 0.5, 0.2, -50, 50)
    p.arc(0.5, 0.5, 0.35, -50, 50)


# name -> (drawer, the words people use for it; the first is the main meaning)
ICONS: dict[str, tuple[Callable[[_Pen], None], tuple[str, ...]]] = {
    "gear": (_gear, ("settings", "gear", "preferences")),
    "trash": (_trash, ("delete", "trash", "bin")),
    "search": (_search, ("search", "magnifying glass", "find")),
    "close": (_close, ("close", "X", "dismiss")),
    "back": (_back, ("back", "back arrow", "previous")),
    "forward": (_forward, ("forward", "next", "forward arrow")),
    "menu": (_menu, ("menu", "hamburger menu", "navigation menu")),
    "more": (_more, ("more options", "overflow menu", "three dots")),
    "plus": (_plus, ("add", "plus", "new")),
    "share": (_share, ("share",)),
    "download": (_download, ("download",)),
    "upload": (_upload, ("upload",)),
    "star": (_star, ("favorite", "star", "bookmark")),
    "bell": (_bell, ("notifications", "bell", "alerts")),
    "home": (_home, ("home", "house")),
    "user": (_user, ("profile", "account", "user")),
    "pencil": (_pencil, ("edit", "pencil")),
    "refresh": (_refresh, ("refresh", "reload")),
    "lock": (_lock, ("lock", "padlock", "security")),
    "folder": (_folder, ("folder", "open folder")),
    "calendar": (_calendar, ("calendar", "date picker")),
    "play": (_play, ("play",)),
    "pause": (_pause, ("pause",)),
    "heart": (_heart, ("like", "heart")),
    "mail": (_mail, ("mail", "envelope", "email")),
    "camera": (_camera, ("camera", "take a photo")),
    "image": (_image, ("picture", "image", "gallery")),
    "filter": (_filter, ("filter", "funnel")),
    "info": (_info, ("information", "info")),
    "help": (_help, ("help", "question mark")),
    "check": (_check, ("confirm", "checkmark", "done")),
    "clock": (_clock, ("history", "clock", "recent")),
    "globe": (_globe, ("language", "globe", "web")),
    "copy": (_copy, ("copy", "duplicate")),
    "link": (_link, ("link", "chain")),
    "cloud": (_cloud, ("cloud", "sync")),
    "eye": (_eye, ("show", "eye", "preview")),
    "mic": (_mic, ("microphone", "voice input")),
    "location": (_location, ("location", "map pin")),
    "cart": (_cart, ("shopping cart", "cart", "basket")),
    "phone": (_phone, ("phone", "device")),
    "volume": (_volume, ("volume", "sound", "speaker")),
}


def _theme_drawer(name: str) -> Callable[[_Pen], None]:
    def draw(p: _Pen) -> None:
        side = max(1, round(p.s))
        p.d.bitmap((round(p.x0), round(p.y0)), theme_icon_mask(name, side), fill=p.color)

    return draw


# The desktop theme's icons, where this machine has them (synth_theme_icons.py).
ICONS.update({name: (_theme_drawer(name), THEME_ICON_MEANINGS[name]) for name in available_theme_icons()})


def draw_icon(draw: ImageDraw.ImageDraw, name: str, box: Box, color: Color) -> None:
    """Draw icon `name` into the pixel box (the largest centred square of it)."""
    if name not in ICONS:
        raise KeyError(f"unknown icon {name!r} (one of: {', '.join(sorted(ICONS))})")
    x0, y0, x1, y1 = box
    side = min(x1 - x0, y1 - y0)
    sx, sy = x0 + (x1 - x0 - side) / 2, y0 + (y1 - y0 - side) / 2
    ICONS[name][0](_Pen(draw, (sx, sy, sx + side, sy + side), color))


def icon_meaning(name: str) -> str:
    """The icon's main meaning ("settings" for the gear)."""
    return ICONS[name][1][0]


__all__ = ["ICONS", "draw_icon", "icon_meaning"]
