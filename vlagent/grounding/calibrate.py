"""Choosing the trained grounder's "not found" rule on validation screens.

A grounder answers "not found" when its best region's probability mass is under a threshold, or not
more than `none_ratio` times the "nothing here" probability. Too strict and it refuses real targets;
too lax and it clicks something for instructions that name nothing on the screen. `calibrate_threshold`
asks the model about the validation targets and about generated negatives
(vlagent.grounding.negatives: instructions naming something that is not on the screen). Among the
rules whose validation accuracy (a target counts when it is found and hit) is within ACCURACY_SLACK of
the best rule's, it picks the one with the most right answers: accuracy plus the share of negatives
rejected (ties: the higher accuracy, the larger none_ratio, the higher threshold). A refusal costs
nothing where the answer would have missed anyway, and an agent that says "not found" does not click
the wrong thing; a hit refused is a failed step, as a negative clicked is. `write_threshold` stores the
rule in the grounder folder, where load_grounder reads it.

Before the rule, it picks the grounder's `match_boost` on the same validation targets: how much more
the lines' match with the instruction counts in the pointer's logits than the head learned to count it
(the head's own weight can lean on what a generated label looks like rather than on what it says). The
boost is never applied to instructions naming a control that sits beside its label ("the Name field"):
there the label is not the target.
"""
from __future__ import annotations

import json
import math
import random
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Sequence

from PIL import Image

from vlagent.grounding.dataset import GroundingRecord
from vlagent.grounding.negatives import absent_instructions
from vlagent.model.grounder import GROUNDER_FILE, Grounder, TextLine, names_screen_text, written_target
from vlagent.model.grounding_head import decode_logits

CANDIDATE_THRESHOLDS = tuple(round(0.05 * i, 2) for i in range(1, 19))  # 0.05 ... 0.90
CANDIDATE_NONE_RATIOS = (1.0, 0.5, 0.25, 0.1, 0.0)  # 0: the threshold alone decides
CANDIDATE_MATCH_BOOSTS = (0.0, 0.5, 1.0, 1.5, 2.0, 3.0)
MIN_REAL_TARGETS = 100  # real validation targets enough to calibrate on them alone
MIN_NEGATIVES = 200
ACCURACY_SLACK = 0.015  # validation accuracy a rule may give up (in refusals) to reject more negatives


@dataclass
class Calibration:
    threshold: float
    targets: int
    refused: float  # share of real targets answered "not found" by the rule
    negatives: int
    rejected: float  # share of negatives answered "not found" by the rule
    none_ratio: float = 1.0
    match_boost: float = 0.0
    accuracy: float | None = None  # of the validation targets, found and hit, with the boost and the rule
    threshold_unnamed: float | None = None  # for instructions whose words are nowhere on the screen


def _raw(grounder: Grounder, image: Image.Image, instruction: str, lines: list[TextLine]):
    """The head's output without any match boost, the match the boost scales, and the candidates."""
    out, candidates, match = grounder.head_logits(image, instruction, lines)
    return out, match, candidates


def _decode(raw, boost: float):
    out, match, candidates = raw
    boosted = replace(out, pointer=out.pointer.clone())
    boosted.pointer[0, :-1] += boost * match
    return decode_logits(boosted, candidates, threshold=0.0)


def calibration_records(records: Sequence[GroundingRecord]) -> list[GroundingRecord]:
    """The validation records to calibrate on: those with cached OCR lines; of them only the real screens
    (not `synthetic:` sources) when there are at least MIN_REAL_TARGETS. A generated screen's cached lines
    are the generator's own text, read perfectly, while the grounder in use reads real OCR: settings chosen
    there did not carry over (the third run's match boost: 0 on the mixed sample, 1.5 on real screens)."""
    with_text = [r for r in records if r.ocr is not None]
    real = [r for r in with_text if not r.source.startswith("synthetic:")]
    return real if len(real) >= MIN_REAL_TARGETS else with_text


def calibrate_threshold(grounder: Grounder, records: Sequence[GroundingRecord], *,
                        accuracy_slack: float = ACCURACY_SLACK, limit: int = 400, seed: int = 0,
                        text_first: bool = True) -> Calibration:
    """On `records` (a random `limit` of them, which must carry cached OCR lines): the match boost with the
    best accuracy (ties: the smaller), then the rule (choose_rule). text_first: as HeadGrounder answers, a
    record whose named text is written once on its screen is answered by that text (never refused,
    whatever the rule)."""
    records = [r for r in records if r.ocr is not None]
    if not records:
        raise ValueError("calibration needs validation records with cached OCR lines ('ocr')")
    sample = random.Random(seed).sample(list(records), min(limit, len(records)))
    # at least MIN_NEGATIVES negatives: a few real screens get several each
    per_screen = max(1, math.ceil(MIN_NEGATIVES / len({r.image_path for r in sample})))
    negatives = absent_instructions(sample, per_screen=per_screen, seed=seed)
    lines_of = {r.image_path: [TextLine(ln.text, tuple(ln.box)) for ln in r.ocr or []] for r in sample}
    positive, negative = [], []
    asked = [(r.image_path, r.instruction, positive, r) for r in sample]
    asked += [(Path(path), text, negative, (Path(path), text)) for path, text in negatives]
    # id(record) -> the box HeadGrounder answers with before asking the model, where it does
    by_text = {id(r): box for r in (sample if text_first else ())
               if (box := written_target(r.instruction, lines_of[r.image_path])) is not None}
    asked.sort(key=lambda a: str(a[0]))  # one screenshot decoded at a time
    image_path, image = None, None
    for path, text, into, record in asked:
        if path != image_path:
            with Image.open(path) as im:
                image, image_path = im.convert("RGB"), path
        into.append((record, _raw(grounder, image, text, lines_of[path])))

    def answer(record: GroundingRecord, raw, boost: float) -> Answer:
        box = by_text.get(id(record))
        if box is not None:  # answered by its text: never refused
            return Answer(1.0, 0.0, record.contains(((box[0] + box[2]) / 2, (box[1] + box[3]) / 2)))
        p = _decode(raw, boost)
        named = names_screen_text(record.instruction, lines_of[record.image_path])
        return Answer(p.confidence, p.p_none, record.contains(p.point), named)

    def accuracy(boost: float) -> float:
        return sum(answer(r, raw, boost).hit for r, raw in positive) / len(positive)

    scores = {boost: accuracy(boost) for boost in CANDIDATE_MATCH_BOOSTS}
    boost = max(CANDIDATE_MATCH_BOOSTS, key=lambda b: (scores[b], -b))
    answers = [answer(r, raw, boost) for r, raw in positive]
    absent = []
    for (path, text), raw in negative:
        p = _decode(raw, boost)
        absent.append(Answer(p.confidence, p.p_none, False, names_screen_text(text, lines_of[path])))
    rule = choose_rule(answers, absent, accuracy_slack)
    return Calibration(rule[0], len(answers), _refused(answers, *rule), len(absent), _refused(absent, *rule),
                       rule[1], boost, _accuracy(answers, *rule), rule[2])


@dataclass(frozen=True)
class Answer:
    """What the grounder said for one instruction before any rule: its best region's mass, the "nothing
    here" probability, whether its point is inside the target (always False for a negative), and whether
    a word of it is written on the screen (names_screen_text)."""
    confidence: float
    p_none: float
    hit: bool
    named: bool = True

    def found(self, threshold: float, none_ratio: float, threshold_unnamed: float | None = None) -> bool:
        if not self.named and threshold_unnamed is not None:
            threshold = threshold_unnamed
        return self.confidence >= threshold and self.confidence > none_ratio * self.p_none


def _refused(answers: Sequence[Answer], *rule) -> float:
    return sum(not a.found(*rule) for a in answers) / max(1, len(answers))


def _accuracy(answers: Sequence[Answer], *rule) -> float:
    return sum(a.hit and a.found(*rule) for a in answers) / max(1, len(answers))


def choose_rule(targets: Sequence[Answer], negatives: Sequence[Answer],
                accuracy_slack: float = ACCURACY_SLACK) -> tuple[float, float, float]:
    """(threshold, none_ratio, threshold_unnamed): the last for instructions none of whose words is
    written on the screen (an icon, or something absent: every generated negative), never below the
    first. Among the candidate rules whose accuracy on `targets` is within `accuracy_slack` of the best
    rule's, the one with the most right answers: its accuracy on `targets` plus its share of `negatives`
    rejected (a hit lost and a negative clicked weigh the same; a refused target that would have been
    missed costs nothing). Ties: the higher accuracy, the larger none_ratio, the higher threshold, the
    lower threshold_unnamed. Rejecting the most negatives alone, whatever the hits lost within the
    slack, took the sixth run to threshold 0.50: 1.5 points of hits on real screens for 1 point of
    negatives, and 32.8 % of generated targets refused."""
    rules = [(t, k, u) for k in CANDIDATE_NONE_RATIOS for t in CANDIDATE_THRESHOLDS
             for u in CANDIDATE_THRESHOLDS if u >= t]
    accuracy = {rule: _accuracy(targets, *rule) for rule in rules}
    best = max(accuracy.values())
    allowed = [rule for rule in rules if accuracy[rule] >= best - accuracy_slack - 1e-12]
    return max(allowed, key=lambda rule: (round(accuracy[rule] + _refused(negatives, *rule), 9),
                                          accuracy[rule], rule[1], rule[0], -rule[2]))


def write_threshold(folder: str | Path, calibration: Calibration) -> None:
    """Store the calibrated rule in the folder's grounder.safetensors metadata (rewritten atomically)."""
    import os

    from safetensors import safe_open
    from safetensors.torch import save_file

    path = Path(folder) / GROUNDER_FILE
    with safe_open(str(path), framework="pt") as f:
        metadata = dict(f.metadata() or {})
        tensors = {k: f.get_tensor(k) for k in f.keys()}
    meta = json.loads(metadata["vlagent_grounder"])
    meta["threshold"] = calibration.threshold
    meta["threshold_unnamed"] = (calibration.threshold if calibration.threshold_unnamed is None
                                 else calibration.threshold_unnamed)
    meta["none_ratio"] = calibration.none_ratio
    meta["match_boost"] = calibration.match_boost
    meta.setdefault("info", {})["calibration"] = asdict(calibration)
    metadata["vlagent_grounder"] = json.dumps(meta)
    tmp = path.with_suffix(".tmp")
    save_file(tensors, str(tmp), metadata=metadata)
    os.replace(tmp, path)


__all__ = ["Answer", "Calibration", "calibrate_threshold", "choose_rule", "write_threshold"]
