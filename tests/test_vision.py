"""Vision tower and M-RoPE positions against transformers' Qwen3.5 implementation."""

from __future__ import annotations

import copy

import pytest
import torch

from vlagent.model.config import ModelConfig, TextConfig, VisionConfig
from vlagent.model.positions import get_rope_index
from vlagent.model.vision import VisionTower

import transformers  # noqa: E402
from transformers import Qwen3_5VisionConfig  # noqa: E402
from transformers.models.qwen3_5.modeling_qwen3_5 import Qwen3_5Model, Qwen3_5VisionModel  # noqa: E402

VISION = dict(depth=2, hidden_size=32, intermediate_size=64, num_heads=2, out_hidden_size=48, num_position_embeddings=64)


@pytest.fixture(scope="module")
def towers():
    torch.manual_seed(0)
    hf = Qwen3_5VisionModel(Qwen3_5VisionConfig(**VISION)).float().eval()
    with torch.no_grad():  # visible values everywhere (LayerNorm weights/biases included)
        for p in hf.parameters():
            p.normal_(0.0, 0.1)
    ours = VisionTower(VisionConfig(**VISION)).eval()
    ours.load_state_dict(hf.state_dict(), strict=True)
    return hf, ours


@pytest.mark.parametrize(
    "grids",
    [
        [[1, 14, 10]],  # portrait image, grid not square and not the table size
        [[1, 4, 6], [1, 10, 2]],  # two images in one call
        [[3, 4, 6]],  # video: 3 temporal patches, attention per frame
        [[1, 2, 2], [2, 6, 4], [1, 16, 20]],  # mixed, one grid larger than the 8x8 table
    ],
)
def test_vision_tower_matches_transformers(towers, grids):
    hf, ours = towers
    grid = torch.tensor(grids)
    n = int(grid.prod(-1).sum())
    x = torch.randn(n, 3 * 2 * 16 * 16, generator=torch.Generator().manual_seed(n))
    with torch.no_grad():
        ref = hf(x, grid_thw=grid).pooler_output
        out = ours(x, grid)
    assert out.shape == (n // 4, 48)
    assert torch.allclose(out, ref, atol=1e-5, rtol=0), (out - ref).abs().max()


def test_vision_tower_bf16_with_fused_cpu_attention(towers, monkeypatch):
    """bf16 on CPU takes the fused attention kernel (where the CPU has AVX512-BF16); its error against
    the fp32 tower stays at the level of transformers' own bf16 tower."""
    from vlagent.kernels.attention import cpu as attn_cpu

    if not attn_cpu.cpu_attention_available():
        pytest.skip(f"fused CPU attention unavailable: {attn_cpu.cpu_attention_unavailable_reason()}")
    monkeypatch.setenv("VLAGENT_CPU_ATTENTION", "1")  # on AMX CPUs it is off by default
    hf, ours = towers
    calls = []
    real = attn_cpu.attention_cpu
    monkeypatch.setattr(attn_cpu, "attention_cpu", lambda *a, **kw: calls.append(1) or real(*a, **kw))
    grid = torch.tensor([[1, 14, 10], [2, 4, 6]])  # an image and a two-frame video
    x = torch.randn(188, 3 * 2 * 16 * 16, generator=torch.Generator().manual_seed(5))
    hf16, ours16 = copy.deepcopy(hf).bfloat16(), copy.deepcopy(ours).bfloat16()
    with torch.no_grad():
        ref = hf(x, grid_thw=grid).pooler_output
        hf_err = (hf16(x.bfloat16(), grid_thw=grid).pooler_output.float() - ref).abs().max().item()
        our_err = (ours16(x.bfloat16(), grid).float() - ref).abs().max().item()
    assert calls, "the bf16 tower did not use the fused CPU attention"
    assert our_err <= 1.5 * hf_err + 1e-3, (our_err, hf_err)


def test_vision_tower_attention_stays_inside_each_frame(towers):
    _, ours = towers
    grid = torch.tensor([[2, 4, 4]])
    x = torch.randn(32, 3 * 2 * 16 * 16)
    y = x.clone()
    y[16:] = torch.randn(16, y.shape[1])  # change only the second frame
    with torch.no_grad():
        a, b = ours(x, grid), ours(y, grid)
    assert torch.equal(a[:4], b[:4])
    assert not torch.allclose(a[4:], b[4:])


def test_vision_tower_rejects_bad_shapes(towers):
    _, ours = towers
    with pytest.raises(ValueError, match="pixel_values has 10 rows"):
        ours(torch.randn(10, 1536), torch.tensor([[1, 4, 4]]))
    with pytest.raises(ValueError, match="multiples of 2"):
        ours(torch.randn(15, 1536), torch.tensor([[1, 3, 5]]))
    with pytest.raises(ValueError, match=r"\[n_patches, 1536\]"):
        ours(torch.randn(16, 100), torch.tensor([[1, 4, 4]]))


# --- M-RoPE positions -------------------------------------------------------

IMG, VID, VS, VE = 5, 6, 3, 4  # token ids used below (any distinct ids work)


def _config() -> ModelConfig:
    return ModelConfig(
        text=TextConfig(),
        vision=VisionConfig(),
        image_token_id=IMG,
        video_token_id=VID,
        vision_start_token_id=VS,
        vision_end_token_id=VE,
    )


@pytest.fixture(scope="module")
def hf_model():
    from transformers import Qwen3_5Config

    cfg = Qwen3_5Config(
        text_config=dict(
            vocab_size=64, hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2,
            num_key_value_heads=1, head_dim=8, linear_num_key_heads=1, linear_num_value_heads=1,
            linear_key_head_dim=8, linear_value_head_dim=8, layer_types=["full_attention"],
        ),
        vision_config=dict(depth=1, hidden_size=16, intermediate_size=16, num_heads=2, out_hidden_size=16),
        image_token_id=IMG,
        video_token_id=VID,
        vision_start_token_id=VS,
        vision_end_token_id=VE,
    )
    return Qwen3_5Model(cfg).eval()


def _text(n: int, seed: int) -> list[int]:
    g = torch.Generator().manual_seed(seed)
    return torch.randint(10, 60, (n,), generator=g).tolist()


def _image(h: int, w: int) -> list[int]:
    return [VS] + [IMG] * (h * w // 4) + [VE]


def _video(t: int, h: int, w: int) -> list[int]:
    out = [VS]
    for i in range(t):  # "<x.y seconds>" as a few text tokens, then the frame group
        out += _text(4, 100 + i) + [VS] + [VID] * (h * w // 4) + [VE]
    return out + [VE]


def _compare(hf_model, rows: list[list[int]], image_grid=None, video_grid=None, left_pad: bool = False):
    length = max(map(len, rows))
    ids = torch.zeros(len(rows), length, dtype=torch.long)
    mask = torch.zeros(len(rows), length, dtype=torch.long)
    for i, r in enumerate(rows):
        sl = slice(length - len(r), length) if left_pad else slice(0, len(r))
        ids[i, sl] = torch.tensor(r)
        mask[i, sl] = 1
    image_grid = torch.tensor(image_grid) if image_grid else None
    video_grid = torch.tensor(video_grid) if video_grid else None
    use_mask = mask if left_pad or len(set(map(len, rows))) > 1 else None
    types = (ids == IMG).int() + 2 * (ids == VID).int()
    ref_pos, ref_delta = hf_model.get_rope_index(
        ids, mm_token_type_ids=types, image_grid_thw=image_grid, video_grid_thw=video_grid, attention_mask=use_mask
    )
    pos, delta = get_rope_index(ids, image_grid, video_grid, use_mask, config=_config())
    assert pos.shape == (3, len(rows), length) and delta.shape == (len(rows), 1)
    assert torch.equal(pos, ref_pos)
    assert torch.equal(delta, ref_delta.view(len(rows), 1).long())
    return pos, delta


def test_rope_index_text_only(hf_model):
    pos, delta = _compare(hf_model, [_text(9, 0)])
    assert pos[:, 0].tolist() == [list(range(9))] * 3 and delta.item() == 0


def test_rope_index_one_image(hf_model):
    pos, delta = _compare(hf_model, [_text(5, 1) + _image(6, 10) + _text(7, 2)], image_grid=[[1, 6, 10]])
    # image tokens span rows 0..2 and cols 0..4 from the image start (position 6)
    assert pos[1, 0, 6:21].max().item() == 6 + 2 and pos[2, 0, 6:21].max().item() == 6 + 4
    assert delta.item() == (6 + 5 + 1 + 7) - (5 + 2 + 15 + 7)


def test_rope_index_two_images(hf_model):
    row = _text(3, 3) + _image(4, 8) + _text(2, 4) + _image(10, 2) + _text(4, 5)
    _compare(hf_model, [row], image_grid=[[1, 4, 8], [1, 10, 2]])


def test_rope_index_video(hf_model):
    row = _text(6, 6) + _video(3, 4, 6) + _text(5, 7)
    _compare(hf_model, [row], video_grid=[[3, 4, 6]])


def test_rope_index_left_padding_mixed_batch(hf_model):
    rows = [
        _text(4, 8) + _image(4, 4) + _text(3, 9),
        _text(2, 10) + _video(2, 4, 4) + _text(2, 11) + _image(2, 6) + _text(20, 12),
        _text(5, 13),
    ]
    pos, _ = _compare(hf_model, rows, image_grid=[[1, 4, 4], [1, 2, 6]], video_grid=[[2, 4, 4]], left_pad=True)
    assert pos[:, 2, : pos.shape[2] - 5].eq(0).all()  # padding gets position 0


def test_rope_index_errors_name_the_problem():
    ids = torch.tensor([[1, VS] + [IMG] * 4 + [VE]])
    with pytest.raises(ValueError, match="more image placeholder tokens than image grids"):
        get_rope_index(ids, None, None, None, config=_config())
    with pytest.raises(ValueError, match="2 image grids given but only 1"):
        get_rope_index(ids, torch.tensor([[1, 4, 4], [1, 4, 4]]), None, None, config=_config())
