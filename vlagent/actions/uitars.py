"""UI-TARS action strings -> Actions.

UI-TARS answers `Thought: ...\nAction: click(start_box='(x1,y1)')`; several
calls in one `Action:` section are separated by blank lines (or newlines).
Arguments are Python string literals, so `type(content='it\\'s\\n')` is read
with Python's own literal rules (escaped quotes, \\n).

Point arguments (`start_box`, `end_box`, `point`, `start_point`, `end_point`)
may be written `(x,y)`, `<|box_start|>(x,y)<|box_end|>`, `<point>x y</point>`,
or a box `(x1,y1,x2,y2)` / `<bbox>x1 y1 x2 y2</bbox>` meaning its centre.
They are on the 0-1000 relative grid unless the caller gives image_size, then
pixels of that image (UI-TARS-1.5 emits pixels of its resized input).

Mapping: click/left_single -> click, left_double -> double_click,
left_triple -> triple_click, right_single -> right_click, hover -> move,
drag/select -> drag, long_press -> long_press, type(content) -> type,
hotkey(key='ctrl c')/press(key) -> key, scroll(direction) -> scroll,
wait() -> wait 5 s (UI-TARS's prompt: "Sleep for 5s"), finished(content) ->
done(success=True, text=content), press_home -> home, press_back -> back,
open_app(app_name) -> open_app. call_user() has no action: an error.
"""

from __future__ import annotations

import ast
import re
import warnings
from typing import Any

from vlagent.actions._common import key_names, make_action, normalize_point
from vlagent.actions.schema import DIRECTIONS, Action, ActionParseError, Point

WAIT_SECONDS = 5.0

_ACTION_MARK = re.compile(r"^[ \t]*Action[ \t]*:", re.MULTILINE)
_CALL_START = re.compile(r"([A-Za-z_]\w*)\s*\(")
_BOX_MARKUP = re.compile(r"<\|box_start\|>|<\|box_end\|>|</?point>|</?bbox>")
# Fallback for free text with unescaped quotes, e.g. type(content='it's').
_CONTENT_CALL = re.compile(r"(type|finished)\(content=(['\"])(.*)\2\)\s*", re.DOTALL)

_POINT_ARGS = ("start_box", "point", "start_point")
_END_ARGS = ("end_box", "end_point")

# name -> (kind, arguments it may take)
_CALLS: dict[str, tuple[str, frozenset[str]]] = {
    "click": ("click", frozenset(_POINT_ARGS)),
    "left_single": ("click", frozenset(_POINT_ARGS)),
    "left_double": ("double_click", frozenset(_POINT_ARGS)),
    "left_triple": ("triple_click", frozenset(_POINT_ARGS)),
    "right_single": ("right_click", frozenset(_POINT_ARGS)),
    "hover": ("move", frozenset(_POINT_ARGS)),
    "drag": ("drag", frozenset(_POINT_ARGS + _END_ARGS)),
    "select": ("drag", frozenset(_POINT_ARGS + _END_ARGS)),
    "long_press": ("long_press", frozenset(_POINT_ARGS)),
    "type": ("type", frozenset({"content"})),
    "hotkey": ("key", frozenset({"key", "hotkey"})),
    "press": ("key", frozenset({"key"})),
    "scroll": ("scroll", frozenset(_POINT_ARGS + ("direction",))),
    "wait": ("wait", frozenset()),
    "finished": ("done", frozenset({"content"})),
    "press_home": ("home", frozenset()),
    "press_back": ("back", frozenset()),
    "open_app": ("open_app", frozenset({"app_name"})),
}
CALL_NAMES = frozenset(_CALLS) | {"call_user"}


def looks_like_uitars(text: str) -> bool:
    """An `Action:` line followed by a call, or output that starts with a known UI-TARS call.

    (`Action: click the OK button` is prose, e.g. a Qwen action description.)"""
    mark = _ACTION_MARK.search(text)
    if mark is not None:
        return _CALL_START.match(text[mark.end() :].strip()) is not None
    match = _CALL_START.match(text.strip())
    return match is not None and match.group(1) in CALL_NAMES


def action_section(text: str) -> str:
    marks = list(_ACTION_MARK.finditer(text))
    if len(marks) > 1:
        raise ActionParseError(f"ambiguous output: {len(marks)} 'Action:' sections, expected one", text)
    return text[marks[0].end() :] if marks else text


def _scan_call(section: str, start: int) -> int:
    """Index just past the `)` closing the call that opens at `start` (quotes respected)."""
    depth, quote, i = 0, None, start
    while i < len(section):
        ch = section[i]
        if quote:
            if ch == "\\":
                i += 1
            elif ch == quote:
                quote = None
        elif ch in "'\"":
            quote = ch
        elif ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
            if depth == 0:
                return i + 1
        i += 1
    return -1


def split_calls(section: str) -> list[tuple[str, dict[str, Any], str]]:
    """(name, keyword arguments, call text) for each call in an Action section."""
    calls = []
    pos = 0
    while True:
        while pos < len(section) and section[pos].isspace():
            pos += 1
        if pos >= len(section):
            return calls
        match = _CALL_START.match(section, pos)
        if match is None:
            raise ActionParseError(f"expected a call like click(...) but found {section[pos:pos + 40]!r}", section)
        end = _scan_call(section, match.end() - 1)
        call_text = section[pos:end] if end != -1 else section[pos:]
        try:
            if end == -1:
                raise SyntaxError("unclosed call")
            calls.append((match.group(1), _call_arguments(call_text), call_text))
        except (SyntaxError, ValueError, RecursionError, MemoryError) as exc:  # the last two: nesting too deep
            fallback = _CONTENT_CALL.fullmatch(section, pos)
            if fallback is None:
                problem = "truncated" if end == -1 else "malformed"
                raise ActionParseError(f"{problem} call {call_text[:60]!r}: {exc}", call_text) from None
            content = _unescape(fallback.group(3))
            return calls + [(fallback.group(1), {"content": content}, section[pos:])]
        pos = end


def _call_arguments(call_text: str) -> dict[str, Any]:
    with warnings.catch_warnings():  # model text, not code: "\{" must not print a SyntaxWarning
        warnings.simplefilter("ignore")
        return _read_call_arguments(call_text)


def _read_call_arguments(call_text: str) -> dict[str, Any]:
    tree = ast.parse(call_text.strip(), mode="eval").body
    if not isinstance(tree, ast.Call) or not isinstance(tree.func, ast.Name):
        raise ValueError("not a plain function call")
    if tree.args:
        raise ValueError("arguments must be given by name, e.g. click(start_box='(x,y)')")
    arguments = {}
    for kw in tree.keywords:
        if kw.arg is None:
            raise ValueError("**arguments are not allowed")
        if kw.arg in arguments:
            raise ValueError(f"argument {kw.arg!r} given twice")
        arguments[kw.arg] = ast.literal_eval(kw.value)
    return arguments


def _unescape(raw: str) -> str:
    return re.sub(r"\\(.)", lambda m: {"n": "\n", "t": "\t"}.get(m.group(1), m.group(1)), raw)


def _point(name: str, value: Any, scale: tuple[float, float], source: str) -> Point:
    """A point argument (point, box or bbox, any markup) -> normalized centre."""
    if isinstance(value, str):
        inner = _BOX_MARKUP.sub("", value).strip().strip("()[]").strip()
        parts = [p for p in re.split(r"[,\s]+", inner) if p]
        try:
            numbers = [float(p) for p in parts]
        except ValueError:
            raise ActionParseError(f"{name} {value!r} is not a point or box of numbers", source) from None
    elif isinstance(value, (tuple, list)):
        numbers = list(value)
    else:
        raise ActionParseError(f"{name} must be a point string like '(x,y)', got {value!r}", source)
    if len(numbers) == 2:
        x, y = numbers
    elif len(numbers) == 4:
        normalize_point(name, numbers[0], numbers[1], scale, source)  # each corner must be sane too
        normalize_point(name, numbers[2], numbers[3], scale, source)
        x, y = (numbers[0] + numbers[2]) / 2, (numbers[1] + numbers[3]) / 2
    else:
        raise ActionParseError(f"{name} {value!r} must hold 2 numbers (a point) or 4 (a box)", source)
    return normalize_point(name, x, y, scale, source)


def _one_of(args: dict[str, Any], names: tuple[str, ...], call: str, source: str) -> tuple[str, Any] | None:
    given = [n for n in names if args.get(n) is not None]
    if len(given) > 1:
        raise ActionParseError(f"{call} gives both {given[0]!r} and {given[1]!r}", source)
    return (given[0], args[given[0]]) if given else None


def _string(args: dict[str, Any], name: str, call: str, source: str, required: bool = True) -> str | None:
    value = args.get(name)
    if value is None:
        if required:
            raise ActionParseError(f"{call} needs {name}=", source)
        return None
    if not isinstance(value, str):
        raise ActionParseError(f"{call}: {name} must be a string, got {value!r}", source)
    return value


def call_to_action(name: str, args: dict[str, Any], source: str, scale: tuple[float, float]) -> Action:
    if name == "call_user":
        raise ActionParseError("call_user() asks for a human; vlagent has no action for that", source)
    entry = _CALLS.get(name)
    if entry is None:
        raise ActionParseError(f"unknown UI-TARS action {name!r}; expected one of {sorted(CALL_NAMES)}", source)
    kind, allowed = entry
    extra = sorted(set(args) - allowed)
    if extra:
        raise ActionParseError(f"{name}() does not take {', '.join(map(repr, extra))}", source)
    fields: dict[str, Any] = {"kind": kind}
    start = _one_of(args, _POINT_ARGS, name, source)
    if start is not None:
        fields["point"] = _point(start[0], start[1], scale, source)
    elif kind not in ("scroll",) and _POINT_ARGS[0] in allowed:
        raise ActionParseError(f"{name}() needs a point (start_box= or point=)", source)
    if kind == "drag":
        end = _one_of(args, _END_ARGS, name, source)
        if end is None:
            raise ActionParseError(f"{name}() needs an end point (end_box= or end_point=)", source)
        fields["end"] = _point(end[0], end[1], scale, source)
    elif kind == "type":
        fields["text"] = _string(args, "content", name, source)
    elif kind == "key":
        spec = _one_of(args, ("key", "hotkey"), name, source)
        if spec is None or not isinstance(spec[1], str) or not spec[1].strip():
            raise ActionParseError(f"{name}() needs key='...' naming the keys, e.g. key='ctrl c'", source)
        fields["keys"] = key_names(spec[1].split())
    elif kind == "scroll":
        direction = _string(args, "direction", name, source)
        if direction.strip().lower() not in DIRECTIONS:
            raise ActionParseError(f"scroll direction must be one of {sorted(DIRECTIONS)}, got {direction!r}", source)
        fields["direction"] = direction.strip().lower()
    elif kind == "wait":
        fields["seconds"] = WAIT_SECONDS
    elif kind == "done":
        fields["success"] = True
        fields["text"] = _string(args, "content", name, source, required=False) or None
    elif kind == "open_app":
        fields["text"] = _string(args, "app_name", name, source)
    return make_action(source, **fields)


def parse_uitars(text: str, scale: tuple[float, float]) -> list[Action]:
    """Actions of a UI-TARS answer (thinking already removed)."""
    calls = split_calls(action_section(text))
    if not calls:
        raise ActionParseError("the Action: section is empty", text)
    return [call_to_action(name, args, source, scale) for name, args, source in calls]
