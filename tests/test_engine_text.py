"""Text-only parity of the Qwen3.5 engine with transformers on tiny random checkpoints (fp32).

Both configs: dense (tied embeddings) and MoE (grouped value heads with value head dim !=
key head dim, untied embeddings, shared expert); prompts longer than the DeltaNet chunk
(64) so the chunked path carries state across chunks.
"""

from __future__ import annotations

import pytest
import torch

from tiny_checkpoints import tiny_checkpoint
from vlagent.model import load_model

KINDS = ["dense", "moe"]


@pytest.fixture(autouse=True, scope="module")
def _single_thread():
    """Tiny models: one intra-op thread is much faster than two on a shared 2-core machine."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def _reference(kind: str):
    import transformers

    cls = transformers.Qwen3_5ForConditionalGeneration if kind == "dense" else transformers.Qwen3_5MoeForConditionalGeneration
    return cls.from_pretrained(tiny_checkpoint(kind), dtype=torch.float32).eval()


@pytest.fixture(scope="module", params=KINDS)
def pair(request):
    kind = request.param
    return kind, load_model(tiny_checkpoint(kind), with_vision=False), _reference(kind)


def _prompt(batch: int, length: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randint(11, 560, (batch, length), generator=g)


def test_fixture_shapes_are_the_ones_claimed(pair):
    kind, engine, _ = pair
    tc = engine.config.text
    assert {"linear_attention", "full_attention"} <= set(tc.layer_types)
    assert tc.mrope_interleaved and sum(tc.mrope_section) * 2 == tc.rotary_dim
    if kind == "dense":
        assert engine.config.tie_word_embeddings and engine.lm_head is None
        assert not tc.is_moe
    else:
        assert not engine.config.tie_word_embeddings and engine.lm_head is not None
        assert tc.linear_num_value_heads > tc.linear_num_key_heads
        assert tc.linear_value_head_dim != tc.linear_key_head_dim
        assert tc.is_moe and tc.shared_expert_intermediate_size > 0


@pytest.mark.parametrize("length", [7, 150])
def test_logits_match_transformers(pair, length):
    kind, engine, ref = pair
    ids = _prompt(2, length, seed=length)
    ours = engine(input_ids=ids).logits
    with torch.no_grad():
        theirs = ref(input_ids=ids).logits
    assert ours.shape == theirs.shape == (2, length, engine.config.text.vocab_size)
    scale = theirs.abs().max().item()
    diff = (ours - theirs).abs().max().item()
    assert diff <= 1e-4 * max(scale, 1.0), f"{kind} L={length}: max abs diff {diff:.3g} (logit scale {scale:.3g})"


def test_greedy_generation_matches_transformers(pair):
    kind, engine, ref = pair
    ids = _prompt(1, 70, seed=3)
    ours = engine.generate(input_ids=ids, max_new_tokens=32)
    theirs = ref.generate(input_ids=ids, max_new_tokens=32, do_sample=False, min_new_tokens=32)
    assert ours.shape == (1, 70 + 32)  # prompt + new tokens, like transformers
    assert torch.equal(ours[0, :70], ids[0])
    assert ours[0, 70:].tolist() == theirs[0, 70:].tolist()


def test_left_padded_forward_equals_rows_alone(pair):
    kind, engine, _ = pair
    long, short = _prompt(1, 80, seed=5)[0], _prompt(1, 30, seed=6)[0]
    ids = torch.stack([long, torch.cat([torch.zeros(50, dtype=torch.long), short])])
    mask = torch.ones_like(ids)
    mask[1, :50] = 0
    batch = engine(input_ids=ids, attention_mask=mask).logits
    alone_long = engine(input_ids=long[None]).logits[0]
    alone_short = engine(input_ids=short[None]).logits[0]
    assert torch.allclose(batch[0], alone_long, atol=1e-4)
    assert torch.allclose(batch[1, 50:], alone_short, atol=1e-4)
    assert torch.isfinite(batch).all()


def test_image_prompt_matches_transformers():
    """Early fusion wiring: vision features replace <|image_pad|> tokens, M-RoPE positions from
    get_rope_index, decode positions continue after the image (rope deltas), left padding."""
    import transformers

    folder = tiny_checkpoint("dense")
    engine = load_model(folder)
    ref = transformers.Qwen3_5ForConditionalGeneration.from_pretrained(folder).eval()
    c = engine.config
    grid = torch.tensor([[1, 4, 6]])
    pixels = torch.randn(24, c.vision.patch_dim, generator=torch.Generator().manual_seed(0))
    ids = torch.tensor([[40, 41, c.vision_start_token_id] + [c.image_token_id] * 6 + [c.vision_end_token_id]
                        + list(range(50, 70))])
    mm = (ids == c.image_token_id).long()
    ours = engine(input_ids=ids, pixel_values=pixels, image_grid_thw=grid).logits
    with torch.no_grad():
        theirs = ref(input_ids=ids, pixel_values=pixels, image_grid_thw=grid, mm_token_type_ids=mm).logits
    assert (ours - theirs).abs().max() <= 1e-4 * max(theirs.abs().max().item(), 1.0)
    gen = engine.generate(input_ids=ids, pixel_values=pixels, image_grid_thw=grid, max_new_tokens=20)
    ref_gen = ref.generate(input_ids=ids, pixel_values=pixels, image_grid_thw=grid, mm_token_type_ids=mm,
                           max_new_tokens=20, do_sample=False)
    assert gen[0, 30:].tolist() == ref_gen[0, 30:].tolist()
    padded = torch.cat([torch.zeros(1, 5, dtype=torch.long), ids], dim=1)
    mask = torch.ones_like(padded)
    mask[0, :5] = 0
    gen_padded = engine.generate(input_ids=padded, attention_mask=mask, pixel_values=pixels, image_grid_thw=grid,
                                 max_new_tokens=20)
    assert gen_padded[0, 35:].tolist() == gen[0, 30:].tolist()
    with pytest.raises(ValueError, match="do not match"):
        engine(input_ids=ids[:, :-25], pixel_values=pixels, image_grid_thw=grid)
