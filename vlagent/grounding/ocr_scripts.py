"""Text in scripts the bundled OCR cannot read, read again with tesseract.

rapidocr's bundled models read Chinese and Latin letters only: a Russian "Сохранить" comes back as
Latin look-alikes ("CoxpaHnTb"), so an instruction in Russian matches nothing on a Russian screen. Where
the instruction is written in such a script and tesseract has a model for it (Debian:
tesseract-ocr-rus and its like), the lines rapidocr found (neighbours on a row joined) are read again by
tesseract: each line cut out with a margin, grey, dark text on light (inverted where the letters are
lighter than their background), stretched to black on white, dark shapes touching the cut's ends (a
button's surroundings) whitened, doubled in size; all of a screen's lines stacked into one strip so that
tesseract starts once (about a second for a screen of lines on two cores), and each word tesseract reads
put back on the line whose place in the strip it came from. A line keeps rapidocr's text where tesseract
reads nothing there. Results are cached per screen content, language and lines.

Without tesseract, or without its model for the script, lines stay as rapidocr read them.
"""
from __future__ import annotations

import io
import shutil
import subprocess
import unicodedata
from collections import OrderedDict
from dataclasses import replace
from functools import lru_cache
from typing import Sequence

import numpy as np
from PIL import Image, ImageOps

# The script of an instruction's letters -> tesseract's language for it (the ones rapidocr lacks).
SCRIPT_LANGUAGES = {"CYRILLIC": "rus", "GREEK": "ell", "ARABIC": "ara", "HEBREW": "heb", "DEVANAGARI": "hin",
                    "THAI": "tha", "HANGUL": "kor", "HIRAGANA": "jpn", "KATAKANA": "jpn"}
MIN_LETTERS = 3  # of a script in an instruction before its screen is read again
GAP = 16  # px between lines in the strip
SCALE = 2  # small UI text reads better enlarged
TIMEOUT = 30  # s for one tesseract run
_CACHE_SIZE = 16
_cache: "OrderedDict[tuple[str, str, int], list]" = OrderedDict()


def script_language(instruction: str) -> str | None:
    """The tesseract language of the script SCRIPT_LANGUAGES names that the most of the instruction's
    letters are written in, where that is a word's worth (MIN_LETTERS: "click the π key" is not Greek,
    "follow the Подробнее link" is Russian), or None."""
    counts: dict[str, int] = {}
    for ch in instruction:
        if not ch.isalpha():
            continue
        name = unicodedata.name(ch, "") if ord(ch) > 0x24F else ""
        for script, language in SCRIPT_LANGUAGES.items():
            if name.startswith(script):
                counts[language] = counts.get(language, 0) + 1
    if not counts:
        return None
    language = max(counts, key=counts.get)
    return language if counts[language] >= MIN_LETTERS else None


@lru_cache(maxsize=1)
def installed_languages() -> frozenset[str]:
    """tesseract's installed language models (empty without tesseract)."""
    if shutil.which("tesseract") is None:
        return frozenset()
    try:
        listed = subprocess.run(["tesseract", "--list-langs"], capture_output=True, text=True, timeout=TIMEOUT)
    except (OSError, subprocess.TimeoutExpired):
        return frozenset()
    return frozenset(line.strip() for line in listed.stdout.splitlines()[1:] if line.strip())


def lines_for(image: Image.Image, instruction: str, lines: Sequence) -> list:
    """The screen's text lines as the grounder should read them for this instruction: read again by
    tesseract where the instruction is in a script rapidocr cannot read and tesseract knows it."""
    from vlagent.model.grounder import target_words

    # the target's script: not "Москва" of "type Москва into the 电话 field"
    language = script_language(target_words(instruction))
    if language is None or language not in installed_languages() or not lines:
        return list(lines)
    from vlagent.grounding.ocr import content_key

    lines_key = hash(tuple((line.text, tuple(line.box)) for line in lines))
    key = (content_key(image if image.mode == "RGB" else image.convert("RGB")), language, lines_key)
    if key not in _cache:
        _cache[key] = reread(image, joined(lines, image.size), language)
        while len(_cache) > _CACHE_SIZE:
            _cache.popitem(last=False)
    return list(_cache[key])


def joined(lines: Sequence, image_size: tuple[int, int]) -> list:
    """Lines on one row less than 1.2 line heights apart joined into one: rapidocr's detector cuts words it
    cannot read at odd places ("Тёмная тема" as "TeMHa" and "TeMa")."""
    width, height = image_size
    out: list = []
    for line in sorted(lines, key=lambda ln: ln.box[0]):
        for i, last in enumerate(out):
            line_height = (last.box[3] - last.box[1]) * height
            shared = min(last.box[3], line.box[3]) - max(last.box[1], line.box[1])
            gap = (line.box[0] - last.box[2]) * width
            if shared >= 0.5 * min(last.box[3] - last.box[1], line.box[3] - line.box[1]) and -2 <= gap < 1.2 * line_height:
                box = (last.box[0], min(last.box[1], line.box[1]), max(last.box[2], line.box[2]),
                       max(last.box[3], line.box[3]))
                out[i] = replace(last, text=f"{last.text} {line.text}", box=box)
                break
        else:
            out.append(line)
    return sorted(out, key=lambda ln: (ln.box[1], ln.box[0]))


def reread(image: Image.Image, lines: Sequence, language: str) -> list:
    """Each line (normalized box, any object with .text and .box) with the text tesseract reads in its
    box, in `language` (and English), or its own text where tesseract reads nothing there."""
    if not lines:
        return []
    width, height = image.size
    grey = image.convert("L")
    crops, tops = [], []
    for line in lines:
        x0, y0, x1, y1 = line.box
        margin = round(0.6 * (y1 - y0) * height) + 2  # the detector may end a box before the last letter
        box = (max(0, int(x0 * width) - margin), max(0, int(y0 * height) - 3),
               min(width, int(x1 * width) + margin), min(height, int(y1 * height) + 3))
        box = (min(box[0], width - 1), min(box[1], height - 1), max(box[2], box[0] + 1), max(box[3], box[1] + 1))
        crop = grey.crop(box)
        if _light_on_dark(crop):
            crop = ImageOps.invert(crop)  # tesseract reads dark text on light
        crop = _without_frame(ImageOps.autocontrast(crop))  # black on white, as the strip's other lines
        crops.append(crop.resize((max(1, crop.width * SCALE), max(1, crop.height * SCALE)), Image.LANCZOS))
    strip = Image.new("L", (max(c.width for c in crops) + 2 * GAP, sum(c.height + GAP for c in crops) + GAP), 255)
    y = GAP
    for crop in crops:
        strip.paste(crop, (GAP, y))
        tops.append((y, y + crop.height))
        y += crop.height + GAP
    words = _tesseract_words(strip, language)
    read: list[list[tuple[int, str]]] = [[] for _ in lines]
    for left, top, bottom, text in words:
        middle = (top + bottom) / 2
        for i, (a, b) in enumerate(tops):
            if a - GAP / 2 <= middle <= b + GAP / 2:
                read[i].append((left, text))
                break
    return [replace(line, text=" ".join(t for _, t in sorted(got))) if got else line
            for line, got in zip(lines, read)]


INK_CONTRAST = 40  # grey levels from the background (the crop's median) that make a pixel ink


def _light_on_dark(crop: Image.Image) -> bool:
    """Whether a line's text is lighter than its background (the crop's median grey): white on a green
    button is, though the green is lighter than mid-grey."""
    grey = np.asarray(crop, dtype=np.int16)
    off = grey - int(np.median(grey))
    ink = off[np.abs(off) > INK_CONTRAST]
    if not ink.size:  # faint text (a disabled label): the background's own shade decides
        return float(np.median(grey)) < 128
    return float(ink.mean()) > 0


def _without_frame(crop: Image.Image) -> Image.Image:
    """The crop with the dark shapes touching its left or right edge made white: the margin around a line
    reaches past a button's ends, and its frame (the page around a light button, inverted) makes tesseract
    skip the line. Letters lie inside that margin (above and below it is a few pixels: a descender may
    touch the crop's bottom, and stays)."""
    from scipy import ndimage

    grey = np.asarray(crop).copy()
    labels, _ = ndimage.label(grey < 128)
    edge = np.unique(np.concatenate([labels[:, 0], labels[:, -1]]))
    grey[np.isin(labels, edge[edge > 0])] = 255
    return Image.fromarray(grey)


def _tesseract_words(strip: Image.Image, language: str) -> list[tuple[int, int, int, str]]:
    """(left, top, bottom, text) of each word tesseract reads on the strip (one block of lines)."""
    buffer = io.BytesIO()
    strip.save(buffer, "PNG")
    try:
        languages = f"{language}+eng" if "eng" in installed_languages() else language
        done = subprocess.run(["tesseract", "-", "-", "-l", languages, "--psm", "6", "tsv"],
                              input=buffer.getvalue(), capture_output=True, timeout=TIMEOUT)
    except (OSError, subprocess.TimeoutExpired):
        return []
    words = []
    for row in done.stdout.decode("utf-8", "replace").splitlines()[1:]:
        cells = row.split("\t")
        if len(cells) == 12 and cells[11].strip() and cells[10] not in ("-1",):
            left, top, _, h = (int(v) for v in cells[6:10])
            words.append((left, top, top + h, cells[11].strip()))
    return words


__all__ = ["SCRIPT_LANGUAGES", "installed_languages", "joined", "lines_for", "reread", "script_language"]
