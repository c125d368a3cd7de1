"""OCR of screenshots (rapidocr-onnxruntime 1.4.x), as text lines and words.

rapidocr 1.4 ships its PP-OCR models inside the wheel, so it works offline
(3.x downloads them on first use). The engine loads once per process.

OCR often returns a whole menu bar or toolbar caption as one line and drops
the spaces ("FileEditViewHelp"); clicking such a line's centre misses the
word. With `return_word_box=True` rapidocr also returns one box per
character, from which words follow: characters separated by a gap wider than
a fraction of the line height start a new word.

Results are cached per image content (a small LRU): evaluation asks several
targets of one screen, and an agent step OCRs its observation once.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Callable, Sequence

import numpy as np
from PIL import Image

from vlagent.grounding.dataset import OcrLine

# A gap between character boxes wider than this fraction of the line height splits words.
WORD_GAP = 0.3
# Larger screenshots are shrunk to this longer side before OCR: 2x screens keep legible
# text at half size, and detection time grows with the pixel count.
MAX_SIDE = 1600
_CACHE_SIZE = 64


class OcrUnavailable(RuntimeError):
    """rapidocr-onnxruntime is not installed."""


@dataclass(frozen=True)
class OcrPage:
    """What OCR read on one screenshot: lines, and the words inside them (normalized boxes)."""

    lines: tuple[OcrLine, ...]
    words: tuple[tuple[OcrLine, ...], ...]  # words[i]: the words of lines[i], left to right


@lru_cache(maxsize=1)
def ocr_engine() -> Any:
    """The process-wide RapidOCR engine (loading takes ~0.2 s; keep one)."""
    try:
        from rapidocr_onnxruntime import RapidOCR
    except ImportError as exc:
        raise OcrUnavailable(
            "OCR needs rapidocr-onnxruntime 1.4.x (its models ship in the wheel): "
            "pip install 'vlagent[grounding]'"
        ) from exc
    return RapidOCR()


_cache: "OrderedDict[str, OcrPage]" = OrderedDict()


def content_key(image: Image.Image) -> str:
    """A digest of the image's pixels, size and mode: the key of per-screen caches."""
    h = hashlib.blake2b(image.tobytes(), digest_size=16)
    h.update(f"{image.size}{image.mode}".encode())
    return h.hexdigest()


class ScreenCache:
    """What was found on a screen, kept per screen content (content_key) and one parameter (the text
    height: a different unit finds other shapes), for the `size` screens used last. `get` returns the same
    object while the screen stays cached."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._kept: OrderedDict[tuple[str, Any], Any] = OrderedDict()

    def get(self, image: Image.Image, param: Any, compute: Callable[[], Any]) -> Any:
        key = (content_key(image), param)
        if key not in self._kept:
            self._kept[key] = compute()
            while len(self._kept) > self.size:
                self._kept.popitem(last=False)
        self._kept.move_to_end(key)
        return self._kept[key]


def _norm_box(points: Sequence[Sequence[float]], w: int, h: int) -> tuple[float, float, float, float]:
    xs = [float(p[0]) for p in points]
    ys = [float(p[1]) for p in points]
    x0, x1 = max(0.0, min(xs)) / w, min(float(w), max(xs)) / w
    y0, y1 = max(0.0, min(ys)) / h, min(float(h), max(ys)) / h
    # Degenerate boxes (a one-pixel-wide character) still need x0 < x1.
    eps = 0.5 / max(w, h)
    return (x0, y0, max(x1, x0 + eps), max(y1, y0 + eps))


def _words(text: str, char_boxes: Any, line: OcrLine, w: int, h: int) -> tuple[OcrLine, ...]:
    """Split one line into words using its per-character boxes (or keep it whole)."""
    if not isinstance(char_boxes, (list, tuple)) or len(char_boxes) != len(text) or not text:
        return (line,)
    boxes = [_norm_box(b, w, h) for b in char_boxes]
    line_h = (line.box[3] - line.box[1]) * h
    words: list[tuple[str, list]] = []
    for ch, box in zip(text, boxes):
        if ch.isspace():
            words.append(("", []))
            continue
        if words and words[-1][1]:
            prev = words[-1][1][-1]
            gap = (box[0] - prev[2]) * w
            if gap > WORD_GAP * line_h:
                words.append(("", []))
        if not words:
            words.append(("", []))
        words[-1] = (words[-1][0] + ch, words[-1][1] + [box])
    out = []
    for word, bs in words:
        if not bs:
            continue
        out.append(OcrLine(word, (min(b[0] for b in bs), min(b[1] for b in bs), max(b[2] for b in bs),
                                  max(b[3] for b in bs)), line.score))  # fmt: skip
    return tuple(out) or (line,)


def read_page(image: Image.Image, scale: float = 1.0) -> OcrPage:
    """OCR `image` (cached by content): lines and their words, boxes normalized to the image. `scale` > 1
    reads it enlarged (up to MAX_SIDE * scale): the detector misses a lone character ("7" on a
    calculator key) at screen size that it finds at twice the size, in twice the time."""
    rgb = image if image.mode == "RGB" else image.convert("RGB")
    key = content_key(rgb) if scale == 1.0 else (content_key(rgb), scale)
    if key in _cache:
        _cache.move_to_end(key)
        return _cache[key]
    w, h = rgb.size
    shrink = min(scale, scale * MAX_SIDE / max(w, h))
    small = rgb if shrink == 1.0 else rgb.resize((round(w * shrink), round(h * shrink)), Image.Resampling.LANCZOS)
    # Screenshots are upright: skip the text-angle classifier (a share of the time, no gain here).
    result, _ = ocr_engine()(np.asarray(small), use_cls=False, return_word_box=True)
    w, h = small.size  # boxes are normalized, so the OCR'd size is the one that counts
    lines: list[OcrLine] = []
    words: list[tuple[OcrLine, ...]] = []
    for item in result or []:
        points, text, score = item[0], str(item[1]), float(item[2])
        if not text.strip():
            continue
        line = OcrLine(text, _norm_box(points, w, h), score)
        lines.append(line)
        words.append(_words(text, item[3] if len(item) > 3 else None, line, w, h))
    page = OcrPage(tuple(lines), tuple(words))
    _cache[key] = page
    while len(_cache) > _CACHE_SIZE:
        _cache.popitem(last=False)
    return page


def clear_cache() -> None:
    _cache.clear()


__all__ = ["MAX_SIDE", "OcrPage", "OcrUnavailable", "ScreenCache", "WORD_GAP", "clear_cache", "content_key",
           "ocr_engine", "read_page"]
