"""A seeded mutator of real model outputs, for fuzzing `parse_actions` (no dependency beyond the stdlib).

    for text in mutants(seed=0, count=2000):
        problem = check_output(text)      # None, or what went wrong

The seeds are the real-looking replies of tests/test_parsers.py (Qwen tool calls in the JSON and XML
layouts, UI-TARS actions, vlagent's own JSON, and the malformed ones its error cases hold). Each mutant
applies one to four edits drawn from a fixed generator: cut the reply short, delete, duplicate or swap a
span, splice two seeds together, put in a token a parser keys on (tags, brackets, quotes, UI-TARS markup),
swap a number for an awkward one (NaN, inf, 1e309, a 400-digit integer, -0, 1001), flip characters, nest
the reply in thousands of brackets, or repeat a token thousands of times. The same seed gives the same
mutants on every machine.

`check_output` runs every format (pixel formats with an image size too) and returns a description of the
first broken promise: an exception other than ActionParseError, an action with a point (or end) outside
[0, 1] or not finite, or an action that is not an `Action`.
"""

from __future__ import annotations

import math
import random
import re
from typing import Iterator

from vlagent.actions import Action, ActionParseError, parse_actions

FORMATS = ("auto", "qwen", "qwen-pixels", "uitars", "json")
PIXEL_SIZE = (1288, 728)

TOKENS = [
    "<tool_call>", "</tool_call>", "<think>", "</think>", "<|im_end|>", "<|endoftext|>",
    "<function=computer_use>", "<function=mobile_use>", "</function>", "<parameter=action>", "<parameter=coordinate>",
    "<parameter=text>", "</parameter>", "{", "}", "[", "]", '"', "'", ",", ":", "\\", "\\u0000", "\\ud800",
    '"coordinate": ', '"action": "left_click"', '"action": "type"', '"arguments": ', '"name": "computer_use"',
    '"kind": "click"', '"point": ', '"end": ', "```json\n", "```", "Action: ", "Thought: ", "click(", "drag(",
    "type(content='", "start_box='(", "end_box='(", "')", ")", "(", "<|box_start|>", "<|box_end|>", "<point>",
    "</point>", "<bbox>", "</bbox>", "\n", "\t", " ", "\x00", "\ud83d\ude00", "é", "\u202e", "null", "true",
    "**kw", "lambda: 0", "__import__('os')",
]
NUMBERS = [
    "NaN", "Infinity", "-Infinity", "1e309", "-1e309", "1e400", "1" + "0" * 400, "9" * 5000, "-0", "-0.0", "0", "1000", "1001",
    "1010", "1011", "-1", "-10", "999999999999999999999", "0.5", "5e-324", "1e-400", "0x10", "1_000", "+5", ".5",
    "5.", "١٢٣", "nan", "inf", "2e3", "1288", "728", "1289", "729",
]
_NUMBER = re.compile(r"-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?")


def seed_corpus() -> list[str]:
    """Every reply text of tests/test_parsers.py's examples and error cases, plus a few structured ones."""
    import test_parsers as tp

    texts: list[str] = []
    for table in (tp.QWEN_OK, tp.UITARS_OK, tp.JSON_OK, tp.ERRORS):
        for param in table:
            values = param.values if hasattr(param, "values") else param
            if values and isinstance(values[0], str):
                texts.append(values[0])
    texts += [
        tp.qcall({"action": "left_click_drag", "start_coordinate": [10, 20], "coordinate": [990, 980]}),
        tp.qcall({"action": "scroll", "coordinate": [500, 500], "pixels": -300}),
        tp.mcall({"action": "swipe", "coordinate": [500, 800], "coordinate2": [500, 200]}),
        "<tool_call>\n<function=computer_use>\n<parameter=action>\nleft_click\n</parameter>\n"
        "<parameter=coordinate>\n[412, 230]\n</parameter>\n</function>\n</tool_call>",
        "Thought: drag it\nAction: drag(start_box='(100,200)', end_box='(900,800)')",
        '[{"kind": "drag", "point": [0.1, 0.2], "end": [0.9, 0.8]}]',
    ]
    return [t for t in dict.fromkeys(texts)]


def _span(rng: random.Random, text: str) -> tuple[int, int]:
    if not text:
        return 0, 0
    i = rng.randrange(len(text) + 1)
    j = min(len(text), i + rng.choice((1, 2, 4, 8, 16, 64, 256)))
    return i, j


def mutate(rng: random.Random, text: str, corpus: list[str]) -> str:
    """One edit of `text`."""
    op = rng.randrange(12)
    i, j = _span(rng, text)
    if op == 0:  # cut short
        return text[: rng.randrange(len(text) + 1)]
    if op == 1:  # delete a span
        return text[:i] + text[j:]
    if op == 2:  # duplicate a span
        return text[:j] + text[i:j] + text[j:]
    if op == 3:  # put in a token
        return text[:i] + rng.choice(TOKENS) + text[i:]
    if op == 4:  # swap a number for an awkward one
        numbers = list(_NUMBER.finditer(text))
        if not numbers:
            return text[:i] + rng.choice(NUMBERS) + text[i:]
        m = rng.choice(numbers)
        return text[: m.start()] + rng.choice(NUMBERS) + text[m.end() :]
    if op == 5:  # splice with another seed
        other = rng.choice(corpus)
        k = rng.randrange(len(other) + 1)
        return text[:i] + other[k:] if rng.random() < 0.5 else other[:k] + text[i:]
    if op == 6:  # flip characters
        chars = list(text)
        for _ in range(rng.randint(1, 4)):
            if chars:
                chars[rng.randrange(len(chars))] = chr(rng.choice((rng.randrange(32, 127), rng.randrange(0, 0x3000))))
        return "".join(chars)
    if op == 7:  # swap two spans
        k, m = _span(rng, text)
        (a, b), (c, d) = sorted(((i, j), (k, m)))
        if b > c:
            return text
        return text[:a] + text[c:d] + text[b:c] + text[a:b] + text[d:]
    if op == 8:  # nest deeply
        depth = rng.choice((10, 100, 1000, 5000))
        opener, closer = rng.choice((("[", "]"), ("{\"a\": ", "}"), ("(", ")"), ("<think>", "</think>")))
        closers = closer * depth if rng.random() < 0.5 else ""
        return text[:i] + opener * depth + text[i:j] + closers + text[j:]
    if op == 9:  # repeat a token many times
        return text[:i] + rng.choice(TOKENS) * rng.choice((50, 500, 5000)) + text[i:]
    if op == 10:  # change case
        return text[:i] + text[i:j].swapcase() + text[j:]
    return text[:i] + "".join(rng.choice(TOKENS) for _ in range(rng.randint(2, 6))) + text[j:]  # replace a span


def mutants(seed: int = 0, count: int = 1000) -> Iterator[str]:
    """`count` mutants of the seed corpus, the same ones for the same `seed`."""
    rng = random.Random(seed)
    corpus = seed_corpus()
    for _ in range(count):
        text = rng.choice(corpus)
        for _ in range(rng.choice((1, 1, 2, 3, 4))):
            text = mutate(rng, text, corpus)
        yield text


def _point_problem(name: str, value: object) -> str | None:
    if value is None:
        return None
    try:
        x, y = value  # type: ignore[misc]
    except (TypeError, ValueError):
        return f"{name} {value!r} is not a pair"
    for v in (x, y):
        if not isinstance(v, float) or not math.isfinite(v) or not 0.0 <= v <= 1.0:
            return f"{name} {value!r} is outside [0, 1]"
    return None


def check_output(text: str) -> str | None:
    """None when every format either parses `text` into valid actions or raises ActionParseError."""
    for fmt in FORMATS:
        size = PIXEL_SIZE if fmt == "qwen-pixels" else None
        for image_size in ((size,) if fmt == "qwen-pixels" else (None, PIXEL_SIZE) if fmt == "uitars" else (None,)):
            try:
                actions = parse_actions(text, fmt=fmt, image_size=image_size)
            except ActionParseError:
                continue
            except BaseException as exc:  # noqa: BLE001 - what we are looking for
                if isinstance(exc, (KeyboardInterrupt, SystemExit)):
                    raise
                return f"fmt={fmt}: {type(exc).__name__}: {str(exc)[:200]}"
            if not isinstance(actions, list):
                return f"fmt={fmt}: returned {type(actions).__name__}, not a list"
            for action in actions:
                if not isinstance(action, Action):
                    return f"fmt={fmt}: returned {type(action).__name__}, not an Action"
                problem = _point_problem("point", action.point) or _point_problem("end", action.end)
                if problem:
                    return f"fmt={fmt}: {action.kind} {problem}"
    return None


def fuzz(seed: int, count: int) -> dict:
    """Run `count` mutants; the figures and the first few failures (text, problem)."""
    failures: list[tuple[str, str]] = []
    parsed = errors = 0
    for text in mutants(seed, count):
        problem = check_output(text)
        if problem:
            failures.append((text, problem))
        try:
            parse_actions(text)
            parsed += 1
        except ActionParseError:
            errors += 1
        except Exception:  # noqa: BLE001 - counted by check_output already
            pass
    return {"inputs": count, "calls": count * 6, "parsed_auto": parsed, "parse_errors_auto": errors,
            "failures": len(failures), "examples": failures[:5]}

