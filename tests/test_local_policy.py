"""LocalPolicy and chat() on a tiny random Qwen3.5 checkpoint: the prompt the engine
sees (tool schema, screenshot placeholders) and how replies become actions or errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from tiny_checkpoints import tiny_checkpoint
from vlagent.actions import ActionParseError
from vlagent.environments.base import Observation
from vlagent.model.chat import chat, chat_reply
from vlagent.policy import HistoryItem, Policy
from vlagent.policy.local import LocalPolicy

import transformers  # noqa: E402,F401  (the reference: a missing or broken install fails, never skips)

SCREEN = (1366, 768)


@pytest.fixture(scope="module")
def policy():
    # a small pixel budget keeps the step fast; the screenshot still keeps its aspect ratio
    return LocalPolicy(tiny_checkpoint("dense"), max_new_tokens=12, max_pixels=32 * 32 * 40, min_pixels=32 * 32 * 4)


def _screenshot(seed: int = 0) -> Image.Image:
    rng = np.random.default_rng(seed)
    arr = rng.integers(0, 256, (SCREEN[1] // 8, SCREEN[0] // 8, 3), dtype=np.uint8)
    return Image.fromarray(arr).resize(SCREEN, Image.Resampling.NEAREST)


def test_decide_builds_qwen_prompt_and_surfaces_parse_errors(policy):
    assert isinstance(policy, Policy)
    obs = Observation(image=_screenshot(), screen_size=SCREEN)
    try:
        decision = policy.decide("Open the settings menu", obs, [])
    except ActionParseError as exc:  # random weights: random text
        raw = exc.text
    else:
        raw = decision.raw_output
        assert decision.actions and all(0 <= a.point[0] <= 1 for a in decision.actions if a.point)
    assert isinstance(raw, str)

    prompt = policy.last_prompt
    assert '"name": "computer_use"' in prompt and "<tools>" in prompt
    assert "Task: Open the settings menu" in prompt
    assert prompt.endswith("<|im_start|>assistant\n<think>\n\n</think>\n\n")  # thinking off by default
    width, height = policy.model_image_size(SCREEN)
    assert (width, height) == (256, 128)  # 1366x768 inside the 40-token budget, sides multiples of 32
    ids = policy.last_inputs["input_ids"]
    n_image = (ids == policy.processor.image_token_id).sum().item()
    assert n_image == (width // 32) * (height // 32)
    assert policy.last_inputs["image_grid_thw"].tolist() == [[1, height // 16, width // 16]]


def test_history_screenshots_are_included(policy):
    obs = Observation(image=_screenshot(1), screen_size=SCREEN)
    history = [
        HistoryItem(step=1, raw_output="<tool_call>\n{}\n</tool_call>", error="bad call", image=_screenshot(2)),
    ]
    with pytest.raises(ActionParseError):
        _decide_with_reply(policy, obs, history, "I am not sure what to do.")
    assert policy.last_inputs["image_grid_thw"].shape[0] == 2
    assert "Step 1 failed: bad call" in policy.last_prompt


def test_consecutive_steps_reuse_the_previous_step(policy):
    """The second step shows the first step's screenshot again: it is not encoded twice, and the
    system message (tool description) is not prefilled twice."""
    first_shot = _screenshot(3)
    policy.prompt_cache.clear()
    try:
        policy.decide("Open the settings menu", Observation(image=first_shot, screen_size=SCREEN), [])
    except ActionParseError:
        pass
    assert policy.prompt_cache.last_stats["reused_tokens"] == 0
    history = [HistoryItem(step=1, raw_output="I click the menu.", image=first_shot)]
    try:
        decision = policy.decide("Open the settings menu", Observation(image=_screenshot(4), screen_size=SCREEN), history)
        usage = decision.usage
    except ActionParseError:
        usage = None
    stats = policy.prompt_cache.last_stats
    assert stats["image_hits"] == 1 and stats["image_misses"] == 1
    system_end = policy.last_prompt.index("<|im_start|>user")
    assert stats["reused_tokens"] > 0
    assert policy.processor.tokenizer.decode(policy.last_inputs["input_ids"][0, : stats["reused_tokens"]]) == \
        policy.last_prompt[:system_end]
    if usage is not None:
        assert usage["cached_tokens"] == stats["reused_tokens"]


def _decide_with_reply(policy, obs, history, reply: str):
    """decide() with the engine's reply fixed (the prompt path stays real)."""
    original = policy.generate_text
    policy.generate_text = lambda inputs: (reply, {"completion_tokens": 5})
    try:
        return policy.decide("Open the settings menu", obs, history)
    finally:
        policy.generate_text = original


def test_tool_call_reply_becomes_normalized_actions(policy):
    obs = Observation(image=_screenshot(3), screen_size=SCREEN)
    reply = (
        "I will click the gear icon.\n<tool_call>\n<function=computer_use>\n<parameter=action>\nleft_click\n"
        "</parameter>\n<parameter=coordinate>\n[250, 500]\n</parameter>\n</function>\n</tool_call>"
    )
    decision = _decide_with_reply(policy, obs, [], reply)
    assert [a.kind for a in decision.actions] == ["click"]
    assert decision.actions[0].point == pytest.approx((0.25, 0.5))
    assert decision.thought and "gear icon" in decision.thought
    assert decision.usage["image_tokens"] == 32 and decision.usage["prompt_tokens"] > 32


def test_chat_returns_text_with_images(policy):
    messages = [{"role": "user", "content": [
        {"type": "image", "image": _screenshot(4)},
        {"type": "text", "text": "Describe the screen."},
    ]}]
    reply = chat_reply(policy.model, policy.processor, messages, max_new_tokens=6)
    assert reply.image_tokens == 32 and len(reply.token_ids) <= 6
    again = chat(policy.model, policy.processor, messages, max_new_tokens=6)
    assert again == reply.text  # greedy: deterministic


def test_missing_checkpoint_is_a_clear_error(tmp_path):
    from vlagent.policy.errors import PolicyError

    with pytest.raises(PolicyError, match="config.json missing"):
        LocalPolicy(tmp_path)
    with pytest.raises(ValueError, match="reply format"):
        LocalPolicy(tmp_path, fmt="uitars")


def test_default_dtype_follows_the_hardware(policy, monkeypatch):
    from vlagent.model import cpu_tuning

    assert policy.model.dtype == cpu_tuning.preferred_dtype("cpu")  # dtype=None
    monkeypatch.setattr(cpu_tuning, "cpu_has_native_bf16", lambda: True)
    assert cpu_tuning.preferred_dtype("cpu") == torch.bfloat16
    monkeypatch.setattr(cpu_tuning, "cpu_has_native_bf16", lambda: False)
    assert cpu_tuning.preferred_dtype("cpu") == torch.float32
    assert cpu_tuning.preferred_dtype("cuda") == torch.bfloat16
