"""Planner + grounder: a served model names its targets in words, our grounder points.

`ground_reply` reads a planner reply (vlagent.actions.targets), grounds every description on the
step's screenshot through `vlagent.grounding.locate` (the check scripts use too) and returns the
Actions, with normalized points, before the safety gate sees them. A description the grounder does
not find makes the whole reply an error value: nothing of it is executed (a half-done plan can do
harm), and the agent shows the error, with the grounder's nearest candidates, to the model next turn.

`screen_text_block` is the screen read as text (OCR segments in reading order), for models that
cannot see images or read better with the text beside the image.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from PIL import Image

from vlagent.actions import Action
from vlagent.actions.targets import read_targeted_calls, to_actions
from vlagent.grounding.locate import TargetNotFound, locate

# Segments whose centres lie closer than this many line heights vertically are one row of text.
ROW_TOLERANCE = 0.5
NO_TEXT = "(no text was read on the screen)"


@dataclass
class GroundedReply:
    """A planner reply after grounding: the actions, or the error to show the model (then no actions)."""

    actions: list[Action]
    grounding: list[dict[str, Any]] = field(default_factory=list)  # one record per description, for the run
    error: str | None = None


def ground_reply(raw: str, grounder: Any, image: Image.Image, platform: str = "desktop") -> GroundedReply:
    """Ground each target of a planner reply on `image`; raises ActionParseError for a malformed reply."""
    calls = read_targeted_calls(raw)
    where = "android" if platform == "mobile" else platform  # the grounders' platform names
    points: dict[str, tuple[float, float]] = {}
    grounding: list[dict[str, Any]] = []
    missing: list[TargetNotFound] = []
    for call in calls:
        for argument, description in call.targets.items():
            if description in points or any(m.description == description for m in missing):
                continue  # one description, one grounding per screen
            record: dict[str, Any] = {"action": call.action, "argument": argument, "target": description,
                                      "grounder": getattr(grounder, "name", type(grounder).__name__)}
            try:
                result = locate(grounder, image, description, platform=where)
            except TargetNotFound as e:
                missing.append(e)
                grounding.append({**record, "found": False, "error": e.reason,
                                  "candidates": [_candidate(c) for c in e.candidates[:3]]})
                continue
            points[description] = result.point
            grounding.append({**record, "found": True, "point": [round(v, 4) for v in result.point],
                              "confidence": round(result.confidence, 4)})
    if missing:
        told = "; ".join(f"target {e}" for e in missing)
        return GroundedReply([], grounding, f"{told}. Nothing of this reply was executed; describe the element "
                                            "by the text it shows, or bring it into view first.")
    return GroundedReply(to_actions(calls, points), grounding)


def _candidate(c: Any) -> dict[str, Any]:
    return {"label": c.label, "score": round(c.score, 4), "point": [round(v, 4) for v in c.point]}


def screen_text_block(image: Image.Image) -> str:
    """The screen's OCR text, one row per line, top to bottom; ' | ' separates the items of a row."""
    from vlagent.grounding.grounders.head import screen_text  # OCR, cached per screen content

    segments = [s for s in screen_text(image) if s.text.strip()]
    if not segments:
        return NO_TEXT
    segments.sort(key=lambda s: (s.box[1] + s.box[3]) / 2)
    rows: list[list[Any]] = []
    for s in segments:
        centre, height = (s.box[1] + s.box[3]) / 2, s.box[3] - s.box[1]
        if rows:
            first = rows[-1][0]
            if abs(centre - (first.box[1] + first.box[3]) / 2) <= ROW_TOLERANCE * max(height, first.box[3] - first.box[1]):
                rows[-1].append(s)
                continue
        rows.append([s])
    return "\n".join(" | ".join(s.text.strip() for s in sorted(row, key=lambda s: s.box[0])) for row in rows)


__all__ = ["GroundedReply", "NO_TEXT", "ground_reply", "screen_text_block"]
