"""The three-dots menu button ("the overflow menu", "more options", "the three dots button"), found by its
geometry.

Its dots are each smaller than the smallest icon-sized blob (icon_finder.SIZE_RANGE: a window's minimize
line), and lie apart, so neither the blob finder nor the icon recognizer ever sees the icon whole. Here
they are looked for as what they are: three small, round-ish marks of one size, in a line (down: ⋮,
across: ⋯), evenly spaced a little more than their size apart. An ellipsis in text ("Search...") is such
a line too; marks inside a text segment (icon_finder.text_boxes) are not taken.

Coordinates out are normalized to the image (DESIGN.md).
"""
from __future__ import annotations

import re
from typing import Sequence

from PIL import Image

Box = tuple[float, float, float, float]

# "the overflow menu", "more options", "the three dots button", "the kebab menu"
DOTS_WORDS = re.compile(r"\b(?:three[\s-]+dots?|3 dots|overflow|more options|more actions|kebab)\b|[⋮⋯]",
                        re.IGNORECASE)
DOT_SIZE = (2, 0.45)  # a dot's larger side: at least 2 pixels, at most this many text heights
DOT_STEP = 3.0  # the step between neighbouring dots' centres, in dot sizes, at most
ALIGN = 1.5  # pixels the three centres may stray from their line and from even steps


def names_three_dots(instruction: str) -> bool:
    """Whether the instruction asks for a three-dot menu button ("the overflow menu", "⋮")."""
    return bool(DOTS_WORDS.search(instruction))


def find_three_dots(image: Image.Image, lines: Sequence, unit: float) -> list[Box]:
    """The boxes (normalized) of the screen's three-dot buttons' dots, top to bottom."""
    from vlagent.grounding.controls import edge_components
    from vlagent.grounding.icon_finder import EDGE_CONTRAST, centre_inside, text_boxes

    _, shapes = edge_components(image, EDGE_CONTRAST)
    dots = [(x0, y0, x1, y1) for x0, y0, x1, y1 in shapes
            if DOT_SIZE[0] <= max(x1 - x0, y1 - y0) <= DOT_SIZE[1] * unit
            and max(x1 - x0, y1 - y0) <= 1.5 * min(x1 - x0, y1 - y0)]
    text = [box for box, _ in text_boxes(image, lines, unit)]
    width, height = image.size
    out = []
    for x0, y0, x1, y1 in _triples(dots):
        if not any(centre_inside((x0, y0, x1, y1), t) for t in text):
            out.append((x0 / width, y0 / height, x1 / width, y1 / height))
    return sorted(out, key=lambda b: (b[1], b[0]))


def _triples(dots: Sequence[tuple[int, int, int, int]]) -> list[tuple[int, int, int, int]]:
    """The bounding boxes of three dots of one size in a line, evenly spaced (each dot in one triple)."""
    centre = {d: ((d[0] + d[2]) / 2, (d[1] + d[3]) / 2) for d in dots}
    size = {d: max(d[2] - d[0], d[3] - d[1]) for d in dots}
    found, used = [], set()
    for along, across in ((1, 0), (0, 1)):  # a column (⋮), then a row (⋯)
        ordered = sorted(dots, key=lambda d: centre[d][along])
        for i, a in enumerate(ordered):
            if a in used:
                continue
            line = [a]
            for b in ordered[i + 1:]:
                step = centre[b][along] - centre[line[-1]][along]
                if step > DOT_STEP * size[a]:
                    break  # the rest lie farther along
                if abs(centre[b][across] - centre[a][across]) > ALIGN:
                    continue
                if b not in used and abs(size[b] - size[a]) <= ALIGN and 0 < step <= DOT_STEP * size[a]:
                    if len(line) == 1 or abs(step - (centre[line[1]][along] - centre[line[0]][along])) <= ALIGN:
                        line.append(b)
                if len(line) == 3:
                    break
            if len(line) == 3:
                used.update(line)
                found.append((min(d[0] for d in line), min(d[1] for d in line), max(d[2] for d in line),
                              max(d[3] for d in line)))
    return found


__all__ = ["DOTS_WORDS", "find_three_dots", "names_three_dots"]
