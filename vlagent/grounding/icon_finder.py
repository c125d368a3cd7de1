"""Finding a named desktop icon on a screenshot by its look in the installed icon theme.

"Click the Save As icon": a toolbar icon has no text to read, and the grounder's 64-px cells cannot tell
a 16-px floppy disk from the floppy-with-a-pencil beside it. But a GTK application draws its icons from
the freedesktop theme installed on the machine (Adwaita on Debian and Ubuntu), so the theme itself says
what each named icon looks like:

1. the instruction's name ("Save As") maps to freedesktop icon names ("document-save-as") through the
   words toolkits and people use for them (ICON_WORDS);
2. small blobs of the screenshot that are not text are the candidate icons (edges, joined across 1-px
   gaps, sized in the screen's text height);
3. each candidate is compared with the named icon's theme pictures, scaled to the candidate: the colour
   picture composited on the candidate's background (legacy icons), and the shape against the
   candidate's contrast with its background (symbolic icons, drawn in any theme's text colour);
4. the best candidate is the answer only when it also looks more like the named icon than like any
   other icon of the theme (within MARGIN) and its similarity is at least MIN_SCORE: an instruction
   naming an icon that is not on the screen finds nothing.

Only icons of the installed theme are known; where no theme is installed nothing is found. Coordinates
out are normalized to the image, as everywhere in vlagent (DESIGN.md).
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
from PIL import Image

from vlagent.grounding.ocr import ScreenCache
from vlagent.grounding.ordinals import ORDINALS
from vlagent.grounding.synth_theme_icons import THEME_ICON_MEANINGS, _theme_dir

Box = tuple[float, float, float, float]

# What toolkits and people call an icon, beyond the synthetic screens' vocabulary (THEME_ICON_MEANINGS):
# window buttons, list buttons, GTK's file chooser.
EXTRA_ICON_WORDS: dict[str, tuple[str, ...]] = {
    "window-minimize": ("Minimize", "Minimise"),
    "window-maximize": ("Maximize", "Maximise"),
    "window-restore": ("Restore", "Unmaximize"),
    "window-close": ("Close", "Close Tab", "Close Window"),
    "go-jump": ("Go to", "Go to Line", "Jump to"),
    "list-add": ("Add item", "New item"),
    "list-remove": ("Remove item", "Delete item"),
    "open-menu": ("Menu", "Main Menu", "Hamburger menu"),
    "edit-find": ("Search",),
    "drive-harddisk": ("File System Root", "Computer"),
    "user-home": ("Home Folder",),
    "process-stop": ("Stop loading", "Cancel"),
    "application-exit": ("Quit", "Exit"),
}
ICON_WORDS: dict[str, tuple[str, ...]] = {
    name: tuple(dict.fromkeys(THEME_ICON_MEANINGS.get(name, ()) + EXTRA_ICON_WORDS.get(name, ())))
    for name in {**THEME_ICON_MEANINGS, **EXTRA_ICON_WORDS}
}

CANVAS = 20  # px: candidates and theme pictures are compared at this size
MIN_SCORE = 0.6  # normalized cross-correlation a found icon reaches
MARGIN = 0.03  # how far another theme icon may look more like the candidate than the named one
VERIFIED = 3  # candidates checked against the whole theme, the most like the named icon first
EDGE_CONTRAST = 16  # grey levels between neighbouring pixels that make an icon's edge
SIZE_RANGE = (0.35, 3.2)  # an icon's larger side, in text heights (a window's minimize line is 0.4)
LEGACY_SIZES = (24, 48)
SYMBOLIC_SIZES = (16, 24, 32)

_WORD = re.compile(r"\w+")
_GENERIC = frozenset("a an the click tap press on in at of for icon button toolbar tool bar".split())


def _words(text: str) -> tuple[str, ...]:
    return tuple(w.casefold() for w in _WORD.findall(text))


# Short forms an instruction takes from the page ("Prev | Up | Next") for the words icons are called by
ABBREVIATIONS = {"prev": "previous", "fwd": "forward", "prefs": "preferences", "img": "image", "pic": "picture",
                 "nav": "navigation", "fav": "favorite", "notifs": "notifications"}


def _spelt_out(words: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(ABBREVIATIONS.get(w, w) for w in words)


def icon_names_for(instruction: str) -> tuple[str, ...]:
    """The freedesktop names whose words are all in the instruction's query (model.grounder's
    instruction_query), the ones covering most of its words first: "the Save As icon" -> document-save-as,
    "the Remove item button" -> list-remove. Empty when no known icon is named."""
    return named_icons(instruction, ICON_WORDS)


def named_icons(instruction: str, vocabulary: Mapping[str, Sequence[str]]) -> tuple[str, ...]:
    """The names of `vocabulary` the instruction uses (best_covering over instruction_words); where none,
    one called by two words or more that the instruction writes in a row, those the query cut being
    control words ("the Toggle navigation button", "open Toggle sorting": the query drops "toggle", a
    switch's word; "the hamburger menu button")."""
    queries = instruction_words(instruction)
    found = best_covering(queries, vocabulary)
    if found or not queries:
        return found
    # the phrase's words the query lacks must be control words it cut, not verbs ("Go to Inbox" is no
    # go-to icon, "select all rows" no select-all)
    query = set(queries[0])
    phrases = {name: [m for m in meanings if len(_words(m)) >= 2 and query & set(_words(m))
                      and set(_words(m)) - query <= _CUT_CONTROL_WORDS] for name, meanings in vocabulary.items()}
    return best_covering((_spelt_out(tuple(w for w in _words(instruction) if w not in _GENERIC)),), phrases)


_CUT_CONTROL_WORDS = frozenset("toggle menu button link tab switch".split())


def instruction_words(instruction: str) -> tuple[tuple[str, ...], ...]:
    """The word sequences an icon's name is looked for in, in turn: the instruction's query, then its words
    less the generic ones, where it asks for an icon. None for an instruction with an ordinal ("the first
    icon in the toolbar" asks for a position, not for go-first)."""
    from vlagent.model.grounder import instruction_query

    # The query drops words that name a kind of control, which some icons are called by ("the icon for
    # Menu"), and a leading verb that is part of a name ("the toolbar's Go to icon"): where it names no
    # icon, the instruction's words less the generic ones are tried -- only where it says "icon" or
    # "toolbar": elsewhere those words name the target's kind or the action ("the link to Caveats" is no
    # chain icon, "open Django administration" no folder).
    everything = _spelt_out(tuple(w for w in _words(instruction) if w not in _GENERIC))
    if any(w in ORDINALS for w in everything):
        return ()
    query = _spelt_out(_words(instruction_query(instruction)))
    asks_for_icon = any(w in ("icon", "icons", "toolbar") for w in _words(instruction))
    return (query, everything) if asks_for_icon else (query,)


def best_covering(queries: Sequence[tuple[str, ...]], vocabulary: Mapping[str, Sequence[str]]) -> tuple[str, ...]:
    """The names of `vocabulary` (name -> the words people call it) one of whose meanings occurs in the
    first query that has any, those of the longest meaning."""
    for query in queries:
        best, names = 0, []
        for name, meanings in vocabulary.items():
            cover = max((len(words) for words in map(_words, meanings) if _contains(query, words)), default=0)
            if cover > best:
                best, names = cover, [name]
            elif cover == best and cover:
                names.append(name)
        if names:
            return tuple(names)
    return ()


def _contains(query: tuple[str, ...], words: tuple[str, ...]) -> bool:
    """Whether `words` occur in `query` in a row."""
    n = len(words)
    return n > 0 and any(query[i:i + n] == words for i in range(len(query) - n + 1))


# ---------------------------------------------------------------------------------------------- theme


@dataclass(frozen=True, eq=False)  # hashed by identity: a key of _blended_library's cache
class ThemeLibrary:
    """Every icon of the theme at CANVAS size: colour pictures (legacy icons, compared in colour) and
    shapes (symbolic icons, drawn in the theme's text colour, compared as shapes)."""

    names: tuple[str, ...]  # one per picture
    has_colour: np.ndarray  # N bool: a colour picture (else a shape)
    aspect: np.ndarray  # N: width / height of the drawn part
    premultiplied: np.ndarray  # N x 3 x C*C: colour times alpha (zero for shapes)
    transparency: np.ndarray  # N x C*C: 1 - alpha
    shapes: np.ndarray  # N x C*C: alpha, centred (_centred)


def _trimmed(picture: Image.Image) -> Image.Image | None:
    """The drawn part of an RGBA picture (alpha over a quarter), with one transparent pixel around it: how
    a candidate's edge box frames an icon."""
    alpha = picture.getchannel("A").point(lambda a: 255 if a > 64 else 0)
    box = alpha.getbbox()
    if box is None:
        return None
    x0, y0, x1, y1 = box
    return picture.crop((x0 - 1, y0 - 1, x1 + 1, y1 + 1))


def _theme_files(theme: Path) -> list[tuple[str, bool, Path]]:
    files = []
    for size in LEGACY_SIZES:
        files += [(p.stem, True, p) for p in sorted((theme / f"{size}x{size}" / "legacy").glob("*.png"))
                  if not p.name.endswith(".symbolic.png")]
    for size in SYMBOLIC_SIZES:
        files += [(p.name.removesuffix("-symbolic.symbolic.png"), False, p)
                  for p in sorted((theme / f"{size}x{size}").glob("*/*-symbolic.symbolic.png"))]
    return files


def _centred(vectors: np.ndarray) -> np.ndarray:
    """Rows minus their mean, divided by their norm: the dot product of two such rows is their normalized
    cross-correlation."""
    vectors = vectors - vectors.mean(axis=-1, keepdims=True)
    return vectors / np.maximum(np.linalg.norm(vectors, axis=-1, keepdims=True), 1e-6)


@lru_cache(maxsize=2)
def theme_library(theme: Path | None = None) -> ThemeLibrary | None:
    """The installed theme's icons (synth_theme_icons._theme_dir; VLAGENT_ICON_THEME overrides), read once
    (about half a second); None where no theme is installed."""
    theme = theme or _theme_dir()
    if theme is None:
        return None
    names, pixels, has_colour, aspects = [], [], [], []
    for name, legacy, path in _theme_files(theme):
        with Image.open(path) as im:
            drawn = _trimmed(im.convert("RGBA"))
        if drawn is None:
            continue
        names.append(name)
        pixels.append(np.asarray(drawn.resize((CANVAS, CANVAS), Image.BILINEAR), dtype=np.float32) / 255)
        has_colour.append(legacy)
        aspects.append(drawn.width / drawn.height)
    if not names:
        return None
    rgba = np.stack(pixels).reshape(len(names), CANVAS * CANVAS, 4).transpose(0, 2, 1)  # N x 4 x C*C
    colour = np.array(has_colour)
    alpha = rgba[:, 3]
    return ThemeLibrary(tuple(names), colour, np.array(aspects, dtype=np.float32),
                        rgba[:, :3] * alpha[:, None] * colour[:, None, None], 1 - alpha, _centred(alpha))


# ------------------------------------------------------------------------------------------ candidates

# An edge box frames an icon give or take a pixel on each side (a faint shadow shows on a light
# background, not on a dark one): a candidate is also cut with its sides moved by these (left or top,
# right or bottom) pixels, per axis.
FRAMINGS = ((0, 0), (1, 0), (0, -1), (1, -1), (-1, 1))
ONE_INK_TOLERANCE = 0.12  # how far off the background-ink line a symbolic icon's pixel may be
FIRST_PASS = 0.3  # below MIN_SCORE: a candidate whose plain framing is this close is cut in all framings


@dataclass(frozen=True)
class IconCandidate:
    """A blob of the screenshot cut in one or more framings, each resized to CANVAS."""

    boxes: tuple[tuple[int, int, int, int], ...]  # pixels, x0 y0 x1 y1 (exclusive), one per framing
    colour: np.ndarray  # F x 3*C*C, centred (_centred)
    contrast: np.ndarray  # F x C*C: each pixel's distance from the background colour, centred
    background: tuple[float, float, float]  # 0..1, the median of the plain framing's border
    one_ink: bool  # drawn in one colour over the background, as a symbolic icon is

    @staticmethod
    def cut(rgb: np.ndarray, box: tuple[int, int, int, int], framings=((0, 0),)) -> "IconCandidate":
        x0, y0, x1, y1 = box
        crop = rgb[y0:y1, x0:x1]
        ring = np.concatenate([crop[0], crop[-1], crop[:, 0], crop[:, -1]])
        background = np.median(ring, axis=0).astype(np.float32) / 255
        height, width = rgb.shape[:2]
        boxes = [(max(x0 + dx0, 0), max(y0 + dy0, 0), min(x1 + dx1, width), min(y1 + dy1, height))
                 for dx0, dx1 in framings for dy0, dy1 in framings]
        boxes = [b for b in boxes if b[2] - b[0] >= 2 and b[3] - b[1] >= 2]
        colours = np.stack([_resized(rgb, b) for b in boxes])  # F x 3 x C*C
        contrast = np.abs(colours - background[None, :, None]).max(axis=1)
        return IconCandidate(tuple(boxes), _centred(colours.reshape(len(boxes), -1)), _centred(contrast),
                             tuple(float(v) for v in background), _one_ink(crop / 255, background))


def _one_ink(crop: np.ndarray, background: np.ndarray) -> bool:
    """Whether the crop's pixels are blends of the background with one ink colour (the pixel farthest from
    the background): a symbolic icon, antialiased. A colour icon (a blue floppy disk with a white label)
    has pixels far off that line."""
    pixels = crop.reshape(-1, 3) - background
    distance = np.linalg.norm(pixels, axis=1)
    if distance.max() < 0.1:
        return True
    ink = pixels[distance.argmax()] / distance.max()
    off_line = np.linalg.norm(pixels - np.outer(pixels @ ink, ink), axis=1)
    drawn = distance > 0.1
    return float((off_line[drawn] > ONE_INK_TOLERANCE).mean()) < 0.1


def _resized(rgb: np.ndarray, box: tuple[int, int, int, int]) -> np.ndarray:
    x0, y0, x1, y1 = box
    picture = Image.fromarray(rgb[y0:y1, x0:x1]).resize((CANVAS, CANVAS), Image.BILINEAR)
    return np.asarray(picture, dtype=np.float32).reshape(CANVAS * CANVAS, 3).T / 255


def icon_boxes(image: Image.Image, lines: Sequence, unit: float) -> list[tuple[int, int, int, int]]:
    """The boxes (pixels) of the screenshot's blobs the size of an icon (SIZE_RANGE text heights) that are
    not text: edges, joined across 1-px gaps, whose centre is outside every text segment (text_boxes)."""
    written = [box for box, _ in text_boxes(image, lines, unit)]
    return [box for box in screen_blobs(image, unit) if not any(centre_inside(box, text) for text in written)]


def text_boxes(image: Image.Image, lines: Sequence, unit: float
               ) -> list[tuple[tuple[float, float, float, float], str]]:  # fmt: skip
    """(pixel box, text) of the segments of `lines` that are text: two or more letters or digits (OCR reads
    some icons as one character, "口" for a maximize square, "X" for close), and not a row of icons OCR
    read as letters (_icons_read_as_text)."""
    width, height = image.size
    blobs = screen_blobs(image, unit)
    out = []
    for line in lines:
        if sum(ch.isalnum() for ch in line.text) < 2:
            continue
        box = (line.box[0] * width, line.box[1] * height, line.box[2] * width, line.box[3] * height)
        if not _icons_read_as_text(image, box, line.text, [blob for blob in blobs if centre_inside(blob, box)], unit):
            out.append((box, line.text.strip()))
    return out


ICON_ROW_GAP = 0.5  # text heights between neighbouring blobs of a segment that make them icons, not words


def _icons_read_as_text(image: Image.Image, box: tuple[float, float, float, float], text: str,
                        blobs: Sequence[tuple[int, int, int, int]], unit: float) -> bool:
    """Whether the OCR segment at `box` (pixels) reading `text` is a row of icons OCR read as letters (a
    toolbar as ">6I三K"): its icon-sized blobs, joined where less than ICON_ROW_GAP text heights apart (a
    pause icon's two bars), are more pieces than OCR read words, none wider than two text heights, with
    nothing drawn between them. The words of a text lie a space apart (a quarter text height) and join
    into one piece, or OCR reads the wider gap as a space ("View Insert" of a small menu bar); a large
    title's letters are blobs too, but with its other letters between them."""
    from vlagent.grounding.controls import colour_edges

    pieces = joined_across(blobs, ICON_ROW_GAP * unit)
    if len(pieces) < 2 or len(pieces) <= len(text.split()) or any(p[2] - p[0] > 2 * unit for p in pieces):
        return False
    x0, y0, x1, y1 = (int(round(v)) for v in box)
    inked = colour_edges(image.crop((x0, y0, x1, y1)), EDGE_CONTRAST).any(axis=0)
    return not any(inked[max(0, a[2] + 1 - x0):max(0, b[0] - 1 - x0)].any() for a, b in zip(pieces, pieces[1:]))


def joined_across(blobs: Sequence[tuple[int, int, int, int]], gap: float) -> list[tuple[int, int, int, int]]:
    """Blobs of one row joined where less than `gap` pixels lie between one and the next (overlapping ones
    too: an upload icon's arrow and tray), left to right."""
    pieces: list[tuple[int, int, int, int]] = []
    for box in sorted(blobs):
        if pieces and box[0] - pieces[-1][2] < gap:
            last = pieces[-1]
            pieces[-1] = (last[0], min(last[1], box[1]), max(last[2], box[2]), max(last[3], box[3]))
        else:
            pieces.append(tuple(box))
    return pieces


def centre_inside(box: Sequence[float], outer: Sequence[float]) -> bool:
    """Whether the centre of `box` lies in `outer` (boxes in one unit, x0 y0 x1 y1)."""
    return outer[0] <= (box[0] + box[2]) / 2 <= outer[2] and outer[1] <= (box[1] + box[3]) / 2 <= outer[3]


_SCREEN_BLOBS = ScreenCache(4)  # screens whose blobs are kept: the theme search and the recognizer share them


def screen_blobs(image: Image.Image, unit: float) -> list[tuple[int, int, int, int]]:
    """Every icon-sized blob of the screenshot, text or not; found once per screen content (about 0.1 s
    at 1280x720): the same list object while the screen stays cached."""
    return _SCREEN_BLOBS.get(image, round(unit, 2), lambda: _find_blobs(image, unit))


def _find_blobs(image: Image.Image, unit: float) -> list[tuple[int, int, int, int]]:
    from scipy import ndimage

    from vlagent.grounding.controls import colour_edges

    edges = colour_edges(image, EDGE_CONTRAST)
    labels, _ = ndimage.label(ndimage.binary_dilation(edges, structure=np.ones((3, 3), dtype=bool)))
    low, high = SIZE_RANGE[0] * unit, SIZE_RANGE[1] * unit
    out = []
    for found in ndimage.find_objects(labels * edges):
        if found is None:
            continue
        rows, cols = found
        w, h = cols.stop - cols.start, rows.stop - rows.start
        if low <= max(w, h) <= high and min(w, h) >= 2:
            out.append((cols.start, rows.start, cols.stop, rows.stop))
    return out


# ------------------------------------------------------------------------------------------- matching


def _composited(library: ThemeLibrary, background: tuple[float, float, float], rows: np.ndarray) -> np.ndarray:
    """The colour pictures of `rows` composited on one background colour, centred (len(rows) x 3*C*C).
    The whole library's are cached per background (rounded): a screen's icons mostly share a few."""
    if len(rows) < len(library.names):
        return _blend(library, background, rows)
    return _blended_library(library, tuple(round(v, 2) for v in background))


def _blend(library: ThemeLibrary, background: Sequence[float], rows: np.ndarray) -> np.ndarray:
    composite = library.premultiplied[rows] + library.transparency[rows, None] * np.array(
        background, np.float32)[:, None]
    return _centred(composite.reshape(len(rows), -1))


@lru_cache(maxsize=16)
def _blended_library(library: ThemeLibrary, background: tuple[float, float, float]) -> np.ndarray:
    return _blend(library, background, np.arange(len(library.names)))


def similarity(candidate: IconCandidate, library: ThemeLibrary, rows: np.ndarray | None = None) -> np.ndarray:
    """How much the candidate looks like each theme picture (rows of the library, all by default), F x N for
    its F framings, as normalized cross-correlation: colour pictures composited on the candidate's
    background against its colours, shapes against its contrast with the background (only for a
    candidate drawn in one ink: a shape says nothing of colours). Pictures whose drawn part has another
    aspect (by more than a third) score -1."""
    rows = np.arange(len(library.names)) if rows is None else rows
    colour = library.has_colour[rows]
    scores = np.empty((len(candidate.boxes), len(rows)), dtype=np.float32)
    if colour.any():
        scores[:, colour] = candidate.colour @ _composited(library, candidate.background, rows)[colour].T
    if (~colour).any():
        scores[:, ~colour] = candidate.contrast @ library.shapes[rows[~colour]].T if candidate.one_ink else -1.0
    sides = np.array([(x1 - x0, y1 - y0) for x0, y0, x1, y1 in candidate.boxes], dtype=np.float32)
    ratio = library.aspect[rows][None] / (sides[:, 0] / sides[:, 1])[:, None]
    scores[(ratio > 4 / 3) | (ratio < 3 / 4)] = -1.0
    return scores


@dataclass(frozen=True)
class IconMatch:
    name: str  # the freedesktop name matched
    box: Box  # normalized
    score: float  # normalized cross-correlation, up to 1

    @property
    def point(self) -> tuple[float, float]:
        return (self.box[0] + self.box[2]) / 2, (self.box[1] + self.box[3]) / 2


def find_icons(image: Image.Image, instruction: str, lines: Sequence, unit: float) -> list[IconMatch]:
    """The places showing the icon the instruction names, found by its look in the installed theme, best
    first: those among the VERIFIED candidates most like it (MIN_SCORE or more) that look more like it than
    like any other icon of the theme, within MARGIN. Empty when no known icon is named, no theme is
    installed, or nothing on the screen is that icon. Several are found where the screen shows the icon
    several times (a "+" in each spin button)."""
    names = icon_names_for(instruction)
    library = theme_library() if names else None
    if library is None:
        return []
    is_wanted = np.isin(np.array(library.names), names)
    wanted = np.flatnonzero(is_wanted)
    if wanted.size == 0:
        return []
    rgb = np.asarray(image.convert("RGB"))
    scored = []
    for box in icon_boxes(image, lines, unit):
        if similarity(IconCandidate.cut(rgb, box), library, wanted).max() < FIRST_PASS:
            continue
        candidate = IconCandidate.cut(rgb, box, FRAMINGS)
        scores = similarity(candidate, library, wanted)
        framing, top = np.unravel_index(int(scores.argmax()), scores.shape)
        if scores[framing, top] >= MIN_SCORE:
            scored.append((float(scores[framing, top]), library.names[wanted[top]], candidate, framing))
    width, height = image.size
    found = []
    for score, name, candidate, framing in sorted(scored, key=lambda s: -s[0])[:VERIFIED]:
        if similarity(candidate, library)[:, ~is_wanted].max(initial=-1.0) <= score + MARGIN:
            x0, y0, x1, y1 = candidate.boxes[framing]
            found.append(IconMatch(name, (x0 / width, y0 / height, x1 / width, y1 / height), score))
    return found


__all__ = ["ICON_WORDS", "IconMatch", "best_covering", "find_icons", "icon_boxes", "icon_names_for",
           "instruction_words", "centre_inside", "joined_across", "screen_blobs", "text_boxes", "theme_library"]
