"""Choosing the trained grounder's "not found" threshold on validation screens.

A grounder answers "not found" when its best region's probability mass is under a threshold (or under
the "nothing here" probability). Too low and it clicks something for instructions that name nothing on
the screen; too high and it refuses real targets. `calibrate_threshold` asks the model about the
validation targets and about generated negatives (vlagent.grounding.negatives: instructions naming
something that is not on the screen) and picks the highest threshold that refuses at most
`max_refusal` of the real targets; the rejection rate of the negatives at that threshold is reported
beside it. `write_threshold` stores it in the grounder folder, where load_grounder reads it.
"""
from __future__ import annotations

import json
import random
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Sequence

from PIL import Image

from vlagent.grounding.dataset import GroundingRecord
from vlagent.grounding.negatives import absent_instructions
from vlagent.model.grounder import GROUNDER_FILE, Grounder, TextLine
from vlagent.model.grounding_head import decode_point

CANDIDATE_THRESHOLDS = tuple(round(0.05 * i, 2) for i in range(1, 19))  # 0.05 ... 0.90


@dataclass
class Calibration:
    threshold: float
    targets: int
    refused: float  # share of real targets answered "not found" at the threshold
    negatives: int
    rejected: float  # share of negatives answered "not found" at the threshold


def _answers(grounder: Grounder, image: Image.Image, instruction: str, lines: list[TextLine]) -> tuple[float, float]:
    out, candidates = grounder.logits(image, instruction, lines)
    pred = decode_point(out.pointer[0].softmax(-1), candidates, out.offset[0], threshold=0.0)
    return pred.confidence, pred.p_none


def calibrate_threshold(grounder: Grounder, records: Sequence[GroundingRecord], *, max_refusal: float = 0.04,
                        limit: int = 400, seed: int = 0) -> Calibration:
    """The highest threshold refusing at most `max_refusal` of `records` (a random `limit` of them, which
    must carry cached OCR lines), with the negatives' rejection rate there."""
    records = [r for r in records if r.ocr is not None]
    if not records:
        raise ValueError("calibration needs validation records with cached OCR lines ('ocr')")
    sample = random.Random(seed).sample(list(records), min(limit, len(records)))
    negatives = absent_instructions(sample, per_screen=1, seed=seed)
    lines_of = {r.image_path: [TextLine(ln.text, tuple(ln.box)) for ln in r.ocr or []] for r in sample}
    positive, negative = [], []
    asked = [(r.image_path, r.instruction, positive) for r in sample]
    asked += [(Path(path), text, negative) for path, text in negatives]
    asked.sort(key=lambda a: str(a[0]))  # one screenshot decoded at a time
    image_path, image = None, None
    for path, text, into in asked:
        if path != image_path:
            with Image.open(path) as im:
                image, image_path = im.convert("RGB"), path
        into.append(_answers(grounder, image, text, lines_of[path]))

    def refused(answers: list[tuple[float, float]], t: float) -> float:
        return sum(not (c >= t and c > p_none) for c, p_none in answers) / max(1, len(answers))

    allowed = [t for t in CANDIDATE_THRESHOLDS if refused(positive, t) <= max_refusal]
    threshold = max(allowed) if allowed else CANDIDATE_THRESHOLDS[0]
    return Calibration(threshold, len(positive), refused(positive, threshold), len(negative),
                       refused(negative, threshold))


def write_threshold(folder: str | Path, calibration: Calibration) -> None:
    """Store the calibrated threshold in the folder's grounder.safetensors metadata (rewritten atomically)."""
    import os

    from safetensors import safe_open
    from safetensors.torch import save_file

    path = Path(folder) / GROUNDER_FILE
    with safe_open(str(path), framework="pt") as f:
        metadata = dict(f.metadata() or {})
        tensors = {k: f.get_tensor(k) for k in f.keys()}
    meta = json.loads(metadata["vlagent_grounder"])
    meta["threshold"] = calibration.threshold
    meta.setdefault("info", {})["calibration"] = asdict(calibration)
    metadata["vlagent_grounder"] = json.dumps(meta)
    tmp = path.with_suffix(".tmp")
    save_file(tensors, str(tmp), metadata=metadata)
    os.replace(tmp, path)


__all__ = ["Calibration", "calibrate_threshold", "write_threshold"]
