"""Pieces every model-output parser shares: thinking removal, coordinate scaling, Action building.

Coordinate rule (one place, used by every format): a model coordinate `v` on an
axis of size `size` (1000 for relative formats, the image width/height for pixel
formats) becomes `v / size`. Up to 1% beyond an edge (`-0.01 <= v/size <= 1.01`)
is rounding noise and is clamped into [0, 1]; farther out is an error, never a
guess.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

from vlagent.actions.schema import Action, ActionError, ActionParseError, Point

EDGE_TOLERANCE = 0.01

# End-of-turn tokens a server may leave in decoded text.
_END_OF_TURN_TOKENS = ("<|im_end|>", "<|endoftext|>")


def strip_thinking(text: str) -> str:
    """Drop reasoning the model did not mean as output.

    Removes `<think>...</think>` blocks, everything before a `</think>` whose
    opening tag is missing (the chat template put `<think>` in the prompt), and
    trailing end-of-turn tokens (`<|im_end|>`, `<|endoftext|>`).
    An unclosed `<think>` means the output ended while thinking: an error.
    """
    if "</think>" in text:
        first_close = text.index("</think>")
        first_open = text.find("<think>")
        if first_open == -1 or first_open > first_close:
            text = text[first_close + len("</think>") :]
    text = _strip_end_of_turn(_drop_think_blocks(text))
    if "<think>" in text:
        raise ActionParseError("output ended inside a <think> block (no closing </think>), so it holds no action", text)
    return text


def _strip_end_of_turn(text: str) -> str:
    """`text` without the end-of-turn tokens (and the whitespace around them) it ends with, if any.

    By index from the end, in linear time: the regex this replaces, (\\s*(<|im_end|>|<|endoftext|>))+\\s*$,
    backtracked from every token of a run not at the end (5000 of them took seconds)."""
    end, found = len(text), False
    while True:
        stop = end
        while stop > 0 and text[stop - 1].isspace():
            stop -= 1
        token = next((t for t in _END_OF_TURN_TOKENS if text.endswith(t, 0, stop)), None)
        if token is None:
            return text[:stop] if found else text
        end, found = stop - len(token), True


def _drop_think_blocks(text: str) -> str:
    """`re.sub(r"<think>.*?</think>", "", text, flags=re.DOTALL)` in linear time: that regex rescans
    to the end of the text from every `<think>` that is never closed (quadratic: a reply of 40 KB of
    `<think>` took most of a second, one of megabytes hours)."""
    pieces, pos = [], 0
    while True:
        start = text.find("<think>", pos)
        close = text.find("</think>", start + len("<think>")) if start != -1 else -1
        if close == -1:  # no block left: an unclosed <think> stays (the caller says so)
            pieces.append(text[pos:])
            return "".join(pieces)
        pieces.append(text[pos:start])
        pos = close + len("</think>")


def check_number(name: str, value: Any, source: str) -> float:
    """`value` as a finite float, or an error naming the field."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ActionParseError(f"{name} must be a number, got {value!r}", source)
    try:
        number = float(value)
    except OverflowError:  # an integer of hundreds of digits: no float holds it
        digits = int(value.bit_length() * math.log10(2)) + 1  # (str() of it may itself be refused)
        raise ActionParseError(f"{name} must be finite, got an integer of about {digits} digits", source) from None
    if not math.isfinite(number):
        raise ActionParseError(f"{name} must be finite, got {value!r}", source)
    return number


def normalize_point(name: str, x: Any, y: Any, scale: tuple[float, float], source: str) -> Point:
    """Model coordinate (x, y) on a `scale` = (width, height) grid -> point in [0, 1]."""
    x = check_number(name, x, source)
    y = check_number(name, y, source)
    nx, ny = x / scale[0], y / scale[1]
    lo, hi = -EDGE_TOLERANCE, 1.0 + EDGE_TOLERANCE
    if not (lo <= nx <= hi and lo <= ny <= hi):
        grid = "points are normalized to [0, 1]" if scale == (1.0, 1.0) else f"the grid is {scale[0]:g}x{scale[1]:g}"
        raise ActionParseError(
            f"{name} ({x:g}, {y:g}) is off the screen: {grid} and at most {EDGE_TOLERANCE:.0%} beyond an edge is accepted",
            source,
        )
    return (min(max(nx, 0.0), 1.0), min(max(ny, 0.0), 1.0))


def key_names(tokens: list[str]) -> tuple[str, ...]:
    """Key tokens with combos split: ['ctrl+c'] -> ('ctrl', 'c'); a lone '+' stays a key."""
    keys: list[str] = []
    for token in (t.strip() for t in tokens):
        keys.extend([k for k in token.split("+") if k] if len(token) > 1 else [token])
    return tuple(keys)


def make_action(source: str, context: str = "", **fields: Any) -> Action:
    """Build an Action; an invalid one becomes an ActionParseError with the reason."""
    try:
        return Action(**fields)
    except ActionError as exc:
        raise ActionParseError(f"{context}: {exc}" if context else str(exc), source) from None


def check_image_size(image_size: Any) -> tuple[int, int]:
    """A caller's `image_size` as (w, h) positive ints (a programming error otherwise)."""
    try:
        w, h = image_size
    except (TypeError, ValueError):
        raise ValueError(f"image_size must be (width, height), got {image_size!r}") from None
    for v in (w, h):
        if isinstance(v, bool) or not isinstance(v, int) or v <= 0:
            raise ValueError(f"image_size must be two positive ints, got {image_size!r}")
    return (w, h)


_FENCE = re.compile(r"```[ \t]*(?:json)?[ \t]*\n?(.*?)```", re.DOTALL | re.IGNORECASE)


def json_payload(text: str) -> str | None:
    """The JSON text of an output: the inside of its one ```json fence, or the whole
    stripped output when that starts with `{` or `[`; None when there is neither."""
    fences = _FENCE.findall(text)
    if len(fences) > 1:
        raise ActionParseError(f"ambiguous output: {len(fences)} fenced code blocks, expected one", text)
    if fences:
        return fences[0].strip()
    if text.count("```") == 1:
        raise ActionParseError("truncated output: a ``` code block is opened but never closed", text)
    stripped = text.strip()
    return stripped if stripped[:1] in ("{", "[") else None


def load_json(payload: str, what: str, source: str) -> Any:
    """json.loads with an error that says the JSON is truncated or malformed."""
    try:
        return json.loads(payload)
    except json.JSONDecodeError as exc:
        problem = "truncated" if exc.pos >= len(payload.rstrip()) else "malformed"
        raise ActionParseError(f"{problem} JSON in {what}: {exc.msg} at char {exc.pos}", source) from None
    except RecursionError:  # "[[[[..." thousands deep: json's decoder recurses once per level
        raise ActionParseError(f"JSON in {what} is nested too deeply to be an action", source) from None
    except ValueError as exc:  # e.g. an integer of more than 4300 digits (Python's int-from-string limit)
        raise ActionParseError(f"malformed JSON in {what}: {exc}", source) from None
