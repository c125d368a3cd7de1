"""Actions: the schema every part shares and the parsers for model outputs."""

from vlagent.actions.schema import (
    ACTION_KINDS,
    BUTTONS,
    DIRECTIONS,
    POINTER_KINDS,
    REQUIRED_FIELDS,
    TERMINAL_KINDS,
    Action,
    ActionError,
    ActionParseError,
    Point,
)
from vlagent.actions.parsers import parse_actions

__all__ = [
    "Action",
    "ActionError",
    "ActionParseError",
    "parse_actions",
    "ACTION_KINDS",
    "BUTTONS",
    "DIRECTIONS",
    "POINTER_KINDS",
    "REQUIRED_FIELDS",
    "TERMINAL_KINDS",
    "Point",
]
