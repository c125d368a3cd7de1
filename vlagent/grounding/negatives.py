"""Generated negatives: instructions that name something that is not on a screen.

A grounder must know when it does not know: asked for an element that is not
on the screenshot it should answer "not found" rather than click somewhere.
`absent_instructions(records, per_screen)` builds such questions from the
evaluated records themselves, without any labelling: for each screen it
borrows instructions of records from *other* screens whose significant words
appear nowhere on this screen, as far as the records tell:

* significant words are the letters-only, lower-cased, accent-folded words of
  more than 3 letters, minus the words that say what kind of control or
  action it is or where it sits ("button", "click", "third", "left"...) and
  the chrome most screens show (menu bar, keyboard keys), which any screen
  may have without naming the same element;
* a candidate's words are those of the part of it that should be on screen
  (`ocr_match.query_of`: "type Anna into the Name field" -> Name), and at
  least one of them must look like a label: capitalized, quoted, or in a
  script without case ("select Medium", "untick 'Airplane mode'", "the 电子邮件
  input"). So descriptions and relations ("the button to create a new one",
  "the third row", "the page title") never qualify: this screen may well
  have such an element. Icon targets are not borrowed either: an icon has no
  text to check its absence against, and generated screens reuse icons;
* "on this screen" means in the instructions or `text` of this screen's
  records, or in its cached OCR text (`record.ocr` lines, when present; OCR is
  never run here). A candidate word that occurs anywhere inside that text,
  even within a longer word or across OCR's dropped spaces, rules it out.

When 20 random draws find nothing that qualifies, a made-up name is used
instead ("the Zorblax button"), itself checked against the screen. The
choice is deterministic: one `random.Random(seed)`, screens in the order of
their first record.

The check can only be as complete as what the records say about a screen: a
screen without cached OCR may show a borrowed label that none of its records
mentions. Cache OCR in the records (`ocr` lines) for a stricter check.
"""

from __future__ import annotations

import random
import re
import unicodedata
from pathlib import Path
from typing import Iterable, Sequence

from vlagent.grounding.dataset import GroundingRecord
from vlagent.grounding.grounders.ocr_match import LEADING_VERBS, STOPWORDS, query_of

TRIES = 20
# Words that say what kind of control, which one, or where, not which element: shared by many screens.
GENERIC_WORDS = STOPWORDS | LEADING_VERBS | frozenset("""
first second third fourth fifth sixth seventh eighth ninth tenth last next previous
left right middle center centre corner bottom upper lower there here near
dropdown combo textbox button buttons icons fields links tabs menus items entries rows options list lists
title page header footer toolbar sidebar window dialog screen area panel section search navigation
file edit view help tools keyboard space enter shift return backspace delete
""".split())
_MADE_UP = ("Zorblax", "Quindle", "Frobnitz", "Wibblestep", "Glorptain", "Snerkville", "Blivvet", "Plumtrask")
_ROLES = ("button", "menu", "link", "tab")
_SYLLABLES = ("zor", "blax", "quin", "dle", "frob", "nitz", "wib", "glor", "snerk", "vet", "plum", "trask", "yuk")


def _fold(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


def significant_words(text: str) -> set[str]:
    """The words of `text` that name an element: letters only, lower case, no accents, > 3 letters, not generic."""
    words = re.findall(r"[^\W\d_]+", _fold(text))
    return {w for w in words if len(w) > 3 and w not in GENERIC_WORDS}


def label_words(instruction: str) -> set[str]:
    """The significant words of what `instruction` says is on screen, when one of them looks like a label.

    Empty when none does: the instruction describes its target rather than naming it.
    """
    query = query_of(instruction)
    quoted = query.strip() != "" and any(q in instruction for q in (f"'{query}'", f'"{query}"', f"“{query}”"))
    labels = [w for w in re.findall(r"[^\W\d_]+", query) if quoted or w[0].isupper() or not w[0].islower()]
    words = significant_words(query)
    return words if words & significant_words(" ".join(labels)) else set()


def _screen_text(records: Iterable[GroundingRecord]) -> tuple[set[str], str]:
    """What a screen's records say is on it: its words, and all its letters run together."""
    parts: list[str] = []
    for r in records:
        parts.append(r.instruction)
        if r.text:
            parts.append(r.text)
        for line in r.ocr or ():
            parts.append(line.text)
    words: set[str] = set()
    for part in parts:
        words.update(re.findall(r"[^\W\d_]+", _fold(part)))
    blob = "".join(re.findall(r"[^\W\d_]+", _fold(" ".join(parts))))
    return words, blob


def _absent(words: set[str], screen_words: set[str], blob: str) -> bool:
    return bool(words) and not any(w in screen_words or w in blob for w in words)


def _made_up(rng: random.Random, screen_words: set[str], blob: str, asked: set[frozenset[str]]) -> str:
    names = list(_MADE_UP)
    rng.shuffle(names)
    while True:
        for name in names:
            words = significant_words(name)
            if frozenset(words) not in asked and _absent(words, screen_words, blob):
                asked.add(frozenset(words))
                return f"the {name} {rng.choice(_ROLES)}"
        # Every stock name is taken or on this screen: invent more.
        names = ["".join(rng.choice(_SYLLABLES) for _ in range(3)).capitalize() for _ in range(8)]


def absent_instructions(records: Sequence[GroundingRecord], per_screen: int,
                        seed: int = 0) -> list[tuple[Path, str]]:  # fmt: skip
    """`per_screen` instructions per screen of `records` that name nothing on that screen.

    Returns (screenshot path, instruction) pairs, screens in the order of
    their first record, nothing asked twice for one screen. Instructions are
    borrowed from records of other screens whose significant words the
    screen's records (instructions, `text`, cached OCR) never show; after 20
    draws that do not qualify, a made-up name ("the Zorblax button"). See the
    module docstring for the rules. Deterministic for a given `seed`.
    """
    if per_screen <= 0:
        return []
    screens: dict[str, list[GroundingRecord]] = {}
    paths: dict[str, Path] = {}
    for r in records:
        key = str(r.image_path)
        screens.setdefault(key, []).append(r)
        paths.setdefault(key, r.image_path)
    # The pool: each distinct (screen, instruction) that names a label, no icons.
    pool: list[tuple[str, str, set[str]]] = []
    seen: set[tuple[str, str]] = set()
    for key, recs in screens.items():
        for r in recs:
            words = label_words(r.instruction)
            if r.element != "icon" and words and (key, r.instruction) not in seen:
                seen.add((key, r.instruction))
                pool.append((key, r.instruction, words))
    rng = random.Random(seed)
    out: list[tuple[Path, str]] = []
    for key, recs in screens.items():
        screen_words, blob = _screen_text(recs)
        others = [p for p in pool if p[0] != key]
        asked: set[frozenset[str]] = set()  # "the Privacy link" and "follow the Privacy link" ask the same
        for _ in range(per_screen):
            choice = None
            for _ in range(TRIES if others else 0):
                _, instruction, words = rng.choice(others)
                if frozenset(words) not in asked and _absent(words, screen_words, blob):
                    choice = instruction
                    asked.add(frozenset(words))
                    break
            if choice is None:
                choice = _made_up(rng, screen_words, blob, asked)
            out.append((paths[key], choice))
    return out


__all__ = ["GENERIC_WORDS", "absent_instructions", "label_words", "significant_words"]
