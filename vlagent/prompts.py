"""Prompts for Qwen3.5-style GUI agents: the one place they live.

The model is told about one tool, `computer_use` (desktop) or `mobile_use`
(Android), as a JSON function schema inside the system prompt, in the
`# Tools ... <tools>...</tools> ... <tool_call>` layout that Qwen's chat
templates render for function calling. Two call styles exist: Qwen3.5's
template asks for (tool_style="xml", the default)

    <tool_call>
    <function=computer_use>
    <parameter=action>
    left_click
    </parameter>
    <parameter=coordinate>
    [412, 200]
    </parameter>
    </function>
    </tool_call>

and Qwen3-VL's / Qwen2.5-VL's (tool_style="json") for

    <tool_call>
    {"name": "computer_use", "arguments": {"action": "left_click", "coordinate": [412, 200]}}
    </tool_call>

`vlagent.actions.parse_actions(fmt="qwen")` reads both.
Coordinates are on a 0–1000 scale relative to the screenshot (Qwen3-VL's
convention) unless `coordinates="pixels"` asks for pixels of the image the
model sees.

Two layers:
- `build_conversation(...)` returns a neutral conversation: a list of
  `{"role", "content": [{"type": "text", "text"} | {"type": "image", "image": PIL}]}`
  (the shape transformers' chat templates take, so the local engine can use it).
- `to_openai_messages(...)` turns that into OpenAI chat messages with images
  resized to the model's pixel limits and sent as data URLs;
  `build_messages(...)` does both.
"""

from __future__ import annotations

import json
import re
from typing import Any, Callable, Iterable, Sequence

from PIL import Image

from vlagent.actions.tool_call_tags import tool_call_blocks, without_tool_calls
from vlagent.actions.vocabulary import COMPUTER_USE, MOBILE_USE, SYSTEM_BUTTONS, action_names, actions_of
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

RELATIVE_SCALE = 1000
COORDINATE_MODES = ("relative", "pixels")
# "xml": Qwen3.5's chat template; "json": Qwen3-VL's and Qwen2.5-VL's.
TOOL_STYLES = ("xml", "json")

COMPUTER_USE_ACTIONS: tuple[str, ...] = action_names(COMPUTER_USE, offered_only=True)
MOBILE_USE_ACTIONS: tuple[str, ...] = action_names(MOBILE_USE, offered_only=True)

_THINK_RE = re.compile(r"<think>(.*?)(?:</think>|$)", re.DOTALL)


# --------------------------------------------------------------------------- platform


def normalize_platform(platform: str | None) -> str:
    """'desktop' or 'mobile' ('android', 'phone' and 'mobile' mean mobile)."""
    value = (platform or "desktop").strip().lower()
    if value in ("desktop", "computer", "linux", "windows", "macos", "x11"):
        return "desktop"
    if value in ("mobile", "android", "phone", "tablet"):
        return "mobile"
    raise ValueError(f"unknown platform {platform!r}; expected 'desktop' or 'mobile'/'android'")


def platform_of(observation: Observation) -> str:
    return normalize_platform(observation.info.get("platform", "desktop"))


def secret_names_of(observation: Observation, configured: Sequence[str] = ()) -> tuple[str, ...]:
    """The `{{name}}` placeholders the model may type: the policy's own list plus the
    names the agent puts in `observation.info["secret_names"]` (never values), without repeats."""
    return tuple(dict.fromkeys([*configured, *observation.info.get("secret_names", ())]))


# --------------------------------------------------------------------------- tools


def _coordinate_text(coordinates: str, image_size: tuple[int, int] | None) -> str:
    if coordinates == "relative":
        return (
            f"Coordinates are on a 0-{RELATIVE_SCALE} scale relative to the screenshot, whatever its pixel size: "
            f"[0, 0] is the top-left corner, [{RELATIVE_SCALE}, {RELATIVE_SCALE}] the bottom-right corner, "
            f"x grows to the right and y downwards."
        )
    if coordinates == "pixels":
        if image_size is None:
            raise ValueError("coordinates='pixels' needs the image_size the model sees")
        w, h = image_size
        return (
            f"The screen's resolution is {w}x{h}. Coordinates are pixels of the screenshot: "
            f"[0, 0] is the top-left corner, [{w - 1}, {h - 1}] the bottom-right corner."
        )
    raise ValueError(f"unknown coordinate mode {coordinates!r}; expected one of {COORDINATE_MODES}")


def _point_unit(coordinates: str) -> str:
    return f"on the 0-{RELATIVE_SCALE} relative scale" if coordinates == "relative" else "in screenshot pixels"


def _action_lines(tool: str) -> str:
    rows = actions_of(tool, offered_only=True)
    return "\n".join(["The action to perform:", *(f"* `{row.name}`: {row.description}" for row in rows)])


def computer_use_tool(*, coordinates: str = "relative", image_size: tuple[int, int] | None = None) -> dict[str, Any]:
    """The desktop tool as an OpenAI-style function schema."""
    unit = _point_unit(coordinates)
    description = "\n".join(
        [
            "Use a mouse and keyboard to operate a computer's graphical desktop. You see it through screenshots.",
            "* " + _coordinate_text(coordinates, image_size),
            "* Look at the latest screenshot to find an element before pointing at it, and aim at the element's centre.",
            "* Applications can take a moment to respond: use `wait` and look at the next screenshot if nothing changed yet.",
            "* Click into a text field before typing into it.",
            "* When the task is finished, call `terminate` with status `success`; if it cannot be done, call `terminate` "
            "with status `failure`. When the task asks a question, reply with `answer`.",
        ]
    )
    actions = _action_lines(COMPUTER_USE)
    return {
        "type": "function",
        "function": {
            "name": "computer_use",
            "description": description,
            "parameters": {
                "type": "object",
                "properties": {
                    "action": {"description": actions, "type": "string", "enum": list(COMPUTER_USE_ACTIONS)},
                    "keys": {"description": "Key names, e.g. [\"enter\"]. Required only by `action=key`.", "type": "array"},
                    "text": {"description": "Required only by `action=type` and `action=answer`.", "type": "string"},
                    "coordinate": {
                        "description": f"[x, y] {unit}. Required by the click actions, `mouse_move` and "
                        "`left_click_drag` (where it is the start point).",
                        "type": "array",
                    },
                    "coordinate2": {
                        "description": f"[x, y] {unit} where a drag ends. Required only by `action=left_click_drag`.",
                        "type": "array",
                    },
                    "pixels": {
                        "description": "How far to scroll. Required only by `action=scroll` and `action=hscroll`.",
                        "type": "number",
                    },
                    "time": {"description": "Seconds to wait. Required only by `action=wait`.", "type": "number"},
                    "status": {
                        "description": "Whether the task succeeded. Required only by `action=terminate`.",
                        "type": "string",
                        "enum": ["success", "failure"],
                    },
                },
                "required": ["action"],
            },
        },
    }


def mobile_use_tool(*, coordinates: str = "relative", image_size: tuple[int, int] | None = None) -> dict[str, Any]:
    """The Android tool as an OpenAI-style function schema."""
    unit = _point_unit(coordinates)
    description = "\n".join(
        [
            "Operate a mobile phone's touch screen. You see it through screenshots.",
            "* " + _coordinate_text(coordinates, image_size),
            "* Look at the latest screenshot to find an element before touching it, and aim at the element's centre.",
            "* Apps can take a moment to respond: use `wait` and look at the next screenshot if nothing changed yet.",
            "* When the task is finished, call `terminate` with status `success`; if it cannot be done, call `terminate` "
            "with status `failure`. When the task asks a question, reply with `answer`.",
        ]
    )
    actions = _action_lines(MOBILE_USE)
    return {
        "type": "function",
        "function": {
            "name": "mobile_use",
            "description": description,
            "parameters": {
                "type": "object",
                "properties": {
                    "action": {"description": actions, "type": "string", "enum": list(MOBILE_USE_ACTIONS)},
                    "coordinate": {
                        "description": f"[x, y] {unit}. Required by `click`, `long_press` and `swipe` (start).",
                        "type": "array",
                    },
                    "coordinate2": {
                        "description": f"[x, y] {unit} where a swipe ends. Required only by `action=swipe`.",
                        "type": "array",
                    },
                    "text": {
                        "description": "Required only by `action=type`, `action=open` and `action=answer`.",
                        "type": "string",
                    },
                    "time": {
                        "description": "Seconds. Required only by `action=long_press` and `action=wait`.",
                        "type": "number",
                    },
                    "button": {
                        "description": "Required only by `action=system_button`.",
                        "type": "string",
                        "enum": list(SYSTEM_BUTTONS),
                    },
                    "status": {
                        "description": "Whether the task succeeded. Required only by `action=terminate`.",
                        "type": "string",
                        "enum": ["success", "failure"],
                    },
                },
                "required": ["action"],
            },
        },
    }


def tool_name(platform: str) -> str:
    return "mobile_use" if normalize_platform(platform) == "mobile" else "computer_use"


def tool_for(platform: str, *, coordinates: str = "relative", image_size: tuple[int, int] | None = None) -> dict:
    if normalize_platform(platform) == "mobile":
        return mobile_use_tool(coordinates=coordinates, image_size=image_size)
    return computer_use_tool(coordinates=coordinates, image_size=image_size)


def render_tools_block(tools: Iterable[dict[str, Any]], *, style: str = "xml") -> str:
    """The `# Tools` section laid out as Qwen's chat templates render it.

    style "xml": Qwen3.5's template (calls as <function=NAME><parameter=KEY>
    blocks inside <tool_call>); style "json": Qwen3-VL's / Qwen2.5-VL's
    (calls as {"name": ..., "arguments": {...}} inside <tool_call>).
    """
    tool_lines = [json.dumps(tool, ensure_ascii=False) for tool in tools]
    if style == "xml":
        return "\n".join(
            [
                "# Tools",
                "",
                "You have access to the following functions:",
                "",
                "<tools>",
                *tool_lines,
                "</tools>",
                "",
                "If you choose to call a function ONLY reply in the following format with NO suffix:",
                "",
                "<tool_call>",
                "<function=example_function_name>",
                "<parameter=example_parameter_1>",
                "value_1",
                "</parameter>",
                "<parameter=example_parameter_2>",
                "This is the value for the second parameter",
                "that can span",
                "multiple lines",
                "</parameter>",
                "</function>",
                "</tool_call>",
                "",
                "<IMPORTANT>",
                "Reminder:",
                "- Function calls MUST follow the specified format: an inner <function=...></function> block "
                "must be nested within <tool_call></tool_call> XML tags",
                "- Required parameters MUST be specified",
                "- You may provide optional reasoning for your function call in natural language BEFORE the "
                "function call, but NOT after",
                "- If there is no function call available, answer the question like normal with your current "
                "knowledge and do not tell the user about function calls",
                "</IMPORTANT>",
            ]
        )
    if style == "json":
        return "\n".join(
            [
                "# Tools",
                "",
                "You may call one or more functions to assist with the user query.",
                "",
                "You are provided with function signatures within <tools></tools> XML tags:",
                "<tools>",
                *tool_lines,
                "</tools>",
                "",
                "For each function call, return a json object with function name and arguments within "
                "<tool_call></tool_call> XML tags:",
                "<tool_call>",
                '{"name": <function-name>, "arguments": <args-json-object>}',
                "</tool_call>",
            ]
        )
    raise ValueError(f"unknown tool-call style {style!r}; expected one of {TOOL_STYLES}")


def system_prompt(
    platform: str = "desktop",
    *,
    coordinates: str = "relative",
    image_size: tuple[int, int] | None = None,
    secret_names: Sequence[str] = (),
    tool_style: str = "xml",
) -> str:
    """The system message: the agent's role, how to answer, and the tool.

    Laid out as the model's own chat template would render a system message
    plus `tools`: Qwen3.5 ("xml") puts the tools first, Qwen3-VL ("json")
    after the instructions.
    """
    device = "computer" if normalize_platform(platform) == "desktop" else "phone"
    intro = [
        f"You are a GUI agent operating a {device} to complete the user's task. "
        "Each turn you get the current screenshot; decide the next step.",
        "First state in one or two short sentences what you see and what you will do next, "
        f"then call the `{tool_name(platform)}` tool. Several tool calls in one reply run in order.",
    ]
    if secret_names:
        names = ", ".join("{{" + name + "}}" for name in secret_names)
        intro.append(
            f"Secret values are never shown to you. To type one, type its placeholder exactly as written: {names}."
        )
    tools = render_tools_block([tool_for(platform, coordinates=coordinates, image_size=image_size)], style=tool_style)
    if tool_style == "xml":
        return tools + "\n\n" + "\n".join(intro)
    return "\n".join(intro) + "\n\n" + tools


# --------------------------------------------------------------------------- replies


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


# --------------------------------------------------------------------------- history


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
) -> list[dict[str, Any]]:
    """The conversation for one step, images kept as PIL.

    Steps without a screenshot (older ones) are summarized as text in the
    first user message; steps with a screenshot become a user turn (that
    screenshot) and an assistant turn (the model's reply then), followed by
    the error it caused, if any. The last user turn holds the current
    screenshot. `image_size` is the size the model sees (used in the tool
    description when `coordinates="pixels"`).
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

    label = f"Current screenshot (step {history[-1].step + 1}):" if history else "Current screenshot:"
    pending += [_text(label), _image(observation.image)]
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
    )
    return to_openai_messages(conversation, prepare_image=prepare, image_format=image_format)


__all__ = [
    "RELATIVE_SCALE",
    "COMPUTER_USE_ACTIONS",
    "MOBILE_USE_ACTIONS",
    "SYSTEM_BUTTONS",
    "normalize_platform",
    "platform_of",
    "secret_names_of",
    "computer_use_tool",
    "mobile_use_tool",
    "tool_for",
    "TOOL_STYLES",
    "tool_name",
    "render_tools_block",
    "system_prompt",
    "split_reply",
    "describe_step",
    "build_conversation",
    "conversation_images",
    "to_openai_messages",
    "build_messages",
]
