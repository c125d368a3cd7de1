"""The prompt text: what the model is told about its role and its tool.

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
model sees. `coordinates="target"` is the planner tool of a planner + grounder
run: pointing actions take `target` / `target2`, the element described in
words, which a grounder turns into a point (vlagent.actions.targets).

The actions and their descriptions come from the action vocabulary
(vlagent.actions.vocabulary), which the parser reads too.
"""

from __future__ import annotations

import json
from typing import Any, Iterable, Sequence

from vlagent.actions.vocabulary import COMPUTER_USE, MOBILE_USE, SYSTEM_BUTTONS, action_names, actions_of

RELATIVE_SCALE = 1000
COORDINATE_MODES = ("relative", "pixels", "target")
# "xml": Qwen3.5's chat template; "json": Qwen3-VL's and Qwen2.5-VL's.
TOOL_STYLES = ("xml", "json")

COMPUTER_USE_ACTIONS: tuple[str, ...] = action_names(COMPUTER_USE, offered_only=True)
MOBILE_USE_ACTIONS: tuple[str, ...] = action_names(MOBILE_USE, offered_only=True)


def normalize_platform(platform: str | None) -> str:
    """'desktop' or 'mobile' ('android', 'phone' and 'mobile' mean mobile)."""
    value = (platform or "desktop").strip().lower()
    if value in ("desktop", "computer", "linux", "windows", "macos", "x11"):
        return "desktop"
    if value in ("mobile", "android", "phone", "tablet"):
        return "mobile"
    raise ValueError(f"unknown platform {platform!r}; expected 'desktop' or 'mobile'/'android'")



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
    if coordinates == "target":
        return (
            "Point at an element by describing it in `target`, never by coordinates: name it as a person "
            'would, by its visible label or text and its kind, e.g. "the Save button", "the Name field", '
            '"the Remember me checkbox". A grounding model finds it on the screenshot; when it finds nothing, '
            "nothing is done and you are told so, with what it saw nearest."
        )
    raise ValueError(f"unknown coordinate mode {coordinates!r}; expected one of {COORDINATE_MODES}")


def _point_unit(coordinates: str) -> str:
    return f"on the 0-{RELATIVE_SCALE} relative scale" if coordinates == "relative" else "in screenshot pixels"


def _action_lines(tool: str, coordinates: str = "relative") -> str:
    lines = ["The action to perform:"]
    for row in actions_of(tool, offered_only=True):
        text = row.description
        if coordinates == "target":  # the same rows, pointing by description
            text = text.replace("`coordinate2`", "`target2`").replace("`coordinate`", "`target`")
            if row.name == "type":
                text += " With `target`, that element (a text field) is clicked first."
        lines.append(f"* `{row.name}`: {text}")
    return "\n".join(lines)


def _pointing_properties(coordinates: str, first: str, second: str) -> dict[str, Any]:
    """The point arguments of a tool: `coordinate` / `coordinate2`, or in the planner tool `target` / `target2`.
    `first` / `second` say which actions need them."""
    if coordinates == "target":
        return {
            "target": {"description": f"The element, described in words. {first}", "type": "string"},
            "target2": {"description": f"The element, described in words, {second}", "type": "string"},
        }
    unit = _point_unit(coordinates)
    return {
        "coordinate": {"description": f"[x, y] {unit}. {first}", "type": "array"},
        "coordinate2": {"description": f"[x, y] {unit} {second}", "type": "array"},
    }


def computer_use_tool(*, coordinates: str = "relative", image_size: tuple[int, int] | None = None) -> dict[str, Any]:
    """The desktop tool as an OpenAI-style function schema."""
    targets = coordinates == "target"
    description = "\n".join(
        [
            "Use a mouse and keyboard to operate a computer's graphical desktop. You see it through screenshots.",
            "* " + _coordinate_text(coordinates, image_size),
            "* Name an element as the latest screen shows it." if targets else
            "* Look at the latest screenshot to find an element before pointing at it, and aim at the element's centre.",
            "* Applications can take a moment to respond: use `wait` and look at the next screenshot if nothing changed yet.",
            "* To type into a text field, give `type` the field as `target`." if targets else
            "* Click into a text field before typing into it.",
            "* When the task is finished, call `terminate` with status `success`; if it cannot be done, call `terminate` "
            "with status `failure`. When the task asks a question, reply with `answer`.",
        ]
    )
    actions = _action_lines(COMPUTER_USE, coordinates)
    first = "Required by the click actions, `mouse_move` and `left_click_drag` (where it is the start point)."
    if targets:
        first = ("Required by the click actions, `mouse_move` and `left_click_drag` (what to drag); optional for "
                 "`scroll` / `hscroll` (what to scroll) and `type` (the field to type into).")
    pointing = _pointing_properties(coordinates, first, "where a drag ends. Required only by `action=left_click_drag`.")
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
                    **pointing,
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
    targets = coordinates == "target"
    description = "\n".join(
        [
            "Operate a mobile phone's touch screen. You see it through screenshots.",
            "* " + _coordinate_text(coordinates, image_size),
            "* Name an element as the latest screen shows it." if targets else
            "* Look at the latest screenshot to find an element before touching it, and aim at the element's centre.",
            "* Apps can take a moment to respond: use `wait` and look at the next screenshot if nothing changed yet.",
            "* When the task is finished, call `terminate` with status `success`; if it cannot be done, call `terminate` "
            "with status `failure`. When the task asks a question, reply with `answer`.",
        ]
    )
    actions = _action_lines(MOBILE_USE, coordinates)
    first = "Required by `click`, `long_press` and `swipe` (start)."
    if targets:
        first = "Required by `click`, `long_press` and `swipe` (start); optional for `type` (the field to type into)."
    pointing = _pointing_properties(coordinates, first, "where a swipe ends. Required only by `action=swipe`.")
    return {
        "type": "function",
        "function": {
            "name": "mobile_use",
            "description": description,
            "parameters": {
                "type": "object",
                "properties": {
                    "action": {"description": actions, "type": "string", "enum": list(MOBILE_USE_ACTIONS)},
                    **pointing,
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
