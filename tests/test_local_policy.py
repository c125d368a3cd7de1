"""LocalPolicy and chat() on tiny Qwen3.5 checkpoints: the prompt the engine sees (tool schema,
screenshot placeholders) and how replies become actions or errors.

The random checkpoint answers random text (a parse error, every time); the tool-call checkpoint
(tiny_checkpoints.make_tool_call_checkpoint) answers every prompt with REPLY, a real Qwen tool call,
so the path from generated tokens to actions, and the prompt cache's reuse across steps, run."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from tiny_checkpoints import tiny_checkpoint, tool_call_checkpoint
from vlagent.actions import Action, ActionParseError
from vlagent.environments.base import Observation
from vlagent.model.chat import chat, chat_reply
from vlagent.policy import HistoryItem, Policy
from vlagent.policy.local import LocalPolicy

import transformers  # noqa: E402,F401  (the reference: a missing or broken install fails, never skips)

SCREEN = (1366, 768)


REPLY = (
    "I will click the gear icon.\n<tool_call>\n<function=computer_use>\n<parameter=action>\nleft_click\n"
    "</parameter>\n<parameter=coordinate>\n[64, 32]\n</parameter>\n</function>\n</tool_call>"
)
CLICK = Action("click", point=(0.064, 0.032))  # REPLY read as Qwen3.5's 0-1000 grid
PIXELS = dict(max_pixels=32 * 32 * 40, min_pixels=32 * 32 * 4)


@pytest.fixture(scope="module")
def tool_policy():
    return LocalPolicy(tool_call_checkpoint(REPLY), max_new_tokens=12, **PIXELS)


@pytest.fixture(scope="module")
def policy():
    # a small pixel budget keeps the step fast; the screenshot still keeps its aspect ratio
    return LocalPolicy(tiny_checkpoint("dense"), max_new_tokens=12, **PIXELS)


def _screenshot(seed: int = 0) -> Image.Image:
    rng = np.random.default_rng(seed)
    arr = rng.integers(0, 256, (SCREEN[1] // 8, SCREEN[0] // 8, 3), dtype=np.uint8)
    return Image.fromarray(arr).resize(SCREEN, Image.Resampling.NEAREST)


def test_decide_builds_qwen_prompt_and_surfaces_parse_errors(policy):
    assert isinstance(policy, Policy)
    obs = Observation(image=_screenshot(), screen_size=SCREEN)
    with pytest.raises(ActionParseError) as info:  # random weights: random text, never a tool call
        policy.decide("Open the settings menu", obs, [])
    assert isinstance(info.value.text, str) and info.value.text

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


def test_a_generated_tool_call_becomes_the_decision(tool_policy):
    """The engine's own greedy reply (not a stand-in for generate_text) read into actions."""
    obs = Observation(image=_screenshot(5), screen_size=SCREEN)
    tool_policy.prompt_cache.clear()
    decision = tool_policy.decide("Open the settings menu", obs, [])
    assert decision.raw_output == REPLY
    assert decision.actions == [CLICK]
    assert decision.thought == "I will click the gear icon."
    ids = tool_policy.last_inputs["input_ids"]
    assert decision.usage == {"prompt_tokens": ids.shape[1], "completion_tokens": 5, "image_tokens": 32,
                              "cached_tokens": 0}  # 4 reply tokens and <|im_end|>; nothing cached yet
    assert {"prepare_s", "generate_s", "parse_s", "prefill_s", "decode_s"} <= set(decision.timings)
    assert "on a 0-1000 scale relative to the screenshot" in tool_policy.last_prompt
    # fmt="qwen-pixels": the model is told pixels of the 256x128 screenshot it sees, and the same reply
    # is read in those pixels
    pixels = LocalPolicy(tool_policy.model_path, model=tool_policy.model, processor=tool_policy.processor,
                         fmt="qwen-pixels", max_new_tokens=12, prompt_cache=False)
    in_pixels = pixels.decide("Open the settings menu", obs, [])
    assert in_pixels.raw_output == REPLY and in_pixels.actions == [Action("click", point=(0.25, 0.25))]
    assert "The screen's resolution is 256x128. Coordinates are pixels" in pixels.last_prompt


def test_consecutive_steps_reuse_the_previous_step(tool_policy):
    """The second step shows the first step's screenshot again: it is not encoded twice, and the
    system message (tool description) is not prefilled twice; usage reports what was reused."""
    policy = tool_policy
    first_shot = _screenshot(3)
    policy.prompt_cache.clear()
    first = policy.decide("Open the settings menu", Observation(image=first_shot, screen_size=SCREEN), [])
    assert policy.prompt_cache.last_stats["reused_tokens"] == 0 and first.usage["cached_tokens"] == 0
    history = [HistoryItem(step=1, raw_output=first.raw_output, actions=first.actions, image=first_shot)]
    second = policy.decide("Open the settings menu", Observation(image=_screenshot(4), screen_size=SCREEN), history)
    stats = policy.prompt_cache.last_stats
    assert stats["image_hits"] == 1 and stats["image_misses"] == 1
    system_end = policy.last_prompt.index("<|im_start|>user")
    assert stats["reused_tokens"] > 0
    assert policy.processor.tokenizer.decode(policy.last_inputs["input_ids"][0, : stats["reused_tokens"]]) == \
        policy.last_prompt[:system_end]
    assert second.usage["cached_tokens"] == stats["reused_tokens"]
    assert second.usage["prompt_tokens"] == policy.last_inputs["input_ids"].shape[1] > first.usage["prompt_tokens"]
    assert second.usage["image_tokens"] == 64  # both screenshots are in the prompt
    assert second.actions == [CLICK] and second.raw_output == REPLY
    # without the cache: the same reply, nothing reported as cached
    plain = LocalPolicy(policy.model_path, model=policy.model, processor=policy.processor, prompt_cache=False,
                        max_new_tokens=12)
    again = plain.decide("Open the settings menu", Observation(image=_screenshot(4), screen_size=SCREEN), history)
    assert again.raw_output == REPLY and "cached_tokens" not in again.usage
    assert again.usage["prompt_tokens"] == second.usage["prompt_tokens"]


def test_the_agent_loop_runs_the_local_policy(tool_policy, tmp_path):
    """Agent + LocalPolicy: every step's generated tool call is executed at its point; from the second
    step on the prompt cache reuses the first steps' work, and the trajectory says so."""
    from vlagent.agent import Agent
    from vlagent.environments.base import BaseEnvironment
    from vlagent.recorder import load_trajectory

    class Screen(BaseEnvironment):
        name = "screen"

        def __init__(self) -> None:
            self.executed: list[Action] = []

        def observe(self) -> Observation:
            return Observation(image=_screenshot(10 + len(self.executed)), screen_size=SCREEN)

        def execute(self, action: Action) -> None:
            self.executed.append(action)

    tool_policy.prompt_cache.clear()
    env = Screen()
    result = Agent(tool_policy, env, max_steps=3, run_dir=tmp_path / "run").run("Open the settings menu")
    assert result.status == "max_steps"
    assert env.executed == [CLICK] * 3
    _, steps, _ = load_trajectory(result.run_dir)
    assert [s["raw_output"] for s in steps] == [REPLY] * 3
    cached = [s["usage"]["cached_tokens"] for s in steps]
    assert cached[0] == 0 and all(c > 0 for c in cached[1:])


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
