"""Lone symbols found by their shape: a calculator's "=", "-" and "/" keys, a "+" that adds a row.

OCR reads words; a symbol standing alone it mostly misses, even enlarged (galculator's keys: "*", "%"
and "+" are read at twice the size, "=", "-", "/", "(", ")" and "." are not). An instruction naming a
symbol, as itself ("the = button", "press '-'") or by its name ("the equals key", "the minus button"),
has it looked for among the screen's small blobs of ink that stand alone: no other blob beside them on
their row (a "-" in "e-mail", the "=" of "x = 5"), no OCR line across them reading more, and a
contrast with their background of INK_CONTRAST or more (not a disabled day of a calendar). Each such
blob, squared up and scaled to SIDE pixels, is compared (normalized cross-correlation) with everything
it might be: the symbols, digits and letters drawn in the installed fonts at screen sizes, and the
small shapes of controls (a drop-down's triangle, a menu's three bars, a close cross), of about its
size and proportions. It answers when what it looks most like is one of the symbols named, closely
enough (MIN_SCORE). A point, drawn like a list's bullet, and any speck under MIN_SIDE pixels count
only on a key: edges close them in on all four sides. Coordinates out are normalized to the image, as
everywhere in vlagent (DESIGN.md).
"""
from __future__ import annotations

import re
import string
from functools import lru_cache
from pathlib import Path
from typing import Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from vlagent.grounding.icon_finder import IconMatch
from vlagent.grounding.ocr import ScreenCache

SIDE = 16  # px: a blob and each drawn character are compared at this size, squared up
MIN_SCORE = 0.75  # normalized cross-correlation a blob reaches with the symbol it is taken for
SIZE_RANGE = (0.1, 3.0)  # a symbol's larger side, in text heights (a decimal point to a big key's "=")
MIN_SIDE = 4  # px: a smaller speck, and a point of any size, is a symbol only on a key (an outline around it)
KEY_SIDE = 6.0  # text heights: the widest key a point may sit on
SIZE_AGREEMENT = 2.5  # how many times larger or smaller than the drawn symbol (in text heights) a blob may be
ASPECT = 1.8  # how many times wider or narrower for its height a blob may be than the character it is taken for
NEIGHBOUR_GAP = 0.45  # text heights: a blob this close to another on its row is part of a word or a number
INK = 0.35  # share of a blob's strongest contrast with its background that counts as its ink
EDGE_CONTRAST = 24  # grey levels between neighbouring pixels that make a glyph's edge
INK_CONTRAST = 48  # grey levels between a symbol's ink and its background at least

# The symbols an instruction may name, each with the characters that draw it (a minus is drawn as a
# hyphen or as U+2212; "times" as an asterisk, a cross or a letter x).
SYMBOLS: dict[str, frozenset[str]] = {
    "=": frozenset("="), "+": frozenset("+"), "-": frozenset("-−–"), "*": frozenset("*×"),
    "/": frozenset("/÷"), "%": frozenset("%"), ".": frozenset("."), "(": frozenset("("), ")": frozenset(")"),
    "±": frozenset("±"), "<": frozenset("<"), ">": frozenset(">"), "^": frozenset("^"), "!": frozenset("!"),
}
SYMBOLS["−"] = SYMBOLS["–"] = SYMBOLS["-"]
SYMBOLS["×"] = SYMBOLS["*"] | frozenset("x")
SYMBOLS["÷"] = SYMBOLS["/"]
_TIMES = SYMBOLS["×"]
NAMES: dict[str, frozenset[str]] = {
    **{name: SYMBOLS["="] for name in ("equals", "equal", "equal sign", "equals sign", "equal to")},
    **{name: SYMBOLS["+"] for name in ("plus", "plus sign", "addition")},
    **{name: SYMBOLS["-"] for name in ("minus", "minus sign", "subtract", "subtraction", "hyphen", "dash")},
    **{name: _TIMES for name in ("times", "multiply", "multiplication", "multiplied by", "multiplication sign")},
    "asterisk": SYMBOLS["*"],
    **{name: SYMBOLS["/"] for name in ("divide", "division", "divided by", "division sign", "slash",
                                       "forward slash", "obelus")},
    **{name: SYMBOLS["%"] for name in ("percent", "percentage", "per cent", "percent sign")},
    **{name: SYMBOLS["."] for name in ("decimal point", "decimal", "point", "dot", "period", "decimal separator")},
    **{name: SYMBOLS["("] for name in ("open parenthesis", "left parenthesis", "opening parenthesis",
                                       "open bracket", "left bracket", "opening bracket")},
    **{name: SYMBOLS[")"] for name in ("close parenthesis", "right parenthesis", "closing parenthesis",
                                       "close bracket", "right bracket", "closing bracket")},
    **{name: SYMBOLS["±"] for name in ("plus minus", "plus-minus", "plus/minus", "change sign", "sign change",
                                       "negate")},
}
# Words around a symbol's name that say where or what kind of thing it is, not which symbol.
_FILLER = frozenset("a an the click tap press hit push on button key sign symbol operator icon calculator "
                    "calculator's of".split())
_EDGE_QUOTES = "'\"“”‘’`,"
# Every character a blob may look like: symbols, and what a symbol must not be taken for: digits, letters,
# and the small shapes of controls (a drop-down's triangle, a menu's three bars, a close cross). A point
# alone is drawn like a bullet: it counts only on a key.
POOL = ("=+-−*×/÷%.()±<>^!?#&@:;[]{}|~_" + string.digits + string.ascii_letters
        + "▲▼◀▶▴▾◂▸■□●○◆◇≡☰✕✖✓✔…←→↑↓")
# Keys written in a few symbols that join into one blob ("+/-", "<-"), drawn whole beside the characters.
KEY_TEXTS = ("+/-", "<-", "->")
FONT_FILES = ("dejavu/DejaVuSans.ttf", "dejavu/DejaVuSans-Bold.ttf", "dejavu/DejaVuSansMono.ttf",
              "dejavu/DejaVuSerif.ttf", "liberation/LiberationSans-Regular.ttf", "liberation2/LiberationSans-Regular.ttf",
              "noto/NotoSans-Regular.ttf", "cantarell/Cantarell-Regular.otf", "ubuntu/Ubuntu-R.ttf")
FONT_FOLDERS = (Path("/usr/share/fonts/truetype"), Path("/usr/share/fonts/opentype"), Path("/usr/share/fonts"))
# px: the font sizes characters are drawn at (small ones antialiased as a screen draws its keys' labels)
DRAWN_AT = (10, 13, 16, 22, 40)


def _symbol_words(instruction: str) -> list[str]:
    """The instruction's words less quotes and the words around a symbol's name (_FILLER)."""
    words = []
    for token in instruction.split():
        token = token.strip(_EDGE_QUOTES)
        if len(token) > 1:
            token = token.rstrip(".:!?").lower()
        if token and token not in _FILLER:
            words.append(token)
    return words


def named_symbols(instruction: str) -> frozenset[str]:
    """The characters that draw the symbol the instruction names ("the = button", "press '-'", "the minus
    key", "click the decimal point"), or an empty set where it names no symbol alone."""
    words = _symbol_words(instruction)
    if len(words) == 1 and words[0] in SYMBOLS:
        return SYMBOLS[words[0]]
    return NAMES.get(" ".join(words), frozenset())


# Keys written as several symbols, which OCR reads as they are, by their names ("the backspace key": "<-").
WRITTEN_AS: dict[str, tuple[str, ...]] = {
    "backspace": ("<-", "<--", "←", "⌫"),
    **{name: ("+/-", "±", "+-") for name in ("plus minus", "plus-minus", "plus/minus", "change sign", "sign change",
                                             "negate")},
}


def symbol_texts(instruction: str) -> tuple[str, ...]:
    """How a key written in symbols only that the instruction names may read ("the +/- button": "+/-";
    "the backspace key": "<-", "←", "⌫"); () where it names none."""
    words = _symbol_words(instruction)
    if len(words) == 1 and len(words[0]) > 1 and not any(ch.isalnum() for ch in words[0]):
        return (words[0],)
    return WRITTEN_AS.get(" ".join(words), ())


def written_symbols(texts: Sequence[str], lines: Sequence) -> list[tuple[float, float, float, float]]:
    """The boxes of OCR lines reading one of `texts` exactly (spaces aside)."""
    wanted = {text.replace(" ", "") for text in texts}
    return [tuple(line.box) for line in lines if line.text.replace(" ", "") in wanted]


def ink_box(ink: np.ndarray) -> tuple[int, int, int, int] | None:
    """Where a glyph's ink (0-1) is: (top, left, bottom, right), end exclusive; None where it has none."""
    rows, cols = np.flatnonzero(ink.max(axis=1) >= INK), np.flatnonzero(ink.max(axis=0) >= INK)
    if rows.size == 0:
        return None
    return int(rows[0]), int(cols[0]), int(rows[-1]) + 1, int(cols[-1]) + 1


def squared(ink: np.ndarray) -> np.ndarray | None:
    """A glyph's ink (0-1, any size) cut to where it is, centred in a square and scaled to SIDE x SIDE, as a
    centred unit vector; None where there is no ink."""
    where = ink_box(ink)
    if where is None:
        return None
    top, left, bottom, right = where
    ink = ink[top:bottom, left:right]
    side = max(ink.shape)
    square = np.zeros((side, side), dtype=np.float32)
    top, left = (side - ink.shape[0]) // 2, (side - ink.shape[1]) // 2
    square[top:top + ink.shape[0], left:left + ink.shape[1]] = ink
    small = np.asarray(Image.fromarray(square, mode="F").resize((SIDE, SIDE), Image.BOX), dtype=np.float32)
    vector = _softened(small).ravel()
    vector = vector - vector.mean()
    norm = float(np.linalg.norm(vector))
    return vector / norm if norm > 0 else None


def aspect(ink: np.ndarray) -> float:
    """Width over height of a glyph's ink (where it has some)."""
    top, left, bottom, right = ink_box(ink)
    return (right - left) / (bottom - top)


def _softened(picture: np.ndarray) -> np.ndarray:
    """A light blur (1-2-1 both ways): strokes one pixel thicker or thinner than the drawn ones still match."""
    padded = np.pad(picture, 1, mode="edge")
    across = (padded[:, :-2] + 2 * padded[:, 1:-1] + padded[:, 2:]) / 4
    return (across[:-2] + 2 * across[1:-1] + across[2:]) / 4


class Templates:
    """Every POOL character and KEY_TEXTS string drawn in each installed font: `vectors` (n, SIDE*SIDE), the character of each
    row, its larger side in ems (how big it is beside the text around it) and its width over its height."""

    def __init__(self, fonts: Sequence[ImageFont.FreeTypeFont]) -> None:
        vectors, chars, sizes, aspects = [], [], [], []
        for font in fonts:
            size = font.size
            for char in (*POOL, *KEY_TEXTS):
                picture = Image.new("L", (size * (2 + len(char)), size * 3), 0)
                ImageDraw.Draw(picture).text((size, size), char, fill=255, font=font)
                ink = np.asarray(picture, dtype=np.float32) / 255.0
                vector = squared(ink)
                if vector is None:  # the font has no such glyph
                    continue
                top, left, bottom, right = ink_box(ink)
                vectors.append(vector)
                chars.append(char)
                sizes.append(max(bottom - top, right - left) / size)
                aspects.append((right - left) / (bottom - top))
        for char, ink in _triangles():  # a toolkit's own triangles: flatter or taller than a font's
            top, left, bottom, right = ink_box(ink)
            vectors.append(squared(ink))
            chars.append(char)
            sizes.append(max(bottom - top, right - left) / TRIANGLES_BESIDE)
            aspects.append((right - left) / (bottom - top))
        self.vectors = np.stack(vectors)
        self.chars = np.array(chars)
        self.sizes = np.array(sizes, dtype=np.float32)
        self.aspects = np.array(aspects, dtype=np.float32)


TRIANGLES_BESIDE = 14  # px: the text height the drawn triangles' sizes are taken beside


def _triangles() -> list[tuple[str, np.ndarray]]:
    """Filled triangles pointing four ways, as wide as 0.6 to 2.2 times their height, 5 to 20 px across
    (drawn four times larger and scaled down: antialiased like a screen's)."""
    out = []
    for across in (5, 8, 12, 20):
        for shape in (0.6, 1.0, 1.5, 2.2):
            width, height = across, max(3, round(across / shape))
            picture = Image.new("L", (width * 4 + 8, height * 4 + 8), 0)
            w, h = width * 4, height * 4
            ImageDraw.Draw(picture).polygon([(4, 4), (4 + w, 4), (4 + w / 2, 4 + h)], fill=255)
            down = np.asarray(picture.resize((width + 2, height + 2), Image.BOX), dtype=np.float32) / 255.0
            out += [("▼", down), ("▲", down[::-1]), ("▶", np.ascontiguousarray(down.T)),
                    ("◀", np.ascontiguousarray(down.T[:, ::-1]))]
    return out


@lru_cache(maxsize=1)
def templates() -> Templates:
    files = [folder / name for name in FONT_FILES for folder in FONT_FOLDERS if (folder / name).is_file()]
    fonts = [ImageFont.truetype(str(file), size) for file in files for size in DRAWN_AT]
    return Templates(fonts or [ImageFont.load_default(size) for size in DRAWN_AT])


_SCREEN_GLYPHS = ScreenCache(4)
_SCREEN_EDGES = ScreenCache(4)


def _edges(image: Image.Image) -> np.ndarray:
    """The screen's edges (controls.colour_edges at EDGE_CONTRAST), found once per screen content."""
    from vlagent.grounding.controls import colour_edges

    return _SCREEN_EDGES.get(image, EDGE_CONTRAST, lambda: colour_edges(image, EDGE_CONTRAST))


def glyph_boxes(image: Image.Image, unit: float) -> list[tuple[int, int, int, int]]:
    """Pixel boxes of the screen's blobs of ink: edges joined across gaps of about a quarter of a text
    height (the two bars of an "=" are one blob, so are the letters of a word), symbol-sized or not."""
    return _SCREEN_GLYPHS.get(image, round(unit, 2), lambda: _glyph_boxes(image, unit))


def _glyph_boxes(image: Image.Image, unit: float) -> list[tuple[int, int, int, int]]:
    from scipy import ndimage

    edges = _edges(image)
    reach = max(3, int(round(unit / 4)) | 1)
    labels, _ = ndimage.label(ndimage.binary_dilation(edges, structure=np.ones((reach, reach), dtype=bool)))
    return [(cols.start, rows.start, cols.stop, rows.stop)
            for rows, cols in (f for f in ndimage.find_objects(labels * edges) if f is not None)]


def _alone(index: int, boxes: np.ndarray, lines: Sequence, size: tuple[int, int], unit: float) -> bool:
    """Whether blob `index` of `boxes` (n x 4 pixel boxes) stands alone: no other blob within NEIGHBOUR_GAP
    text heights on its row (an outline around it, its key, does not count), and no OCR line across it
    that reads a word there (two letters or digits) or reaches a text height further."""
    x0, y0, x1, y1 = boxes[index]
    middle, gap = (y0 + y1) / 2, NEIGHBOUR_GAP * unit
    centres = (boxes[:, 1] + boxes[:, 3]) / 2
    around = (boxes[:, 0] <= x0) & (boxes[:, 1] <= y0) & (boxes[:, 2] >= x1) & (boxes[:, 3] >= y1)
    on_row = ((boxes[:, 1] <= middle) & (middle <= boxes[:, 3])) | ((y0 <= centres) & (centres <= y1))
    near = on_row & ~around & (boxes[:, 0] < x1 + gap) & (boxes[:, 2] > x0 - gap)
    near[index] = False
    if near.any():
        return False
    width, height = size
    cx, cy = (x0 + x1) / 2 / width, middle / height
    for line in lines:
        lx0, ly0, lx1, ly1 = line.box
        if lx0 <= cx <= lx1 and ly0 <= cy <= ly1:
            if (lx1 - lx0) * width > (x1 - x0) + unit or sum(ch.isalnum() for ch in line.text) >= 2:
                return False
    return True


def _on_a_key(box: tuple[int, int, int, int], edges: np.ndarray, unit: float) -> bool:
    """Whether an edge closes the blob in on all four sides within KEY_SIDE / 2 text heights: it sits on a
    key (outlined keys side by side join into one blob, so their outlines are looked for in the pixels)."""
    x0, y0, x1, y1 = box
    cx, cy, reach = (x0 + x1) // 2, (y0 + y1) // 2, int(KEY_SIDE / 2 * unit)
    return (edges[cy, max(0, x0 - reach):max(0, x0 - 1)].any() and edges[cy, x1 + 1:x1 + reach].any()
            and edges[max(0, y0 - reach):max(0, y0 - 1), cx].any() and edges[y1 + 1:y1 + reach, cx].any())


def on_a_key(image: Image.Image, box: tuple[float, float, float, float], unit: float) -> bool:
    """Whether what lies in `box` (normalized: a label OCR read) sits on a key or a button: edges close it in
    on all four sides within KEY_SIDE / 2 text heights (a display's "0" and a menu's "Save" are not)."""
    edges = _edges(image)
    width, height = image.size
    pixels = (int(box[0] * width), int(box[1] * height), int(np.ceil(box[2] * width)), int(np.ceil(box[3] * height)))
    return _on_a_key(pixels, edges, unit)


def _ink(grey: np.ndarray, box: tuple[int, int, int, int]) -> np.ndarray | None:
    """A blob's contrast with its background (the median of a 2-px ring around its box), 0-1; None where
    it is fainter than INK_CONTRAST (a disabled day of a calendar, a speck)."""
    x0, y0, x1, y1 = box
    ring = grey[max(0, y0 - 2):y1 + 2, max(0, x0 - 2):x1 + 2]
    border = np.concatenate([ring[0], ring[-1], ring[:, 0], ring[:, -1]])
    contrast = np.abs(grey[y0:y1, x0:x1] - np.median(border))
    strongest = float(contrast.max())
    return contrast / strongest if strongest >= INK_CONTRAST else None


def find_symbols(image: Image.Image, symbols: frozenset[str], lines: Sequence, unit: float) -> list[IconMatch]:
    """The places of lone blobs that look most like one of `symbols` (named_symbols), best first."""
    if not symbols:
        return []
    library = templates()
    wanted = np.isin(library.chars, list(symbols))
    if not wanted.any():
        return []
    width, height = image.size
    grey = np.asarray(image.convert("L"), dtype=np.float32)
    edges = _edges(image)
    boxes = np.array(glyph_boxes(image, unit), dtype=np.int64).reshape(-1, 4)
    sides = np.maximum(boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1])
    found = []
    for index in np.flatnonzero((sides >= SIZE_RANGE[0] * unit) & (sides <= SIZE_RANGE[1] * unit)):
        box, side = tuple(int(v) for v in boxes[index]), int(sides[index])
        if not _alone(index, boxes, lines, image.size, unit):
            continue
        ink = _ink(grey, box)
        vector = None if ink is None else squared(ink)
        if vector is None:
            continue
        scores = library.vectors @ vector
        ratio = (side / unit) / library.sizes
        shape = aspect(ink) / library.aspects
        scores[(ratio > SIZE_AGREEMENT) | (ratio < 1 / SIZE_AGREEMENT) | (shape > ASPECT) | (shape < 1 / ASPECT)] = -1.0
        best = int(scores.argmax())
        top, left, bottom, right = ink_box(ink)
        speck = library.chars[best] == "." or max(bottom - top, right - left) < MIN_SIDE
        if wanted[best] and scores[best] >= MIN_SCORE and (not speck or _on_a_key(box, edges, unit)):
            x0, y0, x1, y1 = box
            found.append(IconMatch(f"symbol {library.chars[best]}", (x0 / width, y0 / height, x1 / width, y1 / height),
                                   float(scores[best])))
    return sorted(found, key=lambda m: -m.score)


__all__ = ["NAMES", "SYMBOLS", "WRITTEN_AS", "find_symbols", "glyph_boxes", "named_symbols", "on_a_key",
           "symbol_texts", "templates", "written_symbols"]
