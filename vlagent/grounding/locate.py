"""Find a described element or say it is not there: the one check between a grounder and a click.

Scripts (vlagent.connect) and planner runs (`vlagent run --grounder`) both ground descriptions through
`locate`: a result the grounder does not call found raises TargetNotFound, which names the description,
the grounder's reason and its nearest candidates, so nothing is ever clicked on a guess.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

from PIL import Image

from vlagent.grounding.grounders.base import Candidate, GroundingResult


def describe_candidates(candidates: Sequence[Candidate], limit: int = 3) -> str:
    """'Press Enter' (0.50) at (0.21, 0.44), ... : what a reader (or a model) can look for instead."""
    parts = []
    for c in candidates[:limit]:
        name = f"{c.label!r} " if c.label else ""
        parts.append(f"{name}({c.score:.2f}) at ({c.point[0]:.2f}, {c.point[1]:.2f})")
    return ", ".join(parts)


class TargetNotFound(LookupError):
    """A description that matches nothing on the screen. `screenshot` shows the candidates considered."""

    def __init__(self, description: str, reason: str | None, screenshot: Path | None, candidates: list) -> None:
        super().__init__(description)
        self.description, self.reason, self.screenshot, self.candidates = description, reason, screenshot, candidates

    def __str__(self) -> str:  # built on demand: a script adds the screenshot after the fact
        nearest = f"; nearest: {describe_candidates(self.candidates)}" if self.candidates else ""
        where = f"; candidates drawn on {self.screenshot}" if self.screenshot else ""
        return f"{self.description!r} is not on the screen ({self.reason or 'below the confidence threshold'}){nearest}{where}"


def locate(grounder: Any, image: Image.Image, description: str, *, platform: str = "desktop") -> GroundingResult:
    """The grounder's answer for `description` on `image`; raises TargetNotFound when it is not there."""
    result = grounder.ground(image, description, platform=platform)
    if not result.found:
        raise TargetNotFound(description, result.error, None, list(result.candidates))
    return result


__all__ = ["TargetNotFound", "describe_candidates", "locate"]
