"""Other words for a label, learned from grounding data: "log in" for Sign in, "make a paper copy" for Print.

People ask for a button by what it does as often as by what it says. Where an instruction's words are
written nowhere on the screen, the grounder's model must know that "dismiss" means the Close button;
a model of a few million parameters trained on a few hundred such instructions mostly does not. This
lexicon is the plain count of what it saw in training:

- `learn_lexicon(records)`: for every train-split record whose target has a label (`meta["label"]`)
  that the instruction does not contain, the instruction's query (model.grounder.instruction_query,
  case folded: "the button to make a new one" -> "make new one") is counted with the label;
- a phrase seen at least MIN_SEEN times whose most frequent label took more than half of them
  (MIN_TOP_SHARE: "the third one" or "the bell icon in the bottom bar" meant many labels and is left
  out) keeps the labels that took at least MIN_SHARE, the most frequent first ("proceed": Continue,
  then Next);
- `Lexicon.labels_for(instruction)` gives those labels for an instruction; the grounder answers with
  the first of them written exactly once on the screen (model.grounder.exact_text).

It knows only phrasings its data used: a phrase never seen finds nothing, and the model answers. The
shipped lexicon (default_grounder/lexicon.json) is written by `vlagent train-lexicon` from the train
split of the synthetic set the grounder trained on.
"""
from __future__ import annotations

import json
from collections import Counter, defaultdict
from functools import lru_cache
from pathlib import Path
from typing import Iterable, Mapping, Sequence

MIN_SEEN = 3  # instructions a phrase needs in the data to be kept
MIN_TOP_SHARE = 0.55  # the share of them its most frequent label needs: else the phrase means no one label
MIN_SHARE = 0.2  # the share another label needs to be kept beside it ("proceed": Continue, then Next)


def _phrase(instruction: str) -> str:
    from vlagent.model.grounder import instruction_query

    return " ".join(instruction_query(instruction).casefold().split())


def _folded(text: str) -> str:
    from vlagent.model.grounder import _fold

    return _fold(text)


class Lexicon:
    """phrase -> the labels it meant in the data, the most frequent first."""

    def __init__(self, phrases: Mapping[str, Sequence[str]]):
        self.phrases = {phrase: tuple(labels) for phrase, labels in phrases.items()}

    def labels_for(self, instruction: str) -> tuple[str, ...]:
        return self.phrases.get(_phrase(instruction), ())

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps({"phrases": self.phrases}, indent=1, ensure_ascii=False, sort_keys=True)
                              + "\n", encoding="utf-8")

    @staticmethod
    def load(path: str | Path) -> "Lexicon":
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        if not isinstance(data, dict) or not isinstance(data.get("phrases"), dict):
            raise ValueError(f"{path}: not a phrase lexicon (no 'phrases' mapping)")
        return Lexicon(data["phrases"])


def learn_lexicon(records: Iterable) -> Lexicon:
    """The lexicon of the train-split records whose instruction names its target's label in other words."""
    counts: dict[str, Counter] = defaultdict(Counter)
    for record in records:
        label = (record.meta or {}).get("label") if record.split == "train" else None
        if not label or not _folded(label) or _folded(label) in _folded(record.instruction):
            continue
        phrase = _phrase(record.instruction)
        if len(phrase) >= 3:  # "go on" asks for "on": too little to go by
            counts[phrase][label] += 1
    phrases = {}
    for phrase, labels in counts.items():
        seen = sum(labels.values())
        ranked = labels.most_common()
        kept = [label for label, n in ranked if n >= MIN_SHARE * seen]
        if seen >= MIN_SEEN and ranked[0][1] >= MIN_TOP_SHARE * seen:
            phrases[phrase] = kept
    return Lexicon(phrases)


@lru_cache(maxsize=4)
def load_lexicon(path: str) -> Lexicon | None:
    """The lexicon at `path`, read once; None where there is no such file."""
    return Lexicon.load(path) if Path(path).is_file() else None


__all__ = ["Lexicon", "MIN_SEEN", "MIN_SHARE", "MIN_TOP_SHARE", "learn_lexicon", "load_lexicon"]
