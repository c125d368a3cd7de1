"""How exact sampling gets from one wanted frame to the next: seek, or decode straight on.

The frames to return are known before decoding (`vlagent.video.sampling`);
this module only decides the work. Each wanted frame needs the decoder to run
from a keyframe at or before it. Between two wanted frames there are two ways on:

* seek: drain the decoder after the first, seek to the second's keyframe and
  decode from there. The frames between the first and that keyframe are never
  decoded. Costs one seek: the demuxer's seek, the decoder's drain and flush,
  and frame threads whose pipeline empties and refills;
* straight: keep decoding. The frames between are decoded (with
  `skip_nonref`, the decoder drops the non-reference ones it is not asked
  for), never converted.

Both leave the decoder just past the second wanted frame, so each gap is
decided on its own, by the cheaper estimate. The plan's estimate is then
never above one straight decode from the first wanted frame's keyframe to the
last wanted frame, nor above seeking wherever frames can be skipped (the
sampler's only way before this module). Dense wants (several per GOP, short
GOPs, small frames) decode straight through; sparse ones seek.

The estimates come from the probe alone: frames between wanted frames and
keyframes (frames per GOP, wanted frames per GOP), the frame size, and
whether the stream has B-frames (`VideoInfo.reordered`: then a share of the
frames is non-reference). The constants are wall-clock seconds of a 2-core
x86 machine with 2 frame threads (H.264, see benchmarks/video_sampling.py);
only their ratios decide anything, and any plan returns the same frames.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass

from vlagent.video.info import VideoInfo

STRATEGIES = ("auto", "seek", "straight")

# A decoded frame's time in the sampler (decoder, frame hand-off, Python): a fixed part and a part
# that grows with the pixels. Fitted on the two-hour 640x360 file of benchmarks/video_sampling.py
# (2026-12-06, 2-core Xeon): the seek, auto and straight plans of 768 exact frames took 3.82 / 3.84 /
# 5.53 s for 720 / 480 / 1 seeks and 10,739 / 11,684 / 19,336 decoded frames, i.e. about 0.29 ms a
# decoded frame and 1.0 ms a seek (decode-all, threaded and without Python per frame, is 0.18 ms).
FRAME_FIXED_S = 15e-6
FRAME_PER_PIXEL_S = 1.2e-9
# A frame dropped by skip_frame=NONREF: parsed and handed on, not reconstructed.
DROPPED_FRAME_S = 10e-6
# One seek: demuxer seek + decoder drain and flush, plus (for large frames) frame-thread pipeline
# lost after the wanted frame and refilled after the seek; the fit above shows no pipeline term.
SEEK_FIXED_S = 1.0e-3
SEEK_PIPELINE_FRAMES = 0
# With B-frames, the share of frames that other frames reference (x264's presets leave ~45 %
# of the frames unreferenced); without, every frame is a reference.
REFERENCE_SHARE = 0.55


@dataclass(frozen=True)
class DecodeCosts:
    """Estimated seconds for the parts of exact sampling's decoding."""

    frame_s: float  # decoding one frame in a running decoder
    dropped_s: float  # a frame the decoder drops (non-reference, not wanted)
    seek_s: float  # one seek: drain, flush, seek, pipeline refill
    reference_share: float  # share of the frames on the way that must be decoded

    def on_the_way_s(self, frames: int) -> float:
        """Decoding past `frames` unwanted frames (their non-reference share dropped)."""
        share = self.reference_share
        return frames * (share * self.frame_s + (1.0 - share) * self.dropped_s)


def estimate_costs(info: VideoInfo, *, skip_nonref: bool = True) -> DecodeCosts:
    """The costs for this video, from its probe: frame size and B-frames."""
    frame_s = FRAME_FIXED_S + FRAME_PER_PIXEL_S * info.width * info.height
    share = REFERENCE_SHARE if (skip_nonref and info.reordered) else 1.0
    return DecodeCosts(
        frame_s=frame_s,
        dropped_s=DROPPED_FRAME_S if share < 1.0 else frame_s,
        seek_s=SEEK_FIXED_S + SEEK_PIPELINE_FRAMES * frame_s,
        reference_share=share,
    )


@dataclass(frozen=True)
class DecodePlan:
    """Per gap between consecutive wanted frames: decode straight on (True) or seek (False)."""

    strategy: str
    straight_after: tuple[bool, ...]  # len(wanted) - 1 entries
    seeks: int  # the first wanted frame's included (the sampler's stats count retried seeks too)
    cost_s: float  # this plan's estimate
    seek_cost_s: float  # seeking wherever frames can be skipped
    straight_cost_s: float  # one straight decode from the first wanted frame's keyframe

    def to_dict(self) -> dict:
        return {
            "strategy": self.strategy,
            "seeks": self.seeks,
            "estimated_s": round(self.cost_s, 6),
            "seek_estimated_s": round(self.seek_cost_s, 6),
            "straight_estimated_s": round(self.straight_cost_s, 6),
        }


def plan_decoding(info: VideoInfo, wanted: list[int], costs: DecodeCosts, strategy: str = "auto") -> DecodePlan:
    """The decode plan for the wanted frames' pts (sorted, each once).

    "auto" takes the cheaper way across each gap; "seek" seeks wherever frames
    lie between a wanted frame and the next one's keyframe; "straight" never
    seeks after the first wanted frame's keyframe. All three return the same
    frames.
    """
    if strategy not in STRATEGIES:
        raise ValueError(f"strategy must be one of {STRATEGIES}, got {strategy!r}")
    if not wanted:
        return DecodePlan(strategy, (), 0, 0.0, 0.0, 0.0)
    keys = info.keyframe_pts

    def key_of(pts: int) -> int:
        return keys[max(bisect.bisect_right(keys, pts) - 1, 0)]

    def from_key_s(pts: int) -> float:
        """A seek to `pts`'s keyframe and decoding from there up to and including it."""
        key = key_of(pts)
        before = info.frames_strictly_between(key, pts) + (1 if key < pts else 0)
        return costs.seek_s + costs.on_the_way_s(before) + costs.frame_s

    first = from_key_s(wanted[0])
    totals = {"auto": first, "seek": first, "straight": first}
    straight_after = []
    for prev, want in zip(wanted, wanted[1:]):
        on_s = costs.on_the_way_s(info.frames_strictly_between(prev, want)) + costs.frame_s
        seek_s = from_key_s(want)
        skippable = info.frames_strictly_between(prev, key_of(want)) > 0  # frames a seek would not decode
        choice = {
            "auto": on_s <= seek_s or not skippable,
            "seek": not skippable,
            "straight": True,
        }
        for name, straight in choice.items():
            totals[name] += on_s if straight else seek_s
        straight_after.append(choice[strategy])
    seeks = 1 + straight_after.count(False)
    return DecodePlan(strategy, tuple(straight_after), seeks, totals[strategy], totals["seek"], totals["straight"])


__all__ = [
    "STRATEGIES",
    "DecodeCosts",
    "DecodePlan",
    "estimate_costs",
    "plan_decoding",
]
