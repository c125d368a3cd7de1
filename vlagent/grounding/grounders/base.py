"""The grounder protocol: where on this screenshot is the element the instruction means?

Every grounder (OCR match, centre of screen, an API model, a local
checkpoint, and the grounding head of the next issue) answers
`ground(image, instruction, platform=...)` with a `GroundingResult`:
a normalized (x, y) point in the project's one convention, a confidence, the
box it believes the element has (when it knows one), its ranked candidates,
and `found` — False means "not on this screen": the caller must not click
(the agent raises TargetNotFound; the evaluation counts a miss).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from PIL import Image

Point = tuple[float, float]
Box = tuple[float, float, float, float]


@dataclass(frozen=True)
class Candidate:
    """One place a grounder considered, best first in `GroundingResult.candidates`."""

    point: Point
    score: float
    box: Box | None = None
    label: str = ""  # what it matched (OCR text, model output...)


@dataclass
class GroundingResult:
    point: Point | None
    confidence: float
    box: Box | None = None
    candidates: list[Candidate] = field(default_factory=list)
    found: bool = True
    raw: str | None = None  # model output or matched text, for reports
    error: str | None = None  # why nothing was found (unparseable reply, no text matched...)

    def __post_init__(self) -> None:
        if self.found and self.point is None:
            raise ValueError("a found result needs a point")
        if self.point is not None:
            x, y = self.point
            if not (0.0 <= x <= 1.0 and 0.0 <= y <= 1.0):
                raise ValueError(f"point must be normalized to [0, 1] of the screenshot, got ({x}, {y})")

    @classmethod
    def not_found(cls, error: str, raw: str | None = None, candidates: list[Candidate] | None = None
                  ) -> "GroundingResult":  # fmt: skip
        return cls(point=None, confidence=0.0, found=False, raw=raw, error=error, candidates=candidates or [])


@runtime_checkable
class Grounder(Protocol):
    """`name` labels the grounder in tables and reports."""

    name: str

    def ground(self, image: Image.Image, instruction: str, *, platform: str | None = None) -> GroundingResult: ...


__all__ = ["Box", "Candidate", "Grounder", "GroundingResult", "Point"]
