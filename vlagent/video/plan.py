"""How many frames to take from a video, when, and at what size.

The rules follow Qwen's video pipeline (qwen-vl-utils' `smart_nframes` /
`fetch_video`), expressed in seconds instead of frame indices so that they
also hold for variable-frame-rate files, with Qwen3.5's 32-pixel grid
(patch 16 × spatial merge 2) and temporal patches of 2 frames.

Frame count (`plan_frame_count`), with F_range = the number of frames
presented in the range (the sampler counts them from the probe; without it,
range_seconds × source fps):
  * `num_frames=N`: min(N, F_range) frames, N kept as given (odd allowed).
  * otherwise `fps` (default 2): n = range_seconds × fps, clamped to
    [min_frames rounded up to even, max_frames rounded down to even] and to
    F_range, then rounded down to an even count so frames pair into temporal
    patches; never below 2 unless the range holds a single frame.

When (`plan_target_times`): the range [start, end) is cut into n equal slots
and each target time is a slot's middle: t_i = start + (i + ½)·(end − start)/n.
The sampler returns, for each target, the frame on screen at that time (exact
mode) or the nearest keyframe (keyframe mode), with that frame's real time.

Size (`plan_resolution`): with F = 32,
  cap = max(min(768·F², total_pixels · 2 / n), 1.05 · min_pixels)
  cap = min(cap, max_pixels)            (an explicit max_pixels always wins)
  (width, height) = smart_resize(source size, factor F, min(min_pixels, cap), cap)
i.e. both sides are multiples of 32, the area lies in [min_pixels, cap] as far
as the grid allows, and the aspect ratio is kept. `total_pixels` is a budget
over all temporal patches: a pair of frames costs one frame's area in tokens.
Defaults: min_pixels = 128·32², max_pixels = 768·32², total_pixels =
0.9 · 128 000 · 32² (Qwen's 128k-token context).

Tokens: each temporal patch (2 frames; an odd last frame is padded with a
copy of itself, as Qwen's processor does) costs (h/32)·(w/32) tokens.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from vlagent.images import smart_resize

FACTOR = 32  # patch 16 × merge 2
TEMPORAL_PATCH = 2
DEFAULT_FPS = 2.0
DEFAULT_MIN_FRAMES = 4
DEFAULT_MAX_FRAMES = 768
DEFAULT_MIN_PIXELS = 128 * FACTOR * FACTOR
DEFAULT_MAX_PIXELS = 768 * FACTOR * FACTOR
DEFAULT_TOTAL_PIXELS = int(0.9 * 128_000 * FACTOR * FACTOR)


@dataclass(frozen=True)
class SamplingPlan:
    """What the sampler will produce: the count, the times, the size, the cost."""

    num_frames: int
    target_times: tuple[float, ...]
    start: float
    end: float
    width: int  # output frame size, upright (after rotation)
    height: int
    source_width: int  # upright source size
    source_height: int

    @property
    def temporal_patches(self) -> int:
        return math.ceil(self.num_frames / TEMPORAL_PATCH)

    @property
    def tokens_per_patch(self) -> int:
        return (self.width // FACTOR) * (self.height // FACTOR)

    @property
    def num_tokens(self) -> int:
        return self.temporal_patches * self.tokens_per_patch

    def to_dict(self) -> dict:
        return {
            "num_frames": self.num_frames,
            "start": self.start,
            "end": self.end,
            "width": self.width,
            "height": self.height,
            "source_width": self.source_width,
            "source_height": self.source_height,
            "temporal_patches": self.temporal_patches,
            "tokens_per_patch": self.tokens_per_patch,
            "num_tokens": self.num_tokens,
        }


def _floor_even(x: float) -> int:
    return int(math.floor(x / TEMPORAL_PATCH)) * TEMPORAL_PATCH


def _ceil_even(x: float) -> int:
    return int(math.ceil(x / TEMPORAL_PATCH)) * TEMPORAL_PATCH


def plan_frame_count(
    range_seconds: float,
    frames_in_range: int,
    *,
    fps: float | None = None,
    num_frames: int | None = None,
    min_frames: int = DEFAULT_MIN_FRAMES,
    max_frames: int = DEFAULT_MAX_FRAMES,
) -> int:
    """The number of frames to sample (rules in the module docstring)."""
    if fps is not None and num_frames is not None:
        raise ValueError("give either fps or num_frames, not both")
    if range_seconds <= 0:
        raise ValueError(f"range must be longer than 0 s, got {range_seconds}")
    frames_in_range = max(1, int(frames_in_range))
    if num_frames is not None:
        if int(num_frames) < 1:
            raise ValueError(f"num_frames must be at least 1, got {num_frames}")
        return min(int(num_frames), frames_in_range)
    fps = DEFAULT_FPS if fps is None else float(fps)
    if not fps > 0:
        raise ValueError(f"fps must be positive, got {fps}")
    if min_frames < 1 or max_frames < 1:
        raise ValueError(f"min_frames and max_frames must be at least 1, got {min_frames}, {max_frames}")
    lo, hi = _ceil_even(min_frames), max(TEMPORAL_PATCH, _floor_even(max_frames))
    if lo > hi:
        raise ValueError(f"min_frames ({min_frames}) is larger than max_frames ({max_frames})")
    n = min(max(range_seconds * fps, lo), hi, frames_in_range)
    n = _floor_even(n)
    if n < TEMPORAL_PATCH:
        n = min(TEMPORAL_PATCH, frames_in_range)
    return n


def plan_target_times(start: float, end: float, n: int) -> tuple[float, ...]:
    """n times at the middles of n equal slots of [start, end)."""
    step = (end - start) / n
    return tuple(start + (i + 0.5) * step for i in range(n))


def plan_resolution(
    width: int,
    height: int,
    num_frames: int,
    *,
    min_pixels: int | None = None,
    max_pixels: int | None = None,
    total_pixels: int | None = None,
) -> tuple[int, int]:
    """(width, height) of every sampled frame (rules in the module docstring)."""
    min_pixels = DEFAULT_MIN_PIXELS if min_pixels is None else int(min_pixels)
    max_pixels = DEFAULT_MAX_PIXELS if max_pixels is None else int(max_pixels)  # per frame
    total_pixels = DEFAULT_TOTAL_PIXELS if total_pixels is None else int(total_pixels)
    for name, value in (("min_pixels", min_pixels), ("max_pixels", max_pixels), ("total_pixels", total_pixels)):
        if value < FACTOR * FACTOR:
            raise ValueError(f"{name} must be at least {FACTOR * FACTOR} (one {FACTOR}x{FACTOR} cell), got {value}")
    # As qwen-vl-utils: the budget share, floored just above the minimum, then
    # an explicit max_pixels (even one below the minimum) has the last word.
    cap = int(max(min(DEFAULT_MAX_PIXELS, total_pixels * TEMPORAL_PATCH / max(1, num_frames)), min_pixels * 1.05))
    cap = min(cap, max_pixels)
    min_pixels = min(min_pixels, cap)
    return smart_resize(width, height, factor=FACTOR, min_pixels=min_pixels, max_pixels=cap)


def make_plan(
    *,
    duration: float,
    source_fps: float,
    source_width: int,
    source_height: int,
    start: float,
    end: float,
    fps: float | None = None,
    num_frames: int | None = None,
    min_frames: int = DEFAULT_MIN_FRAMES,
    max_frames: int = DEFAULT_MAX_FRAMES,
    min_pixels: int | None = None,
    max_pixels: int | None = None,
    total_pixels: int | None = None,
    frames_in_range: int | None = None,
) -> SamplingPlan:
    """The whole plan for [start, end) of a video of this size and rate.

    `frames_in_range` is the number of frames presented in the range when the
    caller knows it (the sampler counts them); otherwise range × source_fps.
    """
    range_seconds = end - start
    if frames_in_range is None:
        frames_in_range = max(1, round(range_seconds * source_fps)) if source_fps > 0 else 1
    n = plan_frame_count(
        range_seconds, frames_in_range, fps=fps, num_frames=num_frames, min_frames=min_frames, max_frames=max_frames
    )
    width, height = plan_resolution(
        source_width, source_height, n, min_pixels=min_pixels, max_pixels=max_pixels, total_pixels=total_pixels
    )
    return SamplingPlan(
        num_frames=n,
        target_times=plan_target_times(start, end, n),
        start=start,
        end=end,
        width=width,
        height=height,
        source_width=source_width,
        source_height=source_height,
    )


__all__ = [
    "FACTOR",
    "TEMPORAL_PATCH",
    "DEFAULT_FPS",
    "DEFAULT_MIN_FRAMES",
    "DEFAULT_MAX_FRAMES",
    "DEFAULT_MIN_PIXELS",
    "DEFAULT_MAX_PIXELS",
    "DEFAULT_TOTAL_PIXELS",
    "SamplingPlan",
    "plan_frame_count",
    "plan_target_times",
    "plan_resolution",
    "make_plan",
]
