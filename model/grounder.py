"""The small grounding model: screen patches + OCR text lines + instruction -> hybrid decoder -> pointer.

One early-fusion sequence, read by a small Qwen3.5 backbone (Gated DeltaNet + gated attention, the
engine's own architecture) and pointed at by the grounding head (grounding_head.py):

    [instruction bytes] <vision_start> [image tokens: the screenshot's merged patches] <vision_end>
    [one token per OCR text line] <action>

- the instruction is UTF-8 bytes (ids 0-255): any language, no tokenizer file to ship;
- the screenshot is resized to a fixed model input (GrounderSpec.image_size, sides multiples of 32;
  transposed for portrait screens)
  and cut into 16-px patches, 2x2 merged into one token each, as for any Qwen3.5 image;
- a text line becomes ONE token: its bytes pooled, its box, and how well it matches the instruction
  (line_similarity), summed into the hidden size (LineEncoder). Its M-RoPE position is the image cell
  under the line's centre, so attention sees the line where it is on the screen;
- the hidden state at <action> queries the image tokens and the line tokens; the pointer may land on
  either (a line token's candidate box is the line's box).

Everything here is shared by training (vlagent/grounding/train.py, on transformers' trainable
Qwen3.5 classes) and inference (on the engine): the same ids, positions and line vectors, so the
trained backbone behaves the same in both (tests check it).
"""
from __future__ import annotations

import difflib
import re
import unicodedata
from dataclasses import dataclass, field
from typing import Iterator, Sequence

import numpy as np
import torch
from PIL import Image
from torch import Tensor, nn

from vlagent.model.target_phrase import target_words

PAD, VISION_START, IMAGE, VISION_END, VIDEO, LINE, ACTION = 256, 257, 258, 259, 260, 261, 262
VOCAB_SIZE = 264  # 256 bytes + the specials above, rounded up
NUM_SIMILARITY_FEATURES = 7


@dataclass(frozen=True)
class TextLine:
    """An OCR line: its text and normalized box (x0, y0, x1, y1) of the screenshot."""
    text: str
    box: tuple[float, float, float, float]


@dataclass
class GrounderSpec:
    """What the model expects besides its weights (saved beside them as grounder.json)."""
    image_size: tuple[int, int] = (352, 640)  # (height, width) of the model input, multiples of 32
    max_lines: int = 64
    max_line_bytes: int = 48
    max_instruction_bytes: int = 96
    patch_size: int = 16
    merge_size: int = 2
    temporal_patch_size: int = 2

    def __post_init__(self) -> None:
        factor = self.patch_size * self.merge_size
        h, w = self.image_size
        if h % factor or w % factor or h <= 0 or w <= 0:
            raise ValueError(f"image_size sides must be positive multiples of {factor}; got {self.image_size}")

    @property
    def grid(self) -> tuple[int, int]:
        """Rows and columns of merged image tokens (landscape input)."""
        return self.grid_for(self.image_size[1], self.image_size[0])

    def input_size(self, width: int, height: int) -> tuple[int, int]:
        """(height, width) of the model input for a screenshot: image_size, transposed for a portrait
        screen (a phone), so neither orientation is squashed."""
        h, w = self.image_size
        return (max(h, w), min(h, w)) if height > width else (min(h, w), max(h, w))

    def grid_for(self, width: int, height: int) -> tuple[int, int]:
        """Rows and columns of merged image tokens for a screenshot of this size."""
        f = self.patch_size * self.merge_size
        h, w = self.input_size(width, height)
        return h // f, w // f

    def to_dict(self) -> dict:
        return dict(image_size=list(self.image_size), max_lines=self.max_lines, max_line_bytes=self.max_line_bytes,
                    max_instruction_bytes=self.max_instruction_bytes, patch_size=self.patch_size,
                    merge_size=self.merge_size, temporal_patch_size=self.temporal_patch_size)

    @classmethod
    def from_dict(cls, d: dict) -> "GrounderSpec":
        d = dict(d)
        d["image_size"] = tuple(d["image_size"])
        return cls(**d)


# ---------------------------------------------------------------- text

_WORD = re.compile(r"\w+", re.UNICODE)
# A quoted name: in double quotes, typographic quotes or guillemets, or in single quotes that are not an
# apostrophe ("J'accepte", "don't") -- each alternative one group.
_QUOTED = re.compile(r'"([^"]+)"|“([^”]+)”|„([^“”]+)[“”]|«\s*([^»]+?)\s*»|「([^」]+)」|‘([^’]+)’'
                     r"|(?<!\w)'(.+?)'(?!\w)")
# Words that name the action or the kind of control rather than the text on it (prepositions stay:
# "Sign in", "Log on", "Save as" are labels).
_ROLE_WORDS = frozenset("""a an the this that it its my your please button icon field box input link tab menu
item entry row option checkbox radio toggle switch slider key bar label labelled labeled called named""".split())
# Verbs dropped only where a command starts ("open the File menu"); elsewhere they are labels ("the Open button").
_LEADING_VERBS = frozenset("""click tap press hit select choose pick open go follow tick untick check uncheck toggle
turn switch type enter write""".split())
# Little words dropped where what is left starts ("click in the Name field", "the input for Name"); in the
# middle they stay ("Sign in", "Save as").
_LEADING_FILLERS = frozenset("""a an the in into on onto at for to of with by from labelled labeled called named under
below above beside near next after before right left that says""".split())
# Fillers only where a relation follows ("next to the Name label", "left of Save"); elsewhere they start a label
# ("Next Character", "Left Align").
_RELATION_FILLERS = frozenset("next right left".split())
# Words that name no label where they start the query ("my profile") but belong to one in its middle
# ("Change my password", "Show only glyphs from this font"): the loose query keeps them there.
_DETERMINERS = frozenset("this that it its my your".split())
# Where the target is, not what it says: "Latin in the list", "the toolbar's New icon", "New in the File menu"
# (a named menu, up to three words).
_CONTEXT = re.compile(r"(?:\b(?:in|under|from)\s+the\s+\S+(?:\s+\S+){0,2}?\s+menu\b(?!\s+bar))"
                      r"|\b(?:(?:in|on|at|from|of|inside|within)\s+(?:the\s+|this\s+)?"
                      r"(?:list|menu|menu bar|toolbar|tool bar|"
                      r"app bar|sidebar|side bar|dialog|page|window|header|footer|navigation|nav bar|tab bar|"
                      r"bottom bar|top bar|title bar|status bar|panel|form|screen)"
                      r"|the\s+(?:toolbar|menu|sidebar|dialog|page|window|header|footer)'s|list item"
                      r"|text (?:box|field|input|area|entry)"
                      r"|(?:drop[- ]?down|combo ?box|select box)(?:e?s)?(?:\s+(?:list|menu|box))?)\b",
                      re.IGNORECASE)
# A toggle named by its shape beside its label ("the circle next to Small"): the shape is no label.
_SHAPE_BESIDE = re.compile(r"\b(?:circle|square|dot)\s+(?=(?:next to|beside|left of|right of)\b)", re.IGNORECASE)
# Words naming the kind of target only where they end the instruction ("the Settings app"); elsewhere they
# are labels ("App info", "Application menu").
_TRAILING_ROLES = frozenset("app apps application".split())


# Instructions naming a control that sits beside its label ("the Name field", "tick Remember me"): the
# label's text is not the target there, so neither the calibrated match boost (Grounder.head_logits) nor
# text first applies.
_BESIDE_LABEL = re.compile(r"\b(?:field|check ?box|box|radio|circle (?:next to|beside)|switch|toggle|slider|input|entry"
                           r"|text area|tick|untick|check|uncheck|turn on|turn off"
                           r"|(?:drop[- ]?down|combo ?box)(?:e?s)?(?!\s+menu))\b", re.IGNORECASE)


def names_control_beside_label(instruction: str) -> bool:
    """Whether an instruction names a field, checkbox, radio button, switch or slider (which sit beside the
    text that names them) rather than text that is the target itself. A quoted name's words do not count:
    "press 'Toggle navigation'" names a button."""
    return bool(_BESIDE_LABEL.search(unquoted(instruction)))


def unquoted(instruction: str) -> str:
    """The instruction less its quoted names: the words that say what kind of thing it names."""
    return _QUOTED.sub(" ", instruction)


def _words(text: str) -> list[str]:
    return [w.lower() for w in _WORD.findall(text)]


def _fold(text: str) -> str:
    """Lower case, no accents, letters and digits only: how OCR text compares with a query."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch) and ch.isalnum())


def instruction_query(instruction: str) -> str:
    """What of an instruction should be written on screen: its quoted part, else its words minus the
    action, role and context words ("click the Sign in button" -> "sign in", "the input for Name" ->
    "name", "Latin in the list" -> "latin", "open the Settings app" -> "settings")."""
    quoted = _quoted(instruction)
    return quoted if quoted is not None else " ".join(w.lower() for w in _query_words(instruction, strict=True))


def _quoted(instruction: str) -> str | None:
    quoted = ["".join(groups) for groups in _QUOTED.findall(target_words(instruction))]
    return max(quoted, key=len) if quoted else None


_ARTICLES = frozenset("a an the".split())


def _query_words(instruction: str, strict: bool) -> list[str]:
    """The words of instruction_query, case kept. Not strict: articles after the name's start stay ("Linear
    A"), and a leading "By" stays ("By staff status")."""
    words = _WORD.findall(_SHAPE_BESIDE.sub(" ", _CONTEXT.sub(" ", target_words(instruction))))
    start = 0
    for optional in ({"please"}, {"double", "right", "long"}, _LEADING_VERBS):
        if start < len(words) - 1 and words[start].lower() in optional:
            start += 1
    if 0 < start < len(words) - 1 and words[start - 1].lower() in ("turn", "switch") and words[start].lower() == "off":
        start += 1  # "turn off Autosave" ("on" is a filler anyway)
    roles, fillers = (_ROLE_WORDS, _LEADING_FILLERS) if strict else (_ROLE_WORDS - _ARTICLES, _LEADING_FILLERS - {"by"})
    kept: list[str] = []
    for w in words[start:]:
        if w.lower() not in roles or (not strict and kept and w.lower() in _DETERMINERS):
            kept.append(w)
    while len(kept) > 1 and kept[0].lower() in fillers and not (
            kept[0].lower() in _RELATION_FILLERS and kept[1].lower() not in ("to", "of")):
        kept = kept[1:]
    if len(kept) > 1 and kept[-1].lower() in _TRAILING_ROLES:
        kept = kept[:-1]
    return kept


# A time of day with its AM/PM: clocks often show the time alone ("12:00"), the screen reader says it whole
_TIME_OF_DAY = re.compile(r"^\s*(\d{1,2}[:.\s]\d{2})\s*[AaPp]\.?\s?[Mm]\.?\s*$")


def exact_queries(instruction: str) -> list[str]:
    """The texts exact_text looks for, case kept: the quoted part; else the loose query (_query_words not
    strict), then instruction_query's. A time with AM/PM is looked for without it last."""
    quoted = _quoted(instruction)
    if quoted is not None:
        queries = [quoted]
    else:
        loose, strict = (" ".join(_query_words(instruction, strict=flag)) for flag in (False, True))
        if loose.lower() == strict.lower() or len(_fold(loose)) < 2 or not (set(_words(loose)) - _ARTICLES):
            queries = [strict]  # a lone "A" ("click the A button") is no name to look for
        else:
            queries = [loose, strict]
    time = next((m for m in map(_TIME_OF_DAY.match, queries) if m), None)
    return queries + [time.group(1)] if time else queries


def _truncated(line: str, dots: str = "...") -> bool:
    """A label the toolkit cut short to fit ("Malayal...", "Manicha…"; OCR also reads "Malayal.." where
    exact_text passes dots="..")."""
    return line.rstrip().endswith((dots, "…"))


def line_similarity(instruction: str, line: str) -> list[float]:
    """How much a text line looks like what the instruction names, as NUM_SIMILARITY_FEATURES numbers in
    [0, 1]: string ratios of the whole instruction and of its query (folded: OCR drops spaces and
    accents), the share of the line's words in the instruction and of the query's words in the line,
    an exact folded match, and containment either way (OCR runs labels together). A line cut short
    with an ellipsis is compared with as much of the query as it shows ("Malayal..." is an exact match
    for "Malayalam")."""
    a, b = instruction.lower().strip(), line.lower().strip()
    if not b:
        return [0.0] * NUM_SIMILARITY_FEATURES
    query = instruction_query(instruction)
    fq, fb = _fold(query), _fold(b)
    if _truncated(b) and len(fb) >= 3 and len(fq) > len(fb):
        fq = fq[: len(fb)]
    wa, wb, wq = set(_words(a)), _words(b), _words(query)
    in_instruction = sum(w in wa for w in wb) / len(wb) if wb else 0.0
    in_line = sum(w in set(wb) for w in wq) / len(wq) if wq else 0.0
    ratio = difflib.SequenceMatcher(None, a, b).ratio()
    query_ratio = difflib.SequenceMatcher(None, fq, fb).ratio() if fq and fb else 0.0
    exact = float(bool(fq) and fq == fb)
    contains = float(bool(fq) and bool(fb) and (fq in fb or fb in fq))
    return [ratio, query_ratio, in_instruction, in_line, exact, contains, min(len(fb), 40) / 40]


MAX_SPAN_WORDS = 6


def _word_runs(line: TextLine) -> Iterator[tuple[str, tuple[float, float, float, float], str]]:
    """Every run of up to MAX_SPAN_WORDS consecutive words of a line: its folded text, its box and its text
    as written. Words are split at spaces and symbols, dots too (OCR runs "Home>Users" and "ADA.VIEW"
    together), and their boxes estimated from character counts (OCR reads a line's words as one box)."""
    words = list(re.finditer(r"\w[\w'’-]*", line.text))  # "ADA.VIEW SITE": OCR drops spaces after dots
    x0, y0, x1, y1 = line.box
    n = max(len(line.text), 1)
    for i in range(len(words)):
        for j in range(i + 1, min(len(words), i + MAX_SPAN_WORDS) + 1):
            start, end = words[i].start(), words[j - 1].end()
            yield (_fold(line.text[start:end]), (x0 + (x1 - x0) * start / n, y0, x0 + (x1 - x0) * end / n, y1),
                   line.text[start:end])


def span_box(instruction: str, line: TextLine) -> tuple[float, float, float, float]:
    """Where on a line the instruction's text is: the box of its best-matching run of words when that
    matches better than the whole line ("Next" in an OCR line "Prev Up Next"), else the line's box."""
    query = _fold(instruction_query(instruction))
    runs = list(_word_runs(line))
    if len(runs) < 2 or not query:  # one word: the line itself
        return line.box
    best, best_score = line.box, difflib.SequenceMatcher(None, query, _fold(line.text), autojunk=False).ratio()
    for text, box, _ in runs:
        score = difflib.SequenceMatcher(None, query, text, autojunk=False).ratio() if text else 0.0
        if score > best_score + 1e-6:
            best, best_score = box, score
    return best


def exact_text(instruction: str, lines: Sequence[TextLine]) -> tuple[float, float, float, float] | None:
    """The box of the one place where the instruction's query is written exactly (folded: case, accents,
    spaces and punctuation aside): the one line that reads it whole, else, when no line does, the one
    run of a line's words that does (_word_runs). A line the toolkit cut short ("Malayal...") reads the
    query whole when the query starts with what the line shows (3 characters or more). Where several
    places read it, the one that reads it as written (case and punctuation: "alan", not "Alan" or
    "alan:") is the answer, unless the instruction names a field or a toggle, whose label may be written
    either way ("New password:", "New password" above "confirmation:"). The queries are exact_queries';
    whole lines of any of them come before runs of words, and the first query with one answer wins.

    The words come from the text, not from OCR's own word boxes: OCR keeps symbols inside its words
    ("SITE/CHANGE"), and on the admin pages of the real test split its words lost 49 exact matches that
    this split finds."""
    beside_label = names_control_beside_label(instruction)  # a label is written with or without its colon
    queries = [q for q in exact_queries(instruction) if _fold(q)]
    arrows = _arrows(target_words(instruction))
    runs_in_prose = _BUTTON_OR_ICON.search(instruction) is None
    for query, places in _places_in_turn(queries, lines, runs_in_prose):
        if len(places) > 1:  # a line reading it all beats one cut short ("Open at login", "Open...")
            places = [p for p in places if _fold(p[1]) == _fold(query)] or places
        if len(places) > 1:  # "<< Valgrind Documentation" is the link with the arrows, not the page's title
            places = [p for p in places if _arrows(p[2]) == arrows] or places
        if len(places) > 1 and not beside_label:
            places = [p for p in places if " ".join(p[1].split()) == " ".join(query.split())]
        if len(places) == 1:
            return places[0][0]
    return near_text(queries, lines, runs_in_prose)


# a button's caption or an icon's name is never a word inside running text ("the Submit button" is not the
# word in "Press Enter in the field to submit it."); a link's may be
_BUTTON_OR_ICON = re.compile(r"\b(?:buttons?|icons?)\b", re.IGNORECASE)


def _prose(text: str) -> bool:
    """Whether a line reads as running text: four words or more, ending in a full stop, "!" or "?", or
    most of them in lower case ("Sign in to continue to Acme", a wrapped paragraph's line). A word inside
    it may be a link, never a button's caption or an icon; a toolbar or menu bar read as one line ("File
    Edit View Help") capitalizes its words."""
    words = _WORD.findall(text)
    if len(words) < 4:
        return False
    return text.rstrip().endswith((".", "!", "?")) or sum(w[0].islower() for w in words) * 2 > len(words)


def _holds_no_caption(text: str) -> bool:
    """Whether no run of a line's words is a button's caption or an icon's name: running text (_prose), or a
    label, which ends in a colon ("Replace all in:" holds no "Replace All" button)."""
    return _prose(text) or text.rstrip().endswith(":")


# Arrows written beside a link's name ("<< Prev", "Next »"): folding drops them, but they tell the
# navigation link from the page's heading of the same name
_ARROW = re.compile(r"<<|>>|[«»‹›←→]")
_ARROW_SPELLINGS = {"«": "<<", "‹": "<<", "←": "<<", "»": ">>", "›": ">>", "→": ">>"}


def _arrows(text: str) -> list[str]:
    return [_ARROW_SPELLINGS.get(a, a) for a in _ARROW.findall(text)]


def _places_in_turn(queries: Sequence[str], lines: Sequence[TextLine], runs_in_prose: bool = True
                    ) -> Iterator[tuple[str, list[tuple[tuple[float, float, float, float], str, str]]]]:  # fmt: skip
    """(query, its places) in the order exact_text weighs them: the whole lines reading each query, then the
    word runs reading each query no line reads whole; queries read nowhere are left out. runs_in_prose=False:
    runs of words inside running text or a label are no places (_holds_no_caption)."""
    read_whole = set()  # queries some line reads whole: their word runs elsewhere are not looked at
    wrapped = list(_wrapped(lines))  # pairs of lines reading as one wrapped name, found once
    for whole_lines in (True, False):
        for query in queries:
            if not whole_lines and query in read_whole:
                continue
            places = _places(query, lines, whole_lines, wrapped)
            if not runs_in_prose:
                places = [p for p in places if p[1] == p[2] or not _holds_no_caption(p[2])]
            if places:
                if whole_lines:
                    read_whole.add(query)
                yield query, places


# Characters OCR reads for others: German's ß as a Greek beta or a capital B ("Straβe", "SchriftgroBe").
_OCR_LOOKALIKES = str.maketrans({"ß": "b", "ẞ": "b", "β": "b"})
NEAR_CHARACTERS = 6  # one slip of OCR's (a character read wrong, missed or added) allowed per this many


def _ocr_fold(text: str) -> str:
    return _fold(text.translate(_OCR_LOOKALIKES))


def near_text(queries: Sequence[str], lines: Sequence[TextLine], runs_in_prose: bool = True
              ) -> tuple[float, float, float, float] | None:  # fmt: skip
    """The box of the one place that reads a query but for OCR's slips, where nothing reads it exactly:
    look-alike characters taken as one (_OCR_LOOKALIKES), then at most one edit per NEAR_CHARACTERS
    characters of the folded query ("Ubermehmen" for Übernehmen, "Zurick" for Zurück, "Помошь" for
    Помощь), but no digit read as another, missed or added ("Order 1003" is no slip of "Order 1063":
    _edit_distance). The nearest place must be the only one that near; queries under 4 characters must
    read exactly. The first query with an answer wins. runs_in_prose=False: the words inside a sentence
    or a label (_holds_no_caption) are not places, only the whole line."""
    for query in queries:
        folded = _ocr_fold(query)
        if len(folded) < 4:
            continue
        allowed = len(folded) // NEAR_CHARACTERS
        nearest, boxes = allowed + 1, []
        for line in lines:  # each line is one place: the whole line, else its nearest run of words
            runs = _word_runs(line) if runs_in_prose or not _holds_no_caption(line.text) else ()
            texts = [(_ocr_fold(line.text), line.box)] + [(_ocr_fold(text), box) for _, box, text in runs]
            scored = [(_edit_distance(folded, text, allowed), box) for text, box in texts
                      if abs(len(text) - len(folded)) <= allowed]
            if not scored:
                continue
            distance, box = min(scored, key=lambda s: s[0])
            if distance < nearest:
                nearest, boxes = distance, [box]
            elif distance == nearest:
                boxes.append(box)
        if nearest <= allowed and len(boxes) == 1:
            return boxes[0]
    return None


def _edit_distance(a: str, b: str, limit: int) -> int:
    """Levenshtein distance of a and b, or limit + 1 when it is larger. A digit read as another digit, or
    missed or added, is no slip (limit + 1): "Order 1003" is another order than "Order 1063", while "0"
    read as "o" is a slip."""
    never = limit + 1
    previous = [0]
    for cb in b:
        previous.append(previous[-1] + (never if cb.isdigit() else 1))
    for i, ca in enumerate(a, 1):
        gap_a = never if ca.isdigit() else 1
        current = [previous[0] + gap_a]
        for j, cb in enumerate(b, 1):
            swap = 0 if ca == cb else never if ca.isdigit() and cb.isdigit() else 1
            current.append(min(previous[j] + gap_a, current[j - 1] + (never if cb.isdigit() else 1),
                               previous[j - 1] + swap))
        if min(current) > limit:
            return limit + 1
        previous = current
    return previous[-1] if previous[-1] <= limit else limit + 1


def _places(query: str, lines: Sequence[TextLine], whole_lines: bool,
            wrapped: Sequence[tuple[tuple[float, float, float, float], str]] = ()
            ) -> list[tuple[tuple[float, float, float, float], str, str]]:  # fmt: skip
    """(box, text as written, its line's text) of each line, or `wrapped` pair of lines (_wrapped), that
    reads the query whole (whole_lines), or of each run of a line's words that reads it, in lines that do
    not read it whole."""
    folded_query = _fold(query)
    out = []
    for line in lines:
        folded = _fold(line.text)
        whole = folded == folded_query or (_truncated(line.text, dots="..") and len(folded) >= 3
                                           and folded_query.startswith(folded))
        if whole_lines and whole:
            out.append((line.box, line.text, line.text))
        elif not whole_lines and not whole:
            out += [(box, text, line.text) for folded_run, box, text in _word_runs(line) if folded_run == folded_query]
    if whole_lines:
        out += [(box, text, text) for box, text in wrapped if _fold(text) == folded_query]
    return out


def _wrapped(lines: Sequence[TextLine]) -> Iterator[tuple[tuple[float, float, float, float], str]]:
    """(box, text) of each pair of lines that reads as one name wrapped in a narrow column ("The Valgrind
    Quick" over "Start Guide >>"): the second right under the first (a gap under half its height), the two
    overlapping and aligned at their left or right edges (within two letters' width)."""
    worded = [line for line in lines if _fold(line.text)]  # a "-" or "•" line is no half of a name
    for a in worded:
        ax0, ay0, ax1, ay1 = a.box
        height = ay1 - ay0
        letter = (ax1 - ax0) / max(len(a.text), 1)  # x and y are normalized apart: align within 2 letters
        for b in worded:
            bx0, by0, bx1, by1 = b.box
            if b is a or not 0 <= by0 - ay1 + 0.2 * height <= 0.7 * height or bx0 >= ax1 or ax0 >= bx1:
                continue
            if abs(bx0 - ax0) <= 2 * letter or abs(bx1 - ax1) <= 2 * letter:
                yield (min(ax0, bx0), ay0, max(ax1, bx1), by1), f"{a.text} {b.text}"


def written_places(instruction: str, lines: Sequence[TextLine]) -> list[tuple[float, float, float, float]]:
    """Every place that reads the instruction's name exactly (exact_text's candidates, however many): the
    lines reading the first query any line reads whole, else the word runs reading the first query any
    run reads. For a button or an icon, words inside running text are no place (_prose)."""
    queries = [q for q in exact_queries(instruction) if _fold(q)]
    runs_in_prose = _BUTTON_OR_ICON.search(instruction) is None
    return next(([place[0] for place in places] for _, places in _places_in_turn(queries, lines, runs_in_prose)), [])


def names_screen_text(instruction: str, lines: Sequence[TextLine]) -> bool:
    """Whether a word of the instruction's query (3 letters or more, folded) is written anywhere on the
    screen. One whose words are nowhere names an icon, text OCR could not read, or something absent:
    the calibration gives such instructions a threshold of their own (Grounder.threshold_unnamed)."""
    screen = " ".join(_fold(line.text) for line in lines)
    return any(len(word) >= 3 and word in screen for word in map(_fold, _words(instruction_query(instruction))))


def names_written_word(instruction: str, lines: Sequence[TextLine]) -> bool:
    """Whether a word of the instruction's query (3 letters or more, folded) is written on the screen as a
    whole word: "the star button" does not name a screen showing "Start"."""
    written = {_fold(word) for line in lines for word in _words(line.text)}
    return any(len(word) >= 3 and word in written for word in map(_fold, _words(instruction_query(instruction))))


def written_target(instruction: str, lines: Sequence[TextLine]) -> tuple[float, float, float, float] | None:
    """The box a grounder answers with before asking the model, or None: exact_text, unless the
    instruction names a control that sits beside its label (there the text is not the target)."""
    return None if names_control_beside_label(instruction) else exact_text(instruction, lines)


# Words a text-only instruction may hold besides its quoted text: "click 'Save'", "tap on 'Settings'".
_TEXT_ONLY_EXTRA = frozenset({"please", "on", "the", "a", "an"}) | _LEADING_VERBS
# OCR reads some digits as letters; a number is compared with these read back as digits.
_AS_DIGITS = str.maketrans({"o": "0", "l": "1", "i": "1"})


def names_text_only(instruction: str) -> bool:
    """Whether the instruction names text and nothing else ("19", "Delete all files?", "click 'Save'"): no
    kind of control, no icon, no place, no verb unless the text is quoted. Such a target is the text
    itself, written on the screen."""
    target = target_words(instruction)
    if names_control_beside_label(instruction):  # "tick Remember me": the box beside the text
        return False
    rest = unquoted(target)
    if rest != target:  # quoted: only a verb and articles around the quote
        return all(w in _TEXT_ONLY_EXTRA for w in _words(rest))
    # unquoted: the text and nothing else ("open a file" may name the Open button in other words)
    return bool(_words(target)) and _words(target) == _words(instruction_query(instruction))


def names_unread_short_label(instruction: str, lines: Sequence[TextLine], longest: int) -> bool:
    """Whether the instruction's label ("7" of "the 7 button") has at most `longest` letters and digits and
    no word on the screen reads it."""
    query = _fold(instruction_query(instruction))
    return 0 < len(query) <= longest and not any(query == _fold(w) for ln in lines for w in ln.text.split())


WRITTEN_LIKE = 0.6  # folded string ratio of the text under a point to a text-only instruction's text


def written_like(instruction: str, lines: Sequence[TextLine], point: tuple[float, float], unit: float) -> bool:
    """Whether text like the instruction's is written at the (normalized) point: on a line whose box, grown
    by `unit` (normalized height; half as much across), holds it. A number must be written as it is
    (exists("19") is not the "9" button, nor "190"); other text at WRITTEN_LIKE or more (OCR slips)."""
    query = _fold(instruction_query(instruction))
    if not query:
        return True
    x, y = point
    near = [_fold(ln.text) for ln in lines
            if ln.box[0] - unit / 2 <= x <= ln.box[2] + unit / 2 and ln.box[1] - unit <= y <= ln.box[3] + unit]
    if any(ch.isdigit() for ch in query):
        digits = query.translate(_AS_DIGITS)
        return any(re.search(rf"(?<!\d){re.escape(digits)}(?!\d)", text.translate(_AS_DIGITS)) for text in near)
    return any(query in text or difflib.SequenceMatcher(None, query, text).ratio() >= WRITTEN_LIKE for text in near)


# The hand-made part of LineEncoder.match: the query's string ratio, its words on the line, an exact
# match, containment (weights over line_similarity's features).
HAND_MATCH_WEIGHTS = (0.0, 6.0, 0.0, 2.0, 3.0, 1.0, 0.0)


def most_relevant(features: Sequence[Sequence[float]], limit: int) -> list[int]:
    """Indices (in screen order) of at most `limit` lines, given each line's line_similarity features. A
    dense screen (a character table, a long list, a file chooser) has more lines than the model reads;
    then the lines most like what the instruction names are kept, not the first ones read: cutting in
    reading order dropped the lower half of a list before its rows could be pointed at."""
    if len(features) <= limit:
        return list(range(len(features)))
    scores = [sum(w * f for w, f in zip(HAND_MATCH_WEIGHTS, row)) for row in features]
    return sorted(sorted(range(len(features)), key=lambda i: -scores[i])[:limit])


def encode_bytes(text: str, limit: int) -> list[int]:
    """UTF-8 bytes of `text`, cut at `limit` on a character boundary."""
    out = text.encode("utf-8")
    if len(out) > limit:
        out = out[:limit].decode("utf-8", errors="ignore").encode("utf-8")
    return list(out)


# ---------------------------------------------------------------- the sequence

@dataclass
class Layout:
    """One example's token ids [T], M-RoPE positions [3, T], where the lines and the action sit, the lines'
    byte ids [L, max_line_bytes] (PAD-filled), boxes and features, and where the pointer lands on each
    line (span_boxes: the part of the line the instruction names)."""
    input_ids: Tensor
    position_ids: Tensor
    image_slots: Tensor
    line_slots: Tensor
    action_index: int
    line_bytes: Tensor
    line_boxes: Tensor
    line_features: Tensor
    span_boxes: Tensor
    lines: list[TextLine] = field(default_factory=list)
    grid: tuple[int, int] = (0, 0)


def build_layout(instruction: str, lines: list[TextLine], spec: GrounderSpec,
                 grid: tuple[int, int] | None = None) -> Layout:
    """The sequence for one instruction on one screen; `grid` (rows, cols of image tokens) comes from
    spec.grid_for(screenshot size), landscape by default."""
    rows, cols = grid or spec.grid
    instr = encode_bytes(instruction, spec.max_instruction_bytes)
    lines = [ln for ln in lines if ln.text.strip()]
    features = [line_similarity(instruction, ln.text) for ln in lines]
    keep = most_relevant(features, spec.max_lines)
    lines, features = [lines[i] for i in keep], [features[i] for i in keep]
    ids = instr + [VISION_START] + [IMAGE] * (rows * cols) + [VISION_END] + [LINE] * len(lines) + [ACTION]
    n_text = len(instr)
    pos: list[tuple[int, int, int]] = [(i, i, i) for i in range(n_text + 1)]
    start = n_text + 1
    r, c = np.meshgrid(np.arange(rows), np.arange(cols), indexing="ij")
    pos += [(start, start + int(y), start + int(x)) for y, x in zip(r.flatten(), c.flatten())]
    after = start + max(rows, cols)
    pos.append((after, after, after))  # <vision_end>
    for ln in lines:
        cx, cy = (ln.box[0] + ln.box[2]) / 2, (ln.box[1] + ln.box[3]) / 2
        row, col = min(int(cy * rows), rows - 1), min(int(cx * cols), cols - 1)
        pos.append((start, start + row, start + col))
    pos.append((after + 1, after + 1, after + 1))  # <action>
    line_bytes = torch.full((len(lines), spec.max_line_bytes), PAD, dtype=torch.long)
    for i, ln in enumerate(lines):
        b = encode_bytes(ln.text, spec.max_line_bytes)
        line_bytes[i, : len(b)] = torch.tensor(b, dtype=torch.long)
    first_line = start + rows * cols + 1
    return Layout(
        input_ids=torch.tensor(ids, dtype=torch.long),
        position_ids=torch.tensor(pos, dtype=torch.long).T.contiguous(),
        image_slots=torch.arange(start, start + rows * cols),
        line_slots=torch.arange(first_line, first_line + len(lines)),
        action_index=len(ids) - 1,
        line_bytes=line_bytes,
        line_boxes=torch.tensor([ln.box for ln in lines], dtype=torch.float32).reshape(-1, 4),
        line_features=torch.tensor(features, dtype=torch.float32).reshape(-1, NUM_SIMILARITY_FEATURES),
        span_boxes=torch.tensor([span_box(instruction, ln) for ln in lines], dtype=torch.float32).reshape(-1, 4),
        lines=lines,
        grid=(rows, cols),
    )


def pixel_input(image: Image.Image, spec: GrounderSpec) -> tuple[Tensor, Tensor]:
    """The screenshot resized to the model input and cut into patch rows: (pixel_values [N, 3*T*P*P],
    image_grid_thw [1, 3]). Normalized coordinates survive the resize unchanged."""
    h, w = spec.input_size(*image.size)
    rgb = np.asarray(image.convert("RGB").resize((w, h), Image.Resampling.BILINEAR), dtype=np.float32)
    x = torch.from_numpy(rgb).permute(2, 0, 1) / 127.5 - 1.0  # mean 0.5, std 0.5 after /255
    frames = x[None].expand(spec.temporal_patch_size, -1, -1, -1)
    tp, p, m = spec.temporal_patch_size, spec.patch_size, spec.merge_size
    gh, gw = h // p, w // p
    x = frames.reshape(1, tp, 3, gh // m, m, p, gw // m, m, p).permute(0, 3, 6, 4, 7, 2, 1, 5, 8)
    return x.reshape(gh * gw, 3 * tp * p * p).contiguous(), torch.tensor([[1, gh, gw]])


# ---------------------------------------------------------------- line tokens

class LineEncoder(nn.Module):
    """A text line -> one hidden vector: its bytes (mean and max of learned byte embeddings), its box
    (x0, y0, x1, y1, w, h) and its similarity to the instruction, each projected and summed.

    `match(features)` scores how likely each line is what the instruction names (or labels it): the
    pointer's prior for line tokens, and the weights of the anchor map (AnchorEncoder)."""

    def __init__(self, hidden_size: int, byte_dim: int = 64):
        super().__init__()
        self.bytes = nn.Embedding(VOCAB_SIZE, byte_dim, padding_idx=PAD)
        self.text = nn.Linear(2 * byte_dim, hidden_size)
        self.box = nn.Linear(6, hidden_size)
        self.similarity = nn.Linear(NUM_SIMILARITY_FEATURES, hidden_size)
        self.mix = nn.Sequential(nn.GELU(), nn.Linear(hidden_size, hidden_size))
        self.match_score = nn.Sequential(nn.Linear(NUM_SIMILARITY_FEATURES, 32), nn.GELU(), nn.Linear(32, 1))
        # a linear part that starts as a sensible hand-made score (the query's string ratio, its words on the
        # line, an exact match), so the prior and the anchor map are useful from the first step
        self.match_linear = nn.Linear(NUM_SIMILARITY_FEATURES, 1)
        with torch.no_grad():
            self.match_linear.weight.copy_(torch.tensor([HAND_MATCH_WEIGHTS]))
            self.match_linear.bias.fill_(-4.0)

    def forward(self, line_bytes: Tensor, boxes: Tensor, features: Tensor) -> Tensor:
        if line_bytes.shape[0] == 0:
            return self.text.weight.new_zeros(0, self.text.out_features)
        emb = self.bytes(line_bytes)  # [L, B, E]
        mask = (line_bytes != PAD).unsqueeze(-1)
        count = mask.sum(1).clamp(min=1)
        mean = (emb * mask).sum(1) / count
        peak = emb.masked_fill(~mask, -1e4).amax(1).clamp(min=-1e3)
        size = boxes[:, 2:] - boxes[:, :2]
        geometry = torch.cat([boxes, size], dim=-1)
        x = self.text(torch.cat([mean, peak], dim=-1)) + self.box(geometry) + self.similarity(features)
        return x + self.mix(x)

    def match(self, features: Tensor) -> Tensor:
        """[L] logits: how strongly each line matches the instruction."""
        return (self.match_score(features) + self.match_linear(features)).squeeze(-1)


# How many best-matching lines the anchor map looks at, how far (in cells) its geometry reaches, and
# how many relation maps it offers the pointer.
ANCHOR_LINES = 4
ANCHOR_REACH = 6.0
RELATION_MAPS = 8


class AnchorEncoder(nn.Module):
    """Where each image cell lies relative to the lines the instruction most likely names: a field sits
    right of or below its label, a checkbox left of it. For the best-matching lines (weights from
    LineEncoder.match), each cell's offsets from the line's left edge, right edge and middle (in cell
    units) go through a small MLP, summed with the match weights. The result is added to the cell's
    image token, and gives RELATION_MAPS learned maps over the cells ("just right of the label", "on
    it", ...) that the head mixes per instruction into the pointer's prior."""

    def __init__(self, hidden_size: int, width: int = 64):
        super().__init__()
        self.mlp = nn.Sequential(nn.Linear(6, width), nn.GELU(), nn.Linear(width, hidden_size + RELATION_MAPS))
        # The image-token part starts as a no-op. The relation maps must not start at zero: the head mixes
        # them with weights that start at zero (GroundingHead.prior_mix), and a product of two zeros gets no
        # gradient on either side, so the maps would never learn. Small random maps with zero mixing weights
        # leave the pointer unchanged at the start and let both learn.
        nn.init.zeros_(self.mlp[2].weight[:hidden_size])
        nn.init.normal_(self.mlp[2].weight[hidden_size:], std=0.1)
        nn.init.zeros_(self.mlp[2].bias)
        self.hidden_size = hidden_size

    def forward(self, match_logits: Tensor, line_boxes: Tensor, grid: tuple[int, int]) -> tuple[Tensor, Tensor]:
        """(vectors [rows*cols, H] for the image tokens, relation maps [rows*cols, RELATION_MAPS])."""
        rows, cols = grid
        if match_logits.numel() == 0:
            zeros = self.mlp[2].weight.new_zeros(rows * cols, self.hidden_size + RELATION_MAPS)
            return zeros[:, : self.hidden_size], zeros[:, self.hidden_size:]
        k = min(ANCHOR_LINES, match_logits.numel())
        best, index = match_logits.topk(k)
        top = best.softmax(-1)  # the best lines share the weight: the map is as strong with 60 lines as with 3
        boxes = line_boxes[index].to(top)  # [k, 4]
        ys, xs = torch.meshgrid(torch.arange(rows, device=top.device), torch.arange(cols, device=top.device),
                                indexing="ij")
        cx = (xs.flatten().to(top) + 0.5) / cols  # [N]
        cy = (ys.flatten().to(top) + 0.5) / rows
        dx0 = (cx[None] - boxes[:, 0:1]) * cols  # [k, N], in cells
        dx1 = (cx[None] - boxes[:, 2:3]) * cols
        dy = (cy[None] - (boxes[:, 1:2] + boxes[:, 3:4]) / 2) * rows
        dy0 = (cy[None] - boxes[:, 1:2]) * rows
        dy1 = (cy[None] - boxes[:, 3:4]) * rows
        geometry = torch.stack([dx0, dx1, dy, dy0, dy1], dim=-1).clamp(-ANCHOR_REACH, ANCHOR_REACH) / ANCHOR_REACH
        strength = top[:, None, None].expand(-1, geometry.shape[1], 1)
        out = (top[:, None, None] * self.mlp(torch.cat([geometry, strength], dim=-1))).sum(0)  # [N, H+R]
        return out[:, : self.hidden_size], out[:, self.hidden_size:]


def fuse_lines(embeds: Tensor, layout: Layout, line_encoder: LineEncoder, anchors: AnchorEncoder
               ) -> tuple[Tensor, Tensor]:  # fmt: skip
    """embeds [T, H] with the line tokens' rows replaced by their vectors and the anchor map added to the
    image tokens (out of place, keeps gradients); also the pointer's prior maps over the candidates
    [N, 1 + RELATION_MAPS]: channel 0 the lines' match logits (0 for the cells), then the relation maps
    over the cells (0 for the lines)."""
    device = embeds.device
    match = line_encoder.match(layout.line_features.to(device))
    anchor, relations = anchors(match, layout.line_boxes.to(device), layout.grid)
    embeds = embeds.index_add(0, layout.image_slots.to(device), anchor.to(embeds.dtype))
    n_cells, n_lines = len(layout.image_slots), len(layout.line_slots)
    prior = torch.cat([
        torch.cat([match.new_zeros(n_cells, 1), relations], dim=1),
        torch.cat([match[:, None], match.new_zeros(n_lines, RELATION_MAPS)], dim=1),
    ])
    if n_lines == 0:
        return embeds, prior
    vectors = line_encoder(layout.line_bytes.to(device), layout.line_boxes.to(device), layout.line_features.to(device))
    return embeds.index_copy(0, layout.line_slots.to(device), vectors.to(embeds.dtype)), prior


def backbone_config(hidden_size: int = 128, layers: int = 4, vision_hidden: int = 96, vision_depth: int = 2) -> dict:
    """A small Qwen3.5 config (transformers' Qwen3_5Config keyword arguments) for the grounder backbone."""
    heads = max(2, hidden_size // 32)
    # every 4th layer full attention, as in Qwen3.5; a shorter stack still ends on one
    layer_types = ["full_attention" if i % 4 == 3 or (layers < 4 and i == layers - 1) else "linear_attention"
                   for i in range(layers)]
    text = dict(
        vocab_size=VOCAB_SIZE, hidden_size=hidden_size, intermediate_size=3 * hidden_size,
        num_hidden_layers=layers, num_attention_heads=heads, num_key_value_heads=max(1, heads // 2), head_dim=32,
        linear_num_key_heads=heads, linear_num_value_heads=heads, linear_key_head_dim=32, linear_value_head_dim=32,
        linear_conv_kernel_dim=4, layer_types=layer_types, max_position_embeddings=4096, rms_norm_eps=1e-6,
        initializer_range=0.02, tie_word_embeddings=True,
        rope_parameters=dict(rope_type="default", rope_theta=10000.0, partial_rotary_factor=0.5,
                             mrope_section=[4, 2, 2], mrope_interleaved=True),
    )
    vision = dict(depth=vision_depth, hidden_size=vision_hidden, intermediate_size=2 * vision_hidden,
                  num_heads=max(1, vision_hidden // 48), in_channels=3, patch_size=16, temporal_patch_size=2,
                  spatial_merge_size=2, out_hidden_size=hidden_size, num_position_embeddings=256,
                  initializer_range=0.02)
    return dict(text_config=text, vision_config=vision, image_token_id=IMAGE, video_token_id=VIDEO,
                vision_start_token_id=VISION_START, vision_end_token_id=VISION_END, tie_word_embeddings=True)


# ---------------------------------------------------------------- the whole grounder, on the engine

GROUNDER_FILE = "grounder.safetensors"  # line encoder + anchor map + head + spec
DEFAULT_THRESHOLD = 0.3  # for folders written before calibration, beside the backbone's own files


class Grounder:
    """The trained grounder on the engine: `predict(image, instruction, lines)` -> HeadPrediction."""

    def __init__(self, backbone, line_encoder: LineEncoder, anchors: AnchorEncoder, head, spec: GrounderSpec,
                 threshold: float = DEFAULT_THRESHOLD, none_ratio: float = 1.0, match_boost: float = 0.0,
                 threshold_unnamed: float | None = None):
        self.backbone, self.line_encoder, self.anchors = backbone, line_encoder.eval(), anchors.eval()
        self.head, self.spec = head.eval(), spec
        # "not found" below this confidence, or where "nothing here" outweighs it by more than 1 / none_ratio
        # (both calibrated on validation screens by the training command)
        self.threshold, self.none_ratio = threshold, none_ratio
        # the threshold for instructions whose words are nowhere on the screen (names_screen_text)
        self.threshold_unnamed = threshold if threshold_unnamed is None else threshold_unnamed
        # extra weight of the lines' match with the instruction in the pointer's logits (chosen on validation)
        self.match_boost = match_boost

    @torch.no_grad()  # not inference_mode: callers may feed the states to a trainable head
    def hidden_states(self, image: Image.Image, instruction: str, lines: list[TextLine]
                      ) -> tuple[Tensor, Layout, Tensor]:  # fmt: skip
        """Final hidden states [T, H] of the example's sequence, its layout, and the pointer's prior."""
        layout = build_layout(instruction, lines, self.spec, self.spec.grid_for(*image.size))
        pixel_values, grid = pixel_input(image, self.spec)
        model = self.backbone
        x = model.embed(layout.input_ids[None].to(model.device), pixel_values.to(model.device, model.dtype),
                        grid.to(model.device))
        x, prior = fuse_lines(x[0], layout, self.line_encoder, self.anchors)
        cache = model.new_cache(1, x.shape[0])
        hidden = model.decode_hidden(x[None], layout.position_ids[:, None, :].to(model.device), cache)[0]
        return hidden.float(), layout, prior.float()

    @torch.no_grad()
    def logits(self, image: Image.Image, instruction: str, lines: list[TextLine]):
        """The head's output for one instruction on one screen (with the match boost, unless the instruction
        names a control beside its label), and the candidates it points over."""
        out, candidates, match = self.head_logits(image, instruction, lines)
        if self.match_boost:
            out.pointer[0, :-1] += self.match_boost * match
        return out, candidates

    @torch.no_grad()
    def head_logits(self, image: Image.Image, instruction: str, lines: list[TextLine]):
        """(the head's own output, the candidates, each candidate's match with the instruction [N] as the
        match boost scales it: the prior's channel 0, 0 for image cells, and all 0 where the instruction
        names a control beside its label)."""
        from .grounding_head import Candidates

        hidden, layout, prior = self.hidden_states(image, instruction, lines)
        candidates = Candidates.patches(*layout.grid).with_text_lines(layout.span_boxes)
        slots = torch.cat([layout.image_slots, layout.line_slots])
        out = self.head(hidden[layout.action_index][None], hidden[slots][None], prior=prior[None],
                        first_line=len(layout.image_slots))
        match = prior[:, 0]
        return out, candidates, torch.zeros_like(match) if names_control_beside_label(instruction) else match

    @torch.no_grad()
    def predict(self, image: Image.Image, instruction: str, lines: list[TextLine], **decode_options):
        from .grounding_head import decode_logits

        out, candidates = self.logits(image, instruction, lines)
        prediction = decode_logits(out, candidates, **decode_options)
        kind = self.head.config.action_kinds[int(out.kind[0].argmax())]
        return prediction, kind


def load_grounder(folder, device="cpu", dtype: torch.dtype = torch.float32) -> Grounder:
    """A grounder folder: the backbone (config.json + model.safetensors, a Qwen3.5 checkpoint) and
    grounder.safetensors (line encoder, anchor map, head, spec)."""
    import json
    from pathlib import Path

    from safetensors import safe_open

    from .grounding_head import GroundingHead, GroundingHeadConfig
    from .loader import load_model

    folder = Path(folder)
    path = folder / GROUNDER_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{folder} is not a grounder folder: no {GROUNDER_FILE}")
    with safe_open(str(path), framework="pt") as f:
        meta = json.loads((f.metadata() or {}).get("vlagent_grounder", "null") or "null")
        if not meta:
            raise ValueError(f"{path} has no 'vlagent_grounder' metadata (not written by the training command)")
        tensors = {k: f.get_tensor(k) for k in f.keys()}
    spec = GrounderSpec.from_dict(meta["spec"])
    head_cfg = meta["head"]
    head = GroundingHead(GroundingHeadConfig.from_dict(head_cfg))
    lines = LineEncoder(head_cfg["hidden_size"], byte_dim=meta["byte_dim"])
    anchors = AnchorEncoder(head_cfg["hidden_size"])
    for prefix, module in (("head.", head), ("lines.", lines), ("anchors.", anchors)):
        part = {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}
        missing, unexpected = module.load_state_dict(part, strict=False)
        if missing or unexpected:
            raise ValueError(f"{path}: {prefix.rstrip('.')} tensors do not match (missing {sorted(missing)}, "
                             f"unexpected {sorted(unexpected)})")
    backbone = load_model(folder, device=device, dtype=dtype, with_mtp=False)
    return Grounder(backbone, lines.to(device), anchors.to(device), head.to(device), spec,
                    threshold=float(meta.get("threshold", DEFAULT_THRESHOLD)),
                    none_ratio=float(meta.get("none_ratio", 1.0)), match_boost=float(meta.get("match_boost", 0.0)),
                    threshold_unnamed=meta.get("threshold_unnamed"))
