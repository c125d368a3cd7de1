"""PromptCache: consecutive agent-style prompts reuse encoded screenshots and the decoder state at
message boundaries, and still give what a fresh prefill gives (fp32, tiny random checkpoints)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from tiny_checkpoints import tiny_checkpoint
from vlagent.model import PromptCache, load_model
from vlagent.model.processor import Processor

import transformers  # noqa: E402,F401  (the reference: a missing or broken install fails, never skips)


@pytest.fixture(scope="module", params=["dense", "moe"])
def setup(request):
    folder = tiny_checkpoint(request.param)
    model = load_model(folder, device="cpu", dtype=torch.float32)
    processor = Processor.from_pretrained(folder, min_pixels=32 * 32 * 4, max_pixels=32 * 32 * 24)
    return model, processor


def _screenshot(seed: int, size=(150, 110)) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8))


SYSTEM = "You operate a computer. Call the tool with a click at the right place. " * 3


def _conversation(shots: list[Image.Image], replies: list[str], summary: str = "") -> list[dict]:
    """The agent's layout: system, task (+ summary), then per screenshot a user turn and a reply."""
    msgs = [{"role": "system", "content": [{"type": "text", "text": SYSTEM}]}]
    pending = [{"type": "text", "text": "Task: open the settings." + summary}]
    for i, shot in enumerate(shots):
        pending += [{"type": "text", "text": f"Screenshot {i}:"}, {"type": "image", "image": shot}]
        msgs.append({"role": "user", "content": pending})
        pending = []
        if i < len(replies):
            msgs.append({"role": "assistant", "content": [{"type": "text", "text": replies[i]}]})
    return msgs


def _first_logits(model, monkeypatch) -> list[torch.Tensor]:
    """Capture the logits generate() samples its first token from."""
    seen: list[torch.Tensor] = []
    real = type(model).logits
    monkeypatch.setattr(type(model), "logits", lambda self, h: seen.append(real(self, h)) or seen[-1])
    return seen


def _generate(model, inputs, **kw):
    return model.generate(**inputs, max_new_tokens=10, stop_token_ids=[], return_dict=True, **kw)


def test_agent_steps_reuse_work_and_match_a_fresh_prefill(setup, monkeypatch):
    model, processor = setup
    shots = [_screenshot(i) for i in range(4)]
    steps = [
        _conversation(shots[:1], []),
        _conversation(shots[:2], ["I click the menu."]),
        _conversation(shots[1:3], ["I open it."], summary=" Step 1: clicked the menu."),
        _conversation(shots[1:4], ["I open it.", "Now the gear icon."], summary=" Step 1: clicked the menu."),
    ]
    pc = PromptCache(processor.message_start_ids)
    logits = _first_logits(model, monkeypatch)
    stats, last_message_start, user_start = [], [], []
    (start_id,) = processor.message_start_ids
    for messages in steps:
        inputs = processor.apply_chat_template(messages)
        starts = (inputs["input_ids"][0] == start_id).nonzero().flatten().tolist()
        last_message_start.append(starts[-1])
        user_start.append(starts[1])  # the first user message follows the system message
        fresh = _generate(model, inputs)
        fresh_logits = logits[-10]  # first of the fresh run's 10 logits calls
        cached = _generate(model, inputs, prompt_cache=pc)
        cached_logits = logits[-10]
        assert cached.new_tokens == fresh.new_tokens
        scale = fresh_logits.abs().max().item()
        assert (cached_logits - fresh_logits).abs().max().item() <= 1e-4 * max(scale, 1.0)
        stats.append(cached.stats)

    assert stats[0]["reused_tokens"] == 0 and stats[0]["image_misses"] == 1
    # step 2 extends step 1: everything before step 1's reply message is reused, one new screenshot
    assert stats[1]["reused_tokens"] == last_message_start[0]
    assert (stats[1]["image_hits"], stats[1]["image_misses"]) == (0, 1)
    # step 3 changes the first user message (summary): only the system message is reused, but the
    # screenshot seen in step 2 comes from the feature cache
    assert stats[2]["reused_tokens"] == user_start[2]
    assert (stats[2]["image_hits"], stats[2]["image_misses"]) == (1, 1)
    # step 4 extends step 3 again
    assert stats[3]["reused_tokens"] == last_message_start[2]
    assert (stats[3]["image_hits"], stats[3]["image_misses"]) == (0, 1)
    assert stats[3]["prefilled_tokens"] < stats[3]["prompt_tokens"] // 2


def test_same_layout_with_a_different_screenshot_is_not_reused(setup):
    model, processor = setup
    pc = PromptCache(processor.message_start_ids)
    first = processor.apply_chat_template(_conversation([_screenshot(1)], []))
    second = processor.apply_chat_template(_conversation([_screenshot(2)], []))
    assert torch.equal(first["input_ids"], second["input_ids"])  # identical tokens, other pixels
    _generate(model, first, prompt_cache=pc)
    cached = _generate(model, second, prompt_cache=pc)
    fresh = _generate(model, second)
    assert cached.new_tokens == fresh.new_tokens
    image_start = int((second["input_ids"][0] == model.config.image_token_id).nonzero()[0])
    assert cached.stats["reused_tokens"] <= image_start
    assert cached.stats["image_misses"] == 1


def test_image_feature_cache_is_bounded(setup):
    model, processor = setup
    pc = PromptCache(processor.message_start_ids, max_images=2)
    for seed in range(4):
        _generate(model, processor.apply_chat_template(_conversation([_screenshot(10 + seed)], [])), prompt_cache=pc)
    assert len(pc._features) == 2
    pc.clear()
    assert not pc._features and pc._ids is None


def test_misuse_is_refused_clearly(setup):
    model, processor = setup
    pc = PromptCache(processor.message_start_ids)
    ids = torch.randint(11, 500, (2, 12))
    with pytest.raises(ValueError, match="batch 1"):
        model.generate(input_ids=ids, max_new_tokens=2, prompt_cache=pc)
    if model.mtp is not None:
        with pytest.raises(ValueError, match="speculative"):
            model.generate(input_ids=ids[:1], max_new_tokens=2, prompt_cache=pc, speculative="mtp")
    with pytest.raises(ValueError, match="max_images"):
        PromptCache(max_images=-1)


def test_text_only_prompts_and_another_model(setup):
    model, processor = setup
    pc = PromptCache(processor.message_start_ids)
    a = processor.apply_chat_template([{"role": "system", "content": [{"type": "text", "text": SYSTEM}]},
                                       {"role": "user", "content": [{"type": "text", "text": "hello there"}]}])
    b = processor.apply_chat_template([{"role": "system", "content": [{"type": "text", "text": SYSTEM}]},
                                       {"role": "user", "content": [{"type": "text", "text": "something else"}]}])
    _generate(model, a, prompt_cache=pc)
    got = _generate(model, b, prompt_cache=pc)
    assert got.stats["reused_tokens"] > 0
    assert got.new_tokens == _generate(model, b).new_tokens
    other = load_model(tiny_checkpoint("dense"), device="cpu", dtype=torch.float32, with_vision=False)
    again = other.generate(**{k: v for k, v in b.items() if k in ("input_ids",)}, max_new_tokens=4,
                           stop_token_ids=[], return_dict=True, prompt_cache=pc)
    assert again.stats["reused_tokens"] == 0  # state from another model is never reused


def test_kept_decoder_caches_never_hand_a_conversation_another_prompts_keys(setup):
    """generate keeps its CUDA-graph decoders and their caches across calls (cuda_decode.DecodeGraphs;
    cuda_graph=True runs that path eagerly here). A conversation's next step restarts from the keys its
    previous step left in such a cache, and must not once another prompt has reset and refilled it."""
    from vlagent.model.cuda_decode import decode_graphs

    model, processor = setup
    graphs = decode_graphs(model)
    graphs.clear()
    shots = [_screenshot(20 + i) for i in range(3)]
    first = processor.apply_chat_template(_conversation(shots[:1], []))
    second = processor.apply_chat_template(_conversation(shots[:2], ["I click the menu."]))
    pc = PromptCache(processor.message_start_ids)
    _generate(model, first, prompt_cache=pc, cuda_graph=True)
    own = _generate(model, second, prompt_cache=pc, cuda_graph=True)  # the same kept cache, reset for it
    assert own.stats["cuda_graph_reused"] and own.stats["reused_tokens"] > 0
    fresh = _generate(model, second)
    assert own.new_tokens == fresh.new_tokens

    pc = PromptCache(processor.message_start_ids)
    _generate(model, first, prompt_cache=pc, cuda_graph=True)
    intruder = processor.apply_chat_template(_conversation(shots[2:3], []))  # another prompt, same bucket
    assert _generate(model, intruder, cuda_graph=True).stats["cuda_graph_reused"]
    after = _generate(model, second, prompt_cache=pc, cuda_graph=True)
    assert after.stats["reused_tokens"] == 0  # its keys were overwritten: prefilled from the start
    assert after.new_tokens == fresh.new_tokens
    graphs.clear()
