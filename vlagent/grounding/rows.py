"""Targets told apart by their row: "the Delete button in the row with alice", "the checkbox next to
linus", "the email address of marie".

A table or a list repeats its controls on every row (a checkbox, an Edit link, a trash icon); what tells
them apart is what else is written on the row. `row_instruction` splits such an instruction into the
target ("the Delete button") and the anchor, text written on the row ("alice"). `find_on_row` finds the
anchor's rows among the screen's text and, on each, the target, in turn as:

1. a control of the kind named (a checkbox, a field, a radio button; vlagent.grounding.controls) whose
   centre lies on the row, the nearest to the anchor;
2. a cell under a column heading that reads the target's name ("the email address of marie": the text on
   marie's row under EMAIL ADDRESS; "the staff status of alan": the icon there, found as ink);
3. text on the row reading the target's name ("Edit"), other than the anchor, the nearest to it;
4. whatever the caller's `look` finds on a copy of the screen where all but the row is painted over (an
   icon by its look, through the grounder's own rules); not for "X of A" or "A's X", which name a cell,
   nor where the anchor is on more than LOOKED_ROWS rows.

A row is the anchor's line, ROW_REACH of its heights above and below its centre; of what lies there, what
lies on the line nearest the anchor counts (a tight list's next row reaches in), and "right of"/"left of"
keep to that side. An anchor that is a place or an ordinal ("in the first row", "at the end of the row")
names no text: such instructions are left to the place rules. Instructions that say
"row" (or "line") are strict: where the anchor is written on no row, or on several whose target differs,
or the target is on none of its rows, the answer is "not found" with why. Looser ones ("next to", "beside",
"for", "right of", "of") are answered only where exactly one row holds the target; otherwise the caller
goes on as if no row was named ("the checkbox next to Remember me" is also a label's toggle).

Coordinates in and out are normalized to the image, as everywhere in vlagent (DESIGN.md).
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np
from PIL import Image

Box = tuple[float, float, float, float]

ROW_REACH = 1.1  # anchor line heights above and below its centre that a target's centre may lie
NEXT_LINE = 0.5  # anchor line heights: a candidate this much farther off the anchor's line than the nearest
#                    is on the next line
MASK_REACH = 1.8  # anchor line heights kept above and below its centre when all but the row is painted over
CELL_PAD = 0.5  # text heights a column reaches past its heading's end where no heading is beside it
INK_CONTRAST = 40  # grey levels off the row's background that count as something drawn in a cell
LOOKED_ROWS = 6  # rows at most on which the caller's grounding is asked (each look costs it a screen)
ANCHOR_WORDS_DROPPED = 3  # leading words of an anchor dropped in turn where it is not written as given

_RELATION_WORDS = r"(?:with|of|for|containing|contains|that (?:says|has|reads|contains|shows)|showing|reading" \
                  r"|labell?ed|named|called|where)"
# (pattern, strict, column first): the target is group "t", the anchor group "a"
_PATTERNS: tuple[tuple[re.Pattern, bool, bool], ...] = tuple(
    (re.compile(pattern, re.IGNORECASE), strict, column) for pattern, strict, column in (
        (rf"^(?P<t>.+?)\s+(?:in|on|from|at)\s+the\s+(?:row|line|entry)\s+{_RELATION_WORDS}\s+(?:the\s+)?(?P<a>.+)$",
         True, False),
        (r"^(?P<t>.+?)\s+(?:in|on|from|at)\s+the\s+same\s+(?:row|line)\s+as\s+(?P<a>.+)$", True, False),
        (r"^(?P<t>.+?)\s+(?:in|on|from|at)\s+(?P<a>.+?)(?:'s|’s|')\s+(?:row|line|entry)$", True, False),
        (r"^(?P<t>.+?)\s+(?:in|on|from|at)\s+the\s+(?P<a>.+?)\s+(?:row|line)$", True, False),
        (r"^(?P<t>.+?)\s+(?:next to|beside|alongside)\s+(?P<a>.+)$", False, False),
        (r"^(?P<t>.+?)\s+(?:(?:to|on)\s+the\s+)?(?P<side>right|left)\s+of\s+(?P<a>.+)$", False, False),
        (r"^(?P<t>.+?)\s+for\s+(?P<a>.+)$", False, False),
        (r"^(?P<t>.+?)\s+of\s+(?P<a>.+)$", False, True),
        (r"^(?:\s*(?:click|tap|press|read|select|check|tick|uncheck|untick|open)\s+)?(?P<a>[^'’\s][^'’]*?)(?:'s|’s)\s+"
         r"(?P<t>.+)$", False, True),
    ))  # fmt: skip
# a target that is itself a place ("the top of the page", "the left of the window") names no row's cell
_PLACE_TARGET = re.compile(r"\b(?:top|bottom|left|right|middle|centre|center|end|start|rest|edge|side|corner|half|"
                           r"part|list|table|page|window|screen|dialog)$", re.IGNORECASE)
# an anchor of these words alone is a place among rows, not text on one ("the checkbox in the first row",
# "the Edit button at the end of the row", "the text in the status line"): left to the place rules
_NOT_ANCHOR_WORDS = frozenset("""first second third fourth fifth sixth seventh eighth ninth tenth last next
previous same top bottom middle selected current highlighted header heading status command new empty blank
following above below end start right left this that each every other 1st 2nd 3rd nth""".split())
_STOP_WORDS = frozenset("a an the of to in on at for with and or by".split())
_QUOTES = "'\"‘’“”«»"
_QUOTED = re.compile(r"(?<!\w)['\"‘“«][^'\"’”»]+['\"’”»](?!\w)")


@dataclass(frozen=True)
class RowInstruction:
    """An instruction split into what to find and the text written on its row."""

    target: str  # "the Delete button"
    anchor: str  # "alice"
    strict: bool  # the instruction says "row": the row is meant whatever else the screen shows
    column_first: bool  # "the email of marie": a column's cell before a text of that name on the row
    side: str | None = None  # "right" or "left": "the checkbox to the right of Bold" lies right of the anchor


def row_instruction(instruction: str) -> RowInstruction | None:
    """The instruction as a target on the row of an anchor, or None where it names no row."""
    text = " ".join(instruction.split()).rstrip(".?!")
    quoted = [m.span() for m in _QUOTED.finditer(text)]
    for pattern, strict, column in _PATTERNS:
        match = pattern.match(text)
        if match is None or any(start < match.end("t") < end or start < match.start("a") < end
                                for start, end in quoted):  # "the 'Name for a file' field" names no row
            continue
        target, anchor = match.group("t").strip(), match.group("a").strip().strip(_QUOTES).strip()
        if not _names_text(anchor) or not re.search(r"\w", target) or _PLACE_TARGET.search(target):
            continue
        side = match.groupdict().get("side")
        return RowInstruction(target, anchor, strict, column, side.lower() if side else None)
    return None


def _names_text(anchor: str) -> bool:
    """Whether an anchor can be text written on a row: a word outside _STOP_WORDS of 2 characters or more,
    not all of them place or ordinal words, no "of the" inside ("the end of the row")."""
    words = [w.lower() for w in re.findall(r"\w+", anchor)]
    named = [w for w in words if w not in _STOP_WORDS and len(w) >= 2]
    return bool(named) and not all(w in _NOT_ANCHOR_WORDS for w in named) and not re.search(
        r"\bof the\b|\bthe$", anchor, re.IGNORECASE)


_VERB = re.compile(r"^(?:please\s+)?(?:click|tap|press|hit|select|choose|check|tick|uncheck|untick|toggle|open|"
                   r"read|type|enter)\s+(?:on\s+)?", re.IGNORECASE)


def _without_verb(target: str) -> str:
    return _VERB.sub("", target)


def _named(target: str) -> str:
    """The target as a reason names it: "click the Delete button" -> "Delete button"."""
    return re.sub(r"^(?:the|a|an)\s+", "", _without_verb(target), flags=re.IGNORECASE)


@dataclass(frozen=True)
class RowAnswer:
    box: Box | None  # the target's box, or None where it was not found
    how: str  # what found it, or why nothing was


Look = Callable[[Image.Image, str, list], "Box | None"]


def find_on_row(image: Image.Image, row: RowInstruction, lines: Sequence, look: Look | None = None
                ) -> RowAnswer | None:  # fmt: skip
    """The target on the anchor's row (see the module's docstring), a strict instruction's "not found"
    with why, or None where a loose instruction's row does not settle it. `lines`: the screen's text
    segments (TextLine: text, normalized box). `look(masked_image, target, row_lines)`: the caller's
    own grounding, asked on a copy of the screen showing only the row."""
    from vlagent.grounding.controls import text_height

    rows = anchor_rows(row.anchor, lines)
    if not rows:
        return RowAnswer(None, f"{row.anchor!r} is not written on this screen") if row.strict else None
    unit = text_height(lines, image.size)
    if row.column_first or len(rows) > LOOKED_ROWS:
        look = None  # "the name of the file" is no icon to look for on the File menu's row
    found: list[tuple[Box, str]] = []
    for anchor in rows:
        answer = _target_on_row(image, row, anchor, lines, unit, look)
        if answer is not None and all(_centre(answer[0]) != _centre(f[0]) for f in found):
            found.append(answer)
    if len(found) == 1:
        return RowAnswer(*found[0])
    if not row.strict:
        return None
    if not found:
        return RowAnswer(None, f"no {_named(row.target)} on the row of {row.anchor!r}")
    return RowAnswer(None, f"{row.anchor!r} is written on {len(found)} rows, each with {_named(row.target)!r}: "
                           f"say which (a longer anchor, or a place)")


def anchor_rows(anchor: str, lines: Sequence) -> list[Box]:
    """The anchor's places, one per row (the first found on each): lines or runs of words reading it (case
    and punctuation aside), else its words written apart on one row ("Katherine Johnson" in two cells),
    else, where neither, the same with up to ANCHOR_WORDS_DROPPED leading words dropped ("the user
    grace" -> "grace"), else a place OCR read with a slip (model.grounder.near_text)."""
    from vlagent.model.grounder import near_text, written_places

    words = anchor.split()
    for dropped in range(min(ANCHOR_WORDS_DROPPED, len(words) - 1) + 1):
        rest = " ".join(words[dropped:])
        if dropped and (rest.lower() in {"row", "line", "entry", "item"} or not _names_text(rest)):
            break
        quoted = f'"{rest}"' if '"' not in rest else f"“{rest}”"  # 27" Monitor
        places = written_places(quoted, lines) or _words_on_one_row(rest, lines)
        if places:
            return _one_per_row(places)
    near = near_text([anchor], lines)
    return [near] if near is not None else []


def _words_on_one_row(anchor: str, lines: Sequence) -> list[Box]:
    """Boxes spanning the anchor's words where each is written as a segment's word on one row, in order."""
    from vlagent.model.grounder import _fold

    wanted = [_fold(w) for w in anchor.split() if _fold(w)]
    if len(wanted) < 2:
        return []
    out = []
    for first in lines:
        if wanted[0] not in (_fold(w) for w in first.text.split()):
            continue
        on_row = sorted((ln for ln in lines if _same_row(ln.box, first.box, ROW_REACH)), key=lambda ln: ln.box[0])
        words = [(_fold(w), ln.box) for ln in on_row if ln.box[0] >= first.box[0] for w in ln.text.split()]
        boxes, i = [], 0
        for word, box in words:
            if i < len(wanted) and word == wanted[i]:
                boxes.append(box)
                i += 1
        if i == len(wanted):
            out.append((min(b[0] for b in boxes), min(b[1] for b in boxes),
                        max(b[2] for b in boxes), max(b[3] for b in boxes)))
    return out


def _one_per_row(places: Sequence[Box]) -> list[Box]:
    rows: list[Box] = []
    for box in places:
        if not any(_same_row(box, kept, ROW_REACH) for kept in rows):
            rows.append(tuple(box))
    return rows


def _same_row(box: Sequence[float], anchor: Sequence[float], reach: float) -> bool:
    """Whether a box's centre lies within `reach` anchor heights of the anchor's centre, up or down."""
    half = reach * (anchor[3] - anchor[1])
    return abs((box[1] + box[3]) / 2 - (anchor[1] + anchor[3]) / 2) <= half


def _nearest_line(boxes: Sequence[Box], anchor: Box, on_its_line: bool = False) -> list[Box]:
    """Of boxes on the anchor's row, those on the line nearest its centre (within NEXT_LINE of its heights
    of the nearest): in a tight list OCR's boxes are as tall as the rows, and the next row's cells reach
    into ROW_REACH too. on_its_line: text, which shares the anchor's line, lies within NEXT_LINE of its
    centre itself (a row with nothing in a column does not borrow the next row's cell)."""
    cy, height = (anchor[1] + anchor[3]) / 2, anchor[3] - anchor[1]
    away = [abs((b[1] + b[3]) / 2 - cy) for b in boxes]
    nearest = 0.0 if on_its_line else min(away, default=0.0)
    return [b for b, d in zip(boxes, away) if d <= nearest + NEXT_LINE * height]


def _on_side(boxes: Sequence[Box], anchor: Box, side: str | None) -> list[Box]:
    """The boxes whose centre lies on the named side of the anchor ("right", "left"); all where none is named."""
    if side is None:
        return list(boxes)
    if side == "right":
        return [b for b in boxes if (b[0] + b[2]) / 2 > anchor[2]]
    return [b for b in boxes if (b[0] + b[2]) / 2 < anchor[0]]


def _centre(box: Sequence[float]) -> tuple[float, float]:
    return round((box[0] + box[2]) / 2, 4), round((box[1] + box[3]) / 2, 4)


def _gap(box: Sequence[float], anchor: Sequence[float]) -> float:
    """Horizontal distance between two boxes (0 where they overlap)."""
    return max(box[0] - anchor[2], anchor[0] - box[2], 0.0)


def _target_on_row(image: Image.Image, row: RowInstruction, anchor: Box, lines: Sequence, unit: float,
                   look: Look | None) -> tuple[Box, str] | None:  # fmt: skip
    from vlagent.grounding.controls import control_kind

    kind = control_kind(row.target)
    if kind is not None:
        box = _control_on_row(image, kind, row, anchor, lines, unit)
        return (box, f"{kind} on the row") if box is not None else None
    steps = (_cell, _text_on_row) if row.column_first else (_text_on_row, _cell)
    for step in steps:
        box = step(image, row, anchor, lines, unit)
        if box is not None:
            return box, ("cell under its heading" if step is _cell else "text on the row")
    if look is not None:
        box = _look_on_row(image, row.target, anchor, lines, look)
        if box is not None and _on_side([box], anchor, row.side):
            return box, "found on the row alone"
    return None


def _control_on_row(image: Image.Image, kind: str, row: RowInstruction, anchor: Box, lines: Sequence, unit: float
                    ) -> Box | None:  # fmt: skip
    """The control of the kind on the row nearest the anchor; in the column whose heading reads the target's
    name where there is one ("the Paid checkbox of Linus"). A toggle has no text inside it (a button's
    outline or a letter's loop is no checkbox)."""
    from vlagent.grounding.controls import FIELD, SLIDER, find_controls, find_sliders
    from vlagent.model.grounder import _fold

    width, height = image.size
    controls = find_sliders(image, unit) if kind == SLIDER else [c for c in find_controls(image, unit)
                                                                if c.kind == kind]
    boxes = [(c.box[0] / width, c.box[1] / height, c.box[2] / width, c.box[3] / height) for c in controls]
    target = row.target
    on_row = _on_side([b for b in boxes if _same_row(b, anchor, ROW_REACH)], anchor, row.side)
    if kind != FIELD:  # OCR may read a checkbox itself as one character ("口"): that is no text on it
        on_row = [b for b in on_row if not any(_overlaps(b, ln.box) and len(_fold(ln.text)) > 1 for ln in lines)]
    column = _column(target, anchor, lines, unit / width)
    if column is not None:
        on_row = [b for b in on_row if column[0] <= _centre(b)[0] <= column[1]]
    shape = True if _SQUARE.search(target) else False if _ROUND.search(target) else None
    if shape is not None:  # a checkbox, not the status dot beside it; a radio button, not a checkbox
        on_row = [b for b in on_row if _square(image, b) == shape] or on_row
    return min(_nearest_line(on_row, anchor), key=lambda b: _gap(b, anchor), default=None)


_SQUARE = re.compile(r"\b(?:check ?box|tick ?box)(?:es)?\b", re.IGNORECASE)
_ROUND = re.compile(r"\b(?:radio|circle)\b", re.IGNORECASE)
CORNER = 0.15  # of a toggle's side: a square's outline reaches into each corner this large, a circle's not


def _square(image: Image.Image, box: Box) -> bool:
    """Whether a toggle's outline (normalized box) reaches into at least 3 of its box's corners (a
    checkbox, its corners rounded or not) rather than none (a radio button, a status dot)."""
    from vlagent.grounding.controls import EDGE_CONTRAST

    width, height = image.size
    x0, y0 = int(box[0] * width), int(box[1] * height)
    x1, y1 = max(x0 + 2, round(box[2] * width)), max(y0 + 2, round(box[3] * height))
    grey = np.asarray(image.crop((max(0, x0 - 1), max(0, y0 - 1), x1 + 1, y1 + 1)).convert("L"), dtype=np.int16)
    edges = np.zeros(grey.shape, dtype=bool)  # a pixel on either side of a step
    step_x, step_y = np.abs(np.diff(grey, axis=1)) > EDGE_CONTRAST, np.abs(np.diff(grey, axis=0)) > EDGE_CONTRAST
    edges[:, :-1] |= step_x
    edges[:, 1:] |= step_x
    edges[:-1] |= step_y
    edges[1:] |= step_y
    edges = edges[1:-1, 1:-1]
    c = max(1, round(CORNER * min(edges.shape)))
    corners = (edges[:c, :c], edges[:c, -c:], edges[-c:, :c], edges[-c:, -c:])
    return sum(bool(corner.any()) for corner in corners) >= 3


def _text_on_row(image: Image.Image, row: RowInstruction, anchor: Box, lines: Sequence, unit: float) -> Box | None:
    """The place on the row reading the target's name, other than the anchor's, the nearest to it."""
    from vlagent.model.grounder import written_places

    places = [p for p in written_places(row.target, [ln for ln in lines if _same_row(ln.box, anchor, ROW_REACH)])
              if not _overlaps(p, anchor)]
    places = _on_side(_nearest_line(places, anchor, on_its_line=True), anchor, row.side)
    return min(places, key=lambda b: _gap(b, anchor), default=None)


def _overlaps(a: Sequence[float], b: Sequence[float]) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def _column(target: str, anchor: Box, lines: Sequence, pad: float) -> tuple[float, float] | None:
    """The left and right ends (normalized) of the column whose heading reads the target's name: the one
    place above the anchor's row, with other headings beside it, that reads it, else that reads a run of its
    words ("the Modified time of mp.log": Modified), reaching halfway to the headings beside it
    (CELL_PAD text heights, `pad` normalized, past an end with none); None where no one place reads it."""
    from vlagent.model.grounder import instruction_query, written_places

    above = [ln for ln in lines if ln.box[3] <= anchor[1]]

    def beside(heading: Box) -> list[Box]:
        return [ln.box for ln in above if _same_row(ln.box, heading, 0.5) and not _overlaps(ln.box, heading)]

    headings = [h for h in written_places(target, above) if beside(h)]
    words = instruction_query(target).split()
    for size in range(len(words) - 1, 0, -1):  # runs of the name's words, the longest first
        if len(headings) == 1:
            break
        runs = [" ".join(words[i:i + size]) for i in range(len(words) - size + 1)]
        found = [[h for h in written_places(f'"{run}"', above) if beside(h)] for run in runs]
        headings = next((places for places in found if len(places) == 1), [])
    if len(headings) != 1:
        return None
    heading = headings[0]
    others = beside(heading)
    left = max((b[2] for b in others if b[2] <= heading[0]), default=None)
    right = min((b[0] for b in others if b[0] >= heading[2]), default=None)
    x0 = (left + heading[0]) / 2 if left is not None else heading[0] - CELL_PAD * pad
    x1 = (heading[2] + right) / 2 if right is not None else heading[2] + CELL_PAD * pad
    return x0, x1


def _cell(image: Image.Image, row: RowInstruction, anchor: Box, lines: Sequence, unit: float) -> Box | None:
    """The cell on the anchor's row in the column whose heading reads the target's name (_column): the text
    there, else the ink there (an icon), else the empty cell."""
    column = _column(row.target, anchor, lines, unit / image.width)
    if column is None:
        return None
    x0, x1 = column
    half = NEXT_LINE * (anchor[3] - anchor[1])  # the anchor's own line: the next row's ink is not this cell's
    cy = (anchor[1] + anchor[3]) / 2
    texts = _nearest_line([ln.box for ln in lines if _same_row(ln.box, anchor, ROW_REACH)
                           and x0 <= _centre(ln.box)[0] <= x1], anchor, on_its_line=True)
    if texts:
        return (min(b[0] for b in texts), min(b[1] for b in texts), max(b[2] for b in texts), max(b[3] for b in texts))
    return _ink(image, (x0, cy - half, x1, cy + half)) or (x0, cy - half, x1, cy + half)


def _ink(image: Image.Image, box: Box) -> Box | None:
    """The bounding box of what is drawn inside a (normalized) box: pixels INK_CONTRAST grey levels off
    its most common grey; None where nothing is."""
    width, height = image.size
    px = (max(0, int(box[0] * width)), max(0, int(box[1] * height)), min(width, int(np.ceil(box[2] * width))),
          min(height, int(np.ceil(box[3] * height))))
    if px[2] - px[0] < 2 or px[3] - px[1] < 2:
        return None
    grey = np.asarray(image.crop(px).convert("L"), dtype=np.int16)
    background = np.bincount(grey.ravel()).argmax()
    ys, xs = np.nonzero(np.abs(grey - background) >= INK_CONTRAST)
    if len(xs) == 0:
        return None
    return ((px[0] + xs.min()) / width, (px[1] + ys.min()) / height,
            (px[0] + xs.max() + 1) / width, (px[1] + ys.max() + 1) / height)


def _look_on_row(image: Image.Image, target: str, anchor: Box, lines: Sequence, look: Look) -> Box | None:
    """What `look` finds for the target on a copy of the screen showing only the anchor's row (the rest
    painted in the row's most common colour), where its answer lies on the row, outside the anchor."""
    width, height = image.size
    cy, line = (anchor[1] + anchor[3]) / 2 * height, (anchor[3] - anchor[1]) * height
    top, bottom = max(0, int(cy - MASK_REACH * line)), min(height, int(np.ceil(cy + MASK_REACH * line)))
    rgb = np.asarray(image.convert("RGB")).copy()
    band = rgb[top:bottom].reshape(-1, 3)
    colours, counts = np.unique(band, axis=0, return_counts=True)
    rgb[:top] = colours[counts.argmax()]
    rgb[bottom:] = colours[counts.argmax()]
    kept = [ln for ln in lines if top / height <= _centre(ln.box)[1] <= bottom / height]
    box = look(Image.fromarray(rgb), target, kept)
    if box is None or not _same_row(box, anchor, ROW_REACH) or _overlaps(box, anchor):
        return None
    return box


__all__ = ["RowAnswer", "RowInstruction", "anchor_rows", "find_on_row", "row_instruction"]
