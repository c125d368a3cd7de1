"""The action vocabulary of Qwen's `computer_use` and `mobile_use` tools: one row per action.

The prompt's tool schemas (vlagent.policy.prompts) list the actions and
describe them from these rows, and the parser (vlagent.actions.qwen) accepts
exactly these names with exactly these arguments, so the two cannot drift
apart. A row with `offered=False` is read from models trained on Qwen's full
tool but not offered in our prompt.
"""

from __future__ import annotations

from dataclasses import dataclass

COMPUTER_USE = "computer_use"
MOBILE_USE = "mobile_use"
TOOL_NAMES = (COMPUTER_USE, MOBILE_USE)
SYSTEM_BUTTONS: tuple[str, ...] = ("Back", "Home", "Menu", "Enter")


@dataclass(frozen=True)
class ToolAction:
    name: str
    arguments: tuple[str, ...]  # besides "action"
    description: str  # one line of the tool's `action` description
    tools: tuple[str, ...]
    offered: bool = True


_BOTH = (COMPUTER_USE, MOBILE_USE)
_DESKTOP = (COMPUTER_USE,)
_MOBILE = (MOBILE_USE,)

# Rows in the order the prompt lists them.
VOCABULARY: tuple[ToolAction, ...] = (
    ToolAction("key", ("keys",), 'press the keys in `keys` together (a combination such as ["ctrl", "c"]) and release them.', _DESKTOP),
    ToolAction("type", ("text",), "type the string `text` with the keyboard.", _DESKTOP),
    ToolAction("mouse_move", ("coordinate",), "move the pointer to `coordinate`.", _DESKTOP),
    ToolAction("left_click", ("coordinate",), "left-click at `coordinate`.", _DESKTOP),
    ToolAction("left_click_drag", ("coordinate", "coordinate2"),
               "press the left button at `coordinate`, move to `coordinate2` and release.", _DESKTOP),
    ToolAction("right_click", ("coordinate",), "right-click at `coordinate`.", _DESKTOP),
    ToolAction("middle_click", ("coordinate",), "middle-click at `coordinate`.", _DESKTOP),
    ToolAction("double_click", ("coordinate",), "double-click at `coordinate`.", _DESKTOP),
    ToolAction("triple_click", ("coordinate",), "triple-click at `coordinate` (selects a line or paragraph).", _DESKTOP),
    ToolAction("scroll", ("pixels", "coordinate"),
               "scroll vertically by `pixels` (positive scrolls up, negative down), at `coordinate` if given.", _DESKTOP),
    ToolAction("hscroll", ("pixels", "coordinate"),
               "scroll horizontally by `pixels` (positive scrolls right, negative left), at `coordinate` if given.", _DESKTOP),
    ToolAction("click", ("coordinate",), "tap at `coordinate`.", _MOBILE),
    ToolAction("long_press", ("coordinate", "time"), "press and hold at `coordinate` for `time` seconds.", _MOBILE),
    ToolAction("swipe", ("coordinate", "coordinate2"), "swipe from `coordinate` to `coordinate2`.", _MOBILE),
    ToolAction("type", ("text",), "type the string `text` into the focused input box.", _MOBILE),
    ToolAction("key", ("text",), "press the key named `text`.", _MOBILE, offered=False),
    ToolAction("system_button", ("button",), "press a system `button` (Back, Home, Menu or Enter).", _MOBILE),
    ToolAction("open", ("text",), "open the app named `text`.", _MOBILE),
    ToolAction("wait", ("time",), "wait `time` seconds for the screen to change.", _BOTH),
    ToolAction("terminate", ("status",), "end the task with `status` success or failure.", _BOTH),
    ToolAction("answer", ("text",), "end the task by replying `text` to the user.", _BOTH),
)


def actions_of(tool: str, *, offered_only: bool = False) -> tuple[ToolAction, ...]:
    """The rows of one tool, in prompt order; `offered_only` leaves out those the prompt does not offer."""
    if tool not in TOOL_NAMES:
        raise ValueError(f"unknown tool {tool!r}; expected one of {TOOL_NAMES}")
    return tuple(row for row in VOCABULARY if tool in row.tools and (row.offered or not offered_only))


def action_names(tool: str, *, offered_only: bool = False) -> tuple[str, ...]:
    return tuple(row.name for row in actions_of(tool, offered_only=offered_only))
