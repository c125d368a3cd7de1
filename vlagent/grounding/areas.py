"""The large area an instruction names: an editor's text area, a document's page, a drawing canvas.

"Type into the text area" in a text editor names the biggest thing on the screen, and the one with
nothing to read: no label, no outline the size of a field, often no text at all. The grounder's model,
trained on labelled controls, refuses it, and "click in the document" found the Document menu. Such an
area is a region of one flat colour, closed in by edges (the window's frame, a border, a toolbar), that
fills most of its bounding box once the letters written in it are filled in and holds nothing larger
than a line of text (a window's background holds buttons and fields) (`find_large_area`): the largest
one that is not the screen's own background (a region touching all four screen edges) is it. On a
screen with no such area the largest blank panel is taken (a file list, a web page's body).
Coordinates out are normalized to the image, as everywhere in vlagent (DESIGN.md).
"""
from __future__ import annotations

import re

import numpy as np
from PIL import Image

from vlagent.grounding.ocr import ScreenCache

Box = tuple[float, float, float, float]

# "the text area", "the editor", "the drawing canvas", "click in the document", "type into the page"
_AREA_WORDS = re.compile(r"\b(?:text ?area|textarea|(?:text )?editor(?: area| pane| window)?|edit(?:ing)? area"
                         r"|text view|writing area|document (?:area|body|pane|view|window|text area|page)"
                         r"|(?:drawing )?canvas|drawing area)\b"
                         r"|\b(?:in|into|inside|on) the (?:document|page|editor)\b", re.IGNORECASE)
# another kind of thing named beside the area's words ("the Editor tab", "the Canvas menu")
_OTHER_KIND = re.compile(r"\b(?:tab|menu|button|link|icon|checkbox|option|item|heading|title|label|tool)s?\b",
                         re.IGNORECASE)
FLAT_CONTRAST = 6  # grey levels (any channel) between neighbouring pixels inside one flat area, at most
MIN_HEIGHT = 5  # text heights: an area shorter than this is a field or a bar
MIN_WIDTH = 10  # text heights
MIN_SHARE = 0.05  # of the screen an area covers at least
MIN_FILL = 0.9  # of its bounding box an area fills, the letters in it filled in
HOLE_SIDE = 1.6  # text heights: a thing this large both ways inside an area is a control, not text

_SCREEN_AREAS = ScreenCache(4)


def names_large_area(instruction: str) -> bool:
    """Whether the instruction names a large area ("the text area", "click in the document") and no other
    kind of thing ("the Editor tab")."""
    from vlagent.model.grounder import unquoted

    words = unquoted(instruction)
    return bool(_AREA_WORDS.search(words)) and not _OTHER_KIND.search(_AREA_WORDS.sub(" ", words))


def find_large_area(image: Image.Image, unit: float) -> Box | None:
    """The box of the largest flat area closed in by edges (MIN_HEIGHT x MIN_WIDTH text heights, MIN_SHARE
    of the screen, MIN_FILL of its box), other than the screen's background; None where there is none."""
    return _SCREEN_AREAS.get(image, round(unit, 2), lambda: _find_large_area(image, unit))


def _find_large_area(image: Image.Image, unit: float) -> Box | None:
    from scipy import ndimage

    from vlagent.grounding.controls import colour_edges

    flat = ~colour_edges(image, FLAT_CONTRAST)
    labels, _ = ndimage.label(flat)  # 4-connected: a one-pixel border closes an area in
    width, height = image.size
    best, best_area = None, 0
    for index, found in enumerate(ndimage.find_objects(labels), start=1):
        if found is None:
            continue
        rows, cols = found
        w, h = cols.stop - cols.start, rows.stop - rows.start
        if h < MIN_HEIGHT * unit or w < MIN_WIDTH * unit or w * h < MIN_SHARE * width * height or w * h <= best_area:
            continue
        if rows.start == 0 and cols.start == 0 and rows.stop == height and cols.stop == width:
            continue  # the screen's own background (a desktop around the windows)
        own = labels[found] == index
        filled = ndimage.binary_fill_holes(own)
        if filled.mean() >= MIN_FILL and not _holds_controls(filled & ~own, unit):
            best, best_area = (cols.start / width, rows.start / height, cols.stop / width, rows.stop / height), w * h
    return best


def _holds_controls(holes: np.ndarray, unit: float) -> bool:
    """Whether any hole of an area (what is drawn in it) is more than HOLE_SIDE text heights both ways: a
    button, a field, a picture. Written lines are one text height tall, however long."""
    from scipy import ndimage

    labels, _ = ndimage.label(holes)
    return any(f is not None and f[0].stop - f[0].start > HOLE_SIDE * unit and f[1].stop - f[1].start > HOLE_SIDE * unit
               for f in ndimage.find_objects(labels))


__all__ = ["find_large_area", "names_large_area"]
