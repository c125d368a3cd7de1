"""Snapping a point onto the control an instruction names: the checkbox beside "Remember me", the field
right of "Username:", the slider under "Volume".

The grounder's pointer chooses among 64-px cells (at 1280 px); a 13-px checkbox or a field whose label
shares its cell is missed by a few pixels, or the point lands on the label. Such controls have outlines
a few lines of image processing find: a closed contour whose inside is mostly empty, the size of a text
line (a checkbox, a radio button, a switch) or wider and taller than one (a field); a slider is a long
thin track with a knob on it (find_sliders), clicked on its knob. `snap_to_control` moves a point that
names such a control onto one:

- when the instruction's label is written once on the screen (model.grounder.exact_text; for a toggle
  named "<what it does> - <row name>", the row's name), onto the control beside it: on its row (left or right) for a toggle; on its row to the right, or just below it,
  for a field or a slider; a field holding the text (its hint text, as "Write a note") counts first;
- otherwise, when the point is inside a control of the kind, onto that control;
- otherwise onto the nearest one on the point's row (a toggle), or right of or just below the point
  (a field), within reach.

Nothing moves when no control of the kind is in reach, or when the instruction names no such control.
Coordinates in and out are normalized to the image, as everywhere in vlagent (DESIGN.md).
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Iterator, Sequence

import numpy as np
from PIL import Image

from vlagent.grounding.ocr import ScreenCache

Box = tuple[float, float, float, float]

TOGGLE, FIELD, SLIDER = "toggle", "field", "slider"
_SLIDER_WORDS = re.compile(r"\b(?:slider|range slider)\b", re.IGNORECASE)
# "search box", "text box": fields; "box", "tick", "check": checkboxes (checked after the field words)
_FIELD_WORDS = re.compile(r"\b(?:field|input|entry|text ?area|(?:search|text|spin|input|edit) ?box"
                          r"|search(?:\s+[\w-]+){1,2}\s+box)\b", re.IGNORECASE)  # "the Search users box"
# a select or combo box is drawn as a field beside its label; "the File drop-down menu" is a menu's name
_DROP_DOWN_WORDS = re.compile(r"\b(?:drop[- ]?down|combo ?box|select box)(?:e?s)?\b(?!\s+menu)",
                              re.IGNORECASE)
_TOGGLE_WORDS = re.compile(r"\b(?:check ?box|box|radio|circle (?:next to|beside)|switch|toggle|tick|untick|check"
                           r"|uncheck|turn on|turn off)\b", re.IGNORECASE)

EDGE_CONTRAST = 24  # grey levels between neighbouring pixels that make an edge
DEFAULT_TEXT_HEIGHT = 14  # px, when the screen has no text to measure
REACH = 25  # text heights: how far from the model's point a control may sit (no label written)


def control_kind(instruction: str) -> str | None:
    """SLIDER, FIELD (a drop-down too), TOGGLE (checkbox, radio button, switch) or None: what kind of control
    the instruction names, in its words outside quotes ("press 'Toggle navigation'" names none)."""
    from vlagent.model.grounder import unquoted

    instruction = unquoted(instruction)
    if _SLIDER_WORDS.search(instruction):
        return SLIDER
    if _FIELD_WORDS.search(instruction) or _DROP_DOWN_WORDS.search(instruction):
        return FIELD
    if any(not _starts_a_name(instruction, m) and not _switch_as_a_verb(instruction, m)
           for m in _TOGGLE_WORDS.finditer(instruction)):
        return TOGGLE
    return None


_TO_ANOTHER = re.compile(r"^\s+(?:(?:over|back)\s+)?(?:to|between)\b", re.IGNORECASE)
_ARTICLE_BEFORE = re.compile(r"\b(?:the|a|this|that)\s+$", re.IGNORECASE)


def _switch_as_a_verb(instruction: str, word: re.Match) -> bool:
    """Whether a "switch" is the verb ("switch to the Overview tab", "switch back to English"), not a control
    ("the switch to enable Wi-Fi")."""
    if word.group(0).lower() != "switch":
        return False
    return bool(_TO_ANOTHER.match(instruction[word.end():])) and not _ARTICLE_BEFORE.search(instruction[:word.start()])


# after "Toggle": one to three words of a name, then another kind's word ("Toggle navigation button")
_NAME_THEN_KIND = re.compile(r"^\s+(?:(?!the\b)[\w-]+\s+){1,3}(?:buttons?|links?|icons?|menus?(?!\s+bar)|tabs?)\b",
                             re.IGNORECASE)
# before a capitalized "Toggle" that starts a name: a verb or an article ("open Toggle sorting")
_BEFORE_A_NAME = re.compile(r"\b(?:open|click|press|tap|hit|select|choose|the|a)\s+$", re.IGNORECASE)


def _starts_a_name(instruction: str, toggle_word: re.Match) -> bool:
    """Whether a "toggle" starts a control's name rather than saying its kind: "the Toggle navigation
    button" (a name, then a button's word), "open Toggle sorting" (capitalized after a verb: the name as
    the page writes it). "Toggle Wi-Fi", "toggle dark mode in the Appearance tab", "In Settings, Toggle
    Bluetooth" and "the toggle button" stay switches."""
    word = toggle_word.group(0)
    if word.lower() != "toggle":
        return False
    after, before = instruction[toggle_word.end():], instruction[:toggle_word.start()]
    return bool(_NAME_THEN_KIND.match(after)) or (word[0].isupper() and bool(_BEFORE_A_NAME.search(before)))


@dataclass(frozen=True)
class Control:
    kind: str
    box: tuple[int, int, int, int]  # pixels, x0 y0 x1 y1 inclusive-exclusive
    knob: tuple[float, float] | None = None  # a slider's handle (pixels): where clicking changes nothing
    knob_length: float = 0.0  # a slider's handle: pixels along its track

    @property
    def centre(self) -> tuple[float, float]:
        return (self.box[0] + self.box[2]) / 2, (self.box[1] + self.box[3]) / 2

    @property
    def click_point(self) -> tuple[float, float]:
        """Where to click it: a slider's knob, else the centre."""
        return self.knob or self.centre

    def contains(self, x: float, y: float, margin: float = 0.0) -> bool:
        x0, y0, x1, y1 = self.box
        return x0 - margin <= x <= x1 + margin and y0 - margin <= y <= y1 + margin


def text_height(lines: Sequence, image_size: tuple[int, int]) -> float:
    """The median height of the screen's text segments in pixels: the unit controls are measured in."""
    heights = sorted((ln.box[3] - ln.box[1]) * image_size[1] for ln in lines)
    return float(heights[len(heights) // 2]) if heights else float(DEFAULT_TEXT_HEIGHT)


_SCREEN_CONTROLS = ScreenCache(4)  # screens whose controls are kept: one grounding asks for them up to 4 times


def find_controls(image: Image.Image, unit: float) -> list[Control]:
    """The closed outlines of the screenshot that look like a toggle or a field, `unit` being the screen's
    text height in pixels. Fields are also looked for among fainter edges (FAINT_EDGE_CONTRAST): a dark
    theme draws a field's border barely off its background, and its antialiased corners, fainter
    still, would otherwise split the outline into four lines; a flat web input is a grey fill 10 levels
    off a white card. A field's inside is a neutral colour: a shape of a field's size filled with colour
    is a button ("Log in" in a blue pill). Found once per screen content and unit (about 15 ms at
    1280x720): the same list object while the screen stays cached."""
    return _SCREEN_CONTROLS.get(image, round(unit, 2), lambda: _find_controls(image, unit))


def _find_controls(image: Image.Image, unit: float) -> list[Control]:
    rgb = np.asarray(image.convert("RGB"))
    grey = np.asarray(image.convert("L"), dtype=np.int16)
    controls = [c for c in _outlines(grey, unit, EDGE_CONTRAST) if c.kind != FIELD or _neutral_inside(rgb, c.box)]
    for faint in _outlines(grey, unit, FAINT_EDGE_CONTRAST):
        # a one-line field only: a pale panel around a form's buttons has a faint outline too
        if (faint.kind == FIELD and faint.box[3] - faint.box[1] <= HINT_ROOM * unit and _neutral_inside(rgb, faint.box)
                and not any(_overlap(faint.box, c.box) > 0.5 for c in controls)):
            controls.append(faint)
    return controls


# grey levels: a dark theme's field border (27 between 53 and 45 in GTK's Adwaita dark), a flat web input
# (a #f4f5f7 fill on a white card, its border only underneath)
FAINT_EDGE_CONTRAST = 8
COLOURED = 0.3  # a fill whose channels spread over more than this share of the brightest is a colour


def _neutral_inside(rgb: np.ndarray, box: tuple[int, int, int, int]) -> bool:
    """Whether the inside of a box (a quarter of its height in from each side) is mostly a grey, white or
    black, as a field's is, not a colour, as a filled button's is."""
    x0, y0, x1, y1 = box
    inset = max(2, (y1 - y0) // 4)
    inside = rgb[y0 + inset : y1 - inset, x0 + inset : x1 - inset].reshape(-1, 3)
    if inside.size == 0:
        return True
    colour = np.median(inside, axis=0)
    return float(colour.max() - colour.min()) <= COLOURED * max(float(colour.max()), 1.0)


def _outlines(grey: np.ndarray, unit: float, contrast: int) -> list[Control]:
    edges = np.zeros(grey.shape, dtype=bool)
    edges[:, :-1] |= np.abs(np.diff(grey, axis=1)) > contrast
    edges[:-1, :] |= np.abs(np.diff(grey, axis=0)) > contrast
    controls = []
    for rows, cols, window, index in _components(edges):
        h, w = rows.stop - rows.start, cols.stop - cols.start
        kind = _kind_of_size(w, h, unit)
        if kind is None:
            continue
        mask = window == index
        if _is_closed_outline(mask, max_inside=0.5 if kind == TOGGLE else 0.25):
            controls.append(Control(kind, (cols.start, rows.start, cols.stop, rows.stop)))
        elif kind == FIELD:
            trimmed = _between_full_lines(mask, unit)
            if trimmed is not None:
                controls.append(Control(FIELD, (cols.start, rows.start + trimmed[0], cols.stop, rows.start + trimmed[1])))
    return controls


def _between_full_lines(mask: np.ndarray, unit: float) -> tuple[int, int] | None:
    """(top, bottom) rows of a field's outline inside an edge component that is more than it: a label's
    letters touching the field from above or below ("Country" just above its select). The outline's top
    and bottom are the first and last rows the component spans almost whole; None where that is no field."""
    full = np.flatnonzero(mask.mean(axis=1) >= 0.9)
    if len(full) < 2:
        return None
    top, bottom = int(full[0]), int(full[-1]) + 1
    if (top == 0 and bottom == mask.shape[0]) or _kind_of_size(mask.shape[1], bottom - top, unit) != FIELD:
        return None
    return (top, bottom) if _is_closed_outline(mask[top:bottom], max_inside=0.25) else None


def _overlap(a: tuple, b: tuple) -> float:
    """Intersection over union of two boxes (x0, y0, x1, y1)."""
    w = min(a[2], b[2]) - max(a[0], b[0])
    h = min(a[3], b[3]) - max(a[1], b[1])
    if w <= 0 or h <= 0:
        return 0.0
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - w * h
    return w * h / union


TOGGLE_SHAPE = 2.6  # a toggle is at most this many times as wide as it is tall
FIELD_SHAPE = 3.0  # a field under four text heights wide is at least this many times as wide as it is tall
FULL_OUTLINE_INSIDE = 0.35  # of an unbroken outline's inside that letters touching it may cover


def _kind_of_size(w: int, h: int, unit: float) -> str | None:
    """TOGGLE, FIELD or None for an outline w x h pixels. A toggle is at most TOGGLE_SHAPE times as wide as
    it is tall (a switch is about twice); a field is four text heights wide, or, long and thin, FIELD_SHAPE
    times its height and 3.5 text heights (a browser's select sized to a short option, "cm", "UTC")."""
    if 0.5 * unit <= h <= 2.4 * unit and 0.5 * unit <= w <= min(4.5 * unit, TOGGLE_SHAPE * h) and 0.7 * h <= w:
        return TOGGLE
    if 0.9 * unit <= h <= 14 * unit and (w >= max(4 * unit, 1.5 * h) or w >= max(3.5 * unit, FIELD_SHAPE * h)):
        return FIELD
    return None



def _is_closed_outline(mask: np.ndarray, max_inside: float) -> bool:
    """Edges along all four sides of the box (a rectangle, a circle, a pill) and at most `max_inside` of
    the inside on an edge: an outline, not a glyph, an icon or a block of text. (A ticked checkbox's tick
    fills up to half of its inside; a narrow select's text, touching its unbroken border, a third.)"""
    h, w = mask.shape
    band = max(2, round(0.2 * min(h, w)))
    sides = (mask[:band].any(axis=0).mean(), mask[-band:].any(axis=0).mean(),
             mask[:, :band].any(axis=1).mean(), mask[:, -band:].any(axis=1).mean())
    if min(sides) < 0.45:
        return False
    inside = mask[band:-band, band:-band]
    if min(sides) >= 0.95:  # unbroken on all four sides: letters touching it inside count for less
        max_inside = max(max_inside, FULL_OUTLINE_INSIDE)
    return inside.size == 0 or inside.mean() <= max_inside


SLIDER_CONTRAST = 10  # grey levels (any channel): a dark theme's track is barely off its background


def colour_edges(image: Image.Image, contrast: int) -> np.ndarray:
    """A bool map of the pixels on either side of a step of more than `contrast` levels, in any channel,
    to the right or below: edges of colour on grey that a grey-level map would miss."""
    rgb = np.asarray(image.convert("RGB"), dtype=np.int16)
    edges = np.zeros(rgb.shape[:2], dtype=bool)
    across = np.abs(np.diff(rgb, axis=1)).max(axis=2) > contrast
    down = np.abs(np.diff(rgb, axis=0)).max(axis=2) > contrast
    edges[:, :-1] |= across
    edges[:, 1:] |= across
    edges[:-1] |= down
    edges[1:] |= down
    return edges


def _components(mask: np.ndarray) -> Iterator[tuple[slice, slice, np.ndarray, int]]:
    """Each 8-connected shape of `mask`: its rows and columns, the label map inside that box, and its label
    (`window == label` is the shape's own pixels there, made only where a caller needs them)."""
    from scipy import ndimage

    labels, _ = ndimage.label(mask, structure=np.ones((3, 3), dtype=bool))
    for index, found in enumerate(ndimage.find_objects(labels), start=1):
        if found is not None:
            yield found[0], found[1], labels[found], index


def edge_components(image: Image.Image, contrast: int) -> tuple[np.ndarray, list[tuple[int, int, int, int]]]:
    """The screenshot's edges (colour_edges) joined into 8-connected shapes: the label map and each shape's
    box (pixels, x0 y0 x1 y1, end exclusive), in label order."""
    from scipy import ndimage

    labels, _ = ndimage.label(colour_edges(image, contrast), structure=np.ones((3, 3), dtype=bool))
    boxes = [(cols.start, rows.start, cols.stop, rows.stop)
             for rows, cols in (found for found in ndimage.find_objects(labels) if found is not None)]
    return labels, boxes


def find_sliders(image: Image.Image, unit: float) -> list[Control]:
    """The sliders of the screenshot: a track at least 4 text heights long and under 0.8 thick, with one
    knob on it (a run of columns taller than the track, about as wide as tall, centred on the track's
    line: an underlined link's descenders rise above its line and fail), or a trough as thick as the knob
    that slides in it (Tk's and Motif's scales: _trough_knob), lying or standing. `unit` is the text
    height."""
    grey = np.asarray(image.convert("L"), dtype=np.int16)
    sliders = []
    for rows, cols, window, index in _components(colour_edges(image, SLIDER_CONTRAST)):
        h, w = rows.stop - rows.start, cols.stop - cols.start
        knob, inset = None, 0
        if w >= 4 * unit and 0.4 * unit <= h <= 2.2 * unit:
            knob = _knob(window == index, unit)
            if knob is None:
                knob, inset = _trough_knob(grey[rows, cols], unit), TROUGH_BORDER
        elif h >= 4 * unit and 0.4 * unit <= w <= 2.2 * unit:  # a vertical slider: the same, turned
            turned = _knob((window == index).T, unit)
            if turned is None:
                turned, inset = _trough_knob(grey[rows, cols].T, unit), TROUGH_BORDER
            knob = turned and (turned[1], turned[0], turned[2])
        if knob is not None:  # a trough's box is its inside, where the knob travels
            sliders.append(Control(SLIDER, (cols.start + inset, rows.start + inset, cols.stop - inset, rows.stop - inset),
                                   (cols.start + float(knob[0]), rows.start + float(knob[1])), float(knob[2])))
    return sliders


def slider_level(slider: Control) -> float:
    """Where a slider's knob sits along its track, 0 to 1: from the left end of a lying slider, from the
    bottom of a standing one (a level, as a fader's), the knob's half-length in from each end."""
    (x0, y0, x1, y1), (kx, ky), half = slider.box, slider.knob, slider.knob_length / 2
    if x1 - x0 >= y1 - y0:
        return float(min(max((kx - x0 - half) / max(x1 - x0 - 2 * half, 1.0), 0.0), 1.0))
    return float(min(max((y1 - half - ky) / max(y1 - y0 - 2 * half, 1.0), 0.0), 1.0))


def slider_point(slider: Control, level: float) -> tuple[float, float]:
    """The pixel where the slider's knob centre sits at `level` (slider_level's scale)."""
    (x0, y0, x1, y1), (kx, ky), half = slider.box, slider.knob, slider.knob_length / 2
    if x1 - x0 >= y1 - y0:
        return x0 + half + level * (x1 - x0 - 2 * half), ky
    return kx, y1 - half - level * (y1 - y0 - 2 * half)


def _knob(mask: np.ndarray, unit: float) -> tuple[float, float, float] | None:
    """The knob's centre in a slider-shaped component's mask (x, y within it) and its length along the
    track, or None where it has none."""
    present = mask.any(axis=0)
    top = np.argmax(mask, axis=0)
    bottom = mask.shape[0] - np.argmax(mask[::-1], axis=0)
    extent = np.where(present, bottom - top, 0)
    track = float(np.median(extent))
    if track > 0.8 * unit:
        return None
    tall = extent >= max(1.6 * track, 0.5 * unit)
    columns = np.flatnonzero(tall)
    if columns.size == 0:
        return None
    runs = np.split(columns, np.flatnonzero(np.diff(columns) > 1) + 1)
    knob = max(runs, key=len)
    rest = present & ~tall
    if len(runs) > 2 or rest.sum() < 2 * len(knob):
        return None
    knob_top, knob_bottom = top[knob].min(), bottom[knob].max()
    height = knob_bottom - knob_top
    knob_y = (knob_top + knob_bottom) / 2
    track_y = float(np.median(((top + bottom) / 2)[rest]))
    if abs(knob_y - track_y) > 0.2 * height or not 0.6 * height <= len(knob) <= 1.6 * height:
        return None
    return (knob[0] + knob[-1] + 1) / 2, knob_y, len(knob)


TROUGH_BORDER = 2  # px of a trough's frame left out of its inside
TROUGH_STEP = 12  # grey levels off the trough's fill that a knob's pixels are
KNOB_SPAN = (0.8, 4.0)  # a knob in a trough is this many times as long as the trough is thick inside


def _trough_knob(grey: np.ndarray, unit: float) -> tuple[float, float, float] | None:
    """The knob's centre (x, y within the box) and length of a slider drawn as a trough with a knob as thick as its
    inside (Tk's Scale, ttk's): the columns of the trough's inside where most pixels are off its fill
    (its most common grey) are one run, KNOB_SPAN times the inside's thickness long, and 97 % of the other
    columns are the fill alone; None otherwise (a field, a progress bar, a button row)."""
    inside = grey[TROUGH_BORDER:-TROUGH_BORDER, TROUGH_BORDER:-TROUGH_BORDER]
    if inside.shape[0] < 0.4 * unit or inside.shape[1] < 4 * unit:
        return None
    values, counts = np.unique(inside, return_counts=True)
    off = (np.abs(inside - values[counts.argmax()]) > TROUGH_STEP).mean(axis=0)
    knob = np.flatnonzero(off >= 0.6)
    if knob.size == 0 or knob[-1] - knob[0] + 1 > knob.size + 2:  # one run (a groove inside it may match)
        return None
    span = knob[-1] - knob[0] + 1
    rest = np.concatenate([off[:knob[0]], off[knob[-1] + 1:]])
    thick = inside.shape[0]
    # the rest is the fill alone: a field's letters beside its clear button are not
    if not KNOB_SPAN[0] * thick <= span <= KNOB_SPAN[1] * thick or rest.size < 2 * span or (rest <= 0.02).mean() < 0.97:
        return None
    return TROUGH_BORDER + (knob[0] + knob[-1] + 1) / 2, grey.shape[0] / 2, span


@dataclass(frozen=True)
class Snap:
    point: tuple[float, float]  # normalized
    box: Box  # the control's, normalized
    by_label: bool  # found beside the instruction's label (not from the point alone)


def snap_to_control(image: Image.Image, instruction: str, point: tuple[float, float], lines: Sequence,
                    controls: Sequence[Control] | None = None) -> Snap | None:
    """The point (normalized) moved onto the control the instruction names; None when the instruction
    names no field, toggle or slider, or none is in reach (the point stays)."""
    from vlagent.model.grounder import exact_text

    kind = control_kind(instruction)
    if kind is None:
        return None
    width, height = image.size
    unit = text_height(lines, image.size)
    if controls is None:
        controls = find_sliders(image, unit) if kind == SLIDER else find_controls(image, unit)
    segments = [pixel_box(ln.box, image.size) for ln in lines if len(ln.text.strip()) > 2]
    of_kind = [c for c in controls if c.kind == kind and not (kind == TOGGLE and _inside_text(c, segments, unit))]
    label = exact_text(instruction, lines)
    if kind == FIELD and label is not None and _DROP_DOWN_WORDS.search(instruction):
        texts = [pixel_box(ln.box, image.size) for ln in lines]
        drop_down = _drop_down_by_arrow(image, pixel_box(label, image.size), of_kind, texts, unit)
        if drop_down is not None:
            box = drop_down.box
            return Snap((drop_down.click_point[0] / width, drop_down.click_point[1] / height),
                        (box[0] / width, box[1] / height, box[2] / width, box[3] / height), True)
    if not of_kind:
        return None
    if label is None and kind == TOGGLE:
        label = _row_name(instruction, lines)
    x, y = point[0] * width, point[1] * height
    chosen = None
    if label is not None:
        chosen = _beside_label(of_kind, pixel_box(label, image.size), kind, unit)
    elif kind == TOGGLE and _SELECT_ALL.search(instruction):
        chosen = _column_head(of_kind, unit)
    elif kind == FIELD:
        chosen = _field_by_hint(of_kind, instruction, lines, image.size)
        if chosen is None and not any(c.contains(x, y, margin=2) for c in of_kind):
            chosen = _field_by_value(of_kind, instruction, lines, image.size)
    by_label = chosen is not None
    if chosen is None:
        chosen = next((c for c in of_kind if c.contains(x, y, margin=2)), None)
    if chosen is None:
        chosen = _nearest(of_kind, x, y, kind, unit)
    if chosen is None:
        return None
    cx, cy = chosen.click_point
    if kind == FIELD and chosen.contains(x, y):
        # anywhere inside a field will do: keep the model's point, but off the field's border (a point on
        # the outline's last pixel is outside the field as the page lays it out)
        x0, y0, x1, y1 = chosen.box
        margin = min(0.25 * unit, (x1 - x0) / 4, (y1 - y0) / 4)
        cx, cy = min(max(x, x0 + margin), x1 - margin), min(max(y, y0 + margin), y1 - margin)
    box = chosen.box
    return Snap((cx / width, cy / height), (box[0] / width, box[1] / height, box[2] / width, box[3] / height),
                by_label)


# "Select all objects on this page", "the select-all checkbox": with no such label written, the checkbox
# heading a column of them (a table's header row)
_SELECT_ALL = re.compile(r"\b(?:select|check|tick|toggle)[\s-]+all\b", re.IGNORECASE)
COLUMN_SPREAD = 0.5  # text heights the centres of one column's toggles may stray from each other
MIN_COLUMN = 3  # toggles, the head included, that make a column
COLUMN_GAP = 4  # text heights between one toggle of a column and the next at most


def _column_head(toggles: Sequence[Control], unit: float) -> Control | None:
    """The top toggle of the longest column of like-sized toggles (MIN_COLUMN or more, each within
    COLUMN_GAP of the next), or None. A top one further above the next than twice the column's usual gap
    is no head of it (the bold "U" of a page's "Users" heading above a table's select-all checkbox)."""
    best: list[Control] = []
    for toggle in toggles:
        cx, side = (toggle.box[0] + toggle.box[2]) / 2, toggle.box[2] - toggle.box[0]
        column = sorted((t for t in toggles if abs((t.box[0] + t.box[2]) / 2 - cx) <= COLUMN_SPREAD * unit
                         and abs(t.box[2] - t.box[0] - side) <= COLUMN_SPREAD * unit), key=lambda t: t.box[1])
        run = [column[0]]
        for t in column[1:]:
            if t.box[1] - run[-1].box[3] > COLUMN_GAP * unit:
                if len(run) > len(best):
                    best = run
                run = []
            run.append(t)
        if len(run) > len(best):
            best = run
    gaps = [b.box[1] - a.box[3] for a, b in zip(best, best[1:])]
    if len(gaps) >= 3 and gaps[0] > 2 * max(sorted(gaps[1:])[len(gaps[1:]) // 2], 1):
        best = best[1:]
    return best[0] if len(best) >= MIN_COLUMN else None


def _field_by_hint(fields: Sequence[Control], instruction: str, lines: Sequence, size: tuple[int, int]
                   ) -> Control | None:  # fmt: skip
    """Where the field's name is written nowhere: the one field holding a hint text (a placeholder, written
    from the field's left; a button's centred caption is no hint) that shares a word of HINT_WORD letters
    or more with the instruction's query ("the Filter navigation items field": "Start typing to
    filter..."). Where several do, the one whose text trails off ("...", "…"), as hints do, where only
    one does (a box around the heading "FILTER" is no field to type in). None otherwise."""
    from vlagent.model.grounder import _truncated, instruction_query

    wanted = {w for w in re.findall(r"\w+", instruction_query(instruction).casefold()) if len(w) >= HINT_WORD}
    held: dict[int, bool] = {}  # field index -> whether a hint of it trails off
    for line in lines if wanted else ():
        if not wanted & {w for w in re.findall(r"\w+", line.text.casefold())}:
            continue
        for i in _holding_from_left(fields, line, size):
            held[i] = held.get(i, False) or _truncated(line.text, dots="..")
    if len(held) > 1:
        held = {i: True for i, trails in held.items() if trails}
    return fields[next(iter(held))] if len(held) == 1 else None


# "the Font Size spin box", "the quantity field": named for a number, the field showing one; "the Font
# Family field": the field showing the name of a font family installed here (a font chooser shows one)
_NUMBER_FIELD = re.compile(r"\b(?:size|number|count|amount|quantity|zoom)\b", re.IGNORECASE)
_SPIN_BOX = re.compile(r"\b(?:spin ?box|spinner)\b", re.IGNORECASE)
_FONT_FIELD = re.compile(r"\b(?:font|typeface)\b", re.IGNORECASE)
_NOT_FAMILY = re.compile(r"\b(?:colou?r|weight|style|effects?)\b", re.IGNORECASE)
_NUMBER = re.compile(r"^\s*[-+]?\d+(?:[.,]\d+)?\s*(?:%|pt|px|em)?\s*$")


def _field_by_value(fields: Sequence[Control], instruction: str, lines: Sequence, size: tuple[int, int]
                    ) -> Control | None:  # fmt: skip
    """Where the field's name is written nowhere, the model's point is in no field, and the name says what
    the field holds: the one field whose text, written from its left, is a number (a size, a count, a
    spin box) or an installed font family's name (a font, not its colour or style); None where no field
    or several do."""
    from vlagent.model.grounder import instruction_query

    name = instruction_query(instruction)  # the field's name: "phone number" in "...the number of items" is not
    if _NUMBER_FIELD.search(name) or _SPIN_BOX.search(instruction):
        def shows(text: str) -> bool:
            return bool(_NUMBER.match(text))
    elif _FONT_FIELD.search(name) and not _NOT_FAMILY.search(name):
        families = font_families()

        def shows(text: str) -> bool:
            return text.strip().casefold() in families
    else:
        return None
    held = set()
    for line in lines:
        if not shows(line.text):
            continue
        held |= set(_holding_from_left(fields, line, size))
    return fields[held.pop()] if len(held) == 1 else None


def _holding_from_left(fields: Sequence[Control], line, size: tuple[int, int]) -> list[int]:
    """The indices of the fields holding an OCR line written from their left (a hint or a value)."""
    x0, y0, x1, y1 = pixel_box(line.box, size)
    return [i for i, c in enumerate(fields) if c.contains((x0 + x1) / 2, (y0 + y1) / 2) and _from_left(x0, x1, c)]


@lru_cache(maxsize=1)
def font_families() -> frozenset[str]:
    """The font families installed here (fontconfig's fc-list), casefolded, and the generic ones."""
    import subprocess

    names = {"sans", "serif", "monospace", "sans-serif", "sans serif", "system-ui"}
    try:
        listed = subprocess.run(["fc-list", ":", "family"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        listed = ""
    for line in listed.splitlines():
        names |= {name.strip().casefold() for name in line.split(",") if name.strip()}
    return frozenset(names)


HINT_WORD = 4  # letters: shorter words ("to", "the", "new") name no field


HINT_ROOM = 3  # a field's height in heights of the text written in it, at most (a one-line field is about 2)


def written_as_hint(fields: Sequence[Control], box: Box, size: tuple[int, int]) -> bool:
    """Whether text at `box` (normalized) is written in one of the fields as a hint or value is: inside the
    innermost outline holding it that is at most HINT_ROOM times as tall as the text (a card around a
    button is no field), from its left (_from_left; a button found as a field outline has its caption
    centred)."""
    x0, y0, x1, y1 = pixel_box(box, size)
    holding = [c for c in fields if c.contains((x0 + x1) / 2, (y0 + y1) / 2)
               and c.box[3] - c.box[1] <= HINT_ROOM * (y1 - y0)]
    if not holding:
        return False
    inner = min(holding, key=lambda c: (c.box[2] - c.box[0]) * (c.box[3] - c.box[1]))
    return _from_left(x0, x1, inner)


def _from_left(x0: float, x1: float, field: Control) -> bool:
    """Whether text spanning x0..x1 (pixels) inside the field starts at its left: nearer its left edge than
    half its room on the right (a centred caption has as much room on either side)."""
    return -2 <= x0 - field.box[0] < (field.box[2] - x1) / 2


# "Select this object for an action - alan": a row's checkbox named, as web pages name them for screen
# readers, by what it does and then, after a dash, by the row's name
_AFTER_DASH = re.compile(r"\s[-–—]\s+(.+?)\s*$")


def _row_name(instruction: str, lines: Sequence) -> Box | None:
    """Where the name after the instruction's last dash is written once (model.grounder.exact_text), for
    a toggle named by its action and its row; None without such a name."""
    from vlagent.model.grounder import exact_queries, exact_text

    match = _AFTER_DASH.search(instruction)
    queries = exact_queries(match.group(1).strip(" '\"“”‘’")) if match else []
    # the name alone ("alan", not "alan box"): a name written twice ("alan", "Alan") is the one written as asked
    return exact_text(queries[-1], lines) if queries else None


# "select Weekly", "choose the Moyen option", "the 'Public' option": the label of a radio button (or a
# list row, a menu item: those have no toggle beside them)
_SELECTS = re.compile(r"^\s*(?:select|choose|pick)\b|\boption\b", re.IGNORECASE)
TOGGLE_REACH = 1.5  # text heights between a toggle and the label just right of it
_READ_IN = re.compile(r"^(?:\s|[^\w\s]|\w\s)")  # a line starting with what OCR made of a toggle


def toggle_of_label(image: Image.Image, instruction: str, label: Box, lines: Sequence) -> Box | None:
    """For an instruction that selects an option by its label, the box (normalized) of the toggle just left
    of the label's text (written at `label`, normalized), on its row; None when there is none (a list
    row, a menu item) or the instruction is no such selection."""
    if not _SELECTS.search(instruction):
        return None
    unit = text_height(lines, image.size)
    lx0, ly0, lx1, ly1 = pixel_box(label, image.size)
    mid = (ly0 + ly1) / 2
    segments = [pixel_box(ln.box, image.size) for ln in lines if len(ln.text.strip()) > 2]
    on_row = [c for c in find_controls(image, unit) if c.kind == TOGGLE and c.box[1] <= mid <= c.box[3]
              and not _inside_text(c, segments, unit)]
    beside = [c for c in on_row if -0.5 * unit <= lx0 - c.box[2] <= TOGGLE_REACH * unit]
    # OCR often reads the radio button into its label's line, as a space, a symbol or a letter (" Groβ",
    # "O Privat"), or as nothing but a wider box: there, a toggle that starts the line and stands apart
    # from the text after it (the "O" of "Open" does not; a menu item's icon OCR leaves out of the line)
    text = next((ln.text for ln in lines if tuple(ln.box) == tuple(label)), "")
    if not beside:
        beside = [c for c in on_row if abs(c.box[0] - lx0) <= 0.3 * unit and c.box[2] <= lx0 + TOGGLE_REACH * unit
                  and (_READ_IN.match(text) or _blank_after(image, c.box, unit))]
    if not beside:
        return None
    x0, y0, x1, y1 = max(beside, key=lambda c: c.box[2]).box
    width, height = image.size
    return x0 / width, y0 / height, x1 / width, y1 / height


def _blank_after(image: Image.Image, box: tuple[int, int, int, int], unit: float, room: float = 0.35) -> bool:
    """Whether the `room` text heights right of a box (pixels) are blank on the box's rows: a toggle is set
    apart from its label's text, a letter is not from the next one."""
    x0, y0, x1, y1 = box
    left = min(x1 + 1, image.width)  # the box ends a pixel past the shape: one more for its antialiasing
    right = min(image.width, left + round(room * unit))
    if right <= left or y1 <= y0:
        return False
    strip = np.asarray(image.convert("L").crop((left, y0, right, y1)), dtype=np.int16)
    return int(strip.max()) - int(strip.min()) <= EDGE_CONTRAST


def pixel_box(box: Box, size: tuple[int, int]) -> tuple[float, float, float, float]:
    """A normalized box in pixels of an image of `size` (width, height)."""
    return box[0] * size[0], box[1] * size[1], box[2] * size[0], box[3] * size[1]


def _inside_text(control: Control, segments: Sequence[tuple[float, float, float, float]], unit: float) -> bool:
    """Whether a toggle-sized outline is a letter ("O", "D") of a text segment: its centre inside the
    segment, away from the segment's ends (OCR often reads a checkbox as the first character of its
    label's segment: "口Remember me")."""
    x, y = control.centre
    return any(x0 + 1.5 * unit < x < x1 - 1.5 * unit and y0 <= y <= y1 for x0, y0, x1, y1 in segments)


def _beside_label(controls: Sequence[Control], label: tuple[float, float, float, float], kind: str,
                  unit: float) -> Control | None:
    """The control of `kind` that sits beside the label: the nearest on its row (a field: to its right or
    holding it; a toggle: left or right), or for a field the nearest just below it. A toggle inside the
    label's box comes last: it is more often the label's first letter ("O" of "Open at login") than a
    checkbox OCR read into the label."""
    lx0, ly0, lx1, ly1 = label
    mid = (ly0 + ly1) / 2
    best, best_key = None, (True, float("inf"))
    for c in controls:
        x0, y0, x1, y1 = c.box
        if c.kind == FIELD and x0 <= lx0 and lx1 <= x1 and y0 <= ly0 and ly1 <= y1 and not _holds_a_field(c, controls):
            return c  # the field holds the label as its hint text (a panel holding fields is no field)
        on_row = y0 - 0.5 * unit <= mid <= y1 + 0.5 * unit
        if on_row and (kind == TOGGLE or x0 >= lx0):
            gap = max(x0 - lx1, lx0 - x1, 0.0)
        elif kind != TOGGLE and -0.5 * unit <= y0 - ly1 <= 3 * unit and x0 - 2 * unit <= lx0 <= x1:
            gap = max(0.0, y0 - ly1) + unit  # below: a little farther than the same distance on the row
        else:
            continue
        key = (kind == TOGGLE and x0 < lx1 and lx0 < x1, gap)
        if key < best_key:  # no reach limit: a phone's switch sits at the far end of its label's row
            best, best_key = c, key
    return best


ARROW_REACH = 16  # text heights right of a drop-down's label its ▾ may lie
ARROW_CONTRAST = 40  # grey levels between an arrow and its row's background


def _drop_down_by_arrow(image: Image.Image, label: tuple[float, float, float, float], fields: Sequence[Control],
                        texts: Sequence[tuple[float, float, float, float]], unit: float) -> Control | None:
    """A drop-down drawn as a button (GTK's combo box, Qt's): no field outline beside its label, but a ▾ or
    a chevron, the first shape pointing down right of the label on its row. The drop-down is the value
    written before the arrow (the nearest of `texts`, pixel boxes, between the label and it) and the
    arrow. None where a field outline sits on the label's row first (the field path finds that one) or
    no arrow is in reach."""
    lx0, ly0, lx1, ly1 = label
    mid = (ly0 + ly1) / 2
    height = image.size[1]
    region = (int(lx1), max(0, int(mid - unit)), min(image.size[0], int(lx1 + ARROW_REACH * unit)),
              min(height, int(mid + unit) + 1))
    arrows = _down_arrows(image, region, unit)
    if not arrows:
        return None
    x0, y0, x1, y1 = min(arrows)
    if any(c.box[1] - 0.5 * unit <= mid <= c.box[3] + 0.5 * unit and lx1 <= c.box[0] < x0 for c in fields):
        return None
    values = [t for t in texts if t[1] <= mid <= t[3] and lx1 < t[0] < x0]
    start = max(values, key=lambda t: t[0])[0] if values else x0
    return Control(FIELD, (int(start - 0.5 * unit), int(min(ly0, y0)), int(x1 + 0.5 * unit), int(max(ly1, y1)) + 1))


def _down_arrows(image: Image.Image, region: tuple[int, int, int, int], unit: float) -> list[tuple[int, int, int, int]]:
    """Boxes (pixels) of the small shapes pointing down inside `region` (pixels): a filled triangle or a
    chevron, a quarter of a text height to one wide, 1.3 to 3 times as wide as tall, each row narrower than
    the one above it down to under half the top's width, and centred on one column."""
    x0, y0, x1, y1 = region
    if x1 - x0 < 3 or y1 - y0 < 3:
        return []
    grey = np.asarray(image.convert("L").crop(region), dtype=np.int16)
    found = []
    for rows, cols, window, index in _components(np.abs(grey - np.median(grey)) > ARROW_CONTRAST):
        h, w = rows.stop - rows.start, cols.stop - cols.start
        if not (0.25 * unit <= w <= unit and h >= 2 and 1.3 * h <= w <= 3 * h):
            continue
        spans = [np.flatnonzero(row) for row in window == index]
        if any(len(span) == 0 for span in spans):
            continue
        widths = [span[-1] - span[0] + 1 for span in spans]
        centres = [(span[-1] + span[0]) / 2 for span in spans]
        if widths[0] < 0.8 * w or widths[-1] > 0.45 * w or any(b > a + 1 for a, b in zip(widths, widths[1:])):
            continue
        if max(centres) - min(centres) > max(1.5, 0.15 * w):
            continue
        found.append((x0 + cols.start, y0 + rows.start, x0 + cols.stop, y0 + rows.stop))
    return found


def _holds_a_field(outer: Control, controls: Sequence[Control]) -> bool:
    """Whether another field lies inside `outer`: then it is a panel, a window or a card, not a field."""
    x0, y0, x1, y1 = outer.box
    return any(c is not outer and c.kind == FIELD and x0 <= c.box[0] and c.box[2] <= x1 and y0 <= c.box[1]
               and c.box[3] <= y1 for c in controls)


def _nearest(controls: Sequence[Control], x: float, y: float, kind: str, unit: float) -> Control | None:
    """Without a label: the nearest control on the point's row, or for a field just below the point."""
    best, best_gap = None, float("inf")
    for c in controls:
        x0, y0, x1, y1 = c.box
        if y0 - 0.5 * unit <= y <= y1 + 0.5 * unit:
            gap = max(x0 - x, x - x1, 0.0)
            if kind != TOGGLE and x > x1:
                continue  # a field or a slider lies right of its label, not left
        elif kind != TOGGLE and 0 <= y0 - y <= 3 * unit and x0 - 2 * unit <= x <= x1:
            gap = (y0 - y) + unit
        else:
            continue
        if gap < best_gap and gap <= REACH * unit:
            best, best_gap = c, gap
    return best


__all__ = ["Control", "FIELD", "HINT_ROOM", "Snap", "TOGGLE", "control_kind", "edge_components", "find_controls",
           "pixel_box", "snap_to_control", "text_height", "toggle_of_label", "written_as_hint"]
