"""`parse_actions`: model output text -> validated `Action` list.

Formats (`fmt`):
- "qwen": Qwen3-VL / Qwen3.5 computer_use or mobile_use tool calls, points on
  the 0-1000 relative grid (divided by 1000). image_size is ignored here: the
  grid is 0-1000 whatever the screenshot size. See vlagent.actions.qwen.
- "qwen-pixels": the same tool calls in absolute pixels of the resized model
  input (Qwen2.5-VL); needs image_size=(w, h) of that image.
- "uitars": UI-TARS `Action: click(start_box='(x,y)')` strings; 0-1000
  relative, or pixels of image_size when it is given. See vlagent.actions.uitars.
- "json": vlagent's own `Action.to_dict()` JSON (one object or a list).
- "auto": <tool_call> tags -> qwen (0-1000); an `Action:` line or a bare known
  UI-TARS call -> uitars; JSON objects with "kind" -> json; a bare JSON tool
  call object ({"name": "computer_use", ...}) -> qwen.

Every format first drops <think>...</think> reasoning (also when the opening
<think> was part of the prompt). Output that cannot be read without guessing
raises `ActionParseError(reason, text)`; it never becomes a guessed click.
Caller mistakes (unknown fmt, bad image_size) raise ValueError.
"""

from __future__ import annotations

from vlagent.actions._common import check_image_size, json_payload, load_json, strip_thinking
from vlagent.actions.json_actions import looks_like_action_json, parse_action_json
from vlagent.actions.qwen import parse_qwen
from vlagent.actions.schema import Action, ActionParseError
from vlagent.actions.uitars import looks_like_uitars, parse_uitars

FORMATS = ("auto", "qwen", "qwen-pixels", "uitars", "json")
RELATIVE_GRID = (1000.0, 1000.0)


def parse_actions(text: str, *, fmt: str = "auto", image_size: tuple[int, int] | None = None) -> list[Action]:
    """Parse one model output into actions with points normalized to [0, 1] of the screenshot."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown fmt {fmt!r}; expected one of {FORMATS}")
    if not isinstance(text, str):
        raise TypeError(f"model output must be a str, got {type(text).__name__}")
    if fmt == "qwen-pixels" and image_size is None:
        raise ValueError("fmt='qwen-pixels' needs image_size=(width, height) of the resized model input")
    pixels = check_image_size(image_size) if image_size is not None else None
    if not text.strip():
        raise ActionParseError("empty output", text)
    body = strip_thinking(text)
    if not body.strip():
        raise ActionParseError("no action found: the output holds only thinking", text)

    if fmt == "auto":
        fmt = _detect(body)
    if fmt == "qwen":
        return parse_qwen(body, RELATIVE_GRID)
    if fmt == "qwen-pixels":
        return parse_qwen(body, pixels)
    if fmt == "uitars":
        return parse_uitars(body, pixels or RELATIVE_GRID)
    return parse_action_json(body)


def _detect(body: str) -> str:
    if "<tool_call>" in body:
        return "qwen"
    if looks_like_uitars(body):
        return "uitars"
    payload = json_payload(body)
    if payload is not None:
        loaded = load_json(payload, "the output", body)
        if looks_like_action_json(loaded):
            return "json"
        items = loaded if isinstance(loaded, list) else [loaded]
        if items and all(isinstance(i, dict) and "name" in i and "arguments" in i for i in items):
            return "qwen"
        raise ActionParseError('JSON output is neither vlagent actions (objects with "kind") nor tool calls', body)
    raise ActionParseError("no action found (no <tool_call>, no UI-TARS Action:, no action JSON)", body)
