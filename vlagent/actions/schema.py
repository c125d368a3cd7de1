"""The one `Action` type every part of vlagent speaks.

Coordinate convention (the only one inside the system): `point` and `end` are
(x, y) normalized floats in [0, 1] of the *observed screenshot*, x to the
right, y down. Parsers convert model conventions into it; environments convert
it into device pixels. Nothing else does coordinate arithmetic.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from typing import Any, Mapping

Point = tuple[float, float]

# kind -> fields that must be present for the action to be executable.
REQUIRED_FIELDS: dict[str, tuple[str, ...]] = {
    "click": ("point",),
    "double_click": ("point",),
    "triple_click": ("point",),
    "right_click": ("point",),
    "middle_click": ("point",),
    "move": ("point",),
    "drag": ("point", "end"),
    "scroll": ("direction",),
    "type": ("text",),
    "key": ("keys",),
    "long_press": ("point",),
    "swipe": ("point", "end"),
    "back": (),
    "home": (),
    "open_app": ("text",),
    "wait": (),
    "answer": ("text",),
    "done": (),
}
ACTION_KINDS: frozenset[str] = frozenset(REQUIRED_FIELDS)
POINTER_KINDS: frozenset[str] = frozenset(
    {"click", "double_click", "triple_click", "right_click", "middle_click", "move", "drag", "long_press", "swipe"}
)
# Kinds that end a run.
TERMINAL_KINDS: frozenset[str] = frozenset({"answer", "done"})
DIRECTIONS: frozenset[str] = frozenset({"up", "down", "left", "right"})
BUTTONS: frozenset[str] = frozenset({"left", "right", "middle"})


class ActionError(ValueError):
    """An `Action` that cannot exist (unknown kind, missing or invalid field)."""


def _as_point(name: str, value: Any) -> Point | None:
    if value is None:
        return None
    try:
        x, y = value
        x, y = float(x), float(y)
    except (TypeError, ValueError):
        raise ActionError(f"{name} must be an (x, y) pair of numbers, got {value!r}") from None
    if not (math.isfinite(x) and math.isfinite(y)):
        raise ActionError(f"{name} must be finite, got {value!r}")
    if not (0.0 <= x <= 1.0 and 0.0 <= y <= 1.0):
        raise ActionError(f"{name} must be normalized to [0, 1] of the screenshot, got ({x:g}, {y:g})")
    return (x, y)


@dataclass(frozen=True)
class Action:
    """One thing to do on a screen. Immutable; validated on construction."""

    kind: str
    point: Point | None = None
    end: Point | None = None
    text: str | None = None
    keys: tuple[str, ...] | None = None
    direction: str | None = None
    amount: float | None = None
    seconds: float | None = None
    button: str | None = None
    success: bool | None = None

    def __post_init__(self) -> None:
        if self.kind not in ACTION_KINDS:
            raise ActionError(f"unknown action kind {self.kind!r}; expected one of {sorted(ACTION_KINDS)}")
        object.__setattr__(self, "point", _as_point("point", self.point))
        object.__setattr__(self, "end", _as_point("end", self.end))
        if self.keys is not None:
            if isinstance(self.keys, str) or not all(isinstance(k, str) and k for k in self.keys):
                raise ActionError(f"keys must be a list of key names, got {self.keys!r}")
            object.__setattr__(self, "keys", tuple(k.lower() for k in self.keys))
        if self.text is not None and not isinstance(self.text, str):
            raise ActionError(f"text must be a string, got {type(self.text).__name__}")
        if self.direction is not None and self.direction not in DIRECTIONS:
            raise ActionError(f"direction must be one of {sorted(DIRECTIONS)}, got {self.direction!r}")
        if self.button is not None and self.button not in BUTTONS:
            raise ActionError(f"button must be one of {sorted(BUTTONS)}, got {self.button!r}")
        for name in ("amount", "seconds"):
            value = getattr(self, name)
            if value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
                raise ActionError(f"{name} must be a finite non-negative number, got {value!r}")
            object.__setattr__(self, name, float(value))
        if self.success is not None and not isinstance(self.success, bool):
            raise ActionError(f"success must be true or false, got {self.success!r}")
        missing = [f for f in REQUIRED_FIELDS[self.kind] if getattr(self, f) in (None, "", ())]
        if missing:
            raise ActionError(f"{self.kind} needs {', '.join(missing)}")

    @property
    def is_terminal(self) -> bool:
        return self.kind in TERMINAL_KINDS

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict; fields left at None are omitted."""
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if value is None:
                continue
            out[f.name] = list(value) if isinstance(value, tuple) else value
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "Action":
        if not isinstance(data, Mapping):
            raise ActionError(f"an action must be a JSON object, got {type(data).__name__}")
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ActionError(f"unknown action field(s) {sorted(unknown)}")
        if "kind" not in data:
            raise ActionError("an action needs a 'kind'")
        kwargs = dict(data)
        if kwargs.get("keys") is not None and not isinstance(kwargs["keys"], str):
            kwargs["keys"] = tuple(kwargs["keys"])
        return cls(**kwargs)

    def with_text(self, text: str) -> "Action":
        """A copy with other text (used for secret substitution at execution time)."""
        return Action(**{**{f.name: getattr(self, f.name) for f in fields(self)}, "text": text})

    def describe(self) -> str:
        """A short human-readable line, e.g. `click (0.412, 0.200)`."""
        held = self.keys and self.kind in POINTER_KINDS  # "ctrl+click": keys held during a click or drag
        parts = ["+".join(self.keys) + "+" + self.kind if held else self.kind]
        if self.point is not None:
            parts.append(f"({self.point[0]:.3f}, {self.point[1]:.3f})")
        if self.end is not None:
            parts.append(f"→ ({self.end[0]:.3f}, {self.end[1]:.3f})")
        if self.direction:
            parts.append(self.direction + (f" ×{self.amount:g}" if self.amount is not None else ""))
        if self.keys and not held:
            parts.append("+".join(self.keys))
        if self.text is not None:
            parts.append(repr(self.text if len(self.text) <= 60 else self.text[:57] + "..."))
        if self.seconds is not None:
            parts.append(f"{self.seconds:g}s")
        if self.success is not None:
            parts.append("success" if self.success else "failure")
        return " ".join(parts)


class ActionParseError(ValueError):
    """Model output that cannot be turned into actions without guessing.

    `text` is the offending output (or the part of it that failed), `reason`
    says why. The agent shows this message to the model and asks again.
    """

    def __init__(self, reason: str, text: str = "") -> None:
        self.reason = reason
        self.text = text
        snippet = text if len(text) <= 200 else text[:197] + "..."
        super().__init__(f"{reason}" + (f" in model output: {snippet!r}" if text else ""))


__all__ = [
    "Action",
    "ActionError",
    "ActionParseError",
    "ACTION_KINDS",
    "POINTER_KINDS",
    "TERMINAL_KINDS",
    "DIRECTIONS",
    "BUTTONS",
    "REQUIRED_FIELDS",
    "Point",
]
