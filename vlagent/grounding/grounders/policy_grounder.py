"""A model's own tool-call coordinates as a grounder (API server or local checkpoint).

The instruction goes to a `Policy` (OpenAIPolicy, LocalPolicy) as the task of
a one-step episode with the screenshot as observation, exactly as
`vlagent ground` does; the first action with a point is the answer (its
coordinates already normalized by the policy's parser). A reply without a
usable point is "not found" with the reply kept in `raw`; a transport
failure (server down, bad key) raises PolicyError, so a dead server stops
the evaluation instead of scoring 0 %.
"""

from __future__ import annotations

from typing import Any

from PIL import Image

from vlagent.actions import ActionParseError
from vlagent.environments.base import Observation
from vlagent.grounding.grounders.base import Candidate, GroundingResult


class PolicyGrounder:
    def __init__(self, policy: Any, name: str | None = None, default_platform: str = "desktop") -> None:
        self.policy = policy
        self.name = name or f"policy:{getattr(policy, 'name', type(policy).__name__)}"
        self.default_platform = default_platform

    def ground(self, image: Image.Image, instruction: str, *, platform: str | None = None) -> GroundingResult:
        # Our records say android/desktop/web; the prompts know desktop and mobile (web pages are desktop).
        prompt_platform = "mobile" if platform == "android" else self.default_platform if platform is None else "desktop"
        rgb = image if image.mode == "RGB" else image.convert("RGB")
        observation = Observation(image=rgb, screen_size=rgb.size, info={"platform": prompt_platform})
        try:
            decision = self.policy.decide(instruction, observation, [])
        except ActionParseError as exc:
            return GroundingResult.not_found(f"unparseable reply: {exc}", raw=getattr(exc, "text", None))
        pointed = [a for a in decision.actions if a.point is not None]
        if not pointed:
            kinds = ", ".join(a.kind for a in decision.actions) or "no action"
            return GroundingResult.not_found(f"the reply has no point ({kinds})", raw=decision.raw_output)
        candidates = [Candidate(a.point, 1.0, None, a.kind) for a in pointed]  # type: ignore[arg-type]
        return GroundingResult(point=pointed[0].point, confidence=1.0, candidates=candidates, raw=decision.raw_output)


__all__ = ["PolicyGrounder"]
