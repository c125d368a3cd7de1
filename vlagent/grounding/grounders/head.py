"""The learned grounder: OCR text segments + the screenshot -> the grounder model's pointer head.

    grounder = HeadGrounder("path/to/grounder-folder")      # written by `vlagent train-grounding`
    result = grounder.ground(screenshot, "the Save button")

OCR runs once per screen (vlagent.grounding.ocr caches by content), so a second instruction on the
same screen costs only the model. A result below the model's confidence threshold, or where the
model's "nothing here" outweighs its best region, is `found=False` with the candidates kept.

Scripts: an instruction in a script the bundled OCR cannot read (Russian) has the screen's lines read
again by tesseract, where it is installed with that script's model (vlagent.grounding.ocr_scripts).

Text first: when what the instruction names is written exactly once on the screen (model.grounder.
written_target) and the instruction does not name a control that sits beside its label (a field, a
checkbox: there the text is the label, not the target), that text is the answer and the model is not
asked. On the real test applications this lifted the third run from 78.0 % to 79.7 %, buttons and
links to the OCR baseline's level (docs/grounding.md); `text_first=False` leaves every answer to the
model. Where the name is written several times, the model says which: even a refused answer is taken
when its point lies in one of those places (model.grounder.written_places).

A field's hint is no button: where the text found for an instruction asking for a button is written
inside a field from its left ("Search..." for "the search button"), it is not the answer, and the name
counts as not written (the icon is looked for). A search field whose hint is in other words ("Suchen..."
for "the search box") is the field nearest the screen's one magnifier icon, on its row.

Snap: for an instruction naming a field or a toggle (checkbox, radio button, switch), the model's point
is moved onto such a control found in the pixels, beside the instruction's label where it is written
(vlagent.grounding.controls); `snap=False` keeps the model's point. Likewise an option selected by its
written label ("select Weekly") is answered with the radio button just left of the label, where one is.

Other words: an instruction asking for a label in other words ("dismiss", "make a paper copy"), none of
whose own words is written, is answered with the label it meant in the training data (the lexicon
shipped beside the weights, lexicon.json, vlagent.grounding.phrase_lexicon), where that label is
written once on the screen. `text_first=False` turns it off too.

Places: an instruction naming its target by place among its like ("the third option", "the second menu in
the menu bar", "the last item in the list", "close the dialog") is answered by counting the screen's
rows and columns of text, toggles and icons (vlagent.grounding.ordinals); where the screen has no such
group, the model answers. A key of an on-screen keyboard ("the Q key", "press i on the keyboard") is found
by its place in the QWERTY rows (vlagent.grounding.keyboard). `places=False` leaves them to the model.

Theme icons: for an instruction naming a known desktop icon ("the Save As icon") that says "icon" (asked
before the text: "the search icon" is not the search field's "Search...") or whose words are nowhere on
the screen, the icon is looked for by its look in the installed icon theme
(vlagent.grounding.icon_finder). Where the theme has no such icon on the screen, the learned icon
recognizer shipped beside the weights (icons.safetensors, vlagent.grounding.icon_recognizer) names the
screen's icon-sized blobs ("the heart icon", "the settings icon": an application's own icons). One
place found is the answer; where the icon shows several times, the one nearest the model's point is.
A three-dot menu button ("the overflow menu", "more options") is found by
its geometry instead (vlagent.grounding.dots): its dots are too small and too far apart to be one blob.
A symbol alone ("the = button", "the minus key"), which OCR does not read, is found by its shape among
the screen's lone blobs (vlagent.grounding.glyphs). `icons=False` leaves icons and symbols to the model.

On a key: where a button's or key's name is written in several places and one of them sits on a key
(glyphs.on_a_key), that one is the answer ("the 0 key", not the calculator's display showing 0).

Rows: a target told apart by what else is written on its row ("the checkbox in the row with grace", "the
Edit button in Marie's row", "the email address of marie") is looked for on that row only, before the
text (vlagent.grounding.rows): a control of the kind named, a cell under its column's heading, text on
the row, or what these rules find on a copy of the screen showing the row alone. `places=False` turns it
off.

Large areas: "the text area", "the editor", "click in the document" name the largest flat area closed in
by edges (an editor's page; vlagent.grounding.areas), answered before any text is looked for ("click in
the document" is not the Document menu); `snap=False` turns it off with the other control rules.
"""
from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path
from typing import Sequence

from PIL import Image

from vlagent.grounding.areas import find_large_area, names_large_area
from vlagent.grounding.controls import (FIELD, HINT_ROOM, Snap, control_kind, find_controls, snap_to_control,
                                       text_height, toggle_of_label, written_as_hint)
from vlagent.grounding.dataset import OcrLine
from vlagent.grounding.dots import find_three_dots, names_three_dots
from vlagent.grounding.glyphs import find_symbols, named_symbols, on_a_key, symbol_texts, written_symbols
from vlagent.grounding.icon_finder import IconMatch
from vlagent.grounding.icon_recognizer import load_recognizer
from vlagent.grounding.phrase_lexicon import load_lexicon
from vlagent.grounding.rows import find_on_row, row_instruction
from vlagent.grounding.ocr_scripts import lines_for
from vlagent.grounding.grounders.base import Candidate, GroundingResult
from vlagent.model.grounder import (TextLine, exact_text, names_screen_text, names_text_only, names_unread_short_label,
                                    names_written_word, written_like, written_places, written_target)
from vlagent.model.grounding_head import HeadPrediction

ICON_RECOGNIZER_FILE = "icons.safetensors"  # beside a grounder's weights: the learned icon recognizer
LEXICON_FILE = "lexicon.json"  # beside a grounder's weights: other words for labels (phrase_lexicon.py)
_ICON_WORDS = re.compile(r"\b(?:icon|toolbar|tool bar)\b", re.IGNORECASE)
# Words of one OCR line further apart than this many line heights are separate labels (a toolbar or a
# menu bar read as one line); closer words stay one segment ("Log in", "Save as…").
SEGMENT_GAP = 0.8


def text_segments(lines: Sequence[OcrLine], words: Sequence[Sequence[OcrLine]], image_size: tuple[int, int]
                  ) -> list[TextLine]:  # fmt: skip
    """OCR lines cut where their words lie far apart: what the grounder reads as text tokens.
    image_size (width, height) turns the normalized heights and gaps into one unit."""
    width, height_px = image_size
    out: list[TextLine] = []
    for line, line_words in zip(lines, words):
        if len(line_words) <= 1:
            out.append(TextLine(line.text, tuple(line.box)))
            continue
        line_height = (line.box[3] - line.box[1]) * height_px
        group = [line_words[0]]
        for word in line_words[1:]:
            if (word.box[0] - group[-1].box[2]) * width > SEGMENT_GAP * line_height:
                out.append(_join(group))
                group = []
            group.append(word)
        out.append(_join(group))
    return out


def _join(words: Sequence[OcrLine]) -> TextLine:
    return TextLine(" ".join(w.text for w in words), (min(w.box[0] for w in words), min(w.box[1] for w in words),
                                                      max(w.box[2] for w in words), max(w.box[3] for w in words)))


def screen_text(image: Image.Image, scale: float = 1.0) -> list[TextLine]:
    """OCR (cached per screen content) -> text segments. `scale`: read enlarged (ocr.read_page)."""
    from vlagent.grounding.ocr import read_page

    page = read_page(image, scale)
    return text_segments(page.lines, page.words, image.size)


SHORT_LABEL = 2  # characters: a label this short that no line reads is looked for again, enlarged
ENLARGED = 2.0


def with_short_labels(image: Image.Image, instruction: str, lines: list[TextLine]) -> list[TextLine]:
    """`lines`, and what OCR reads only at ENLARGED size where nothing was read before, when the instruction
    names a label of one or two characters ("the 7 button", "B") that no word on the screen reads: OCR
    misses a lone character at screen size (a calculator's keys, a toolbar's B, I and U)."""
    if not names_unread_short_label(instruction, lines, SHORT_LABEL):
        return lines

    def unread(segment: TextLine) -> bool:
        x, y = (segment.box[0] + segment.box[2]) / 2, (segment.box[1] + segment.box[3]) / 2
        return not any(ln.box[0] <= x <= ln.box[2] and ln.box[1] <= y <= ln.box[3] for ln in lines)
    return lines + [segment for segment in screen_text(image, ENLARGED) if unread(segment)]


class HeadGrounder:
    """`ground(image, instruction)` with a trained grounder folder on the engine."""

    def __init__(self, folder: str | Path, *, threshold: float | None = None, device: str = "cpu",
                 text_first: bool = True, snap: bool = True, icons: bool = True, places: bool = True):
        from vlagent.model.grounder import load_grounder

        if threshold is not None and (isinstance(threshold, bool) or not isinstance(threshold, (int, float))
                                      or threshold < 0):
            raise ValueError(f"threshold must be a number >= 0 (above 1: the model's answers are all refused), "
                             f"got {threshold!r}")
        self.folder = Path(folder)
        self.model = load_grounder(self.folder, device=device)
        # None: the thresholds the training command calibrated on validation screens (one for instructions
        # whose words are written on the screen, one for those whose words are nowhere on it)
        self.threshold = self.model.threshold if threshold is None else threshold
        self.threshold_unnamed = self.model.threshold_unnamed if threshold is None else threshold
        self.text_first = bool(text_first)
        self.snap = bool(snap)
        self.icons = bool(icons)
        self.places = bool(places)
        # the learned icon recognizer shipped beside the weights, where there is one (icon_recognizer.py)
        recognizer = self.folder / ICON_RECOGNIZER_FILE
        self.recognizer = load_recognizer(str(recognizer)) if self.icons else None
        # other words for labels, learnt from the training data (phrase_lexicon.py), where shipped
        self.lexicon = load_lexicon(str(self.folder / LEXICON_FILE))
        self.name = (f"grounder:{self.folder.name}" + ("" if self.text_first else ",text_first=0")
                     + ("" if self.snap else ",snap=0") + ("" if self.icons else ",icons=0")
                     + ("" if self.places else ",places=0"))

    def ground(self, image: Image.Image, instruction: str, *, platform: str | None = None,
               lines: list[TextLine] | None = None) -> GroundingResult:
        lines = lines_for(image, instruction, screen_text(image) if lines is None else lines)
        lines = with_short_labels(image, instruction, lines)
        if self.snap and names_large_area(instruction):  # "the text area", "click in the document" (areas.py)
            box = find_large_area(image, text_height(lines, image.size))
            if box is not None:
                return boxed_result(box, PLACE_CONFIDENCE, "large area")
        row = row_instruction(instruction) if self.places else None
        if row is not None and written_target(instruction, lines) is None:  # "Terms of Service" is a label
            answer = find_on_row(image, row, lines, look=lambda masked, target, kept: self._look(
                masked, target, kept, platform))
            if answer is not None and answer.box is None:
                return GroundingResult.not_found(f"not on this screen ({answer.how})", raw="row")
            if answer is not None:
                return boxed_result(answer.box, PLACE_CONFIDENCE, answer.how)
        icons = None
        if _ICON_WORDS.search(instruction):  # "click the search icon": the icon, not the field's "Search..."
            icons = self._icons(image, instruction, lines, names_written_word(instruction, lines))
            if len(icons) == 1:
                return icon_result(icons[0])
        box = written_target(instruction, lines) if self.text_first else None
        # "the search button" is not the search field's hint, "Search...": the name is not written as asked
        hint_only = box is not None and _hint_for_button(image, instruction, box, lines)
        if hint_only:
            box = None
        if box is not None:
            toggle = toggle_of_label(image, instruction, box, lines) if self.snap else None
            return boxed_result(toggle, 1.0, "toggle of its label") if toggle else boxed_result(box, 1.0, "exact text")
        if self.text_first and _KEY_OR_BUTTON.search(instruction) and control_kind(instruction) is None:
            # "the 0 key" is written on a key and in the display; "the Save button" on a button and in a menu
            places = written_places(instruction, lines)
            keyed = [p for p in places if len(places) >= 2 and on_a_key(image, p, text_height(lines, image.size))]
            if len(keyed) == 1:
                return boxed_result(keyed[0], PLACE_CONFIDENCE, "written on a key")
        if self.places:
            from vlagent.grounding.keyboard import find_key
            from vlagent.grounding.ordinals import find_place

            box = find_key(image, instruction)
            if box is not None:
                return boxed_result(box, PLACE_CONFIDENCE, "keyboard key")

            box, _ = find_place(image, instruction, lines)
            if box is not None:
                return boxed_result(box, PLACE_CONFIDENCE, "place")
        named = names_screen_text(instruction, lines)
        searched = self.snap and self.icons and control_kind(instruction) == FIELD and _SEARCH.search(instruction)
        if searched and not named:
            box = self._search_field(image, lines)
            if box is not None:
                return boxed_result(box, PLACE_CONFIDENCE, "search field by its magnifier")
        box = self._label_in_other_words(image, instruction, lines) if self.text_first else None
        if box is not None:
            return boxed_result(box, LEXICON_CONFIDENCE, "label in other words")
        if icons is None:
            icons = self._icons(image, instruction, lines, names_written_word(instruction, lines) and not hint_only)
        if len(icons) == 1:
            return icon_result(icons[0])
        threshold = self.threshold if named else self.threshold_unnamed
        pred, kind = self.model.predict(image, instruction, lines, threshold=threshold,
                                        none_ratio=self.model.none_ratio)
        if icons:  # the icon shows several times: the model says which
            x, y = pred.point
            return icon_result(min(icons, key=lambda m: (m.point[0] - x) ** 2 + (m.point[1] - y) ** 2))
        if not pred.found and self.text_first and control_kind(instruction) is None:
            # the name is written in several places and the model, refusing, still points into one of them
            box = _place_at(pred.point, written_places(instruction, lines))
            if box is not None:
                return boxed_result(box, pred.confidence, "written place the model points at")
        snap = snap_to_control(image, instruction, pred.point, lines) if self.snap else None
        pred = snapped(pred, snap)
        if (pred.found and names_text_only(instruction) and control_kind(instruction) is None
                and not written_like(instruction, lines, pred.point, text_height(lines, image.size) / image.height)):
            # exists("19") on a calculator showing 0 found its "9" key: text asked for is text to be read there
            return result_of(pred, kind, refused="no text like it is written where the model points", lines=lines)
        if (pred.found and snap is None and not _BLANK_TARGET.search(instruction)
                and blank_around(image, pred.point, text_height(lines, image.size))):
            return result_of(pred, kind, refused="nothing is drawn where the model points", lines=lines)
        return result_of(pred, kind, lines=lines)

    def _look(self, image: Image.Image, target: str, lines: list[TextLine], platform: str | None) -> tuple | None:
        """The box (else a point's small box) this grounder finds for a row's target on a screen showing only
        the row (rows.find_on_row); None where it finds none."""
        if row_instruction(target) is not None:
            return None  # a row inside a row: asked once only
        result = self.ground(image, target, platform=platform, lines=lines)
        if not result.found:
            return None
        x, y = result.point
        return result.box or (x - 0.002, y - 0.002, x + 0.002, y + 0.002)

    def _search_field(self, image: Image.Image, lines: list[TextLine]) -> tuple | None:
        """The search field, where its hint is in words the instruction does not use ("Suchen..." for "the
        search box"): the field nearest the screen's one magnifier icon on its row (holding it, or at most
        MAGNIFIER_REACH text heights away); None where no magnifier, or several, or no field beside it."""
        unit = text_height(lines, image.size)
        magnifiers = self._icons(image, "the search icon", lines, named=False)
        if len(magnifiers) != 1:
            return None
        width, height = image.size
        m = magnifiers[0].box
        icon = (m[0] * width, m[1] * height, m[2] * width, m[3] * height)
        # a field's outline, not a card or a search form around it (HINT_ROOM: a field is a line or two tall)
        fields = [c.box for c in find_controls(image, unit)
                  if c.kind == FIELD and c.box[3] - c.box[1] <= HINT_ROOM * unit]
        beside = [(_gap_on_row(box, icon), (box[2] - box[0]) * (box[3] - box[1]), box) for box in fields]
        beside = [b for b in beside if b[0] <= MAGNIFIER_REACH * unit]
        if not beside:
            return None
        x0, y0, x1, y1 = min(beside)[2]  # the nearest, then the smaller
        return x0 / width, y0 / height, x1 / width, y1 / height

    def _label_in_other_words(self, image: Image.Image, instruction: str, lines: list[TextLine]) -> tuple | None:
        """The label the instruction means in other words ("dismiss": Close), written once on the screen
        (phrase_lexicon.py), not as a field's hint where a button is asked for ("the find button" is no
        "Search..."); None where the lexicon does not know the phrase or no label it means is."""
        if self.lexicon is None or _ICON_WORDS.search(instruction):  # "the find icon" is a magnifier
            return None
        for label in self.lexicon.labels_for(instruction):
            box = exact_text(label, lines)
            if box is not None and not _hint_for_button(image, instruction, box, lines):
                return box
        return None

    def _icons(self, image: Image.Image, instruction: str, lines: list[TextLine], named: bool) -> list:
        """The places of the icon the instruction names, where it asks for an icon or names no word written
        on the screen (a written name is more likely the target itself) and no field, toggle or slider: the
        theme's own picture where it matches closely (STRONG_THEME_MATCH), else what the recognizer finds,
        else a looser theme match."""
        asks_for_icon = bool(_ICON_WORDS.search(instruction))
        unit = text_height(lines, image.size)
        if self.icons and names_three_dots(instruction):
            # its dots are too small and too far apart to be one blob: found by their geometry (dots.py)
            found = [IconMatch("more", box, DOTS_CONFIDENCE) for box in find_three_dots(image, lines, unit)]
            if found:
                return found
        texts = symbol_texts(instruction) if self.icons else ()
        written = written_symbols(texts, lines)
        if written:  # "the +/- button", "the backspace key" ("<-"): symbols OCR reads as they are
            return [IconMatch("symbols", box, 1.0) for box in written]
        symbols = (named_symbols(instruction) | frozenset(texts)) if self.icons else frozenset()
        if symbols:  # "the = button", "the minus key": a symbol OCR does not read, found by its shape (glyphs.py)
            found = find_symbols(image, symbols, lines, unit)
            if found:
                return found
        # "the search box" names a field (beside a magnifier icon, often): not an icon
        if not self.icons or (not asks_for_icon and (named or control_kind(instruction) is not None)):
            return []
        from vlagent.grounding.icon_finder import find_icons

        theme = find_icons(image, instruction, lines, unit)
        if theme and theme[0].score >= STRONG_THEME_MATCH:
            return theme
        learnt = self.recognizer.find(image, instruction, unit) if self.recognizer is not None else []
        return learnt or theme


# A theme picture matching this closely (normalized cross-correlation) is the icon; a looser match (from
# icon_finder.MIN_SCORE) gives way to the recognizer's answer, where it has one: a monochrome drawing of
# another icon can reach 0.7 against a theme shape.
STRONG_THEME_MATCH = 0.8
# A label found through the lexicon is what the training data meant by the phrase most of the time
# (more than half: phrase_lexicon.MIN_TOP_SHARE), not a certainty.
LEXICON_CONFIDENCE = 0.8
# Three dots of one size, evenly spaced in a line, outside text, are a three-dot menu button: a shape
# found by its geometry, not a probability.
DOTS_CONFIDENCE = 0.9
# A place counted in the screen's rows and columns is a structural answer, not a probability: on generated
# validation screens 134 of 150 such instructions were answered in place (docs/grounding.md).
PLACE_CONFIDENCE = 0.9


# "the search box", "type 42 into the search field": a field that may be found by its magnifier
_SEARCH = re.compile(r"\bsearch\b", re.IGNORECASE)
# what may well be blank where it is clicked: "click in the drawing canvas", "an empty area of the desktop"
_BLANK_TARGET = re.compile(r"\b(?:canvas|area|space|background|desktop|wallpaper|map|blank|empty|whitespace"
                           r"|margin|drawing|document|editor|board)\b", re.IGNORECASE)
_BUTTON = re.compile(r"\bbutton\b", re.IGNORECASE)
_KEY_OR_BUTTON = re.compile(r"\b(?:button|key)\b", re.IGNORECASE)
MAGNIFIER_REACH = 2.5  # text heights between a search field and the magnifier button beside it


def _gap_on_row(field: Sequence[float], icon: Sequence[float]) -> float:
    """Pixels between a field and an icon (pixel boxes) on its row (0 inside it); infinite off its row."""
    if not field[1] <= (icon[1] + icon[3]) / 2 <= field[3]:
        return float("inf")
    return max(icon[0] - field[2], field[0] - icon[2], 0.0)


def _hint_for_button(image: Image.Image, instruction: str, box: Sequence[float], lines: Sequence) -> bool:
    """Whether a text (normalized box) found for an instruction asking for a button is written inside a
    field (its hint or value): no button's label."""
    if not _BUTTON.search(instruction):
        return False
    fields = [c for c in find_controls(image, text_height(lines, image.size)) if c.kind == FIELD]
    return written_as_hint(fields, box, image.size)


def _place_at(point: tuple[float, float], boxes: Sequence[tuple[float, float, float, float]]
              ) -> tuple[float, float, float, float] | None:  # fmt: skip
    """The box holding the point, of several written places (the first where boxes overlap), or None."""
    x, y = point
    return next((b for b in boxes if b[0] <= x <= b[2] and b[1] <= y <= b[3]), None)


def boxed_result(box: tuple[float, float, float, float], confidence: float, how: str) -> GroundingResult:
    """An answer found without the model (exact text, a place): the box's centre."""
    point = ((box[0] + box[2]) / 2, (box[1] + box[3]) / 2)
    return GroundingResult(point=point, confidence=confidence, box=box, raw=how,
                           candidates=[Candidate(point=point, score=confidence, box=box, label=how)])


def icon_result(match) -> GroundingResult:
    """An icon found by its look (icon_finder.IconMatch: the theme search or the recognizer) as the answer."""
    candidate = Candidate(point=match.point, score=match.score, box=match.box, label=f"icon {match.name}")
    return GroundingResult(point=match.point, confidence=match.score, box=match.box, raw="icon",
                           candidates=[candidate])


def snapped(pred: HeadPrediction, snap: Snap | None) -> HeadPrediction:
    """The prediction moved onto the control snap_to_control found. A refused answer is taken back only
    where the control sits beside the instruction's label, written on the screen: an instruction naming
    something absent has no such label, and a point alone does not make a refusal an answer."""
    if snap is None or not (pred.found or snap.by_label):
        return pred
    return replace(pred, point=snap.point, box=snap.box, found=True)


BLANK_REACH = 2.0  # text heights around the model's point that must show something: an edge, a letter
BLANK_CONTRAST = 12  # grey levels between neighbouring pixels that count as something drawn


def blank_around(image: Image.Image, point: tuple[float, float], unit: float, reach: float = BLANK_REACH) -> bool:
    """Whether nothing is drawn within `reach` text heights of the (normalized) point: no step between
    neighbouring pixels above BLANK_CONTRAST. The model points somewhere even on an empty desktop or
    a splash screen; a button, a field or an icon is never there."""
    import numpy as np

    w, h = image.size
    x, y, r = point[0] * w, point[1] * h, max(reach * unit, 4.0)
    box = (max(0, int(x - r)), max(0, int(y - r)), min(w, int(x + r) + 1), min(h, int(y + r) + 1))
    if box[2] - box[0] < 2 or box[3] - box[1] < 2:
        return False
    grey = np.asarray(image.crop(box).convert("L"), dtype=np.int16)
    steps = max(int(np.abs(np.diff(grey, axis=0)).max()), int(np.abs(np.diff(grey, axis=1)).max()))
    return steps <= BLANK_CONTRAST


def result_of(pred, kind: str, refused: str | None = None, lines: Sequence = ()) -> GroundingResult:
    """A pointer head's HeadPrediction (and its action kind) as a GroundingResult; "not found" (the model's
    refusal, or `refused`: why an answer the model gave is not taken) keeps the candidates, each labelled
    with the text written at its point (`lines`), if any, for a reader to look for."""
    candidates = [Candidate(point=pred.point, score=pred.confidence, box=pred.box, label=_text_at(pred.point, lines))]
    candidates += [Candidate(point=p, score=s, label=_text_at(p, lines)) for p, s in pred.candidates]
    if refused is not None:
        return GroundingResult.not_found(f"not on this screen ({refused}; the model's confidence "
                                         f"{pred.confidence:.2f})", raw=kind, candidates=candidates)
    if not pred.found:
        return GroundingResult.not_found(
            f"not on this screen (best region {pred.confidence:.2f}, nothing-here {pred.p_none:.2f})",
            raw=kind, candidates=candidates)
    return GroundingResult(point=pred.point, confidence=pred.confidence, box=pred.box, candidates=candidates,
                           raw=kind)


def _text_at(point: tuple[float, float], lines: Sequence) -> str:
    """The text of the line under a (normalized) point, or ""."""
    x, y = point
    return next((ln.text for ln in lines if ln.box[0] <= x <= ln.box[2] and ln.box[1] <= y <= ln.box[3]), "")


DEFAULT_FOLDER = Path(__file__).resolve().parents[1] / "default_grounder"


def default_grounder(**options):
    """The best grounder that works offline in this install: the trained grounder shipped in
    vlagent/grounding/default_grounder/ when there is one, else the OCR-match baseline (a trained grounder
    is shipped only once it beats that baseline; see docs/grounding.md). The result's `name` says which."""
    if (DEFAULT_FOLDER / "grounder.safetensors").is_file():
        return HeadGrounder(DEFAULT_FOLDER, **options)
    from vlagent.grounding.grounders.ocr_match import OcrMatchGrounder

    return OcrMatchGrounder(**options)
