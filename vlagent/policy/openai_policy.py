"""A policy that asks a model behind an OpenAI-compatible chat-completions API
(vLLM, SGLang, llama.cpp server, a hosted endpoint, ...).

Each step sends the Qwen3.5 tool prompt, the task, the recent history and
the current screenshot (smart-resized to the model's pixel limits, as a data
URL), then parses the reply's <tool_call> blocks into actions. The transport
(retries with backoff, Retry-After, clear errors) is `ChatClient`, shared
with the video Q&A backend.

With a `grounder` the model is a planner: its tool's pointing actions take a
`target` description instead of coordinates, and the grounder turns each
into a point on the step's screenshot (vlagent.policy.planner).
"""

from __future__ import annotations

import json
import time
from typing import Any, Callable, Sequence

from vlagent.actions import parse_actions
from vlagent.environments.base import Observation
from vlagent.images import DEFAULT_MAX_PIXELS, DEFAULT_MIN_PIXELS, QWEN25_FACTOR, QWEN_FACTOR, smart_resize
from vlagent.policy.base import Decision, HistoryItem
from vlagent.policy.chat_client import ChatClient
from vlagent.policy.errors import PolicyError
from vlagent.policy.planner import ground_reply, screen_text_block
from vlagent.policy.prompts import TOOL_STYLES, build_messages, platform_of, secret_names_of, split_reply

FORMATS = ("qwen", "qwen-pixels", "uitars", "json", "auto")
# Formats whose coordinates are pixels of the image the model saw.
PIXEL_FORMATS = ("qwen-pixels", "uitars")
# Formats a planner's tool calls (with `target` instead of coordinates) come in.
PLANNER_FORMATS = ("qwen", "auto")
# --screen-text: the OCR text besides the screenshot, or instead of it (text-only models).
SCREEN_TEXT_MODES = ("also", "only")


def _transport(name: str) -> property:
    """A policy attribute that lives on its ChatClient (one source of truth)."""
    return property(lambda self: getattr(self.chat, name), lambda self, value: setattr(self.chat, name, value))


class OpenAIPolicy:
    """`Policy` backed by an OpenAI-compatible chat-completions endpoint.

    `fmt` is the reply format given to `parse_actions`: "qwen" (0–1000
    relative coordinates, the default for Qwen3.5 / Qwen3-VL) or
    "qwen-pixels" / "uitars" (pixels of the resized screenshot the model saw).
    Screenshots are smart-resized to multiples of `factor` (default 32 for
    Qwen3.5 / Qwen3-VL, 28 for the pixel formats, whose models are
    Qwen2.5-VL based) within [min_pixels, max_pixels]. For pixel formats the
    server must not resize again: keep max_pixels within the server's limit,
    then its own smart resize leaves the image as sent.
    `tool_style` is how the system prompt asks for calls: "xml" (Qwen3.5's
    chat template, the default) or "json" (Qwen3-VL / Qwen2.5-VL; the
    default for the pixel formats); the parser reads both.
    `secret_names` lists the `{{name}}` placeholders the model may type (the
    agent may also pass them per step in `observation.info["secret_names"]`).
    `grounder` (anything with `ground(image, instruction, platform=)`, e.g.
    from `vlagent.grounding.grounders.make_grounder`) makes the model a
    planner that names targets in words; `screen_text` ("also" / "only")
    sends the screen's OCR text besides the screenshot, or instead of it.
    `sleep` is injectable so tests need not wait for real backoff.
    """

    name = "openai"

    def __init__(
        self,
        model: str,
        *,
        base_url: str | None = None,
        api_key: str | None = None,
        api_key_env: str = "OPENAI_API_KEY",
        min_pixels: int = DEFAULT_MIN_PIXELS,
        max_pixels: int = DEFAULT_MAX_PIXELS,
        temperature: float = 0.0,
        max_tokens: int = 1024,
        timeout: float = 120.0,
        max_retries: int = 3,
        backoff_s: float = 1.0,
        fmt: str = "qwen",
        factor: int | None = None,
        tool_style: str | None = None,
        image_format: str = "png",
        secret_names: Sequence[str] = (),
        extra_body: dict[str, Any] | None = None,
        grounder: Any = None,
        screen_text: str | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if not isinstance(model, str) or not model.strip():
            raise ValueError("model must be a non-empty model name")
        if fmt not in FORMATS:
            raise ValueError(f"unknown reply format {fmt!r}; expected one of {FORMATS}")
        if grounder is not None and fmt not in PLANNER_FORMATS:
            raise ValueError(f"a planner with a grounder replies in Qwen tool calls: fmt must be one of "
                             f"{PLANNER_FORMATS}, got {fmt!r}")
        if screen_text not in (None, *SCREEN_TEXT_MODES):
            raise ValueError(f"unknown screen_text mode {screen_text!r}; expected one of {SCREEN_TEXT_MODES}")
        if screen_text == "only" and grounder is None:
            raise ValueError("screen_text='only' sends no screenshot, so the model cannot give coordinates: "
                             "it needs a grounder to point for it")
        # Qwen3.5's template asks for XML-style calls; the pixel formats' models (Qwen2.5-VL based) for JSON.
        self.tool_style = tool_style or ("json" if fmt in PIXEL_FORMATS else "xml")
        if self.tool_style not in TOOL_STYLES:
            raise ValueError(f"unknown tool_style {tool_style!r}; expected one of {TOOL_STYLES}")
        self.factor = factor or (QWEN25_FACTOR if fmt in PIXEL_FORMATS else QWEN_FACTOR)
        # Validate the pixel limits once, here, not on the first screenshot.
        smart_resize(1024, 768, factor=self.factor, min_pixels=min_pixels, max_pixels=max_pixels)
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
            extra_body=extra_body,
            sleep=sleep,
        )
        self.min_pixels, self.max_pixels = min_pixels, max_pixels
        self.fmt = fmt
        self.image_format = image_format
        self.secret_names = tuple(secret_names)
        self.grounder = grounder
        self.screen_text = screen_text
        if grounder is not None:
            self.name = f"openai+{getattr(grounder, 'name', type(grounder).__name__)}"

    model = _transport("model")
    base_url = _transport("base_url")
    temperature = _transport("temperature")
    max_tokens = _transport("max_tokens")
    timeout = _transport("timeout")
    max_retries = _transport("max_retries")
    backoff_s = _transport("backoff_s")
    extra_body = _transport("extra_body")
    client = _transport("client")

    @property
    def endpoint(self) -> str:
        return self.chat.endpoint

    def __repr__(self) -> str:
        return f"OpenAIPolicy(model={self.model!r}, base_url={self.endpoint!r}, fmt={self.fmt!r})"

    # ------------------------------------------------------------------ decide

    def model_image_size(self, size: tuple[int, int]) -> tuple[int, int]:
        """The size a screenshot of `size` is sent at."""
        return smart_resize(*size, factor=self.factor, min_pixels=self.min_pixels, max_pixels=self.max_pixels)

    def decide(self, task: str, observation: Observation, history: Sequence[HistoryItem]) -> Decision:
        t0 = time.perf_counter()
        sent_size = self.model_image_size(observation.image.size)
        pixels = self.fmt in PIXEL_FORMATS
        secret_names = secret_names_of(observation, self.secret_names)
        platform = platform_of(observation)
        messages = build_messages(
            task,
            observation,
            history,
            platform=platform,
            image_size=sent_size,
            coordinates="target" if self.grounder is not None else "pixels" if pixels else "relative",
            secret_names=secret_names,
            tool_style=self.tool_style,
            min_pixels=self.min_pixels,
            max_pixels=self.max_pixels,
            factor=self.factor,
            image_format=self.image_format,
            screen_text=screen_text_block(observation.image) if self.screen_text else None,
            images=self.screen_text != "only",
        )
        t1 = time.perf_counter()
        response, attempts = self.complete(messages)
        t2 = time.perf_counter()

        if not response.choices:
            raise PolicyError(f"{self.endpoint} returned no choices for model {self.model!r}")
        message = response.choices[0].message
        raw = (message.content or "") + _structured_tool_calls(message)
        # vLLM/SGLang reasoning parsers move <think> content into a separate field.
        reasoning = getattr(message, "reasoning_content", None) or getattr(message, "reasoning", None)
        thought, _ = split_reply(raw)
        if isinstance(reasoning, str) and reasoning.strip():
            thought = "\n".join(p for p in (reasoning.strip(), thought) if p)
        grounded = None
        if self.grounder is not None:
            grounded = ground_reply(raw, self.grounder, observation.image, platform)
            actions = grounded.actions
        else:
            actions = parse_actions(raw, fmt=self.fmt, image_size=sent_size if pixels else None)
        t3 = time.perf_counter()

        usage = response.usage.model_dump(exclude_none=True) if getattr(response, "usage", None) else None
        # With a grounder, reading the reply is mostly grounding its targets: say so in the timings.
        parse_key = "ground_s" if grounded is not None else "parse_s"
        timings = {"prepare_s": t1 - t0, "request_s": t2 - t1, parse_key: t3 - t2, "attempts": float(attempts)}
        return Decision(
            raw_output=raw,
            actions=actions,
            thought=thought,
            timings=timings,
            usage=usage,
            error=grounded.error if grounded else None,
            grounding=grounded.grounding if grounded else None,
        )

    # ------------------------------------------------------------------ transport

    def complete(self, messages: list[dict[str, Any]]) -> tuple[Any, int]:
        """One chat completion with retries; returns (response, attempts used)."""
        return self.chat.complete(messages)

    def list_models(self) -> list[str]:
        """Model ids the endpoint serves (GET /models); raises PolicyError if unreachable."""
        return self.chat.list_models()


def _structured_tool_calls(message: Any) -> str:
    """Tool calls a server already parsed out of the text (OpenAI `tool_calls`),
    written back as <tool_call> blocks so one parser reads every reply."""
    blocks = []
    for call in getattr(message, "tool_calls", None) or []:
        function = getattr(call, "function", None)
        if function is None:
            continue
        payload = {"name": function.name, "arguments": function.arguments}  # arguments: a JSON string
        blocks.append("\n<tool_call>\n" + json.dumps(payload, ensure_ascii=False) + "\n</tool_call>")
    return "".join(blocks)


__all__ = ["OpenAIPolicy", "FORMATS", "PLANNER_FORMATS", "SCREEN_TEXT_MODES"]
