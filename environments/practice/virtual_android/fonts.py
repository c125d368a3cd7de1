"""Fonts for the phone UI, with per-character fallback.

The primary font (DejaVu Sans or the like) has Latin, Greek, Cyrillic and many
symbols but no CJK, so `你好` would render as two identical .notdef boxes — and a
screenshot is what a model reads. `draw_text` splits a string into runs: each
character goes to the primary font if it has a glyph, else to a CJK-capable
font (found once via fontconfig or known paths), else back to the primary font,
whose .notdef box is then the one consistent "no glyph" mark (emoji, without an
emoji font installed). Runs share the primary font's baseline.

Coverage is decided once per (font file, character) by comparing the
character's rendering with the font's rendering of a code point no font maps:
FreeType draws glyph 0 (.notdef) for both, so equal bitmaps mean "missing".
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import unicodedata
from typing import Any

from PIL import ImageDraw, ImageFont

Font = ImageFont.FreeTypeFont | ImageFont.ImageFont

PRIMARY_FONT_FILES = [
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf",
    "/System/Library/Fonts/Helvetica.ttc",
    "C:/Windows/Fonts/arial.ttf",
]
CJK_FONT_FILES = [
    "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",
    "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc",
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/noto-cjk/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/truetype/droid/DroidSansFallbackFull.ttf",
    "/System/Library/Fonts/PingFang.ttc",
    "C:/Windows/Fonts/msyh.ttc",
]
_UNMAPPED = "\U0010ffff"  # a noncharacter: every font draws its .notdef glyph for it
_PROBE_SIZE = 32
_CJK_PROBE = "你"
_ATTACHING = {"Mn", "Mc", "Me", "Cf", "Cc", "Zs", "Zl", "Zp"}


@functools.lru_cache(maxsize=1)
def primary_font_file() -> str | None:
    return next((p for p in PRIMARY_FONT_FILES if os.path.exists(p)), None)


@functools.lru_cache(maxsize=64)
def font(size: int) -> Font:
    """The primary UI font at `size` pixels."""
    path = primary_font_file()
    return ImageFont.truetype(path, size) if path else ImageFont.load_default(size=size)


@functools.lru_cache(maxsize=16)
def _probe_font(path: str) -> Font:
    return ImageFont.truetype(path, _PROBE_SIZE)


def _signature(fnt: Font, ch: str) -> tuple[Any, ...]:
    mask = fnt.getmask(ch)
    return mask.size, bytes(mask), fnt.getlength(ch)


@functools.lru_cache(maxsize=16)
def _notdef_signature(path: str) -> tuple[Any, ...]:
    return _signature(_probe_font(path), _UNMAPPED)


@functools.lru_cache(maxsize=8192)
def has_glyph(path: str, ch: str) -> bool:
    """Whether the font file maps `ch` to a real glyph (decided once per pair)."""
    try:
        return _signature(_probe_font(path), ch) != _notdef_signature(path)
    except OSError:  # unreadable font file: treat as covering nothing
        return False


def _fontconfig_cjk_files() -> list[str]:
    if shutil.which("fc-match") is None:
        return []
    files: list[str] = []
    for cmd in (["fc-match", "-f", "%{file}", ":lang=zh"], ["fc-list", ":lang=zh", "file"]):
        try:
            out = subprocess.run(cmd, capture_output=True, text=True, timeout=10, stdin=subprocess.DEVNULL).stdout
        except (OSError, subprocess.SubprocessError):
            continue
        files += [ln.strip().rstrip(":").strip() for ln in out.splitlines() if ln.strip()]
    return files


@functools.lru_cache(maxsize=1)
def cjk_font_file() -> str | None:
    """A font file that really draws CJK, or None. fontconfig's `:lang=zh` match can
    name a font without CJK (it falls back to the default sans), so each candidate
    is checked against a CJK character."""
    for path in _fontconfig_cjk_files() + CJK_FONT_FILES:
        if os.path.exists(path) and has_glyph(path, _CJK_PROBE):
            return path
    return None


@functools.lru_cache(maxsize=64)
def cjk_font(size: int) -> Font | None:
    path = cjk_font_file()
    return ImageFont.truetype(path, size) if path else None


def _attaches_to_previous(ch: str) -> bool:
    # marks, format/control characters and spaces take the font of the character before
    # them, so combining accents and variation selectors stay with their base
    # (unassigned and private-use code points do not: they get a font of their own)
    return unicodedata.category(ch) in _ATTACHING


@functools.lru_cache(maxsize=8192)
def _uses_fallback(ch: str) -> bool:
    primary = primary_font_file()
    if primary is None or has_glyph(primary, ch):
        return False
    fallback = cjk_font_file()
    return fallback is not None and has_glyph(fallback, ch)


def runs(text: str, size: int) -> list[tuple[str, Font]]:
    """`text` cut into (substring, font) runs; one run when the primary font covers it all."""
    primary = font(size)
    out: list[tuple[str, Font]] = []
    current: Font = primary
    start = 0
    for i, ch in enumerate(text):
        if _attaches_to_previous(ch):
            continue
        want = cjk_font(size) if _uses_fallback(ch) else primary
        assert want is not None  # _uses_fallback implies a fallback font
        if want is not current:
            if i > start:
                out.append((text[start:i], current))
            current, start = want, i
    if len(text) > start or not out:
        out.append((text[start:], current))
    return out


def text_length(text: str, size: int) -> float:
    """The advance width of `text` as `draw_text` lays it out."""
    return sum(fnt.getlength(part) for part, fnt in runs(text, size))


def draw_text(d: ImageDraw.ImageDraw, xy: tuple[float, float], text: str, *, fill: Any, size: int,
              anchor: str = "la") -> None:
    """`ImageDraw.text` with per-character font fallback, for single-line text.
    `anchor` is Pillow's two-letter anchor; the vertical part is taken from the primary
    font's metrics so that all runs share one baseline."""
    parts = runs(text, size)
    if len(parts) == 1:
        d.text(xy, text, fill=fill, font=parts[0][1], anchor=anchor)
        return
    if len(anchor) != 2 or anchor[0] not in "lmr" or anchor[1] not in "atmsbd":
        raise ValueError(f"unsupported text anchor {anchor!r}")
    primary = font(size)
    ascent, descent = primary.getmetrics()
    x, y = xy
    width = sum(fnt.getlength(part) for part, fnt in parts)
    x -= {"l": 0.0, "m": width / 2, "r": width}[anchor[0]]
    # baseline from the requested vertical anchor ("t" treated like "a": top of the line)
    baseline = y + {"a": ascent, "t": ascent, "m": (ascent - descent) / 2, "s": 0, "b": -descent,
                    "d": -descent}[anchor[1]]
    for part, fnt in parts:
        d.text((x, baseline), part, fill=fill, font=fnt, anchor="ls")
        x += fnt.getlength(part)
