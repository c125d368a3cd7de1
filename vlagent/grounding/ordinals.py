"""Targets named by their place among their like: "the third option", "the second menu in the menu bar",
"the first button at the bottom of the dialog", "the eighth icon in the toolbar", "the fourth row",
"the last item in the list", "the page title", "close the dialog".

Such an instruction names no text, so neither text first nor the model's match with the screen's text
helps, and a pointer over 64-px cells cannot count. The screen's parts are easy to count, though, once
they are grouped the way the instruction means:

- menus: the topmost row of three or more short text segments starting in the left third (the menu
  bar), left to right;
- tabs: the topmost other row of two or more short text segments below the menu bar, left to right;
- dialog buttons: the lowest row of two or more short text segments below the screen's top 15 %,
  ending in its right half, left to right;
- options: the longest column of toggles (checkbox- or radio-sized outlines, controls.find_controls)
  with their labels just right of them, top to bottom (one alone is the first);
- rows, items in a list: the longest column of three or more left-aligned text segments, top to
  bottom, one starting left of the right third first (a column of links down the right edge is a
  sidebar);
- toolbar icons and buttons: the longest row of three or more icon-sized blobs (icon_finder.icon_boxes)
  starting in the left half, left to right;
- the page title: the largest text segment of the upper half (height times width per character) outside
  the menu or navigation bar (the site's name);
- close: the last of a window's or a dialog's controls: a row of two or three blobs of a size in the
  right half of the upper two thirds, the last shaped like the theme's close icon; the lowest such row
  (a dialog over its window).

An instruction with words besides the place and its setting ("the Save button in the first row", "the
second menu item") names something else and is not taken for a place.

A place past the end of its group ("the ninth tab" of three) is "not found". Rows and columns are
measured in the screen's text height (controls.text_height); coordinates out are normalized to the
image, as everywhere in vlagent (DESIGN.md).
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Sequence

import numpy as np
from PIL import Image

Box = tuple[float, float, float, float]

ORDINALS = {word: i for i, word in enumerate(
    "first second third fourth fifth sixth seventh eighth ninth tenth eleventh twelfth".split())}
ORDINALS["last"] = -1

MENU, TAB, OPTION, DIALOG_BUTTON, LIST_ROW, TOOLBAR, TITLE, CLOSE = (
    "menu", "tab", "option", "dialog button", "list row", "toolbar", "title", "close")

_ORDINAL = "|".join(ORDINALS)
_PLACE = re.compile(rf"\b(?P<nth>{_ORDINAL})\s+(?P<toolbar>toolbar\s+)?(?P<kind>menu|tab|option|button|row|item|icon)s?\b",
                    re.IGNORECASE)
_BOTTOM_RIGHT = re.compile(r"\bbutton at the bottom right\b", re.IGNORECASE)
_TITLE = re.compile(r"^\s*(?:click\s+)?the (?:page|window|dialog) title\s*$", re.IGNORECASE)
_CLOSE = re.compile(r"^\s*(?:click\s+)?(?:close the (?:dialog|window)|the close button of the (?:dialog|window)"
                    r"|the (?:x|×) at the top right of the (?:dialog|window))\s*$", re.IGNORECASE)
LABEL_GAP = 0.5  # text heights of blank columns between two labels of one OCR line; a space is about 0.2
LABEL_INK = 16  # grey levels between neighbouring pixels that are ink
ICON_PIECES_GAP = 0.3  # text heights between blobs that are pieces of one icon; toolbar buttons lie further apart
_SHORT_WORDS, _SHORT_CHARS = 3, 24  # a menu, a tab, a button: a few words
_WORD = re.compile(r"\w+")
# What may stand around a place phrasing ("click the first button at the bottom of the dialog"); any other
# word names something ("the Save button in the first row", "the second menu item").
_PLACE_WORDS = frozenset("""the a click tap press select choose open pick in at of on from bar menu list dialog
window toolbar tool bottom top right left screen page navigation app""".split())


@dataclass(frozen=True)
class Place:
    group: str  # MENU, TAB, ...
    index: int  # 0-based; -1 for the last


def parse_place(instruction: str) -> Place | None:
    """What group and which member an instruction names by place, or None when it names no place."""
    if _TITLE.match(instruction):
        return Place(TITLE, 0)
    if _CLOSE.match(instruction):
        return Place(CLOSE, -1)
    if _BOTTOM_RIGHT.search(instruction):
        return Place(DIALOG_BUTTON, -1)
    found = _PLACE.search(instruction)
    if found is None or (found.start() > 0 and found["nth"][0].isupper()):
        return None  # "the First icon" names go-first's icon, "the first icon" a place
    rest = _WORD.findall((instruction[:found.start()] + " " + instruction[found.end():]).lower())
    if any(word not in _PLACE_WORDS for word in rest):
        return None  # "the Save button in the first row", "the second menu item": something else is named
    index, kind = ORDINALS[found["nth"].lower()], found["kind"].lower()
    rest = instruction.lower()
    if found["toolbar"] or kind == "icon" or "toolbar" in rest:
        return Place(TOOLBAR, index)
    if kind == "menu":
        return Place(MENU, index)
    if kind == "tab":
        return Place(TAB, index)
    if kind == "option":
        return Place(OPTION, index)
    if kind == "button":
        return Place(DIALOG_BUTTON, index) if ("dialog" in rest or "bottom" in rest) else None
    return Place(LIST_ROW, index)  # row, item


def find_place(image: Image.Image, instruction: str, lines: Sequence) -> tuple[Box | None, bool]:
    """(box, named): the box (normalized) of the member the instruction names by place, and whether it
    names one at all. (None, True): it names a place the screen does not have ("the fifth tab" of three,
    no menu bar). (None, False): no place named."""
    place = parse_place(instruction)
    if place is None:
        return None, False
    from vlagent.grounding.controls import text_height

    unit = text_height(lines, image.size)
    members = _group(place.group, image, lines, unit, place.index)
    if not members or not (-len(members) <= place.index < len(members)):
        return None, True
    width, height = image.size
    x0, y0, x1, y1 = members[place.index]
    return (x0 / width, y0 / height, x1 / width, y1 / height), True


# ---------------------------------------------------------------------------------------------- groups


def _group(kind: str, image: Image.Image, lines: Sequence, unit: float, index: int = 0
           ) -> list[tuple[float, float, float, float]]:  # fmt: skip
    """The members of the group `kind`, in reading order (pixel boxes); `index` is the member asked for
    (a group of tabs has that many)."""
    from vlagent.grounding.controls import pixel_box
    from vlagent.grounding.icon_finder import centre_inside, icon_boxes, joined_across, text_boxes

    width, height = image.size
    # one character is more often OCR reading an icon ("6", "口") than a label, and so is a toolbar read
    # as letters
    written = text_boxes(image, lines, unit)
    segments = [box for box, _ in written]
    if kind in (MENU, TAB, DIALOG_BUTTON, TITLE):
        rows, menu_bar = _label_rows(image, written, unit)
        if kind == TITLE:
            # the largest text of the upper half (its height times its width per character: OCR's boxes
            # are a few pixels off, a button's reach its edges), not the site's name in its navigation bar
            upper = [(box, text) for box, text in written if box[3] <= height / 2
                     and not any(centre_inside(label, box) for label in menu_bar or ())]
            return [max(upper, key=lambda w: ((w[0][3] - w[0][1]) * (w[0][2] - w[0][0]) / len(w[1]), -w[0][1]))[0]
                    ] if upper else []
        if kind == MENU:
            return menu_bar or []
        if kind == TAB:
            below = menu_bar[0][3] if menu_bar else 0.0
            # tabs are evenly spaced: a sidebar's label or an open menu's item on their row is not a tab; of
            # the first row with evenly spaced labels as many as the instruction counts, the longest run
            for row in rows:
                pieces = [piece for piece in _even_gaps(row, unit) if len(piece) >= max(2, index + 1)]
                if row is not menu_bar and row[0][1] >= below and pieces:
                    return max(pieces, key=len)
            return []
        # the buttons of a dialog end its content, right-aligned: not a bar along the top, not a left nav bar
        lower = [r for r in rows if r is not menu_bar and r[0][1] > 0.15 * height and r[-1][2] > width / 2]
        return lower[-1] if lower else []
    if kind == LIST_ROW:
        columns = [c for c in _columns(segments, unit, key=lambda b: b[0]) if len(c) >= 3]
        # the list is the page's content, not a column of links down its right edge beside it
        content = [c for c in columns if c[0][0] < 2 * width / 3]
        return max(content or columns, key=len, default=[])
    if kind == OPTION:
        from vlagent.grounding.controls import TOGGLE, find_controls

        # an option is a toggle with its label just right of it (a window's maximize square has none); OCR
        # may read the toggle into the label ("OMittel"); a label may be one character ("中")
        labels = [pixel_box(ln.box, image.size) for ln in lines if any(ch.isalnum() for ch in ln.text)]
        toggles = [c.box for c in find_controls(image, unit) if c.kind == TOGGLE
                   and any(_overlap(c.box, b) and c.box[0] - unit <= b[0] <= c.box[2] + 2 * unit
                           and b[2] > c.box[2] + unit for b in labels)]
        # a radio button's ring and the dot's outline inside it are one toggle
        toggles = [t for t in toggles if not any(o != t and _inside(t, o) for o in toggles)]
        return max(_columns(toggles, unit, key=lambda b: (b[0] + b[2]) / 2), key=len, default=[])
    blobs = icon_boxes(image, lines, unit)
    if kind == TOOLBAR:
        # a toolbar starts on the left; the three blobs at the top right are the window's controls
        # the pieces of one icon (a pause icon's two bars, an upload icon's arrow and tray) count once
        rows = [joined_across(r, ICON_PIECES_GAP * unit) for r in _rows(blobs, unit, max_gap=3 * unit)]
        rows = [r for r in rows if len(r) >= 3 and r[0][0] < width / 2]
        return max(rows, key=len, default=[])
    if kind == CLOSE:
        return _window_controls(blobs, unit, image)
    return []


def _label_rows(image: Image.Image, written: Sequence[tuple[Box, str]], unit: float) -> tuple[list[list], list | None]:
    """The rows of two or more short labels (_labels_of), top to bottom, and the menu bar among them: the
    topmost of three or more starting in the left third (or None)."""
    # OCR reads a small menu bar ("Ver Insertar Archivo Ayuda") or a row of buttons as one line: its
    # labels lie further apart than words
    short = [piece for box, text in written for piece in _labels_of(image, box, text, unit)]
    rows = [r for r in _rows(short, unit, max_gap=4 * unit) if len(r) >= 2]
    return rows, next((r for r in rows if len(r) >= 3 and r[0][0] < image.size[0] / 3), None)


def _labels_of(image: Image.Image, box: Box, text: str, unit: float) -> list[Box]:
    """The short labels (a few words, _SHORT_WORDS, _SHORT_CHARS) in one text segment (pixel box): the
    segment cut where LABEL_GAP text heights (or heights of its own line, if taller) or more of its columns
    have no ink, where each piece has about
    as few words (a menu bar's "Edit Format"); the segment itself where it is one short label."""
    from vlagent.grounding.controls import colour_edges

    words = text.split()
    x0, y0, x1, y1 = (int(round(v)) for v in box)
    if len(words) >= 2 and x1 - x0 > 1 and y1 - y0 > 1:
        inked = colour_edges(image.crop((x0, y0, x1, y1)), LABEL_INK).any(axis=0)
        pieces, start, blank = [], None, 0
        for x, ink in enumerate(inked):
            if ink:
                if start is not None and blank >= LABEL_GAP * max(unit, y1 - y0):  # a heading's spaces are wide
                    pieces.append((x0 + start, y0, x0 + x - blank, y1))
                    start = None
                if start is None:
                    start = x
                blank = 0
            else:
                blank += 1
        if start is not None:
            pieces.append((x0 + start, y0, x0 + len(inked) - blank, y1))
        if 2 <= len(pieces) <= len(words) and len(words) / len(pieces) <= _SHORT_WORDS \
                and len(text) / len(pieces) <= _SHORT_CHARS:
            return pieces
    return [box] if len(words) <= _SHORT_WORDS and len(text) <= _SHORT_CHARS else []


def _window_controls(blobs: Sequence, unit: float, image: Image.Image) -> list:
    """A window's or a dialog's controls (minimize, maximize, close): a row of two or three blobs of a
    size, close together, in the right half of the upper two thirds, the last of them shaped like the
    theme's close icon where a theme is installed. Of several such rows (a dialog over its window), the
    lowest: the dialog's."""
    width, height = image.size
    rows = [r for r in _rows(blobs, unit, max_gap=2 * unit) if 2 <= len(r) <= 3 and r[-1][0] > width / 2
            and r[0][1] < 2 * height / 3 and max(b[2] - b[0] for b in r) <= 2 * min(b[2] - b[0] for b in r) + 2]
    if not rows:
        return []
    rgb = np.asarray(image.convert("RGB"))
    rows = [r for r in rows if _close_score(rgb, r[-1]) >= CLOSE_SHAPE]
    return rows[-1] if rows else []


CLOSE_SHAPE = 0.5  # correlation with the theme's close icons that a close button reaches


def _close_score(rgb: np.ndarray, box) -> float:
    """How much the blob at `box` looks like the theme's close icons (an X); 1 where no theme is installed."""
    from vlagent.grounding.icon_finder import IconCandidate, similarity, theme_library

    library = theme_library()
    rows = np.flatnonzero(np.isin(np.array(library.names), ("window-close", "process-stop"))) if library else []
    if len(rows) == 0:
        return 1.0
    return float(similarity(IconCandidate.cut(rgb, tuple(int(v) for v in box)), library, rows).max())


def _rows(boxes: Sequence, unit: float, max_gap: float) -> list[list]:
    """Boxes sharing half their height with a row's first box (_overlap), cut where the horizontal gap
    exceeds max_gap; each row left to right, rows top to bottom."""
    rows: list[list] = []
    for box in sorted(boxes, key=lambda b: ((b[1] + b[3]) / 2, b[0])):
        for row in rows:
            if _overlap(row[0], box):
                row.append(box)
                break
        else:
            rows.append([box])
    out = []
    for row in rows:
        row.sort(key=lambda b: b[0])
        run = [row[0]]
        for box in row[1:]:
            if box[0] - run[-1][2] > max_gap:
                out.append(run)
                run = []
            run.append(box)
        out.append(run)
    return sorted(out, key=lambda r: (min(b[1] for b in r), r[0][0]))


def _inside(inner: Sequence[float], outer: Sequence[float]) -> bool:
    return outer[0] <= inner[0] and outer[1] <= inner[1] and inner[2] <= outer[2] and inner[3] <= outer[3]


def _overlap(a: Sequence[float], b: Sequence[float]) -> bool:
    """Whether two boxes share at least half of the lower one's height: they sit on one row (a label with
    a descender, "Privacy", reaches lower than "Files" beside it)."""
    shared = min(a[3], b[3]) - max(a[1], b[1])
    return shared >= 0.5 * min(a[3] - a[1], b[3] - b[1])


def _columns(boxes: Sequence, unit: float, key) -> list[list]:
    """Boxes whose `key` (a left edge, a centre) lies within half a text height of each other, cut where
    the vertical gap exceeds four text heights (a list row is often three text heights tall) or the
    spacing changes (_evenly_spaced); each column top
    to bottom."""
    columns: list[list] = []
    for box in sorted(boxes, key=lambda b: (b[1], b[0])):
        for column in columns:
            if abs(key(column[-1]) - key(box)) <= 0.5 * unit and box[1] - column[-1][3] <= 4 * unit:
                column.append(box)
                break
        else:
            columns.append([box])
    return [piece for column in columns for piece in _evenly_spaced(column)]


def _even_gaps(row: list, unit: float) -> list[list]:
    """A row cut where the gap to the next box strays from the row's smallest gap by more than half of it
    (and a quarter text height): a tab row's labels are padded alike, the sidebar entry left of them is
    not. The smallest gap counts as at least 0.75 text heights: OCR's boxes are a few pixels off, and
    tabs are padded wider than that."""
    if len(row) < 3:
        return [row]
    gaps = [b[0] - a[2] for a, b in zip(row, row[1:])]
    smallest = max(min(gaps), 0.75 * unit)
    pieces, piece = [], [row[0]]
    for box, gap in zip(row[1:], gaps):
        if gap - smallest > 0.5 * smallest + 0.25 * unit:
            pieces.append(piece)
            piece = []
        piece.append(box)
    pieces.append(piece)
    return pieces


def _evenly_spaced(column: list) -> list[list]:
    """A column cut where the step between neighbours' centres strays more than a third from the column's
    median step: a list's rows are evenly spaced, the toolbar above it or a form's label below is not.
    The first and the last step are cut at a fifth more than the median: a list's heading sits a little
    further above its first row ("LIST (50 ITEMS)", 1.3 steps above "Item 01"), never closer."""
    if len(column) < 3:
        return [column]
    centres = [(b[1] + b[3]) / 2 for b in column]
    steps = [b - a for a, b in zip(centres, centres[1:])]
    median = sorted(steps)[len(steps) // 2]
    if median <= 0:
        return [column]
    pieces, piece = [], [column[0]]
    for i, (box, step) in enumerate(zip(column[1:], steps)):
        at_an_end = len(steps) >= 4 and i in (0, len(steps) - 1)
        if abs(step - median) > median / 3 or (at_an_end and step > median * 1.2):
            pieces.append(piece)
            piece = []
        piece.append(box)
    pieces.append(piece)
    return pieces


__all__ = ["Place", "find_place", "parse_place"]
