"""A policy that runs a Qwen3.5 checkpoint in-process with vlagent's own engine.

Each step builds the same conversation the API policy sends (Qwen3.5's
computer_use / mobile_use tool prompt, the task, recent history, the current
screenshot), renders it with the checkpoint's chat template, generates, and
parses the reply's <tool_call> blocks into actions. A reply that cannot be
parsed raises `ActionParseError` (the agent shows it to the model next step).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Sequence

from vlagent.actions import parse_actions
from vlagent.environments.base import Observation
from vlagent.images import DEFAULT_MAX_PIXELS, DEFAULT_MIN_PIXELS
from vlagent.policy.base import Decision, HistoryItem
from vlagent.policy.errors import PolicyError
from vlagent.policy.prompts import TOOL_STYLES, build_conversation, platform_of, secret_names_of, split_reply

FORMATS = ("qwen", "qwen-pixels")


class LocalPolicy:
    """`Policy` backed by a local Qwen3.5 checkpoint folder (Hugging Face format).

    fmt: "qwen" (the model answers in 0-1000 relative coordinates, Qwen3.5's convention)
    or "qwen-pixels" (pixels of the resized screenshot the model saw).
    dtype: None picks bfloat16 on CUDA and on CPUs that compute in bf16 natively (AVX512-BF16, AMX,
    Arm BF16), float32 elsewhere.
    max_pixels / min_pixels: each screenshot's pixel limits (multiples of 32 per side);
    max_image_tokens: cap on the visual tokens of all screenshots of one step together.
    enable_thinking: passed to the chat template (False: no <think> block, shorter replies).
    `model` / `processor` may be given to share an already loaded engine.
    prompt_cache: reuse the previous step's work (screenshots already encoded, the decoder state
    after the shared beginning of the prompt: system prompt, task); results equal a fresh prefill
    up to rounding (model/prompt_cache.py).
    """

    name = "local"

    def __init__(
        self,
        model_path: str | Path,
        *,
        device: str = "cpu",
        dtype: Any = None,
        max_new_tokens: int = 256,
        max_pixels: int = DEFAULT_MAX_PIXELS,
        min_pixels: int = DEFAULT_MIN_PIXELS,
        max_image_tokens: int | None = None,
        fmt: str = "qwen",
        tool_style: str = "xml",
        enable_thinking: bool | None = False,
        secret_names: Sequence[str] = (),
        do_sample: bool = False,
        temperature: float | None = None,
        seed: int | None = None,
        model: Any = None,
        processor: Any = None,
        prompt_cache: bool = True,
    ) -> None:
        if fmt not in FORMATS:
            raise ValueError(f"unknown reply format {fmt!r}; expected one of {FORMATS}")
        if tool_style not in TOOL_STYLES:
            raise ValueError(f"unknown tool_style {tool_style!r}; expected one of {TOOL_STYLES}")
        if max_new_tokens < 1:
            raise ValueError(f"max_new_tokens must be >= 1, got {max_new_tokens}")
        try:
            import torch

            from vlagent.model import PromptCache, load_model
            from vlagent.model.processor import Processor
        except ImportError as exc:  # pragma: no cover - depends on the install
            raise PolicyError("LocalPolicy needs torch and transformers: pip install 'vlagent[model]'") from exc

        self.model_path = Path(model_path)
        if model is None and not (self.model_path / "config.json").exists():
            raise PolicyError(f"no Qwen3.5 checkpoint at {self.model_path} (config.json missing)")
        if dtype is None:
            from vlagent.model.cpu_tuning import preferred_dtype

            dtype = preferred_dtype(device)
        elif isinstance(dtype, str):
            dtype = {"bf16": torch.bfloat16, "bfloat16": torch.bfloat16, "fp16": torch.float16,
                     "float16": torch.float16, "fp32": torch.float32, "float32": torch.float32}[dtype]
        self.model = model if model is not None else load_model(self.model_path, device=device, dtype=dtype)
        self.processor = processor if processor is not None else Processor.from_pretrained(
            self.model_path, max_pixels=max_pixels, min_pixels=min_pixels, max_image_tokens=max_image_tokens
        )
        self.fmt = fmt
        self.tool_style = tool_style
        self.max_new_tokens = max_new_tokens
        self.enable_thinking = enable_thinking
        self.secret_names = tuple(secret_names)
        self.gen_kwargs: dict[str, Any] = {"do_sample": do_sample}
        if temperature is not None:
            self.gen_kwargs["temperature"] = temperature
        if seed is not None:
            self.gen_kwargs["seed"] = seed
        # consecutive steps share the system prompt and history screenshots: encode / prefill them once
        self.prompt_cache = PromptCache(self.processor.message_start_ids) if prompt_cache else None
        self.last_prompt: str | None = None  # the rendered prompt of the last step (for inspection)
        self.last_inputs: dict[str, Any] | None = None

    def __repr__(self) -> str:
        return f"LocalPolicy(model_path={str(self.model_path)!r}, fmt={self.fmt!r})"

    def model_image_size(self, size: tuple[int, int]) -> tuple[int, int]:
        """(width, height) the model sees for a screenshot of `size`."""
        return self.processor.image_size(*size)

    def generate_text(self, inputs: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        """Generate a reply for processed `inputs`; (text with special tokens, generation stats)."""
        stops = set(self.model.config.eos_token_ids) | set(self.processor.end_of_turn_ids)
        result = self.model.generate(
            **inputs.to(self.model.device),
            max_new_tokens=self.max_new_tokens,
            stop_token_ids=sorted(stops),
            tokenizer=self.processor.tokenizer,
            prompt_cache=self.prompt_cache,
            return_dict=True,
            **self.gen_kwargs,
        )
        new = list(result.new_tokens[0])
        completion = len(new)
        while new and new[-1] in stops:
            new.pop()
        stats = dict(result.stats)
        stats["completion_tokens"] = completion
        return self.processor.decode(new, skip_special_tokens=False), stats

    def decide(self, task: str, observation: Observation, history: Sequence[HistoryItem]) -> Decision:
        t0 = time.perf_counter()
        seen_size = self.model_image_size(observation.image.size)
        pixels = self.fmt == "qwen-pixels"
        secret_names = secret_names_of(observation, self.secret_names)
        conversation = build_conversation(
            task,
            observation,
            history,
            platform=platform_of(observation),
            coordinates="pixels" if pixels else "relative",
            image_size=seen_size,
            secret_names=secret_names,
            tool_style=self.tool_style,
        )
        template_kwargs = {} if self.enable_thinking is None else {"enable_thinking": self.enable_thinking}
        prompt, images, videos = self.processor.render_chat(conversation, **template_kwargs)
        inputs = self.processor(prompt, images=images)
        self.last_prompt, self.last_inputs = prompt, inputs
        t1 = time.perf_counter()
        raw, stats = self.generate_text(inputs)
        t2 = time.perf_counter()
        thought, _ = split_reply(raw)
        actions = parse_actions(raw, fmt=self.fmt, image_size=seen_size if pixels else None)
        t3 = time.perf_counter()
        ids = inputs["input_ids"]
        usage = {
            "prompt_tokens": int(ids.shape[1]),
            "completion_tokens": int(stats.get("completion_tokens", 0)),
            "image_tokens": int((ids == self.processor.image_token_id).sum()),
        }
        if "reused_tokens" in stats:  # prompt tokens restored from the previous step, not prefilled
            usage["cached_tokens"] = int(stats["reused_tokens"])
        timings = {"prepare_s": t1 - t0, "generate_s": t2 - t1, "parse_s": t3 - t2}
        for key in ("prefill_s", "decode_s"):
            if isinstance(stats.get(key), (int, float)):
                timings[key] = float(stats[key])
        return Decision(raw_output=raw, actions=actions, thought=thought, timings=timings, usage=usage)


__all__ = ["LocalPolicy", "FORMATS"]
