"""The keys of an on-screen QWERTY keyboard: "the Q key", "press i on the keyboard", "the space bar".

A phone's keyboard shows each letter alone on its key, and OCR reads no lone letters (nor would a
reader trust one). But a keyboard is its layout: three rows of like keys, 10, 9 and 7 of them, one
under the other, and the letters are where QWERTY puts them. `find_keys` finds such rows among the
screenshot's key-shaped outlines and names each key; `key_named` reads which key an instruction asks
for. Keyboards with other letter layouts (AZERTY, QWERTZ) are not told apart: their keys are named
as QWERTY's. Coordinates out are normalized to the image (DESIGN.md).
"""
from __future__ import annotations

import re
from typing import Sequence

import numpy as np
from PIL import Image

Box = tuple[float, float, float, float]

LETTER_ROWS = ("qwertyuiop", "asdfghjkl", "zxcvbnm")
SPACE = "space"
EDGE_CONTRAST = 10  # grey levels (any channel): a key is barely lighter than the keyboard under it

_KEY = re.compile(
    r"^\s*(?:(?:press|tap|click|hit|type)\s+)?(?:the\s+)?(?:"
    r"(?:letter\s+)?['\"]?(?P<a>[a-z])['\"]?\s+(?:key\b|on the (?:on-screen |soft )?keyboard)"
    r"|key\s+['\"]?(?P<b>[a-z])['\"]?"
    r"|(?P<space>space ?bar|space key))\s*$", re.IGNORECASE)


def key_named(instruction: str) -> str | None:
    """The letter (lower case) or SPACE an instruction asks to press on a keyboard, else None: "the Q key",
    "press i on the keyboard", "the key O", "the space bar"."""
    match = _KEY.match(instruction)
    if match is None:
        return None
    if match.group("space"):
        return SPACE
    return (match.group("a") or match.group("b")).lower()


def find_keys(image: Image.Image) -> dict[str, tuple[int, int, int, int]]:
    """Each key of a QWERTY keyboard on the screenshot (pixels), by its letter, and SPACE where there is a
    space bar under the letters; empty when there is no such keyboard."""
    from vlagent.grounding.controls import edge_components

    labels, shapes = edge_components(image, EDGE_CONTRAST)
    height = image.size[1]
    boxes = [(x0, y0, x1, y1) for x0, y0, x1, y1 in shapes
             if 0.02 * height <= y1 - y0 <= 0.15 * height and 0.4 * (y1 - y0) <= x1 - x0 <= 1.6 * (y1 - y0)]
    rows_of_keys = _rows_of_like_boxes(boxes)
    for top, middle, bottom in zip(rows_of_keys, rows_of_keys[1:], rows_of_keys[2:]):
        if len(top) == 10 and len(middle) == 9 and len(bottom) in (7, 9) and _stacked(top, middle, bottom):
            bottom = bottom if len(bottom) == 7 else bottom[1:-1]  # shift and backspace at the ends
            keys = {ch: box for letters, row in zip(LETTER_ROWS, (top, middle, bottom))
                    for ch, box in zip(letters, row)}
            space = _space_bar(labels, bottom)
            if space is not None:
                keys[SPACE] = space
            return keys
    return {}


def _rows_of_like_boxes(boxes: Sequence[tuple[int, int, int, int]]) -> list[list[tuple[int, int, int, int]]]:
    """Boxes of one height (within a fifth) whose centres share a line, each row left to right; the rows top
    to bottom. Within a row, only boxes about as wide as the row's median are kept."""
    rows: list[list] = []
    for box in sorted(boxes, key=lambda b: ((b[1] + b[3]) / 2, b[0])):
        h, cy = box[3] - box[1], (box[1] + box[3]) / 2
        for row in rows:
            first = row[0]
            if abs((first[1] + first[3]) / 2 - cy) <= 0.25 * h and abs((first[3] - first[1]) - h) <= 0.2 * h:
                row.append(box)
                break
        else:
            rows.append([box])
    out = []
    for row in rows:
        widths = sorted(b[2] - b[0] for b in row)
        median = widths[len(widths) // 2]
        like = sorted((b for b in row if abs((b[2] - b[0]) - median) <= 0.2 * median), key=lambda b: b[0])
        if len(like) >= 7:
            out.append(like)
    return out


def _stacked(*rows: list) -> bool:
    """Whether rows of keys lie one under the next, a key's height (give or take half) apart."""
    for upper, lower in zip(rows, rows[1:]):
        h = upper[0][3] - upper[0][1]
        step = (lower[0][1] + lower[0][3]) / 2 - (upper[0][1] + upper[0][3]) / 2
        if not 0.8 * h <= step <= 1.8 * h:
            return False
    return True


def _space_bar(labels: np.ndarray, bottom: list) -> tuple[int, int, int, int] | None:
    """The wide key under the bottom letter row's middle (as tall as a letter key, three keys wide or more)."""
    from scipy import ndimage

    h = bottom[0][3] - bottom[0][1]
    key_w = bottom[0][2] - bottom[0][0]
    cx = (bottom[3][0] + bottom[3][2]) / 2  # under "v"
    y = int(bottom[3][3] + 0.6 * h)
    if y >= labels.shape[0]:
        return None
    for found in ndimage.find_objects(labels[y: y + h + 1]):
        if found is None:
            continue
        rows, cols = found
        if cols.start <= cx <= cols.stop and cols.stop - cols.start >= 3 * key_w:
            label = labels[y + rows.start, cols.start:cols.stop].max()
            full = ndimage.find_objects((labels == label).astype(np.int32))[0]
            if full is not None and abs((full[0].stop - full[0].start) - h) <= 0.25 * h:
                return full[1].start, full[0].start, full[1].stop, full[0].stop
    return None


def find_key(image: Image.Image, instruction: str) -> Box | None:
    """The box (normalized) of the keyboard key the instruction asks for, or None (no key asked for, no
    QWERTY keyboard on the screen)."""
    key = key_named(instruction)
    if key is None:
        return None
    box = find_keys(image).get(key)
    if box is None:
        return None
    width, height = image.size
    return box[0] / width, box[1] / height, box[2] / width, box[3] / height


__all__ = ["LETTER_ROWS", "SPACE", "find_key", "find_keys", "key_named"]
