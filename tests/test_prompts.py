"""Prompts, screenshot resizing and data URLs; the tool prompt agrees with the parser."""

from __future__ import annotations

import json

import pytest
from PIL import Image

from vlagent.actions import parse_actions
from vlagent.environments.base import Observation
from vlagent.images import from_data_url, resize_for_model, smart_resize, to_data_url
from vlagent.policy.base import HistoryItem
from vlagent.policy.prompts import (
    COMPUTER_USE_ACTIONS,
    MOBILE_USE_ACTIONS,
    build_conversation,
    build_messages,
    conversation_images,
    normalize_platform,
    split_reply,
    system_prompt,
    tool_for,
)


def obs(size=(1280, 720), **info) -> Observation:
    return Observation(image=Image.new("RGB", size, "white"), screen_size=size, info=info)


def tools_in(prompt: str) -> list[dict]:
    block = prompt.split("<tools>\n", 1)[1].split("\n</tools>", 1)[0]
    return [json.loads(line) for line in block.splitlines()]


@pytest.mark.parametrize(
    "size,max_pixels",
    [((1920, 1080), 1280 * 32 * 32), ((1366, 768), 1280 * 32 * 32), ((1080, 2400), 1280 * 32 * 32), ((50, 40), 10**6), ((4000, 30), 10**6)],
)
def test_smart_resize_multiples_of_32_within_limits(size, max_pixels):
    w, h = smart_resize(*size, max_pixels=max_pixels, min_pixels=256 * 256)
    assert w % 32 == 0 and h % 32 == 0
    assert w * h <= max_pixels
    if w * h < 256 * 256:  # only when the aspect ratio leaves no grid size in range
        assert size[0] / size[1] > 50 or size[1] / size[0] > 50
    # aspect ratio kept to within one grid cell
    assert abs(w / h - size[0] / size[1]) <= 32 / min(w, h) * (w / h) + 1e-9


def test_smart_resize_keeps_grid_sized_images_and_rejects_bad_input():
    assert smart_resize(1280, 704) == (1280, 704)
    assert smart_resize(1920, 1080) == (1504, 832)
    with pytest.raises(ValueError, match="positive"):
        smart_resize(0, 10)
    with pytest.raises(ValueError, match="aspect ratio"):
        smart_resize(10, 5000)
    with pytest.raises(ValueError, match="min_pixels"):
        smart_resize(100, 100, min_pixels=10**6, max_pixels=10**5)


def test_data_url_round_trip_png_and_jpeg():
    image = Image.new("RGB", (64, 32), (10, 200, 30))
    back = from_data_url(to_data_url(image))
    assert back.size == (64, 32) and back.getpixel((5, 5)) == (10, 200, 30)
    assert to_data_url(image, fmt="jpeg").startswith("data:image/jpeg;base64,")
    with pytest.raises(ValueError):
        from_data_url("https://example.com/x.png")
    assert resize_for_model(Image.new("RGBA", (1366, 768))).mode == "RGB"


def test_platform_names():
    assert normalize_platform("android") == "mobile"
    assert normalize_platform(None) == "desktop"
    with pytest.raises(ValueError, match="platform"):
        normalize_platform("toaster")


def test_system_prompt_declares_one_tool_with_the_relative_scale():
    prompt = system_prompt("desktop")  # Qwen3.5 layout: tools first, XML-style calls
    assert prompt.startswith("# Tools") and "<function=example_function_name>" in prompt
    assert prompt.rstrip().endswith("Several tool calls in one reply run in order.")
    json_style = system_prompt("desktop", tool_style="json")  # Qwen3-VL layout: instructions first
    assert json_style.startswith("You are a GUI agent") and '{"name": <function-name>, "arguments"' in json_style
    assert tools_in(json_style) == tools_in(prompt)
    with pytest.raises(ValueError, match="style"):
        system_prompt("desktop", tool_style="yaml")
    (tool,) = tools_in(prompt)
    fn = tool["function"]
    assert fn["name"] == "computer_use"
    assert "0-1000" in fn["description"]
    assert fn["parameters"]["properties"]["action"]["enum"] == list(COMPUTER_USE_ACTIONS)
    (mobile,) = tools_in(system_prompt("android"))
    assert mobile["function"]["name"] == "mobile_use"
    assert mobile["function"]["parameters"]["properties"]["action"]["enum"] == list(MOBILE_USE_ACTIONS)
    pixels = tools_in(system_prompt("desktop", coordinates="pixels", image_size=(1504, 832)))[0]
    assert "1504x832" in pixels["function"]["description"]
    assert "{{password}}" in system_prompt("desktop", secret_names=["password"])


# One example call per declared action, with every argument the tool schema names for it:
# the parser must accept each of them (the prompt and the parser must not drift apart).
DESKTOP_EXAMPLES = {
    "key": {"keys": ["ctrl", "s"]},
    "type": {"text": "Grüße"},
    "mouse_move": {"coordinate": [10, 20]},
    "left_click": {"coordinate": [500, 500]},
    "left_click_drag": {"coordinate": [100, 100], "coordinate2": [900, 900]},
    "right_click": {"coordinate": [1, 1]},
    "middle_click": {"coordinate": [2, 2]},
    "double_click": {"coordinate": [3, 3]},
    "triple_click": {"coordinate": [4, 4]},
    "scroll": {"pixels": -300, "coordinate": [500, 500]},
    "hscroll": {"pixels": 200},
    "wait": {"time": 1.5},
    "terminate": {"status": "success"},
    "answer": {"text": "42"},
}
MOBILE_EXAMPLES = {
    "click": {"coordinate": [500, 500]},
    "long_press": {"coordinate": [500, 500], "time": 2},
    "swipe": {"coordinate": [500, 800], "coordinate2": [500, 200]},
    "type": {"text": "你好"},
    "system_button": {"button": "Back"},
    "open": {"text": "Settings"},
    "wait": {"time": 1},
    "terminate": {"status": "failure"},
    "answer": {"text": "yes"},
}


@pytest.mark.parametrize("platform,examples", [("desktop", DESKTOP_EXAMPLES), ("mobile", MOBILE_EXAMPLES)])
def test_every_declared_action_parses(platform, examples):
    fn = tool_for(platform)["function"]
    declared = fn["parameters"]["properties"]
    assert set(examples) == set(declared["action"]["enum"])
    for action, args in examples.items():
        assert set(args) <= set(declared), (action, args)
        text = "<tool_call>\n" + json.dumps({"name": fn["name"], "arguments": {"action": action, **args}}) + "\n</tool_call>"
        (parsed,) = parse_actions(text, fmt="qwen")
        assert parsed.kind  # a valid Action
    drag = parse_actions(
        '<tool_call>{"name": "computer_use", "arguments": {"action": "left_click_drag", '
        '"coordinate": [100, 200], "coordinate2": [900, 800]}}</tool_call>',
        fmt="qwen",
    )[0]
    if platform == "desktop":
        assert drag.point == (0.1, 0.2) and drag.end == (0.9, 0.8)


@pytest.mark.parametrize("tool,platform", [("computer_use", "desktop"), ("mobile_use", "mobile")])
def test_prompt_and_parser_come_from_one_vocabulary(tool, platform):
    from vlagent.actions.qwen import ACTIONS
    from vlagent.actions.vocabulary import actions_of

    rows = actions_of(tool)
    offered = [row for row in rows if row.offered]
    fn = tool_for(platform)["function"]
    properties = fn["parameters"]["properties"]
    # the prompt lists and describes the offered actions, in the vocabulary's order
    assert properties["action"]["enum"] == [row.name for row in offered]
    for row in offered:
        assert f"* `{row.name}`: {row.description}" in properties["action"]["description"]
        assert set(row.arguments) <= set(properties), row
    # the parser accepts every row (offered or not) with exactly its arguments, and nothing else
    assert {name: allowed for name, (_, allowed) in ACTIONS[tool].items()} == {
        row.name: frozenset(row.arguments) for row in rows
    }


def test_an_unclosed_tool_call_is_read_the_same_way_everywhere():
    from vlagent.actions import ActionParseError
    from vlagent.actions.qwen import find_tool_calls
    from vlagent.policy.prompts import describe_step

    call = '{"name": "computer_use", "arguments": {"action": "left_click", "coordinate": [500, 500]}}'
    last_unclosed = f"I will click.<tool_call>{call}"
    assert find_tool_calls(last_unclosed) == [call]
    assert parse_actions(last_unclosed, fmt="qwen")[0].point == (0.5, 0.5)
    assert split_reply(last_unclosed)[0] == "I will click."
    assert describe_step(HistoryItem(0, last_unclosed)).endswith(f"Tool call: {' '.join(call.split())}")

    # an unclosed block stops where the next one starts: the parser refuses it, the prompt side keeps both
    two = f"<tool_call>{call} <tool_call>{call}</tool_call> done"
    with pytest.raises(ActionParseError, match="not closed before the next one"):
        parse_actions(two, fmt="qwen")
    assert split_reply(two)[0] == "done"
    assert describe_step(HistoryItem(0, two)).count("Tool call:") == 2


def test_conversation_layout_history_and_images():
    current = obs()
    shot = Image.new("RGB", (1280, 720), "gray")
    history = [
        HistoryItem(0, '<tool_call>{"name":"computer_use","arguments":{"action":"left_click","coordinate":[1,2]}}</tool_call>', thought="open menu"),
        HistoryItem(1, "<think>hidden</think>Now type.\n<tool_call>{\"name\":\"computer_use\",\"arguments\":{\"action\":\"type\",\"text\":\"x\"}}</tool_call>", thought="Now type.", error="no focus", image=shot),
    ]
    conv = build_conversation("do the thing", current, history)
    roles = [m["role"] for m in conv]
    assert roles == ["system", "user", "assistant", "user"]
    first_text = conv[1]["content"][0]["text"]
    assert first_text.startswith("Task: do the thing") and "open menu" in first_text and "[1,2]" in first_text
    assert conversation_images(conv) == [shot, current.image]
    assert "hidden" not in conv[2]["content"][0]["text"] and '"type"' in conv[2]["content"][0]["text"]
    last = [p.get("text") for p in conv[3]["content"] if p["type"] == "text"]
    assert any("no focus" in t for t in last)

    messages = build_messages("do the thing", current, history, max_pixels=320 * 320)
    urls = [p["image_url"]["url"] for m in messages if isinstance(m["content"], list) for p in m["content"] if p["type"] == "image_url"]
    assert [from_data_url(u).size for u in urls] == [smart_resize(1280, 720, max_pixels=320 * 320)] * 2
    assert isinstance(messages[0]["content"], str) and isinstance(messages[2]["content"], str)


def test_platform_comes_from_the_observation():
    conv = build_conversation("go home", obs(platform="android"), [])
    assert '"name": "mobile_use"' in conv[0]["content"][0]["text"]
    with pytest.raises(ValueError, match="task"):
        build_conversation("  ", obs(), [])


def test_split_reply():
    assert split_reply('<think>plan</think>Click it.<tool_call>{"a":1}</tool_call>') == (
        "plan\nClick it.",
        'Click it.<tool_call>{"a":1}</tool_call>',
    )
    assert split_reply("reasoning</think>\n<tool_call>{}</tool_call>")[0] == "reasoning"
    assert split_reply("<tool_call>{}</tool_call>")[0] is None
