"""The no-learning baseline: OCR the screen, fuzzy-match the instruction, click the text.

The instruction is reduced to the words that could be on screen: a quoted
part if there is one ("the 'Save' button" -> Save), else what is left after
dropping command verbs, articles and role words ("click the Sign in
button" -> sign in). Every run of consecutive OCR words of a line (and the
whole line) is a candidate; both sides are compared case-, accent- and
space-insensitively (OCR drops spaces and accents), by difflib's ratio. The
best candidate's box centre is the click; below `threshold` the result is
"not found".

What it cannot do by design, and the evaluation shows: icons without text,
fields and checkboxes whose target sits beside their label, and relations
("the second item").
"""

from __future__ import annotations

import difflib
import re
import unicodedata
from typing import Iterable

from PIL import Image

from vlagent.grounding.dataset import OcrLine
from vlagent.grounding.grounders.base import Candidate, GroundingResult
from vlagent.grounding.ocr import read_page
from vlagent.model.target_phrase import target_words

# Words of an instruction that name the action or the kind of control, not its text.
STOPWORDS = frozenset("""
a an the on in into at of to for from with and or this that it its my your please
button icon field box text input link tab menu item entry row option checkbox radio toggle switch slider
key bar label labelled labeled called named says say under below above beside
""".split())
# Verbs that say what to do. Dropped only where a command starts ("open the File menu"): in the middle
# they are usually the label itself ("the Open button", "click Select all").
LEADING_VERBS = frozenset("""
please click tap press hit select choose pick open go follow tick untick check uncheck toggle turn switch
double right long double-click right-click long-press
""".split())
_QUOTED = re.compile(r"['\"“”‘’«»「」](.+?)['\"“”‘’«»「」]")
MAX_SPAN_WORDS = 6


def _fold(text: str) -> str:
    """Lower case, no accents, no spaces or punctuation: how OCR text and queries are compared."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch) and (ch.isalnum()))


def query_of(instruction: str) -> str:
    """The part of an instruction that should appear on screen."""
    instruction = target_words(instruction)
    quoted = _QUOTED.findall(instruction)
    if quoted:
        return max(quoted, key=len)
    instruction = re.sub(r"\b(?:next to|close to|in front of|on the (?:left|right) of)\b", " ", instruction,
                         flags=re.IGNORECASE)
    words = re.findall(r"[\w’'?…\-]+", instruction, flags=re.UNICODE)
    start = 0  # "please", "double"/"right"/"long", then one verb: "click Select all" keeps Select
    for optional in ({"please"}, {"double", "right", "long"}):
        if start < len(words) - 1 and words[start].casefold() in optional:
            start += 1
    if start < len(words) - 1 and words[start].casefold() in LEADING_VERBS:
        start += 1
    kept = [w for w in words[start:] if w.casefold() not in STOPWORDS]
    # All stop words ("click Next" has none left once "next" were dropped): keep the last word.
    return " ".join(kept) if kept else (words[-1] if words else instruction)


def _spans(words: tuple[OcrLine, ...]) -> Iterable[tuple[str, tuple[float, float, float, float]]]:
    for i in range(len(words)):
        for j in range(i + 1, min(len(words), i + MAX_SPAN_WORDS) + 1):
            part = words[i:j]
            text = " ".join(w.text for w in part)
            box = (min(w.box[0] for w in part), min(w.box[1] for w in part),
                   max(w.box[2] for w in part), max(w.box[3] for w in part))  # fmt: skip
            yield text, box


class OcrMatchGrounder:
    name = "ocr-match"

    def __init__(self, threshold: float = 0.6, top_k: int = 5) -> None:
        if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or not 0.0 <= threshold <= 1.0:
            raise ValueError(f"threshold must be a number in [0, 1], got {threshold!r}")
        if isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 1:
            raise ValueError(f"top_k must be a whole number >= 1, got {top_k!r}")
        self.threshold = threshold
        self.top_k = top_k

    def ground(self, image: Image.Image, instruction: str, *, platform: str | None = None) -> GroundingResult:
        query = query_of(instruction)
        q = _fold(query)
        if not q:
            return GroundingResult.not_found(f"nothing to look for in {instruction!r}")
        page = read_page(image)
        scored: list[Candidate] = []
        for line, words in zip(page.lines, page.words):
            options = dict(_spans(words))
            options.setdefault(line.text, line.box)
            for text, box in options.items():
                c = _fold(text)
                if not c:
                    continue
                score = difflib.SequenceMatcher(None, q, c, autojunk=False).ratio()
                centre = ((box[0] + box[2]) / 2, (box[1] + box[3]) / 2)
                scored.append(Candidate(centre, score, box, text))
        # Best score first; among equals the shorter text (the word, not the whole menu bar).
        scored.sort(key=lambda c: (-c.score, len(c.label)))
        top = scored[: self.top_k]
        if not top:
            return GroundingResult.not_found("OCR read no text on the screen", raw=query)
        best = top[0]
        if best.score < self.threshold:
            return GroundingResult.not_found(
                f"no text matches {query!r} (best {best.label!r}, {best.score:.2f} < {self.threshold})",
                raw=query, candidates=top,
            )  # fmt: skip
        return GroundingResult(point=best.point, confidence=best.score, box=best.box, candidates=top, raw=best.label)


__all__ = ["OcrMatchGrounder", "query_of"]
