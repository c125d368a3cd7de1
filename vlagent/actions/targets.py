"""Planner tool calls: pointing actions name their element in words instead of coordinates.

In a planner + grounder run (`vlagent run --grounder SPEC`) the model plans and our grounder points.
The prompt's tool (vlagent.policy.prompts, coordinates="target") offers `target` / `target2` where the
usual tool has `coordinate` / `coordinate2`, and `type` takes an optional `target`, the field to click
before typing:

    <tool_call>{"name": "computer_use", "arguments": {"action": "left_click", "target": "the Save button"}}</tool_call>

`read_targeted_calls(text)` reads a reply's calls and checks them against that schema. Once every
description has a point (a normalized point of the screenshot, from a grounder), `to_actions` turns
the calls into Actions through the one Qwen call reader on the [0, 1] grid, so the points are not
converted again and no coordinate arithmetic happens here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

from vlagent.actions._common import strip_thinking
from vlagent.actions.qwen import ACTIONS, read_tool_calls, tool_calls_to_actions
from vlagent.actions.schema import Action, ActionParseError, Point
from vlagent.actions.vocabulary import COMPUTER_USE, TOOL_NAMES

# Each point argument of the coordinate tool and its description argument in the planner tool.
TARGET_ARGUMENTS: dict[str, str] = {"coordinate": "target", "coordinate2": "target2"}
POINT_ARGUMENTS: dict[str, str] = {target: point for point, target in TARGET_ARGUMENTS.items()}
# Actions whose `target` may be left out: scroll where the pointer is, type into the focused field.
OPTIONAL_TARGET = frozenset({"scroll", "hscroll", "type"})
# Points given as fractions of the screenshot: the grid the resolved calls are read on.
UNIT_GRID = (1.0, 1.0)


def planner_arguments(tool: str, action: str) -> tuple[str, ...]:
    """The arguments (besides "action") an action takes in the planner tool, from the vocabulary."""
    _, coordinate_arguments = ACTIONS[tool][action]
    names = tuple(TARGET_ARGUMENTS.get(a, a) for a in sorted(coordinate_arguments))
    return names + ("target",) if action == "type" else names


@dataclass(frozen=True)
class TargetedCall:
    """One checked planner call: the arguments as the model wrote them, targets included."""

    tool: str
    action: str
    args: dict[str, Any]
    source: str

    @property
    def targets(self) -> dict[str, str]:
        """argument name ("target", "target2") -> description, for the targets this call names."""
        return {name: self.args[name] for name in POINT_ARGUMENTS if self.args.get(name) is not None}


def read_targeted_calls(text: str) -> list[TargetedCall]:
    """The calls of one planner reply, checked; malformed ones raise ActionParseError (shown to the model)."""
    if not isinstance(text, str) or not text.strip():
        raise ActionParseError("empty output", text or "")
    body = strip_thinking(text)
    if not body.strip():
        raise ActionParseError("no action found: the output holds only thinking", text)
    return [_check(tool, args, source) for tool, args, source in read_tool_calls(body)]


def _check(tool: str, args: dict[str, Any], source: str) -> TargetedCall:
    if tool not in TOOL_NAMES:
        raise ActionParseError(f"unknown tool {tool!r}; expected one of {list(TOOL_NAMES)}", source)
    action = args.get("action")
    if not isinstance(action, str) or action not in ACTIONS[tool]:
        raise ActionParseError(f"unknown {tool} action {action!r}; expected one of {sorted(ACTIONS[tool])}", source)
    given = {k for k, v in args.items() if k != "action" and v is not None}
    if given & set(TARGET_ARGUMENTS):
        # The point of this mode: the model names the element, the grounder finds it.
        raise ActionParseError(
            f"{tool} {action}: name the element in `target` (a description such as \"the Save button\"), "
            "not with coordinates: in this run a grounder finds it on the screen",
            source,
        )
    allowed = planner_arguments(tool, action)
    extra = sorted(given - set(allowed))
    if extra:
        raise ActionParseError(f"{tool} {action} does not take {', '.join(map(repr, extra))}", source)
    for name in (n for n in allowed if n in POINT_ARGUMENTS):
        value = args.get(name)
        required = name == "target2" or (name == "target" and action not in OPTIONAL_TARGET)
        if value is None and not required:
            continue
        if not isinstance(value, str) or not value.strip():
            raise ActionParseError(f"{tool} {action}: {name!r} must describe an element in words, got {value!r}", source)
    clean = {k: v.strip() if k in POINT_ARGUMENTS and isinstance(v, str) else v for k, v in args.items()}
    return TargetedCall(tool, action, clean, source)


def to_actions(calls: list[TargetedCall], points: Mapping[str, Point]) -> list[Action]:
    """Actions for checked calls, given the point each description was grounded to (normalized)."""
    plain: list[tuple[str, dict[str, Any], str]] = []
    for call in calls:
        args = {k: v for k, v in call.args.items() if k not in POINT_ARGUMENTS}
        for name, description in call.targets.items():
            args[POINT_ARGUMENTS[name]] = list(points[description])
        if call.action == "type" and "coordinate" in args:
            # Type into a field: click it first (a tap on a phone), then type.
            click = "left_click" if call.tool == COMPUTER_USE else "click"
            plain.append((call.tool, {"action": click, "coordinate": args.pop("coordinate")}, call.source))
        plain.append((call.tool, args, call.source))
    return tool_calls_to_actions(plain, UNIT_GRID)


__all__ = [
    "OPTIONAL_TARGET", "POINT_ARGUMENTS", "TARGET_ARGUMENTS", "TargetedCall", "planner_arguments",
    "read_targeted_calls", "to_actions",
]  # fmt: skip
