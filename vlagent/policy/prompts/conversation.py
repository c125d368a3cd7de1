"""The conversation of one agent step, built around the prompt text (text.py).

Two layers:
- `build_conversation(...)` returns a neutral conversation: a list of
  `{"role", "content": [{"type": "text", "text"} | {"type": "image", "image": PIL}]}`
  (the shape transformers' chat templates take, so the local engine can use it).
- `to_openai_messages(...)` turns that into OpenAI chat messages with images
  resized to the model's pixel limits and sent as data URLs;
  `build_messages(...)` does both.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Any, Callable, Sequence

from PIL import Image

from vlagent.actions.tool_call_tags import tool_call_blocks, without_tool_calls
from vlagent.environments.base import Observation
from vlagent.images import (
    DEFAULT_MAX_PIXELS,
    DEFAULT_MIN_PIXELS,
    QWEN_FACTOR,
    resize_for_model,
    smart_resize,
    to_data_url,
)
from vlagent.policy.base import HistoryItem
from vlagent.policy.prompts.text import normalize_platform, system_prompt

_THINK_RE = re.compile(r"<think>(.*?)(?:</think>|$)", re.DOTALL)


def platform_of(observation: Observation) -> str:
    return normalize_platform(observation.info.get("platform", "desktop"))


def secret_names_of(observation: Observation, configured: Sequence[str] = ()) -> tuple[str, ...]:
    """The `{{name}}` placeholders the model may type: the policy's own list plus the
    names the agent puts in `observation.info["secret_names"]` (never values), without repeats."""
    return tuple(dict.fromkeys([*configured, *observation.info.get("secret_names", ())]))



def split_reply(raw: str) -> tuple[str | None, str]:
    """(thought, reply without <think>) for a model reply.

    The thought is the <think> content plus any prose outside the tool-call
    blocks; None when there is none.
    """
    raw = raw or ""
    thinking = [m.group(1).strip() for m in _THINK_RE.finditer(raw)]
    visible = _THINK_RE.sub("", raw)
    # Some servers strip the opening <think> (it is part of the prompt): drop a leading "...</think>".
    if "</think>" in visible:
        head, _, visible = visible.rpartition("</think>")
        thinking.append(head.replace("<think>", "").strip())
    prose = without_tool_calls(visible).strip()
    parts = [p for p in (*thinking, prose) if p]
    return ("\n".join(parts) if parts else None), visible.strip()



def describe_step(item: HistoryItem) -> str:
    """One earlier step as text: thought, the tool calls (or actions) and any error."""
    lines = [f"Step {item.step}:"]
    if item.thought:
        lines.append(f"Thought: {item.thought.strip()}")
    calls = [block.body.strip() for block in tool_call_blocks(item.raw_output or "") if block.body.strip()]
    if calls:
        lines += [f"Tool call: {' '.join(call.split())}" for call in calls]
    elif item.actions:
        lines += [f"Action: {action.describe()}" for action in item.actions]
    if item.error:
        lines.append(f"Error: {item.error.strip()}")
    return "\n".join(lines)


def _text(text: str) -> dict[str, Any]:
    return {"type": "text", "text": text}


def _image(image: Image.Image) -> dict[str, Any]:
    return {"type": "image", "image": image}


def build_conversation(
    task: str,
    observation: Observation,
    history: Sequence[HistoryItem] = (),
    *,
    platform: str | None = None,
    coordinates: str = "relative",
    image_size: tuple[int, int] | None = None,
    secret_names: Sequence[str] = (),
    tool_style: str = "xml",
    screen_text: str | None = None,
    images: bool = True,
) -> list[dict[str, Any]]:
    """The conversation for one step, images kept as PIL.

    Steps without a screenshot (older ones) are summarized as text in the
    first user message; steps with a screenshot become a user turn (that
    screenshot) and an assistant turn (the model's reply then), followed by
    the error it caused, if any. The last user turn holds the current
    screenshot. `image_size` is the size the model sees (used in the tool
    description when `coordinates="pixels"`). `screen_text` (the screen read
    as text, see `screen_text_block`) follows the current screenshot;
    `images=False` sends no image at all, for text-only models.
    """
    if not isinstance(task, str) or not task.strip():
        raise ValueError("the task must be a non-empty string")
    platform = normalize_platform(platform) if platform else platform_of(observation)
    if coordinates == "pixels" and image_size is None:
        image_size = observation.image.size
    conversation: list[dict[str, Any]] = [
        {
            "role": "system",
            "content": [
                _text(
                    system_prompt(
                        platform,
                        coordinates=coordinates,
                        image_size=image_size,
                        secret_names=secret_names,
                        tool_style=tool_style,
                    )
                )
            ],
        }
    ]

    history = sorted(history, key=lambda h: h.step)
    if not images:  # a text-only model: earlier steps are all told as text
        history = [dataclasses.replace(h, image=None) for h in history]
    first_image = next((i for i, h in enumerate(history) if h.image is not None), len(history))
    intro = f"Task: {task.strip()}"
    if first_image:
        summary = "\n\n".join(describe_step(h) for h in history[:first_image])
        intro += f"\n\nEarlier steps (screenshots not shown):\n{summary}"
    pending: list[dict[str, Any]] = [_text(intro)]

    for item in history[first_image:]:
        if item.image is not None:
            pending += [_text(f"Screenshot before step {item.step}:"), _image(item.image)]
        else:
            pending.append(_text(f"(Screenshot before step {item.step} not shown.)"))
        conversation.append({"role": "user", "content": pending})
        reply = split_reply(item.raw_output)[1] or describe_step(HistoryItem(item.step, "", item.thought, item.actions))
        conversation.append({"role": "assistant", "content": [_text(reply)]})
        pending = [_text(f"Step {item.step} failed: {item.error.strip()}")] if item.error else []

    step = f" (step {history[-1].step + 1})" if history else ""
    if images:
        pending += [_text(f"Current screenshot{step}:"), _image(observation.image)]
    if screen_text is not None:
        pending.append(_text(f"Current screen as text{step}:\n{screen_text}"))
    conversation.append({"role": "user", "content": pending})
    return conversation


def conversation_images(conversation: Sequence[dict[str, Any]]) -> list[Image.Image]:
    """The PIL images of a conversation, in order."""
    return [part["image"] for msg in conversation for part in msg["content"] if part["type"] == "image"]


def to_openai_messages(
    conversation: Sequence[dict[str, Any]],
    *,
    prepare_image: Callable[[Image.Image], Image.Image] | None = None,
    image_format: str = "png",
) -> list[dict[str, Any]]:
    """OpenAI chat messages: text parts as-is, images as data URLs.

    `prepare_image` (e.g. a resize to the model's pixel limits) is applied
    to each image before encoding. System and assistant turns become plain
    strings, which every OpenAI-compatible server accepts.
    """
    messages: list[dict[str, Any]] = []
    for message in conversation:
        role, parts = message["role"], message["content"]
        if role in ("system", "assistant"):
            messages.append({"role": role, "content": "\n".join(p["text"] for p in parts if p["type"] == "text")})
            continue
        content = []
        for part in parts:
            if part["type"] == "text":
                content.append({"type": "text", "text": part["text"]})
            elif part["type"] == "image":
                image = prepare_image(part["image"]) if prepare_image else part["image"]
                content.append({"type": "image_url", "image_url": {"url": to_data_url(image, fmt=image_format)}})
            else:
                raise ValueError(f"unknown content part type {part['type']!r}")
        messages.append({"role": role, "content": content})
    return messages


def build_messages(
    task: str,
    observation: Observation,
    history: Sequence[HistoryItem] = (),
    *,
    platform: str | None = None,
    image_size: tuple[int, int] | None = None,
    coordinates: str = "relative",
    secret_names: Sequence[str] = (),
    tool_style: str = "xml",
    min_pixels: int = DEFAULT_MIN_PIXELS,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    factor: int = QWEN_FACTOR,
    image_format: str = "png",
    screen_text: str | None = None,
    images: bool = True,
) -> list[dict[str, Any]]:
    """OpenAI chat messages for one step; every screenshot is smart-resized
    to [min_pixels, max_pixels] and sent as a data URL."""

    def prepare(image: Image.Image) -> Image.Image:
        return resize_for_model(image, factor=factor, min_pixels=min_pixels, max_pixels=max_pixels)

    if coordinates == "pixels" and image_size is None:
        image_size = smart_resize(*observation.image.size, factor=factor, min_pixels=min_pixels, max_pixels=max_pixels)
    conversation = build_conversation(
        task,
        observation,
        history,
        platform=platform,
        coordinates=coordinates,
        image_size=image_size,
        secret_names=secret_names,
        tool_style=tool_style,
        screen_text=screen_text,
        images=images,
    )
    return to_openai_messages(conversation, prepare_image=prepare, image_format=image_format)
