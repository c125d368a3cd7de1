"""Video question answering: sample frames, show them to a model with their times, ask.

    from vlagent.video import ask, OpenAIVideoBackend
    backend = OpenAIVideoBackend("Qwen/Qwen3.5-27B", base_url="http://localhost:8000/v1")
    result = ask("match.mp4", "When is the first goal scored?", backend=backend, fps=1)
    print(result.answer, result.timestamps[:3], result.timings)

Two backends, one prompt layout (Qwen3.5's: each visual chunk is preceded by
its time as "<12.5 seconds>"):

* `OpenAIVideoBackend` (any OpenAI-compatible chat server): one user message
  holding, for every frame, a text part "<t seconds>" (the frame's own
  presentation time) followed by the frame as a JPEG data URL, then the
  question.
* `LocalVideoBackend` (our Qwen3.5 engine, `vlagent.model`): the frames go as
  one video with their timestamps; the processor pairs them into temporal
  patches and writes "<t seconds>" before each patch, t being the mean time of
  the patch's two frames (as transformers' Qwen3-VL processor does).
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Protocol

import numpy as np
from PIL import Image

from vlagent.images import to_data_url
from vlagent.video.plan import DEFAULT_MAX_FRAMES, DEFAULT_MIN_FRAMES
from vlagent.video.sampling import ProgressCallback, VideoSample, sample_frames


class VideoBackendError(RuntimeError):
    """The model backend failed: server unreachable or erroring, model not loadable."""


def format_timestamp(seconds: float) -> str:
    """Qwen3.5's time marker: 12.46 -> "<12.5 seconds>"."""
    return f"<{seconds:.1f} seconds>"


@dataclass
class VideoAnswer:
    answer: str
    frames_used: int
    timestamps: list[float]
    timings: dict[str, float] = field(default_factory=dict)
    usage: dict[str, Any] = field(default_factory=dict)
    plan: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "answer": self.answer,
            "frames_used": self.frames_used,
            "timestamps": [round(t, 6) for t in self.timestamps],
            "timings": {k: round(v, 4) for k, v in self.timings.items()},
            "usage": self.usage,
            "plan": self.plan,
        }


class VideoBackend(Protocol):
    """Something that answers a question about sampled frames."""

    def answer(self, sample: VideoSample, question: str) -> tuple[str, dict[str, Any]]:
        """(answer text, usage/extra info)."""
        ...


# ---------------------------------------------------------------------------- OpenAI-compatible


def build_api_messages(
    sample: VideoSample, question: str, *, system: str | None = None, jpeg_quality: int = 85
) -> list[dict[str, Any]]:
    """Chat messages: per frame "<t seconds>" then the JPEG, then the question."""
    if not question or not question.strip():
        raise ValueError("the question is empty")
    content: list[dict[str, Any]] = []
    for frame, t in zip(sample.frames, sample.timestamps):
        content.append({"type": "text", "text": format_timestamp(t)})
        url = to_data_url(Image.fromarray(np.asarray(frame)), fmt="jpeg", quality=jpeg_quality)
        content.append({"type": "image_url", "image_url": {"url": url}})
    content.append({"type": "text", "text": question})
    messages: list[dict[str, Any]] = []
    if system:
        messages.append({"role": "system", "content": system})
    messages.append({"role": "user", "content": content})
    return messages


class OpenAIVideoBackend:
    """An OpenAI-compatible chat-completions server (vLLM, SGLang, OpenAI...).

    The transport is the agent's `ChatClient`: the same API key rules
    (`api_key`, else $`api_key_env`, else $VLAGENT_API_KEY, else the
    placeholder "EMPTY" for a custom `base_url`; the official API needs a
    key), the same retries of timeouts, connection errors, 429 and 5xx with
    backoff, the same error messages, each raised here as `VideoBackendError`.
    `client` injects a ready openai-compatible client; `sleep` is injectable
    so tests need not wait for real backoff.
    """

    def __init__(
        self,
        model: str,
        *,
        base_url: str | None = None,
        api_key_env: str = "OPENAI_API_KEY",
        api_key: str | None = None,
        max_tokens: int = 512,
        temperature: float = 0.0,
        jpeg_quality: int = 85,
        system: str | None = None,
        timeout: float = 300.0,  # many frames make long prompts
        max_retries: int = 3,
        backoff_s: float = 1.0,
        client: Any = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if not model:
            raise ValueError("an API backend needs a model name")
        from vlagent.policy.chat_client import ChatClient
        from vlagent.policy.errors import PolicyError

        try:
            self.chat = ChatClient(
                model,
                base_url=base_url,
                api_key=api_key,
                api_key_env=api_key_env,
                temperature=temperature,
                max_tokens=max_tokens,
                timeout=timeout,
                max_retries=max_retries,
                backoff_s=backoff_s,
                sleep=sleep,
                client=client,
            )
        except PolicyError as exc:
            raise VideoBackendError(str(exc)) from None
        self.model = model
        self.base_url = base_url
        self.api_key_env = api_key_env
        self.jpeg_quality = jpeg_quality
        self.system = system

    @property
    def client(self) -> Any:
        """The underlying openai client."""
        return self.chat.client

    @property
    def endpoint(self) -> str:
        return self.chat.endpoint

    def build_messages(self, sample: VideoSample, question: str) -> list[dict[str, Any]]:
        return build_api_messages(sample, question, system=self.system, jpeg_quality=self.jpeg_quality)

    def answer(self, sample: VideoSample, question: str) -> tuple[str, dict[str, Any]]:
        from vlagent.policy.errors import PolicyError

        messages = self.build_messages(sample, question)
        try:
            response, _attempts = self.chat.complete(messages)
        except PolicyError as exc:
            raise VideoBackendError(str(exc)) from exc
        if not response.choices:
            raise VideoBackendError(f"{self.endpoint} returned no choices for model {self.model!r}")
        text = response.choices[0].message.content or ""
        usage = response.usage.model_dump() if getattr(response, "usage", None) is not None else {}
        return text, usage


# ---------------------------------------------------------------------------- local engine


def build_local_messages(sample: VideoSample, question: str, *, system: str | None = None) -> list[dict[str, Any]]:
    """Chat messages for `vlagent.model.processor`: the frames as one timestamped video, then the question."""
    if not question or not question.strip():
        raise ValueError("the question is empty")
    video = {"type": "video", "video": list(sample.frames), "timestamps": list(sample.timestamps)}
    messages: list[dict[str, Any]] = []
    if system:
        messages.append({"role": "system", "content": system})
    messages.append({"role": "user", "content": [video, {"type": "text", "text": question}]})
    return messages


class LocalVideoBackend:
    """Our Qwen3.5 engine: `load_model(path, device, dtype)` + its processor."""

    def __init__(
        self,
        model_path: str | os.PathLike,
        *,
        device: str = "cpu",
        dtype: Any = None,
        max_new_tokens: int = 256,
        system: str | None = None,
        model: Any = None,
        processor: Any = None,
    ) -> None:
        self.model_path = os.fspath(model_path)
        self.device = device
        self.dtype = dtype
        self.max_new_tokens = max_new_tokens
        self.system = system
        self._model = model
        self._processor = processor

    @property
    def processor(self):
        if self._processor is None:
            try:
                from vlagent.model.processor import Processor
            except ImportError as exc:
                raise VideoBackendError(f"the local engine's processor is not available: {exc}") from None
            try:
                self._processor = Processor.from_pretrained(self.model_path)
            except Exception as exc:  # noqa: BLE001 - any load failure is a backend error
                raise VideoBackendError(f"cannot load the processor from {self.model_path}: {exc}") from None
        return self._processor

    @property
    def model(self):
        if self._model is None:
            import torch

            from vlagent.model import load_model

            dtype = self.dtype
            if isinstance(dtype, str):
                dtype = getattr(torch, dtype)
            try:
                self._model = load_model(self.model_path, device=self.device, dtype=dtype or torch.float32)
            except Exception as exc:  # noqa: BLE001
                raise VideoBackendError(f"cannot load the model from {self.model_path}: {exc}") from None
        return self._model

    def build_messages(self, sample: VideoSample, question: str) -> list[dict[str, Any]]:
        return build_local_messages(sample, question, system=self.system)

    def answer(self, sample: VideoSample, question: str) -> tuple[str, dict[str, Any]]:
        import torch

        try:
            from vlagent.model.chat import chat_reply
        except ImportError as exc:
            raise VideoBackendError(f"the local engine's chat() is not available: {exc}") from None
        messages = self.build_messages(sample, question)
        processor, model = self.processor, self.model
        try:
            with torch.inference_mode():
                reply = chat_reply(model, processor, messages, max_new_tokens=self.max_new_tokens)
        except (ValueError, RuntimeError) as exc:
            raise VideoBackendError(f"local generation failed: {exc}") from None
        usage = {
            "prompt_tokens": reply.prompt_tokens,
            "completion_tokens": len(reply.token_ids),
            "video_tokens": reply.video_tokens,
        }
        return reply.answer, usage


# ---------------------------------------------------------------------------- ask


def ask(
    path: str | os.PathLike,
    question: str,
    *,
    backend: VideoBackend | None = None,
    policy: VideoBackend | None = None,
    fps: float | None = None,
    num_frames: int | None = None,
    max_frames: int = DEFAULT_MAX_FRAMES,
    min_frames: int = DEFAULT_MIN_FRAMES,
    start: float | None = None,
    end: float | None = None,
    mode: str = "exact",
    max_pixels: int | None = None,
    total_pixels: int | None = None,
    progress: ProgressCallback | None = None,
) -> VideoAnswer:
    """Sample `path` (see `sample_frames`), ask `backend` the question, time each stage.

    `backend` (or its alias `policy`) is what answers: `OpenAIVideoBackend`,
    `LocalVideoBackend`, or anything with `answer(sample, question)`.
    Raises `VideoError` for a video that cannot be sampled, `VideoBackendError`
    when the model backend fails, `ValueError` for bad arguments.
    """
    if (backend is None) == (policy is None):
        raise ValueError("give the model that answers as backend=... (or its alias policy=...), exactly once")
    backend = backend if backend is not None else policy
    if not callable(getattr(backend, "answer", None)):
        raise ValueError(f"{type(backend).__name__} cannot answer: it needs an answer(sample, question) method")
    if not isinstance(question, str) or not question.strip():
        raise ValueError("the question is empty")
    t0 = time.perf_counter()
    sample = sample_frames(
        path,
        fps=fps,
        num_frames=num_frames,
        max_frames=max_frames,
        min_frames=min_frames,
        start=start,
        end=end,
        mode=mode,
        max_pixels=max_pixels,
        total_pixels=total_pixels,
        progress=progress,
    )
    t1 = time.perf_counter()
    text, usage = backend.answer(sample, question)
    t2 = time.perf_counter()
    return VideoAnswer(
        answer=text,
        frames_used=len(sample),
        timestamps=list(sample.timestamps),
        timings={"sample_s": t1 - t0, "answer_s": t2 - t1, "total_s": t2 - t0},
        usage=usage,
        plan=sample.plan.to_dict(),
    )


__all__ = [
    "VideoAnswer",
    "VideoBackend",
    "VideoBackendError",
    "OpenAIVideoBackend",
    "LocalVideoBackend",
    "build_api_messages",
    "build_local_messages",
    "format_timestamp",
    "ask",
]
