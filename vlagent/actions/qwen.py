"""Qwen computer_use / mobile_use tool calls -> Actions.

Qwen3-VL emits one JSON object per call,
    <tool_call>{"name": "computer_use", "arguments": {"action": "left_click", "coordinate": [500, 300]}}</tool_call>
and Qwen3.5 the same call as XML-style markup,
    <tool_call><function=computer_use><parameter=action>left_click</parameter>
    <parameter=coordinate>[500, 300]</parameter></function></tool_call>
Both are read here, one or several calls per output, with any reasoning text or
<think> blocks around them ignored.

Coordinates:
- fmt "qwen" (Qwen3-VL / Qwen3.5): 0-1000 relative grid, point = (x / 1000, y / 1000).
  The divisor is 1000 (not 999), as the tool description says "the screen's
  resolution is 1000x1000". An image_size passed with fmt "qwen" is ignored:
  the grid stays 0-1000.
- fmt "qwen-pixels" (Qwen2.5-VL): absolute pixels of the resized model input,
  point = (x / w, y / h) with image_size = (w, h) of that resized image.

Scroll sign (Qwen's computer_use spec: "Positive values scroll up, negative
values scroll down"): scroll pixels > 0 -> direction "up", < 0 -> "down";
hscroll pixels > 0 -> "right", < 0 -> "left" (pyautogui.hscroll's sign, which
Qwen's reference executor uses). amount = abs(pixels); pixels = 0 is an error.

left_click_drag: with coordinate2 it drags coordinate -> coordinate2; with only
coordinate (Qwen's spec: drag from the cursor to coordinate) the start must be
known from an earlier pointer action in the same output, else it is an error.
A click action without coordinate follows the same rule (computer_use only:
a touch screen has no pointer). A key given as a combo ("ctrl+c") is split
into its keys, as pyautogui.hotkey would need them.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any, Callable

from vlagent.actions._common import (
    check_number,
    json_payload,
    key_names,
    load_json,
    make_action,
    normalize_point,
)
from vlagent.actions.schema import Action, ActionParseError, Point
from vlagent.actions.tool_call_tags import tool_call_blocks
from vlagent.actions.vocabulary import COMPUTER_USE, MOBILE_USE, SYSTEM_BUTTONS, TOOL_NAMES, actions_of

# Arguments that are JSON values in the XML form; all others are plain strings.
_JSON_PARAMETERS = frozenset({"coordinate", "coordinate2", "keys", "pixels", "time"})

_FUNCTION = re.compile(r"<function=([^>\n]+)>(.*?)</function>", re.DOTALL)
_PARAMETER = re.compile(r"<parameter=([^>\n]+)>(.*?)</parameter>", re.DOTALL)


def find_tool_calls(text: str) -> list[str]:
    """Bodies of the <tool_call> blocks in `text`, in order.

    A missing </tool_call> is accepted only on the last call (generation often
    stops on that string); whether its body is complete is checked when parsing.
    """
    blocks = tool_call_blocks(text)
    for block in blocks[:-1]:
        if not block.closed:
            raise ActionParseError("a <tool_call> is not closed before the next one starts", text[block.start : block.end])
    return [block.body for block in blocks]


def parse_tool_call_body(body: str) -> tuple[str, dict[str, Any]]:
    """(tool name, arguments) of one <tool_call> body, JSON or XML form."""
    stripped = body.strip()
    if not stripped:
        raise ActionParseError("empty <tool_call>", body)
    if stripped.startswith("{"):
        return tool_call_from_object(load_json(stripped, "<tool_call>", body), body)
    if stripped.startswith("<function="):
        return _parse_xml_call(stripped, body)
    raise ActionParseError("a <tool_call> must hold a JSON object or a <function=...> block", body)


def tool_call_from_object(obj: Any, source: str) -> tuple[str, dict[str, Any]]:
    if not isinstance(obj, dict):
        raise ActionParseError(f"a tool call must be a JSON object, got {type(obj).__name__}", source)
    name, arguments = obj.get("name"), obj.get("arguments")
    if not isinstance(name, str):
        raise ActionParseError("a tool call needs a string 'name'", source)
    if isinstance(arguments, str):  # OpenAI-style: arguments as a JSON string
        arguments = load_json(arguments, "tool call arguments", source)
    if not isinstance(arguments, dict):
        raise ActionParseError("a tool call needs an 'arguments' object", source)
    return name, arguments


def _parse_xml_call(stripped: str, source: str) -> tuple[str, dict[str, Any]]:
    match = _FUNCTION.fullmatch(stripped)
    if match is None:
        raise ActionParseError("truncated or malformed <function=...> block (no closing </function>)", source)
    name, inner = match.group(1).strip(), match.group(2)
    arguments: dict[str, Any] = {}
    pos = 0
    for param in _PARAMETER.finditer(inner):
        if inner[pos : param.start()].strip():
            raise ActionParseError(f"unexpected text {inner[pos:param.start()].strip()!r} between parameters", source)
        pos = param.end()
        key, value = param.group(1).strip(), param.group(2)
        # The template puts the value on its own line: drop exactly that framing newline.
        value = value.removeprefix("\n").removesuffix("\n")
        if key in arguments:
            raise ActionParseError(f"parameter {key!r} given twice", source)
        if key in _JSON_PARAMETERS:
            value = load_json(value.strip(), f"parameter {key!r}", source)
        elif key in ("action", "status", "button"):
            value = value.strip()
        arguments[key] = value
    if inner[pos:].strip():
        raise ActionParseError(f"truncated or malformed parameter near {inner[pos:].strip()[:40]!r}", source)
    return name, arguments


@dataclass
class _Call:
    """One tool call being converted, with what the errors need."""

    tool: str
    action: str
    args: dict[str, Any]
    source: str
    scale: tuple[float, float]

    def fail(self, reason: str) -> ActionParseError:
        return ActionParseError(f"{self.tool} {self.action}: {reason}", self.source)

    def point(self, name: str, required: bool = True) -> Point | None:
        value = self.args.get(name)
        if value is None:
            if required:
                raise self.fail(f"missing {name!r}")
            return None
        if isinstance(value, (str, bytes, dict)) or not hasattr(value, "__len__") or len(value) != 2:
            raise self.fail(f"{name!r} must be a list [x, y], got {value!r}")
        return normalize_point(f"{self.tool} {self.action}: {name}", value[0], value[1], self.scale, self.source)

    def number(self, name: str, required: bool = True) -> float | None:
        value = self.args.get(name)
        if value is None:
            if required:
                raise self.fail(f"missing {name!r}")
            return None
        return check_number(f"{self.tool} {self.action}: {name}", value, self.source)

    def string(self, name: str) -> str:
        value = self.args.get(name)
        if value is None:
            raise self.fail(f"missing {name!r}")
        if not isinstance(value, str):
            raise self.fail(f"{name!r} must be a string, got {value!r}")
        return value

    def action_(self, **fields: Any) -> Action:
        return make_action(self.source, context=f"{self.tool} {self.action}", **fields)


class _Pointer:
    """Where the mouse is after the actions parsed so far (None when unknown)."""

    def __init__(self) -> None:
        self.at: Point | None = None


def _click(kind: str) -> Callable[[_Call, _Pointer], Action]:
    def handle(call: _Call, pointer: _Pointer) -> Action:
        point = call.point("coordinate", required=False) or pointer.at
        if point is None:
            raise call.fail("missing 'coordinate' (and no earlier action in this output says where the pointer is)")
        pointer.at = point
        return call.action_(kind=kind, point=point)

    return handle


def _tap(call: _Call, pointer: _Pointer) -> Action:
    # A touch screen has no pointer to fall back on: the coordinate is required.
    return call.action_(kind="click", point=call.point("coordinate"))


def _move(call: _Call, pointer: _Pointer) -> Action:
    pointer.at = call.point("coordinate")
    return call.action_(kind="move", point=pointer.at)


def _drag(call: _Call, pointer: _Pointer) -> Action:
    target = call.point("coordinate")
    second = call.point("coordinate2", required=False)
    if second is not None:
        start, end = target, second
    elif pointer.at is not None:
        start, end = pointer.at, target
    else:
        raise call.fail(
            "drags from the current pointer position, which is unknown here; "
            "give 'coordinate' (start) and 'coordinate2' (end), or a mouse_move first"
        )
    pointer.at = end
    return call.action_(kind="drag", point=start, end=end)


def _scroll(positive: str, negative: str) -> Callable[[_Call, _Pointer], Action]:
    def handle(call: _Call, pointer: _Pointer) -> Action:
        pixels = call.number("pixels")
        if pixels == 0:
            raise call.fail("'pixels' is 0, so the direction is unknown")
        point = call.point("coordinate", required=False)
        if point is not None:
            pointer.at = point
        direction = positive if pixels > 0 else negative
        return call.action_(kind="scroll", point=point, direction=direction, amount=abs(pixels))

    return handle


def _keys(call: _Call, pointer: _Pointer) -> Action:
    keys = call.args.get("keys")
    if keys is None:
        raise call.fail("missing 'keys'")
    if not isinstance(keys, list) or not keys or not all(isinstance(k, str) and k.strip() for k in keys):
        raise call.fail(f"'keys' must be a non-empty list of key names, got {keys!r}")
    return call.action_(kind="key", keys=key_names(keys))


def _type(call: _Call, pointer: _Pointer) -> Action:
    return call.action_(kind="type", text=call.string("text"))


def _wait(call: _Call, pointer: _Pointer) -> Action:
    return call.action_(kind="wait", seconds=call.number("time", required=False))


def _terminate(call: _Call, pointer: _Pointer) -> Action:
    status = call.string("status")
    if status not in ("success", "failure"):
        raise call.fail(f"'status' must be 'success' or 'failure', got {status!r}")
    return call.action_(kind="done", success=status == "success")


def _answer(call: _Call, pointer: _Pointer) -> Action:
    return call.action_(kind="answer", text=call.string("text"))


def _long_press(call: _Call, pointer: _Pointer) -> Action:
    return call.action_(kind="long_press", point=call.point("coordinate"), seconds=call.number("time", required=False))


def _swipe(call: _Call, pointer: _Pointer) -> Action:
    return call.action_(kind="swipe", point=call.point("coordinate"), end=call.point("coordinate2"))


def _mobile_key(call: _Call, pointer: _Pointer) -> Action:
    name = call.string("text").strip()
    if not name:
        raise call.fail("'text' (the key name) is empty")
    return call.action_(kind="key", keys=(name,))


_SYSTEM_BUTTON_ACTIONS = {
    "back": {"kind": "back"},
    "home": {"kind": "home"},
    "menu": {"kind": "key", "keys": ("menu",)},
    "enter": {"kind": "key", "keys": ("enter",)},
}
if set(_SYSTEM_BUTTON_ACTIONS) != {b.lower() for b in SYSTEM_BUTTONS}:
    raise AssertionError("every system button needs an action")


def _system_button(call: _Call, pointer: _Pointer) -> Action:
    button = call.string("button")
    fields = _SYSTEM_BUTTON_ACTIONS.get(button.lower())
    if fields is None:
        raise call.fail(f"'button' must be one of {', '.join(SYSTEM_BUTTONS)}, got {button!r}")
    return call.action_(**fields)


def _open(call: _Call, pointer: _Pointer) -> Action:
    return call.action_(kind="open_app", text=call.string("text"))


Handler = Callable[[_Call, _Pointer], Action]

# What each action of the vocabulary means, as an Action.
_HANDLERS: dict[tuple[str, str], Handler] = {
    (COMPUTER_USE, "key"): _keys,
    (COMPUTER_USE, "type"): _type,
    (COMPUTER_USE, "mouse_move"): _move,
    (COMPUTER_USE, "left_click"): _click("click"),
    (COMPUTER_USE, "left_click_drag"): _drag,
    (COMPUTER_USE, "right_click"): _click("right_click"),
    (COMPUTER_USE, "middle_click"): _click("middle_click"),
    (COMPUTER_USE, "double_click"): _click("double_click"),
    (COMPUTER_USE, "triple_click"): _click("triple_click"),
    (COMPUTER_USE, "scroll"): _scroll("up", "down"),
    (COMPUTER_USE, "hscroll"): _scroll("right", "left"),
    (MOBILE_USE, "click"): _tap,
    (MOBILE_USE, "long_press"): _long_press,
    (MOBILE_USE, "swipe"): _swipe,
    (MOBILE_USE, "type"): _type,
    (MOBILE_USE, "key"): _mobile_key,
    (MOBILE_USE, "system_button"): _system_button,
    (MOBILE_USE, "open"): _open,
    **{(tool, "wait"): _wait for tool in TOOL_NAMES},
    **{(tool, "terminate"): _terminate for tool in TOOL_NAMES},
    **{(tool, "answer"): _answer for tool in TOOL_NAMES},
}


def _accepted_actions() -> dict[str, dict[str, tuple[Handler, frozenset[str]]]]:
    """tool -> action -> (handler, arguments it may take besides "action"), from the vocabulary."""
    table: dict[str, dict[str, tuple[Handler, frozenset[str]]]] = {tool: {} for tool in TOOL_NAMES}
    for tool in TOOL_NAMES:
        for row in actions_of(tool):
            table[tool][row.name] = (_HANDLERS[(tool, row.name)], frozenset(row.arguments))
    unused = set(_HANDLERS) - {(tool, name) for tool in table for name in table[tool]}
    if unused:
        raise AssertionError(f"handlers for actions the vocabulary does not have: {sorted(unused)}")
    return table


ACTIONS = _accepted_actions()


def tool_calls_to_actions(calls: list[tuple[str, dict[str, Any], str]], scale: tuple[float, float]) -> list[Action]:
    """(tool, arguments, source text) triples -> Actions, in order."""
    actions = []
    pointer = _Pointer()
    for tool, args, source in calls:
        table = ACTIONS.get(tool)
        if table is None:
            raise ActionParseError(f"unknown tool {tool!r}; expected one of {list(TOOL_NAMES)}", source)
        action = args.get("action")
        if not isinstance(action, str):
            raise ActionParseError(f"{tool} call needs a string 'action', got {action!r}", source)
        entry = table.get(action)
        if entry is None:
            raise ActionParseError(f"unknown {tool} action {action!r}; expected one of {sorted(table)}", source)
        handler, allowed = entry
        extra = sorted(k for k, v in args.items() if k != "action" and k not in allowed and v is not None)
        if extra:
            raise ActionParseError(f"{tool} {action} does not take {', '.join(map(repr, extra))}", source)
        actions.append(handler(_Call(tool, action, args, source, scale), pointer))
    return actions


def parse_qwen(text: str, scale: tuple[float, float]) -> list[Action]:
    """Actions from the <tool_call> blocks of `text` (thinking already removed)."""
    return tool_calls_to_actions(read_tool_calls(text), scale)


def read_tool_calls(text: str) -> list[tuple[str, dict[str, Any], str]]:
    """(tool, arguments, source text) of each call in `text` (thinking already removed), unchecked.

    Without any <tool_call> tag, a bare (or ```json fenced) call object or list
    of them is accepted too, as some servers strip the tags.
    """
    bodies = find_tool_calls(text)
    calls: list[tuple[str, dict[str, Any], str]] = []
    if bodies:
        for body in bodies:
            calls.append((*parse_tool_call_body(body), body))
    else:
        payload = json_payload(text)
        if payload is None:
            raise ActionParseError("no <tool_call> found", text)
        loaded = load_json(payload, "the tool call", text)
        for obj in loaded if isinstance(loaded, list) else [loaded]:
            calls.append((*tool_call_from_object(obj, payload), json.dumps(obj)))
    if not calls:
        raise ActionParseError("no tool call found", text)
    return calls
