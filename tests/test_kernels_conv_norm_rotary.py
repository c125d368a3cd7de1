"""Causal conv1d, RMSNorms, rotary / M-RoPE: references == transformers, Triton (interpreter) == references."""
from __future__ import annotations

import pytest
import torch

from kernel_testing import assert_close, needs_interpreter
from vlagent import kernels
from vlagent.kernels import dispatch
from vlagent.kernels.conv1d import cpu as conv_cpu
from vlagent.kernels.conv1d.cpu import causal_conv1d_cpu
from vlagent.kernels.conv1d.reference import causal_conv1d_torch, causal_conv1d_update_torch

import transformers.models.qwen3_5.modeling_qwen3_5 as hf  # noqa: E402
from transformers import Qwen3_5TextConfig  # noqa: E402


def _randn(*shape, dtype=torch.float32, seed=0):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed)).to(dtype)


# ---------------------------------------------------------------- conv1d

def _hf_conv(x, w, bias, initial_state=None):
    xt = x.transpose(1, 2)
    if initial_state is not None:  # HF prepends the cached history, then drops its outputs
        xt = torch.cat([initial_state, xt], dim=-1)
    y = hf.causal_conv1d_fn(xt, w, bias, activation="silu").transpose(1, 2)
    return y[:, -x.shape[1]:]


@pytest.mark.parametrize("conv", [causal_conv1d_torch, causal_conv1d_cpu, kernels.causal_conv1d])
@pytest.mark.parametrize("T", [1, 3, 37])
@pytest.mark.parametrize("with_state", [False, True])
def test_causal_conv1d_reference_matches_transformers(conv, T, with_state):
    B, D, W = 2, 24, 4
    x, w, bias = _randn(B, T, D), _randn(D, W, seed=1), _randn(D, seed=2)
    h0 = _randn(B, D, W - 1, seed=3) if with_state else None
    y, state = conv(x, w, bias, initial_state=h0)
    assert_close(y, _hf_conv(x, w, bias, h0))
    history = torch.cat([h0 if with_state else torch.zeros(B, D, W - 1), x.transpose(1, 2)], dim=-1)
    assert torch.equal(state, history[:, :, -(W - 1):])


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("T", [1, 2, 3, 5, 64, 100])
@pytest.mark.parametrize("with_state,with_bias,activation", [(True, False, "silu"), (False, True, None)])
def test_cpu_causal_conv1d_matches_reference(dtype, T, with_state, with_bias, activation):
    """The CPU path (row blocks of multiply-adds) against the F.conv1d reference: lengths inside and past
    the W-1 history window, blocks smaller than the window and larger than T, bf16 rounding once."""
    B, D, W = 2, 40, 4
    x, w = _randn(B, T, D, dtype=dtype, seed=T), _randn(D, W, dtype=dtype, seed=1)
    bias = _randn(D, dtype=dtype, seed=2) if with_bias else None
    h0 = _randn(B, D, W - 1, dtype=dtype, seed=3) if with_state else None
    y_ref, s_ref = causal_conv1d_torch(x, w, bias, activation, h0)
    for rows_per_block in (2, 3, 64):
        y, s = causal_conv1d_cpu(x, w, bias, activation, h0, rows_per_block=rows_per_block)
        assert y.dtype == dtype and s.dtype == dtype and s.is_contiguous()
        assert_close(y, y_ref, dtype)
        assert torch.equal(s, s_ref)
    native = conv_cpu.causal_conv1d_native(x, w, bias, activation, h0)
    for backend in ("auto", "torch"):  # the public op takes the CPU path for CPU tensors (C kernels: auto only)
        y_api, s_api = kernels.causal_conv1d(x, w, bias, activation, initial_state=h0, backend=backend)
        y_cpu = native[0] if backend == "auto" and native is not None else causal_conv1d_cpu(x, w, bias, activation, h0)[0]
        assert torch.equal(y_api, y_cpu) and torch.equal(s_api, s_ref)


@pytest.mark.parametrize("T", [1, 3, 70])
def test_native_bf16_conv_on_strided_input_matches_reference(T, monkeypatch):
    """bf16 on AVX512-BF16 CPUs takes cpu_conv.c: x as a column slice of a wider projection output
    (the DeltaNet layer's layout), history from a previous chunk, D not a multiple of 16."""
    from vlagent.kernels.conv1d import cpu as conv_cpu

    B, D, W = 2, 50, 4
    wide = _randn(B, T, D + 30, dtype=torch.bfloat16, seed=T)
    x = wide[:, :, 7 : 7 + D]  # strided: row stride D + 30
    w, bias = _randn(D, W, dtype=torch.bfloat16, seed=1), _randn(D, dtype=torch.bfloat16, seed=2)
    h0 = _randn(B, D, W - 1, dtype=torch.bfloat16, seed=3)
    calls = []
    real = conv_cpu._native_conv
    monkeypatch.setattr(conv_cpu, "_native_conv", lambda *a: calls.append(real(*a)) or calls[-1])
    y, s = kernels.causal_conv1d(x, w, bias, "silu", initial_state=h0)
    y_ref, s_ref = causal_conv1d_torch(x.contiguous(), w, bias, "silu", h0)
    # bf16 CPU inputs try the native kernel where this CPU can run it; elsewhere the PyTorch path answers alike
    assert bool(calls) == (conv_cpu.KERNEL.lib is not None), "bf16 CPU inputs should try the native kernel"
    assert torch.equal(s, s_ref)
    assert_close(y, y_ref, torch.bfloat16)
    if conv_cpu.KERNEL.lib is not None:
        assert calls[-1] is not None, "the C kernel declined these inputs"
        # fp32 accumulation, one rounding: at most one bf16 ulp from the reference
        assert ((y.float() - y_ref.float()).abs() <= y_ref.float().abs() * 2**-7 + 1e-6).all()


@pytest.mark.parametrize("with_bias,activation", [(False, "silu"), (True, None)])
def test_native_bf16_conv_update_matches_reference(with_bias, activation, monkeypatch):
    """bf16 decode steps on AVX512-BF16 CPUs take cpu_conv.c: x a strided slice of the projection row,
    the state shifted in place exactly like the reference, outputs within one bf16 rounding."""
    from vlagent.kernels.conv1d import cpu as conv_cpu

    B, D, W = 3, 37, 4
    w = _randn(D, W, dtype=torch.bfloat16, seed=1)
    bias = _randn(D, dtype=torch.bfloat16, seed=2) if with_bias else None
    state = _randn(B, D, W - 1, dtype=torch.bfloat16, seed=3)
    state_ref = state.clone()
    calls = []
    monkeypatch.setattr(dispatch, "causal_conv1d_update_torch",
                        lambda *a: calls.append(1) or causal_conv1d_update_torch(*a))
    for t in range(5):
        x = _randn(B, D + 9, dtype=torch.bfloat16, seed=10 + t)[:, 4 : 4 + D]
        y = kernels.causal_conv1d_update(x, state, w, bias, activation)
        y_ref = causal_conv1d_update_torch(x, state_ref, w, bias, activation)
        assert torch.equal(state, state_ref)
        assert ((y.float() - y_ref.float()).abs() <= y_ref.float().abs() * 2**-7 + 1e-6).all()
    if conv_cpu.KERNEL.lib is not None:
        assert not calls, "bf16 decode steps should not fall back to the reference"


def test_native_bf16_decode_steps_give_the_prompt_pass_bits():
    """Speculative verification runs the prompt conv over a few tokens where plain decoding steps
    one at a time: in bf16 the two C kernels must round identically."""
    from vlagent.kernels.conv1d import cpu as conv_cpu

    if not conv_cpu.KERNEL.lib is not None:
        pytest.skip("no C conv kernel on this CPU")
    B, T, D, W = 2, 9, 6150, 4  # ~110k outputs: any difference in rounding order shows up
    x = _randn(B, T, D, dtype=torch.bfloat16, seed=21) * 3
    w, bias = _randn(D, W, dtype=torch.bfloat16, seed=22), _randn(D, dtype=torch.bfloat16, seed=23)
    h0 = _randn(B, D, W - 1, dtype=torch.bfloat16, seed=24)
    y_prompt, s_prompt = kernels.causal_conv1d(x, w, bias, "silu", initial_state=h0)
    state = h0.clone()
    steps = torch.stack([kernels.causal_conv1d_update(x[:, t], state, w, bias, "silu") for t in range(T)], dim=1)
    assert torch.equal(steps, y_prompt) and torch.equal(state, s_prompt)


def test_causal_conv1d_update_steps_equal_prefill():
    B, T, D, W = 2, 6, 16, 4
    x, w, bias = _randn(B, T, D), _randn(D, W, seed=1), _randn(D, seed=2)
    y_full, state_full = kernels.causal_conv1d(x, w, bias)
    state = torch.zeros(B, D, W - 1)
    hf_state = torch.zeros(B, D, W - 1)
    for t in range(T):
        y_t = kernels.causal_conv1d_update(x[:, t], state, w, bias)
        y_hf = hf.causal_conv1d_update(x[:, t, :, None], hf_state, w, bias, activation="silu")[..., 0]
        assert_close(y_t, y_full[:, t])
        assert_close(y_t, y_hf)
    assert torch.equal(state, state_full)
    with pytest.raises(ValueError, match="conv_state"):
        kernels.causal_conv1d_update(x[:, 0], torch.zeros(B, D, W), w)


@needs_interpreter("conv1d")
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("T,with_state,with_bias", [(1, True, True), (2, False, False), (45, True, False)])
def test_triton_causal_conv1d_matches_reference(dtype, T, with_state, with_bias):
    B, D, W = 2, 80, 4
    x, w = _randn(B, T, D, dtype=dtype), _randn(D, W, dtype=dtype, seed=1)
    bias = _randn(D, dtype=dtype, seed=2) if with_bias else None
    h0 = _randn(B, D, W - 1, dtype=dtype, seed=3) if with_state else None
    y, s = kernels.causal_conv1d(x, w, bias, initial_state=h0, backend="triton")
    y_ref, s_ref = kernels.causal_conv1d(x, w, bias, initial_state=h0, backend="torch")
    assert y.dtype == dtype
    assert_close(y, y_ref, dtype)
    assert torch.equal(s, s_ref)
    state, state_ref = (h0 if with_state else torch.zeros(B, D, W - 1, dtype=dtype)).clone(), None
    state_ref = state.clone()
    for t in range(min(T, 3)):
        y_t = kernels.causal_conv1d_update(x[:, t], state, w, bias, backend="triton")
        y_t_ref = kernels.causal_conv1d_update(x[:, t], state_ref, w, bias, backend="torch")
        assert_close(y_t, y_t_ref, dtype)
        assert torch.equal(state, state_ref)


# ---------------------------------------------------------------- norms

@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_norm_references_match_transformers_exactly(dtype):
    x, z = _randn(3, 5, 64, dtype=dtype), _randn(3, 5, 64, dtype=dtype, seed=1)
    norm = hf.Qwen3_5RMSNorm(64, eps=1e-6)
    gated = hf.Qwen3_5RMSNormGated(64, eps=1e-6)
    with torch.no_grad():
        norm.weight.copy_(_randn(64, seed=2))
        gated.weight.copy_(_randn(64, seed=3))
    norm, gated = norm.to(dtype), gated.to(dtype)
    with torch.no_grad():
        assert torch.equal(kernels.rms_norm(x, norm.weight), norm(x))
        assert torch.equal(kernels.gated_rms_norm(x, z, gated.weight), gated(x, z))
        # fp32 weight with bf16 activations: the product is promoted, as in HF
        gated32 = hf.Qwen3_5RMSNormGated(64)
        gated32.weight.copy_(_randn(64, seed=4))
        assert torch.equal(kernels.gated_rms_norm(x, z, gated32.weight), gated32(x, z))


@needs_interpreter("norm")
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("shape", [(1, 16), (3, 7, 100), (33, 256)])
def test_triton_norms_match_reference(dtype, shape):
    x, z = _randn(*shape, dtype=dtype), _randn(*shape, dtype=dtype, seed=1)
    w = _randn(shape[-1], dtype=dtype, seed=2)
    for zero_centered in (True, False):
        y = kernels.rms_norm(x, w, zero_centered=zero_centered, backend="triton")
        assert y.dtype == dtype and y.shape == x.shape
        assert_close(y, kernels.rms_norm(x, w, zero_centered=zero_centered, backend="torch"), dtype)
    for weight in (w, w.float()):
        y = kernels.gated_rms_norm(x, z, weight, backend="triton")
        assert_close(y, kernels.gated_rms_norm(x, z, weight, backend="torch"), dtype)


# ---------------------------------------------------------------- rotary

def _hf_rope(head_dim=32, partial=0.5, section=(4, 2, 2)):
    config = Qwen3_5TextConfig(head_dim=head_dim, hidden_size=64, num_attention_heads=2,
                               rope_parameters={"rope_type": "default", "rope_theta": 10000.0,
                                                "partial_rotary_factor": partial, "mrope_section": list(section)})
    return hf.Qwen3_5TextRotaryEmbedding(config)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_mrope_cos_sin_and_rotary_match_transformers(dtype):
    rope = _hf_rope()
    B, T = 2, 9
    pos = torch.randint(0, 40, (3, B, T), generator=torch.Generator().manual_seed(0))
    x = torch.zeros(1, dtype=dtype)
    cos_hf, sin_hf = rope(x, pos)
    cos, sin = kernels.mrope_cos_sin(pos, rope.inv_freq, rope.mrope_section, dtype=dtype)
    assert torch.equal(cos, cos_hf) and torch.equal(sin, sin_hf)
    # text-only positions ([B,T] or equal rows) reduce to plain 1-D RoPE
    c1, _ = kernels.mrope_cos_sin(pos[0], rope.inv_freq, rope.mrope_section)
    assert_close(c1[..., :8], (pos[0, ..., None].float() * rope.inv_freq).cos())
    q, k = _randn(B, T, 4, 32, dtype=dtype), _randn(B, T, 2, 32, dtype=dtype, seed=1)
    q_hf, k_hf = hf.apply_rotary_pos_emb(q, k, cos_hf, sin_hf, unsqueeze_dim=2)
    q_out, k_out = kernels.apply_rotary(q, k, cos, sin)
    assert torch.equal(q_out, q_hf) and torch.equal(k_out, k_hf)


@needs_interpreter("rotary")
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("D,R", [(32, 32), (32, 16), (24, 8)])
def test_triton_rotary_matches_reference(dtype, D, R):
    B, T = 2, 5
    q, k = _randn(B, T, 3, D, dtype=dtype), _randn(B, T, 1, D, dtype=dtype, seed=1)
    pos = torch.arange(T).expand(3, B, T)
    inv_freq = 1.0 / (10000 ** (torch.arange(0, R, 2).float() / R))
    half = R // 2
    cos, sin = kernels.mrope_cos_sin(pos, inv_freq, [half - 2 * (half // 3), half // 3, half // 3], dtype=dtype)
    q_t, k_t = kernels.apply_rotary(q, k, cos, sin, backend="triton")
    q_r, k_r = kernels.apply_rotary(q, k, cos, sin, backend="torch")
    assert_close(q_t, q_r, dtype)
    assert_close(k_t, k_r, dtype)
    assert torch.equal(q_t[..., R:], q[..., R:])


@pytest.mark.parametrize("head_dim,partial,section", [
    (32, 0.5, (11, 11, 10)),  # the released default with a tiny head: sections overrun R/2 = 8
    (32, 0.25, (11, 11, 10)),  # R/2 = 4: only slot 1 (h) and slot 2 (w) leave the temporal axis
    (64, 1.0, (2, 1, 1)),  # sections short of R/2 = 32: the remaining slots stay temporal
])
def test_mrope_sections_not_summing_to_half_match_transformers(head_dim, partial, section):
    rope = _hf_rope(head_dim, partial, section)
    pos = torch.randint(0, 50, (3, 2, 7), generator=torch.Generator().manual_seed(3))
    cos_hf, sin_hf = rope(torch.zeros(1), pos)
    cos, sin = kernels.mrope_cos_sin(pos, rope.inv_freq, rope.mrope_section)
    assert cos.shape == cos_hf.shape == (2, 7, int(head_dim * partial))
    assert torch.equal(cos, cos_hf) and torch.equal(sin, sin_hf)
    # the three axes really are mixed (otherwise the comparison above would prove little)
    t_only, _ = kernels.mrope_cos_sin(pos[0], rope.inv_freq, rope.mrope_section)
    assert not torch.equal(cos, t_only)


def test_rotary_bad_inputs():
    q = torch.zeros(1, 2, 2, 8)
    with pytest.raises(ValueError, match="rotary dim"):
        kernels.apply_rotary(q, q, torch.zeros(1, 2, 10), torch.zeros(1, 2, 10))
    with pytest.raises(ValueError, match="mrope_section"):
        kernels.mrope_cos_sin(torch.zeros(3, 1, 2), torch.ones(4), [1, 1, 1], interleaved=False)
    with pytest.raises(ValueError, match="mrope_section"):
        kernels.mrope_cos_sin(torch.zeros(3, 1, 2), torch.ones(4), [1, 1])


# ---------------------------------------------------------------- vision rotary, in place (rotate_half_)

def _vision_rotary_inputs(n: int, H: int, D: int, seed: int):
    g = torch.Generator().manual_seed(seed)
    qkv = (torch.randn(n, 3, H, D, generator=g) * 3).bfloat16()
    angles = torch.rand(n, D // 2, generator=g) * 50
    angles = torch.cat([angles, angles], dim=-1)  # the tower's tables repeat their first half
    return qkv, angles.cos(), angles.sin()


@pytest.mark.parametrize("n,H,D", [(1, 1, 64), (37, 12, 64), (20, 3, 72), (9, 2, 16), (5, 1, 2)])
def test_rotate_half_inplace_matches_fp32_reference(n, H, D):
    from vlagent.kernels.rotary import cpu as rotary_cpu
    from vlagent.kernels.rotary.reference import rotate_half_fp32

    qkv, cos, sin = _vision_rotary_inputs(n, H, D, seed=n * D)
    expected = rotate_half_fp32(qkv[:, :2], cos, sin).bfloat16()
    v_before = qkv[:, 2].clone()
    kernels.rotate_half_(qkv[:, :2], cos, sin)  # strided view of the fused qkv buffer
    if rotary_cpu.cpu_rotary_available():
        # the fused pass computes the same fp32 products and rounds once: identical bits
        assert torch.equal(qkv[:, :2], expected)
    else:
        assert torch.allclose(qkv[:, :2].float(), expected.float(), atol=0, rtol=0)
    assert torch.equal(qkv[:, 2], v_before)  # v untouched


def test_rotate_half_inplace_fp32_and_torch_backend_use_the_reference():
    from vlagent.kernels.rotary.reference import rotate_half_fp32

    qkv, cos, sin = _vision_rotary_inputs(11, 2, 64, seed=1)
    x = qkv.float()
    expected = rotate_half_fp32(x[:, :2], cos, sin)
    kernels.rotate_half_(x[:, :2], cos, sin)
    assert torch.equal(x[:, :2], expected)
    y = qkv.clone()
    kernels.rotate_half_(y[:, :2], cos, sin, backend="torch")
    assert torch.equal(y[:, :2], rotate_half_fp32(qkv[:, :2], cos, sin).bfloat16())


def test_rotate_half_inplace_errors_name_the_problem():
    qkv, cos, sin = _vision_rotary_inputs(4, 1, 64, seed=2)
    with pytest.raises(ValueError, match="cos/sin must be"):
        kernels.rotate_half_(qkv[:, :2], cos[:3], sin[:3])
    with pytest.raises(ValueError, match="D even"):
        kernels.rotate_half_(torch.zeros(4, 2, 63, dtype=torch.bfloat16), cos, sin)
    with pytest.raises(ValueError, match="no Triton kernel"):
        kernels.rotate_half_(qkv[:, :2], cos, sin, backend="triton")


@pytest.mark.parametrize("D", [1, 40, 128, 1024])
def test_native_bf16_norms_match_the_reference(D):
    """bf16 rows on AVX512 CPUs take cpu_norm.c: HF's roundings, fp32 row sums in another order, so at
    most one bf16 rounding step from the reference; strided rows (z sliced out of a projection)."""
    from vlagent.kernels.norm import cpu as norm_cpu
    from vlagent.kernels.norm.reference import gated_rms_norm_torch, rms_norm_torch

    def within_one_step(y, ref):
        assert y.dtype == torch.bfloat16 and y.shape == ref.shape
        assert ((y.float() - ref.float()).abs() <= ref.float().abs() * 2**-7 + 1e-6).all()

    x = _randn(2, 3, D, dtype=torch.bfloat16, seed=D) * 3
    w = _randn(D, dtype=torch.bfloat16, seed=1)
    for zero_centered in (True, False):
        y = kernels.rms_norm(x, w, 1e-6, zero_centered=zero_centered)
        within_one_step(y, rms_norm_torch(x, w, 1e-6, zero_centered))
        assert torch.equal(kernels.rms_norm(x, w, 1e-6, zero_centered=zero_centered, backend="torch"),
                           rms_norm_torch(x, w, 1e-6, zero_centered))
    proj = _randn(2, 3, 2 * D + 5, dtype=torch.bfloat16, seed=2)
    z = proj[..., D + 3 : 2 * D + 3]  # strided rows
    within_one_step(kernels.gated_rms_norm(x, z, w, 1e-6), gated_rms_norm_torch(x, z, w, 1e-6))
    if norm_cpu.KERNEL.lib is not None:
        assert norm_cpu.rms_norm_cpu(x, w, 1e-6, True) is not None
        assert norm_cpu.gated_rms_norm_cpu(x, z, w, 1e-6) is not None
