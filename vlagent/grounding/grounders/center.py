"""The floor: always the centre of the screen."""

from __future__ import annotations

from PIL import Image

from vlagent.grounding.grounders.base import GroundingResult


class CenterGrounder:
    """Clicks the middle of the screenshot whatever the instruction says.

    Its accuracy is the share of targets that happen to cover the centre: any
    grounder worth running must beat it.
    """

    name = "center"

    def ground(self, image: Image.Image, instruction: str, *, platform: str | None = None) -> GroundingResult:
        return GroundingResult(point=(0.5, 0.5), confidence=0.0)


__all__ = ["CenterGrounder"]
