"""Engine vs transformers on images and videos: same tiny random Qwen3.5 checkpoint,
same processor outputs, logits must agree (fp32) and greedy generation must match."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from tiny_checkpoints import tiny_checkpoint
from vlagent.model import load_model
from vlagent.model.processor import Processor

import transformers  # noqa: E402,F401  (the reference: a missing or broken install fails, never skips)


@pytest.fixture(scope="module")
def setup():
    from transformers import Qwen3_5ForConditionalGeneration

    folder = tiny_checkpoint("dense")
    ours = load_model(folder, device="cpu", dtype=torch.float32)
    ref = Qwen3_5ForConditionalGeneration.from_pretrained(str(folder), dtype=torch.float32).eval()
    # small pixel budget keeps the tiny model fast; the grids stay non-square and odd-sized
    processor = Processor.from_pretrained(folder, min_pixels=32 * 32 * 4, max_pixels=32 * 32 * 48)
    return ours, ref, processor


def _image(width: int, height: int, seed: int) -> Image.Image:
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width]
    base = np.stack([x * 255 / width, y * 255 / height, (x * y) % 255], axis=-1)
    return Image.fromarray(np.clip(base + rng.normal(0, 40, base.shape), 0, 255).astype(np.uint8))


def _hf_logits(ref, processor, inputs) -> torch.Tensor:
    kw = {k: v for k, v in inputs.items()}
    kw["mm_token_type_ids"] = processor.mm_token_type_ids(inputs["input_ids"])
    with torch.no_grad():
        return ref(**kw).logits


def _check_logits(setup, messages) -> dict:
    ours, ref, processor = setup
    inputs = processor.apply_chat_template(messages)
    got = ours(**inputs).logits
    want = _hf_logits(ref, processor, inputs)
    assert got.shape == want.shape
    scale = want.abs().max().item()
    diff = (got - want).abs().max().item()
    assert diff <= 1e-4 * max(scale, 1.0), f"max abs diff {diff:.3g} (logit scale {scale:.3g})"
    return inputs


def test_portrait_image_logits_match(setup):
    inputs = _check_logits(setup, [{"role": "user", "content": [
        {"type": "image", "image": _image(99, 271, 0)},
        {"type": "text", "text": "What is on the screen?"},
    ]}])
    t, h, w = inputs["image_grid_thw"][0].tolist()
    assert (h, w) == (16, 6)  # portrait, merged grid 8x3 (odd width)


def test_two_images_logits_match(setup):
    _check_logits(setup, [{"role": "user", "content": [
        {"type": "text", "text": "Compare"},
        {"type": "image", "image": _image(200, 120, 1)},
        {"type": "text", "text": "with"},
        {"type": "image", "image": _image(90, 160, 2)},
    ]}])


def test_video_logits_match(setup):
    frames = [np.asarray(_image(112, 80, 10 + i)) for i in range(7)]
    inputs = _check_logits(setup, [{"role": "user", "content": [
        {"type": "video", "video": frames, "timestamps": [0.0, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0]},
        {"type": "text", "text": "What happens?"},
    ]}])
    assert inputs["video_grid_thw"][0, 0].item() == 4  # 7 frames -> 4 temporal patches


def test_greedy_generation_with_image_matches(setup):
    ours, ref, processor = setup
    inputs = processor.apply_chat_template([{"role": "user", "content": [
        {"type": "image", "image": _image(150, 230, 3)},
        {"type": "text", "text": "Click the button."},
    ]}])
    n = 20
    got = ours.generate(**inputs, max_new_tokens=n, stop_token_ids=[])
    kw = dict(inputs)
    kw["mm_token_type_ids"] = processor.mm_token_type_ids(inputs["input_ids"])
    with torch.no_grad():
        want = ref.generate(**kw, max_new_tokens=n, min_new_tokens=n, do_sample=False)
    L = inputs["input_ids"].shape[1]
    assert got.shape[1] == L + n
    assert got[0, L:].tolist() == want[0, L:].tolist()


def test_left_padded_batch_with_images_matches(setup):
    """Two prompts of different lengths and image counts in one left-padded batch."""
    ours, ref, processor = setup
    one = processor.render_chat([{"role": "user", "content": [
        {"type": "image", "image": _image(100, 200, 4)}, {"type": "text", "text": "hi"}]}])
    two = processor.render_chat([{"role": "user", "content": [
        {"type": "text", "text": "A longer question about two screens"},
        {"type": "image", "image": _image(200, 90, 5)}, {"type": "image", "image": _image(64, 64, 6)}]}])
    inputs = processor([one[0], two[0]], images=one[1] + two[1])
    mask = inputs["attention_mask"].bool()
    assert not mask[0, 0] and mask[1].all()  # the first prompt is left-padded
    kw = dict(inputs)
    kw["mm_token_type_ids"] = processor.mm_token_type_ids(inputs["input_ids"])
    got = ours(**inputs).logits
    with torch.no_grad():
        want = ref(**kw).logits
    scale = want[mask].abs().max().item()
    assert (got - want)[mask].abs().max().item() <= 1e-4 * max(scale, 1.0)
    n = 16
    seq = ours.generate(**inputs, max_new_tokens=n, stop_token_ids=[])
    with torch.no_grad():
        ref_seq = ref.generate(**kw, max_new_tokens=n, min_new_tokens=n, do_sample=False)
    L = inputs["input_ids"].shape[1]
    assert seq[:, L:].tolist() == ref_seq[:, L:].tolist()
