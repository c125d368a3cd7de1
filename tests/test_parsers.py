"""parse_actions on real-looking outputs of each model format, exact results or exact errors."""

from __future__ import annotations

import json

import pytest

from vlagent.actions import ACTION_KINDS, Action, ActionParseError, parse_actions


def A(kind: str, **fields) -> Action:
    return Action(kind=kind, **fields)


def qcall(arguments: dict, name: str = "computer_use") -> str:
    return "<tool_call>\n" + json.dumps({"name": name, "arguments": arguments}) + "\n</tool_call>"


def mcall(arguments: dict) -> str:
    return qcall(arguments, name="mobile_use")


# ---------------------------------------------------------------- Qwen (0-1000)

QWEN_OK = [
    pytest.param(
        "<think>\nThe Save button is at the top left.\n</think>\n\nAction: click Save.\n"
        + qcall({"action": "left_click", "coordinate": [500, 300]}),
        [A("click", point=(0.5, 0.3))],
        id="think-block-and-prose",
    ),
    pytest.param(
        "The user wants the search box. I'll click it and type.\n</think>\n\n"
        + qcall({"action": "left_click", "coordinate": [120, 40]})
        + "\n"
        + qcall({"action": "type", "text": "weather in Paris\n"}),
        [A("click", point=(0.12, 0.04)), A("type", text="weather in Paris\n")],
        id="think-opened-in-prompt-two-calls",
    ),
    pytest.param(
        "<think>maybe <tool_call>\n"
        + json.dumps({"name": "computer_use", "arguments": {"action": "left_click", "coordinate": [1, 1]}})
        + "\n</tool_call> no, copy instead</think>\n"
        + qcall({"action": "key", "keys": ["ctrl", "c"]})
        + qcall({"action": "key", "keys": ["Ctrl+Shift+T"]})
        + qcall({"action": "key", "keys": ["+"]}),
        [A("key", keys=("ctrl", "c")), A("key", keys=("ctrl", "shift", "t")), A("key", keys=("+",))],
        id="calls-inside-thinking-ignored",
    ),
    pytest.param(
        "<tool_call>\n<function=computer_use>\n<parameter=action>\nleft_click\n</parameter>\n"
        "<parameter=coordinate>\n[250, 750]\n</parameter>\n</function>\n</tool_call>",
        [A("click", point=(0.25, 0.75))],
        id="qwen3.5-xml-call",
    ),
    pytest.param(
        "<think>\n\n</think>\n\n<tool_call>\n<function=computer_use>\n<parameter=action>\ntype\n</parameter>\n"
        "<parameter=text>\n  two\nlines \n</parameter>\n</function>\n</tool_call>\n"
        "<tool_call>\n<function=computer_use>\n<parameter=action>\nkey\n</parameter>\n"
        '<parameter=keys>\n["enter"]\n</parameter>\n</function>\n</tool_call>',
        [A("type", text="  two\nlines "), A("key", keys=("enter",))],
        id="qwen3.5-xml-text-keeps-inner-whitespace",
    ),
    pytest.param(
        qcall({"action": "mouse_move", "coordinate": [100, 200]})
        + qcall({"action": "left_click_drag", "coordinate": [400, 200]}),
        [A("move", point=(0.1, 0.2)), A("drag", point=(0.1, 0.2), end=(0.4, 0.2))],
        id="drag-from-pointer-after-move",
    ),
    pytest.param(
        qcall({"action": "left_click_drag", "coordinate": [100, 200], "coordinate2": [900, 800]}),
        [A("drag", point=(0.1, 0.2), end=(0.9, 0.8))],
        id="drag-with-coordinate2",
    ),
    pytest.param(
        qcall({"action": "mouse_move", "coordinate": [300, 600]}) + qcall({"action": "double_click"}),
        [A("move", point=(0.3, 0.6)), A("double_click", point=(0.3, 0.6))],
        id="click-at-pointer-after-move",
    ),
    pytest.param(
        qcall({"action": "right_click", "coordinate": [10, 20]})
        + qcall({"action": "middle_click", "coordinate": [30, 40]})
        + qcall({"action": "triple_click", "coordinate": [50, 60]}),
        [A("right_click", point=(0.01, 0.02)), A("middle_click", point=(0.03, 0.04)), A("triple_click", point=(0.05, 0.06))],
        id="other-clicks",
    ),
    pytest.param(
        qcall({"action": "scroll", "pixels": 300, "coordinate": [500, 500]})
        + qcall({"action": "scroll", "pixels": -5})
        + qcall({"action": "hscroll", "pixels": 200})
        + qcall({"action": "hscroll", "pixels": -2.5}),
        [
            A("scroll", point=(0.5, 0.5), direction="up", amount=300),
            A("scroll", direction="down", amount=5),
            A("scroll", direction="right", amount=200),
            A("scroll", direction="left", amount=2.5),
        ],
        id="scroll-signs",
    ),
    pytest.param(
        qcall({"action": "wait", "time": 2}) + qcall({"action": "wait"}),
        [A("wait", seconds=2), A("wait")],
        id="wait",
    ),
    pytest.param(qcall({"action": "terminate", "status": "success"}), [A("done", success=True)], id="terminate-success"),
    pytest.param(qcall({"action": "terminate", "status": "failure"}), [A("done", success=False)], id="terminate-failure"),
    pytest.param(qcall({"action": "answer", "text": "42 files"}), [A("answer", text="42 files")], id="answer"),
    pytest.param(
        qcall({"action": "left_click", "coordinate": [1005, -5], "text": None}),
        [A("click", point=(1.0, 0.0))],
        id="within-1pct-clamped-null-arg-ignored",
    ),
    pytest.param(
        "<tool_call>\n" + json.dumps({"name": "computer_use", "arguments": {"action": "left_click", "coordinate": [500, 500]}}),
        [A("click", point=(0.5, 0.5))],
        id="last-close-tag-cut-by-stop-string",
    ),
    pytest.param(
        json.dumps({"name": "computer_use", "arguments": json.dumps({"action": "left_click", "coordinate": [700, 100]})}),
        [A("click", point=(0.7, 0.1))],
        id="bare-call-arguments-as-string",
    ),
    # mobile_use
    pytest.param(
        mcall({"action": "click", "coordinate": [540, 1000]})
        + mcall({"action": "long_press", "coordinate": [100, 100], "time": 1.5})
        + mcall({"action": "swipe", "coordinate": [500, 800], "coordinate2": [500, 200]}),
        [
            A("click", point=(0.54, 1.0)),
            A("long_press", point=(0.1, 0.1), seconds=1.5),
            A("swipe", point=(0.5, 0.8), end=(0.5, 0.2)),
        ],
        id="mobile-pointer",
    ),
    pytest.param(
        mcall({"action": "type", "text": "hello"})
        + mcall({"action": "key", "text": "volume_up"})
        + mcall({"action": "system_button", "button": "Back"})
        + mcall({"action": "system_button", "button": "Home"})
        + mcall({"action": "system_button", "button": "Menu"})
        + mcall({"action": "system_button", "button": "Enter"}),
        [A("type", text="hello"), A("key", keys=("volume_up",)), A("back"), A("home"), A("key", keys=("menu",)), A("key", keys=("enter",))],
        id="mobile-keys-and-buttons",
    ),
    pytest.param(
        mcall({"action": "open", "text": "Settings"})
        + mcall({"action": "wait", "time": 3})
        + mcall({"action": "answer", "text": "Wi-Fi is off"})
        + mcall({"action": "terminate", "status": "success"}),
        [A("open_app", text="Settings"), A("wait", seconds=3), A("answer", text="Wi-Fi is off"), A("done", success=True)],
        id="mobile-open-wait-answer-terminate",
    ),
]


@pytest.mark.parametrize("text, expected", QWEN_OK)
def test_qwen_relative(text, expected):
    assert parse_actions(text, fmt="qwen") == expected
    assert parse_actions(text) == expected  # auto detects it


def test_qwen_pixels_use_image_size():
    text = qcall({"action": "left_click", "coordinate": [640, 180]})
    assert parse_actions(text, fmt="qwen-pixels", image_size=(1280, 720)) == [A("click", point=(0.5, 0.25))]


def test_qwen_relative_ignores_image_size():
    text = qcall({"action": "left_click", "coordinate": [640, 180]})
    assert parse_actions(text, fmt="qwen", image_size=(1280, 720)) == [A("click", point=(0.64, 0.18))]


def test_qwen_pixels_off_image():
    text = qcall({"action": "left_click", "coordinate": [1300, 100]})
    with pytest.raises(ActionParseError, match="off the screen"):
        parse_actions(text, fmt="qwen-pixels", image_size=(1280, 720))


# ---------------------------------------------------------------- UI-TARS

UITARS_OK = [
    pytest.param(
        "Thought: The Submit button is at the bottom.\nAction: click(start_box='<|box_start|>(500,900)<|box_end|>')",
        [A("click", point=(0.5, 0.9))],
        id="box-tokens",
    ),
    pytest.param("Action: click(start_box='(100,200)')", [A("click", point=(0.1, 0.2))], id="plain-point"),
    pytest.param("Thought: x\nAction: click(point='<point>250 750</point>')", [A("click", point=(0.25, 0.75))], id="point-tag"),
    pytest.param("Action: click(start_box='(100,200,300,400)')", [A("click", point=(0.2, 0.3))], id="box-centre"),
    pytest.param("Action: left_double(start_box='<bbox>100 100 300 500</bbox>')", [A("double_click", point=(0.2, 0.3))], id="bbox-centre"),
    pytest.param("Action: right_single(start_box='(10,990)')", [A("right_click", point=(0.01, 0.99))], id="right-single"),
    pytest.param(
        "Thought: Move the file.\nAction: drag(start_box='(100,200)', end_box='(700,200)')",
        [A("drag", point=(0.1, 0.2), end=(0.7, 0.2))],
        id="drag-boxes",
    ),
    pytest.param(
        "Action: drag(start_point='<point>100 200</point>', end_point='<point>700 800</point>')",
        [A("drag", point=(0.1, 0.2), end=(0.7, 0.8))],
        id="drag-points",
    ),
    pytest.param(
        "Thought: Type the greeting.\nAction: type(content='She said \\\"it\\'s fine\\\"\\n')",
        [A("type", text="She said \"it's fine\"\n")],
        id="type-escapes",
    ),
    pytest.param("Action: type(content='it's done')", [A("type", text="it's done")], id="type-unescaped-quote"),
    pytest.param("Action: hotkey(key='ctrl c')", [A("key", keys=("ctrl", "c"))], id="hotkey"),
    pytest.param("Action: hotkey(key='ctrl+shift+t')", [A("key", keys=("ctrl", "shift", "t"))], id="hotkey-plus"),
    pytest.param(
        "Action: scroll(point='<point>500 500</point>', direction='down')",
        [A("scroll", point=(0.5, 0.5), direction="down")],
        id="scroll-at-point",
    ),
    pytest.param("Action: scroll(direction='left')", [A("scroll", direction="left")], id="scroll-no-point"),
    pytest.param("Thought: loading\nAction: wait()", [A("wait", seconds=5)], id="wait"),
    pytest.param(
        "Thought: All set.\nAction: finished(content='The file is saved.')",
        [A("done", success=True, text="The file is saved.")],
        id="finished",
    ),
    pytest.param("Action: finished()", [A("done", success=True)], id="finished-empty"),
    pytest.param("Action: press_home()", [A("home")], id="press-home"),
    pytest.param("Action: press_back()", [A("back")], id="press-back"),
    pytest.param("Action: long_press(start_box='(300,400)')", [A("long_press", point=(0.3, 0.4))], id="long-press"),
    pytest.param("Action: open_app(app_name='Clock')", [A("open_app", text="Clock")], id="open-app"),
    pytest.param(
        "Thought: Click the field, then type.\nAction: click(start_box='(100,200)')\n\ntype(content='abc')\n\nhotkey(key='enter')",
        [A("click", point=(0.1, 0.2)), A("type", text="abc"), A("key", keys=("enter",))],
        id="several-actions",
    ),
    pytest.param("click(start_box='(1000,0)')", [A("click", point=(1.0, 0.0))], id="bare-call-edge"),
    pytest.param(
        "Thought: go back\nAction: press_back()<|im_end|>\n<|endoftext|>", [A("back")], id="end-of-turn-tokens"
    ),
    pytest.param(
        "<think>which one?</think>\nThought: the left one\nAction: click(start_box='(1008,500)')",
        [A("click", point=(1.0, 0.5))],
        id="think-and-within-tolerance",
    ),
]


@pytest.mark.parametrize("text, expected", UITARS_OK)
def test_uitars_relative(text, expected):
    assert parse_actions(text, fmt="uitars") == expected
    assert parse_actions(text) == expected


def test_uitars_pixels_with_image_size():
    text = "Thought: centre\nAction: click(start_box='(960,270)')\n\ndrag(start_box='(0,0)', end_box='(1920,1080)')"
    assert parse_actions(text, fmt="uitars", image_size=(1920, 1080)) == [
        A("click", point=(0.5, 0.25)),
        A("drag", point=(0.0, 0.0), end=(1.0, 1.0)),
    ]
    assert parse_actions(text, image_size=(1920, 1080)) == parse_actions(text, fmt="uitars", image_size=(1920, 1080))


# ---------------------------------------------------------------- our JSON

JSON_OK = [
    pytest.param('{"kind": "click", "point": [0.25, 0.5]}', [A("click", point=(0.25, 0.5))], id="object"),
    pytest.param(
        '[{"kind": "click", "point": [0.1, 0.2]}, {"kind": "type", "text": "hi"}, {"kind": "key", "keys": ["Enter"]}]',
        [A("click", point=(0.1, 0.2)), A("type", text="hi"), A("key", keys=("enter",))],
        id="list",
    ),
    pytest.param(
        'Clicking OK.\n```json\n{"kind": "scroll", "direction": "down", "amount": 3, "point": [1.004, 0.5]}\n```\nDone.',
        [A("scroll", direction="down", amount=3, point=(1.0, 0.5))],
        id="fenced-with-prose-clamped",
    ),
]


@pytest.mark.parametrize("text, expected", JSON_OK)
def test_own_json(text, expected):
    assert parse_actions(text, fmt="json") == expected
    assert parse_actions(text) == expected


# ---------------------------------------------------------------- errors

ERRORS = [
    # (text, fmt, words the reason must contain)
    pytest.param("", "auto", "empty output", id="empty"),
    pytest.param("  \n ", "qwen", "empty output", id="blank"),
    pytest.param("<think>I need to find the button, it", "auto", "inside a <think>", id="cut-while-thinking"),
    pytest.param("<think>nothing to do</think>\n", "auto", "only thinking", id="only-thinking"),
    pytest.param("I think the button is on the left.", "auto", "no action found", id="prose"),
    pytest.param("I think the button is on the left.", "qwen", "no <tool_call>", id="prose-qwen"),
    pytest.param(
        '<tool_call>\n{"name": "computer_use", "arguments": {"action": "left_click", "coordinate": [500,',
        "auto",
        "truncated JSON",
        id="truncated-json",
    ),
    pytest.param(
        '<tool_call>\n{"name": "computer_use", "arguments": {"action": "left_click" "coordinate": [5, 5]}}\n</tool_call>',
        "auto",
        "malformed JSON",
        id="malformed-json",
    ),
    pytest.param(
        "<tool_call>\n<function=computer_use>\n<parameter=action>\nleft_click\n</parameter>\n<parameter=coordinate>\n[500",
        "auto",
        "truncated or malformed <function",
        id="truncated-xml",
    ),
    pytest.param(
        '<tool_call>{"name": "computer_use", "arguments": {"action": "left_click", "coordinate": [5, 5]}}'
        + qcall({"action": "wait"}),
        "auto",
        "not closed",
        id="unclosed-before-next",
    ),
    pytest.param(qcall({"action": "teleport", "coordinate": [5, 5]}), "auto", "unknown computer_use action 'teleport'", id="unknown-action"),
    pytest.param(mcall({"action": "left_click", "coordinate": [5, 5]}), "auto", "unknown mobile_use action 'left_click'", id="wrong-tool-action"),
    pytest.param(qcall({"action": "left_click"}, name="browser_use"), "auto", "unknown tool 'browser_use'", id="unknown-tool"),
    pytest.param(qcall({"coordinate": [5, 5]}), "auto", "needs a string 'action'", id="no-action"),
    pytest.param(qcall({"action": "left_click"}), "auto", "missing 'coordinate'", id="missing-coordinate"),
    pytest.param(mcall({"action": "swipe", "coordinate": [5, 5]}), "auto", "missing 'coordinate2'", id="missing-coordinate2"),
    pytest.param(
        mcall({"action": "click", "coordinate": [5, 5]}) + mcall({"action": "click"}),
        "auto",
        "mobile_use click: missing 'coordinate'",
        id="mobile-click-has-no-pointer",
    ),
    pytest.param(qcall({"action": "left_click_drag", "coordinate": [5, 5]}), "auto", "pointer position", id="drag-from-unknown"),
    pytest.param(qcall({"action": "left_click", "coordinate": "[500, 300]"}), "auto", "'coordinate' must be a list [x, y]", id="coordinate-string"),
    pytest.param(qcall({"action": "left_click", "coordinate": [1, 2, 3]}), "auto", "'coordinate' must be a list [x, y]", id="coordinate-3"),
    pytest.param(qcall({"action": "left_click", "coordinate": ["500", 300]}), "auto", "coordinate must be a number", id="coordinate-str-items"),
    pytest.param(qcall({"action": "left_click", "coordinate": [True, 300]}), "auto", "coordinate must be a number", id="coordinate-bool"),
    pytest.param(qcall({"action": "type", "text": 12}), "auto", "'text' must be a string", id="text-number"),
    pytest.param(qcall({"action": "key", "keys": "ctrl+c"}), "auto", "'keys' must be a non-empty list", id="keys-string"),
    pytest.param(qcall({"action": "scroll", "pixels": "300"}), "auto", "pixels must be a number", id="pixels-string"),
    pytest.param(qcall({"action": "scroll", "pixels": 0}), "auto", "'pixels' is 0", id="pixels-zero"),
    pytest.param(qcall({"action": "left_click", "coordinate": [1020, 500]}), "auto", "off the screen", id="off-right"),
    pytest.param(qcall({"action": "left_click", "coordinate": [500, -11]}), "auto", "off the screen", id="off-top"),
    pytest.param(
        '<tool_call>\n{"name": "computer_use", "arguments": {"action": "left_click", "coordinate": [NaN, 300]}}\n</tool_call>',
        "auto",
        "must be finite",
        id="nan",
    ),
    pytest.param(
        '<tool_call>\n{"name": "computer_use", "arguments": {"action": "wait", "time": Infinity}}\n</tool_call>',
        "auto",
        "must be finite",
        id="inf",
    ),
    pytest.param(qcall({"action": "terminate", "status": "done"}), "auto", "'status' must be 'success' or 'failure'", id="bad-status"),
    pytest.param(qcall({"action": "terminate"}), "auto", "missing 'status'", id="no-status"),
    pytest.param(mcall({"action": "system_button", "button": "Power"}), "auto", "'button' must be one of", id="bad-button"),
    pytest.param(qcall({"action": "left_click", "coordinate": [5, 5], "text": "x"}), "auto", "does not take 'text'", id="extra-arg"),
    pytest.param(qcall({"action": "type", "text": ""}), "auto", "computer_use type: type needs text", id="action-error-surfaces"),
    pytest.param(qcall({"action": "wait", "time": -1}), "auto", "seconds must be a finite non-negative", id="negative-wait"),
    # UI-TARS
    pytest.param("Thought: x\nAction: click(start_box='(100,", "auto", "truncated call", id="uitars-truncated"),
    pytest.param("Action: fly(start_box='(1,2)')", "auto", "unknown UI-TARS action 'fly'", id="uitars-unknown"),
    pytest.param("Action: click()", "auto", "needs a point", id="uitars-no-point"),
    pytest.param("Action: drag(start_box='(1,2)')", "auto", "needs an end point", id="uitars-drag-no-end"),
    pytest.param("Action: click(start_box='(1,2,3)')", "auto", "must hold 2 numbers (a point) or 4", id="uitars-3-numbers"),
    pytest.param("Action: click(start_box='(a,b)')", "auto", "not a point or box", id="uitars-letters"),
    pytest.param("Action: click(start_box='(1200,500)')", "auto", "off the screen", id="uitars-off"),
    pytest.param("Action: click(start_box='(100,1200,300,1300)')", "auto", "off the screen", id="uitars-box-off"),
    pytest.param("Action: click(start_box='(nan,5)')", "auto", "must be finite", id="uitars-nan"),
    pytest.param("Action: scroll(direction='sideways')", "auto", "scroll direction must be one of", id="uitars-direction"),
    pytest.param("Action: call_user()", "auto", "call_user", id="uitars-call-user"),
    pytest.param("Action: hotkey('ctrl c')", "auto", "by name", id="uitars-positional"),
    pytest.param("Action: click(start_box='(1,2)', button='left')", "auto", "does not take 'button'", id="uitars-extra"),
    pytest.param("Action: type(content=5)", "auto", "content must be a string", id="uitars-content-int"),
    pytest.param("Action: click(start_box='(1,2)') then type", "auto", "expected a call", id="uitars-junk"),
    pytest.param("Action: wait()\nThought: again\nAction: wait()", "auto", "2 'Action:' sections", id="uitars-two-sections"),
    pytest.param("Thought: nothing\nAction:", "uitars", "Action: section is empty", id="uitars-empty-section"),
    # our JSON
    pytest.param('{"kind": "click", "point": [0.5', "json", "truncated JSON", id="json-truncated"),
    pytest.param('{"kind": "fly"}', "auto", "unknown action kind 'fly'", id="json-unknown-kind"),
    pytest.param('{"kind": "click"}', "auto", "click needs point", id="json-missing-point"),
    pytest.param('{"kind": "click", "point": [0.5]}', "auto", "(x, y) pair", id="json-short-point"),
    pytest.param('{"kind": "click", "point": [1.2, 0.5]}', "auto", "off the screen", id="json-off"),
    pytest.param('{"kind": "click", "point": [NaN, 0.5]}', "auto", "must be finite", id="json-nan"),
    pytest.param('{"kind": "scroll", "direction": "sideways"}', "auto", "direction must be one of", id="json-direction"),
    pytest.param('{"kind": "scroll", "direction": "up", "amount": "3"}', "auto", "amount must be a finite", id="json-amount-str"),
    pytest.param('{"kind": "wait", "color": "red"}', "auto", "unknown action field", id="json-unknown-field"),
    pytest.param('{"foo": 1}', "auto", "neither vlagent actions", id="json-no-kind"),
    pytest.param("[]", "json", "list is empty", id="json-empty-list"),
    pytest.param('```json\n{"kind": "wait"}\n```\n```json\n{"kind": "done"}\n```', "auto", "2 fenced code blocks", id="json-two-fences"),
    pytest.param('```json\n{"kind": "wait"}', "json", "never closed", id="json-open-fence"),
]


@pytest.mark.parametrize("text, fmt, reason", ERRORS)
def test_errors(text, fmt, reason):
    with pytest.raises(ActionParseError) as info:
        parse_actions(text, fmt=fmt)
    assert reason in info.value.reason
    assert isinstance(info.value.text, str)


def test_error_keeps_offending_text():
    text = qcall({"action": "left_click", "coordinate": [2000, 5]})
    with pytest.raises(ActionParseError) as info:
        parse_actions(text)
    assert "2000" in info.value.text and "off the screen" in str(info.value)


def test_caller_mistakes_are_value_errors():
    text = qcall({"action": "left_click", "coordinate": [5, 5]})
    with pytest.raises(ValueError, match="image_size"):
        parse_actions(text, fmt="qwen-pixels")
    with pytest.raises(ValueError, match="unknown fmt"):
        parse_actions(text, fmt="qwen2")
    with pytest.raises(ValueError, match="image_size"):
        parse_actions(text, fmt="qwen-pixels", image_size=(0, 720))
    for call in (lambda: parse_actions(text, fmt="qwen-pixels"), lambda: parse_actions(text, fmt="qwen2")):
        with pytest.raises(ValueError) as info:
            call()
        assert not isinstance(info.value, ActionParseError)  # not shown to the model as its mistake


# ---------------------------------------------------------------- round trip

EXAMPLES = [
    A("click", point=(0.1, 0.2), button="left"),
    A("double_click", point=(0.3, 0.4)),
    A("triple_click", point=(0.5, 0.6)),
    A("right_click", point=(0.7, 0.8)),
    A("middle_click", point=(0.9, 1.0)),
    A("move", point=(0.0, 0.0)),
    A("drag", point=(0.1, 0.1), end=(0.9, 0.9)),
    A("scroll", point=(0.5, 0.5), direction="down", amount=3),
    A("type", text="héllo \"wörld\"\n"),
    A("key", keys=("ctrl", "shift", "t")),
    A("long_press", point=(0.2, 0.2), seconds=1.5),
    A("swipe", point=(0.5, 0.8), end=(0.5, 0.2)),
    A("back"),
    A("home"),
    A("open_app", text="Settings"),
    A("wait", seconds=2),
    A("answer", text="42"),
    A("done", success=False),
]


def test_examples_cover_every_kind():
    assert {a.kind for a in EXAMPLES} == ACTION_KINDS


@pytest.mark.parametrize("action", EXAMPLES, ids=lambda a: a.kind)
def test_round_trip(action):
    data = action.to_dict()
    assert Action.from_dict(data) == action
    assert Action.from_dict(json.loads(json.dumps(data))) == action
    assert parse_actions(json.dumps(data)) == [action]


def test_round_trip_list_in_fence():
    text = "```json\n" + json.dumps([a.to_dict() for a in EXAMPLES], indent=2) + "\n```"
    assert parse_actions(text, fmt="json") == EXAMPLES
