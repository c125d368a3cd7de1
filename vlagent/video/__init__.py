"""Long-video frame sampling (PyAV) and video question answering.

    from vlagent.video import sample_frames, ask
    sample = sample_frames("talk.mp4", fps=1, max_frames=256, mode="exact")
    sample.frames.shape, sample.timestamps[:3], sample.plan.num_tokens

`ask` and the backends are imported lazily so sampling needs only PyAV.
"""

from vlagent.video.plan import SamplingPlan, make_plan
from vlagent.video.sampling import VideoDecodeWarning, VideoError, VideoInfo, VideoSample, probe, sample_frames

__all__ = [
    "SamplingPlan",
    "make_plan",
    "VideoDecodeWarning",
    "VideoError",
    "VideoInfo",
    "VideoSample",
    "probe",
    "sample_frames",
    "ask",
    "VideoAnswer",
    "VideoBackendError",
    "OpenAIVideoBackend",
    "LocalVideoBackend",
    "format_timestamp",
]

_QA_NAMES = {"ask", "VideoAnswer", "VideoBackendError", "OpenAIVideoBackend", "LocalVideoBackend", "format_timestamp"}


def __getattr__(name: str):
    if name in _QA_NAMES:
        from vlagent.video import qa

        return getattr(qa, name)
    raise AttributeError(f"module 'vlagent.video' has no attribute {name!r}")
