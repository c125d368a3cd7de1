"""Gated delta rule: naive recurrence == transformers == chunked reference == Triton (interpreter)."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from kernel_testing import assert_close, gdn_inputs, needs_interpreter
from vlagent import kernels
from vlagent.kernels.gated_delta_rule import cpu as gdn_cpu
from vlagent.kernels.gated_delta_rule.cpu import (
    chunk_gated_delta_rule_cpu,
    gated_delta_decode_step_inplace,
    gated_delta_decode_step_native,
    unit_lower_inverse,
)
from vlagent.kernels.gated_delta_rule.naive import naive_recurrent_gated_delta_rule
from vlagent.kernels.gated_delta_rule.reference import chunk_gated_delta_rule_torch, gated_delta_decode_step_torch

import transformers.models.qwen3_5.modeling_qwen3_5 as hf  # noqa: E402


def _expand(x, groups):
    return x.repeat_interleave(groups, dim=2)


def _packed(tensors):
    """[B, T, ...] -> [1, B*T, ...] (used with explicit cu_seqlens)."""
    return [t.reshape(1, -1, *t.shape[2:]) for t in tensors]


# ---------------------------------------------------------------- references agree with each other and HF

@pytest.mark.parametrize("T", [1, 63, 64, 130])
@pytest.mark.parametrize("groups", [1, 2])
def test_chunk_reference_matches_naive_and_transformers(T, groups):
    q, k, v, g, beta, h0 = gdn_inputs(2, T, 2, 2 * groups, 16, 24, with_state=True, seed=T)
    kw = dict(initial_state=h0, output_final_state=True, use_qk_l2norm_in_kernel=True)
    o_naive, s_naive = naive_recurrent_gated_delta_rule(q, k, v, g, beta, **kw)
    o_ref, s_ref = chunk_gated_delta_rule_torch(q, k, v, g, beta, **kw)
    assert_close(o_ref, o_naive)
    assert_close(s_ref, s_naive)
    # transformers expects q/k already expanded to the value heads only for its own grouping; it repeats itself
    o_hf, s_hf = hf.torch_chunk_gated_delta_rule(q, k, v, g, beta, **kw)
    assert_close(o_ref, o_hf)
    assert_close(s_ref, s_hf)
    o_hf_rec, s_hf_rec = hf.torch_recurrent_gated_delta_rule(q, k, v, g, beta, **kw)
    assert_close(o_naive, o_hf_rec)
    assert_close(s_naive, s_hf_rec)


def test_naive_recurrence_is_the_definition():
    """One explicit step, written out for a single head, equals the naive function."""
    q, k, v, g, beta, h0 = gdn_inputs(1, 1, 1, 1, 16, 16, with_state=True, seed=3)
    scale = 0.3
    o, s = naive_recurrent_gated_delta_rule(q, k, v, g, beta, scale=scale, initial_state=h0, output_final_state=True)
    S = h0[0, 0] * g[0, 0, 0].exp()
    kt, vt, qt = k[0, 0, 0], v[0, 0, 0], q[0, 0, 0]
    S = S + torch.outer(kt, beta[0, 0, 0] * (vt - S.T @ kt))
    assert_close(s[0, 0], S)
    assert_close(o[0, 0, 0], S.T @ (qt * scale))


def test_cu_seqlens_equals_separate_sequences():
    lengths = [5, 1, 70, 64]
    cu = torch.tensor([0, *torch.tensor(lengths).cumsum(0).tolist()])
    q, k, v, g, beta, h0 = gdn_inputs(1, sum(lengths), 2, 4, 16, 16, with_state=True, N=len(lengths), seed=7)
    kw = dict(output_final_state=True, use_qk_l2norm_in_kernel=True)
    o, s = chunk_gated_delta_rule_torch(q, k, v, g, beta, initial_state=h0, cu_seqlens=cu, **kw)
    for i, (a, b) in enumerate(zip(cu[:-1].tolist(), cu[1:].tolist())):
        piece = [t[:, a:b] for t in (q, k, v, g, beta)]
        o_i, s_i = naive_recurrent_gated_delta_rule(*piece, initial_state=h0[i : i + 1], **kw)
        assert_close(o[:, a:b], o_i)
        assert_close(s[i : i + 1], s_i)


# ---------------------------------------------------------------- CPU fast path == references

@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize(
    "B,T,H,HV,K,V,with_state,l2norm,scale",
    [
        (2, 100, 2, 4, 16, 24, True, True, None),  # several chunks, partial last one, grouped heads, batch
        (1, 64, 2, 2, 8, 8, True, True, None),  # exactly one chunk
        (1, 1, 2, 6, 16, 8, True, True, None),  # one token, 3 value heads per q/k head
        (2, 130, 1, 2, 32, 16, False, False, 0.1),  # no initial state, no l2norm (pre-normalised q, k)
        (1, 129, 2, 2, 16, 16, False, True, 0.3),  # one token past two chunks
    ],
)
def test_cpu_chunk_matches_reference_and_naive(dtype, B, T, H, HV, K, V, with_state, l2norm, scale):
    q, k, v, g, beta, h0 = gdn_inputs(B, T, H, HV, K, V, dtype=dtype, with_state=with_state, seed=T + HV)
    if not l2norm:
        q, k = (F.normalize(t.float(), dim=-1).to(dtype) for t in (q, k))
    kw = dict(scale=scale, initial_state=h0, output_final_state=True, use_qk_l2norm_in_kernel=l2norm)
    o, s = chunk_gated_delta_rule_cpu(q, k, v, g, beta, **kw)
    o_ref, s_ref = chunk_gated_delta_rule_torch(q, k, v, g, beta, **kw)
    o_naive, s_naive = naive_recurrent_gated_delta_rule(q, k, v, g, beta, **kw)
    assert o.dtype == dtype and o.shape == v.shape and o.is_contiguous()
    assert s.dtype == torch.float32 and s.shape == (B, HV, K, V)
    assert_close(o, o_ref, dtype)
    assert_close(s, s_ref)
    assert_close(o, o_naive, dtype)
    assert_close(s, s_naive)
    if h0 is not None:
        assert torch.equal(h0, gdn_inputs(B, T, H, HV, K, V, dtype=dtype, with_state=True, seed=T + HV)[5])
    # the public op takes this path for CPU tensors ("auto" and "torch")
    for backend in ("auto", "torch"):
        o_api, s_api = kernels.chunk_gated_delta_rule(q, k, v, g, beta, backend=backend, **kw)
        assert torch.equal(o_api, o) and torch.equal(s_api, s)


def test_cpu_chunk_strong_and_positive_decays_stay_finite_and_exact():
    """Decay exponents are clamped at -80 on the CPU path (fp32 subnormals are slow); strong decays must
    still match the reference, and a positive log decay (not clamped to 0) too."""
    q, k, v, g, beta, h0 = gdn_inputs(1, 70, 2, 2, 16, 16, with_state=True, seed=11)
    for gate in (g * 60.0, g.abs() * 0.01):
        kw = dict(initial_state=h0, output_final_state=True, use_qk_l2norm_in_kernel=True)
        o, s = chunk_gated_delta_rule_cpu(q, k, v, gate, beta, **kw)
        o_ref, s_ref = naive_recurrent_gated_delta_rule(q, k, v, gate, beta, **kw)
        assert torch.isfinite(o).all() and torch.isfinite(s).all()
        assert_close(o, o_ref, scale=5.0)
        assert_close(s, s_ref, scale=5.0)


def test_public_chunk_with_cu_seqlens_falls_back_to_the_reference():
    lengths = [3, 66]
    cu = torch.tensor([0, 3, 69])
    q, k, v, g, beta, h0 = gdn_inputs(1, sum(lengths), 2, 2, 16, 16, with_state=True, N=2, seed=5)
    kw = dict(initial_state=h0, output_final_state=True, use_qk_l2norm_in_kernel=True, cu_seqlens=cu)
    o, s = kernels.chunk_gated_delta_rule(q, k, v, g, beta, **kw)
    o_ref, s_ref = chunk_gated_delta_rule_torch(q, k, v, g, beta, **kw)
    assert torch.equal(o, o_ref) and torch.equal(s, s_ref)


def test_unit_lower_inverse():
    m = torch.randn(3, 5, 64, 64, dtype=torch.float64, generator=torch.Generator().manual_seed(0)) * 0.3
    inv = unit_lower_inverse(m)
    eye = torch.eye(64, dtype=torch.float64)
    unit_lower = m.tril(-1) + eye
    assert inv.shape == m.shape
    assert torch.allclose(inv @ unit_lower, eye.expand_as(inv), atol=1e-8)
    assert torch.equal(inv.triu(1), torch.zeros_like(inv))
    small = torch.randn(4, 8, 8, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    assert torch.allclose(unit_lower_inverse(small), torch.linalg.inv(small.tril(-1) + torch.eye(8, dtype=torch.float64)))
    with pytest.raises(ValueError, match="power of two"):
        unit_lower_inverse(torch.zeros(2, 6, 6))


def test_public_api_picks_torch_on_cpu_and_fused_recurrent_matches_chunk():
    q, k, v, g, beta, h0 = gdn_inputs(2, 40, 2, 4, 16, 32, with_state=True)
    kw = dict(initial_state=h0, output_final_state=True, use_qk_l2norm_in_kernel=True, scale=0.2)
    o1, s1 = kernels.chunk_gated_delta_rule(q, k, v, g, beta, **kw)
    o2, s2 = kernels.fused_recurrent_gated_delta_rule(q, k, v, g, beta, **kw)
    assert_close(o1, o2)
    assert_close(s1, s2)
    o3, s3 = kernels.chunk_gated_delta_rule(q, k, v, g, beta, use_qk_l2norm_in_kernel=True, scale=0.2)
    assert s3 is None and o3.shape == v.shape


def test_decode_step_torch_matches_hf_gating_and_recurrence():
    B, H, HV, K, V = 3, 2, 4, 16, 16
    gen = torch.Generator().manual_seed(1)
    q, k = torch.randn(B, H, K, generator=gen), torch.randn(B, H, K, generator=gen)
    v = torch.randn(B, HV, V, generator=gen)
    a, b = torch.randn(B, HV, generator=gen), torch.randn(B, HV, generator=gen)
    A_log, dt_bias = torch.randn(HV, generator=gen), torch.randn(HV, generator=gen)
    state = torch.randn(B, HV, K, V, generator=gen)
    g = -A_log.float().exp() * F.softplus(a.float() + dt_bias)
    beta = b.sigmoid()
    o_hf, s_hf = hf.torch_recurrent_gated_delta_rule(
        q[:, None], k[:, None], v[:, None], g[:, None], beta[:, None],
        initial_state=state, output_final_state=True, use_qk_l2norm_in_kernel=True)
    s = state.clone()
    o = kernels.gated_delta_decode_step(q, k, v, a, b, A_log, dt_bias, s)
    assert_close(o, o_hf[:, 0])
    assert_close(s, s_hf)


def _decode_inputs(B, H, HV, K, V, dtype, seed):
    gen = torch.Generator().manual_seed(seed)
    q, k = torch.randn(B, H, K, generator=gen).to(dtype), torch.randn(B, H, K, generator=gen).to(dtype)
    v = torch.randn(B, HV, V, generator=gen).to(dtype)
    a, b = torch.randn(B, HV, generator=gen).to(dtype), torch.randn(B, HV, generator=gen).to(dtype)
    A_log, dt_bias = torch.randn(HV, generator=gen).to(dtype), torch.randn(HV, generator=gen).to(dtype)
    return q, k, v, a, b, A_log, dt_bias


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("H,HV,K,V,l2norm,scale", [(2, 4, 16, 24, True, None), (3, 3, 32, 16, False, 0.3)])
def test_inplace_decode_step_matches_einsum_reference(dtype, H, HV, K, V, l2norm, scale):
    """The dispatched CPU path (in place) == the einsum reference, over several steps, state in place."""
    B = 3
    state = torch.randn(B, HV, K, V, generator=torch.Generator().manual_seed(9)) * 0.1
    s_ref, s_fast, s_api, s_torch = state.clone(), state.clone(), state.clone(), state.clone()
    for step in range(3):
        args = _decode_inputs(B, H, HV, K, V, dtype, seed=step)
        if not l2norm:  # keep the un-normalised recurrence bounded
            args = (F.normalize(args[0].float(), dim=-1).to(dtype), F.normalize(args[1].float(), dim=-1).to(dtype),
                    *args[2:])
        o_ref = gated_delta_decode_step_torch(*args, s_ref, scale, l2norm)
        # what auto runs on CPU: the C kernel where it covers the inputs, else the in-place PyTorch step
        o_fast = gated_delta_decode_step_native(*args, s_fast, scale, l2norm)
        if o_fast is None:
            o_fast = gated_delta_decode_step_inplace(*args, s_fast, scale, l2norm)
        o_api = kernels.gated_delta_decode_step(*args, s_api, scale, l2norm)
        o_torch = kernels.gated_delta_decode_step(*args, s_torch, scale, l2norm, backend="torch")
        for o, s in ((o_fast, s_fast), (o_torch, s_torch)):
            assert o.dtype == dtype
            torch.testing.assert_close(o.float(), o_ref.float(), atol=1e-5, rtol=1e-5)
            torch.testing.assert_close(s, s_ref, atol=1e-5, rtol=1e-5)
        assert torch.equal(o_api, o_fast) and torch.equal(s_api, s_fast)


def test_native_bf16_decode_step_on_the_model_layout(monkeypatch):
    """bf16 on AVX512 CPUs takes cpu_decode.c: q/k/v/a/b as slices of one projection row (the layer's
    layout), grouped value heads, strong and weak decays, several steps with the state in place."""
    B, H, HV, K, V = 3, 2, 4, 32, 48
    taken = []
    real = gdn_cpu.gated_delta_decode_step_native
    monkeypatch.setattr(gdn_cpu, "gated_delta_decode_step_native", lambda *a: taken.append(real(*a)) or taken[-1])
    gen = torch.Generator().manual_seed(11)
    state = torch.randn(B, HV, K, V, generator=gen) * 0.1
    s_ref = state.clone()
    A_log = torch.tensor([-2.0, 0.0, 2.0, 3.5]).bfloat16()  # decays from ~0.9 to ~e^-60 per token
    dt_bias = torch.randn(HV, generator=gen).bfloat16()
    for step in range(3):
        row = torch.randn(B, 2 * H * K + HV * V + 2 * HV + 5, generator=gen).bfloat16()
        q = row[:, : H * K].view(B, H, K)
        k = row[:, H * K : 2 * H * K].view(B, H, K)
        v = row[:, 2 * H * K : 2 * H * K + HV * V].view(B, HV, V)
        b = row[:, 2 * H * K + HV * V :][:, :HV]
        a = row[:, 2 * H * K + HV * V + HV :][:, :HV]
        o_ref = gated_delta_decode_step_torch(q, k, v, a, b, A_log, dt_bias, s_ref)
        o = kernels.gated_delta_decode_step(q, k, v, a, b, A_log, dt_bias, state)
        torch.testing.assert_close(state, s_ref, atol=1e-5, rtol=1e-5)
        # fp32 sums in another order: at most one bf16 rounding step apart
        assert ((o.float() - o_ref.float()).abs() <= o_ref.float().abs() * 2**-7 + 1e-6).all()
    if gdn_cpu.KERNEL.lib is not None:
        assert len(taken) == 3 and all(o is not None for o in taken), "the C kernel declined these inputs"


def test_inplace_decode_step_updates_a_non_contiguous_state():
    args = _decode_inputs(2, 2, 2, 16, 16, torch.float32, seed=0)
    storage = torch.randn(2, 2, 16, 32, generator=torch.Generator().manual_seed(1)) * 0.1
    state = storage[..., :16]  # a strided view: updated through the copy-back
    expected = state.clone()
    o_ref = gated_delta_decode_step_torch(*args, expected)
    o = gated_delta_decode_step_inplace(*args, state)
    torch.testing.assert_close(o, o_ref, atol=1e-6, rtol=1e-6)
    torch.testing.assert_close(storage[..., :16], expected, atol=1e-6, rtol=1e-6)


def test_decode_step_beta_rounds_like_transformers_in_bf16():
    """transformers computes beta = b.sigmoid() in the model dtype; the decode step does the same."""
    B, H, HV, K, V = 2, 2, 2, 16, 16
    q, k, v, a, b, A_log, dt_bias = _decode_inputs(B, H, HV, K, V, torch.bfloat16, seed=4)
    state = torch.randn(B, HV, K, V, generator=torch.Generator().manual_seed(5)) * 0.1
    g = -A_log.float().exp() * F.softplus(a.float() + dt_bias)
    o_hf, s_hf = hf.torch_recurrent_gated_delta_rule(
        q[:, None], k[:, None], v[:, None], g[:, None], b.sigmoid()[:, None],
        initial_state=state, output_final_state=True, use_qk_l2norm_in_kernel=True)
    for step in (gated_delta_decode_step_torch, gated_delta_decode_step_inplace):
        s = state.clone()
        o = step(q, k, v, a, b, A_log, dt_bias, s)
        torch.testing.assert_close(s, s_hf, atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(o.float(), o_hf[:, 0].float(), atol=1e-2, rtol=1e-2)


def test_bad_inputs_get_clear_errors(monkeypatch):
    q, k, v, g, beta, _ = gdn_inputs(2, 8, 2, 3, 16, 16)
    with pytest.raises(ValueError, match="multiple"):
        kernels.chunk_gated_delta_rule(q, k, v, g, beta)
    q, k, v, g, beta, _ = gdn_inputs(2, 8, 2, 4, 16, 16)
    with pytest.raises(ValueError, match="batch size must be 1"):
        kernels.chunk_gated_delta_rule(q, k, v, g, beta, cu_seqlens=torch.tensor([0, 8]))
    with pytest.raises(ValueError, match="initial_state"):
        kernels.chunk_gated_delta_rule(q, k, v, g, beta, initial_state=torch.zeros(1, 4, 16, 16))
    with pytest.raises(ValueError, match="backend"):
        kernels.chunk_gated_delta_rule(q, k, v, g, beta, backend="cuda")
    monkeypatch.setenv("TRITON_INTERPRET", "0")
    with pytest.raises(RuntimeError, match="TRITON_INTERPRET"):
        kernels.chunk_gated_delta_rule(q, k, v, g, beta, backend="triton")


# ---------------------------------------------------------------- Triton (interpreter) vs references

@needs_interpreter("gdn_chunk")
@pytest.mark.parametrize(
    "B,T,H,HV,K,V,dtype,with_state",
    [
        (1, 1, 1, 1, 16, 16, torch.float32, False),
        (2, 65, 2, 4, 16, 32, torch.float32, True),
        (1, 130, 1, 2, 32, 16, torch.float32, True),
        (2, 70, 2, 2, 16, 16, torch.bfloat16, True),
    ],
)
def test_triton_chunk_matches_reference(B, T, H, HV, K, V, dtype, with_state):
    q, k, v, g, beta, h0 = gdn_inputs(B, T, H, HV, K, V, dtype=dtype, with_state=with_state, seed=T)
    kw = dict(initial_state=h0, output_final_state=True, use_qk_l2norm_in_kernel=True)
    o, s = kernels.chunk_gated_delta_rule(q, k, v, g, beta, backend="triton", **kw)
    o_ref, s_ref = chunk_gated_delta_rule_torch(q, k, v, g, beta, **kw)
    assert o.dtype == v.dtype and s.dtype == torch.float32
    assert_close(o, o_ref, dtype)
    assert_close(s, s_ref, dtype)


@needs_interpreter("gdn_chunk")
def test_triton_chunk_varlen_without_l2norm_and_custom_scale():
    lengths = [3, 64, 1, 66]
    cu = torch.tensor([0, *torch.tensor(lengths).cumsum(0).tolist()])
    q, k, v, g, beta, h0 = gdn_inputs(1, sum(lengths), 2, 4, 16, 16, with_state=True, N=len(lengths), seed=11)
    k = F.normalize(k, dim=-1)  # keep the un-normalized recurrence bounded
    kw = dict(scale=0.5, initial_state=h0, output_final_state=True, cu_seqlens=cu)
    o, s = kernels.chunk_gated_delta_rule(q, k, v, g, beta, backend="triton", **kw)
    o_ref, s_ref = naive_recurrent_gated_delta_rule(q, k, v, g, beta, **kw)
    assert_close(o, o_ref)
    assert_close(s, s_ref)


@needs_interpreter("gdn_recurrent")
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_triton_fused_recurrent_matches_naive(dtype):
    q, k, v, g, beta, h0 = gdn_inputs(2, 9, 2, 4, 16, 24, dtype=dtype, with_state=True)
    kw = dict(initial_state=h0, output_final_state=True, use_qk_l2norm_in_kernel=True)
    o, s = kernels.fused_recurrent_gated_delta_rule(q, k, v, g, beta, backend="triton", **kw)
    o_ref, s_ref = naive_recurrent_gated_delta_rule(q, k, v, g, beta, **kw)
    assert_close(o, o_ref, dtype)
    assert_close(s, s_ref, dtype)
    lengths = [4, 1, 13]
    cu = torch.tensor([0, 4, 5, 18])
    q, k, v, g, beta, h0 = gdn_inputs(1, 18, 1, 2, 16, 16, dtype=dtype, with_state=True, N=3, seed=5)
    kw = dict(initial_state=h0, output_final_state=True, use_qk_l2norm_in_kernel=True, cu_seqlens=cu)
    o, s = kernels.fused_recurrent_gated_delta_rule(q, k, v, g, beta, backend="triton", **kw)
    o_ref, s_ref = naive_recurrent_gated_delta_rule(q, k, v, g, beta, **kw)
    assert sum(lengths) == o.shape[1]
    assert_close(o, o_ref, dtype)
    assert_close(s, s_ref, dtype)


@needs_interpreter("gdn_recurrent")
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_triton_decode_steps_continue_a_chunked_prefill(dtype):
    """Prefill 20 tokens (chunked), then decode 3 one at a time == one 23-token pass."""
    B, T, H, HV, K, V = 2, 23, 2, 4, 16, 16
    gen = torch.Generator().manual_seed(2)
    q, k = torch.randn(B, T, H, K, generator=gen).to(dtype), torch.randn(B, T, H, K, generator=gen).to(dtype)
    v = torch.randn(B, T, HV, V, generator=gen).to(dtype)
    a, b = torch.randn(B, T, HV, generator=gen).to(dtype), torch.randn(B, T, HV, generator=gen).to(dtype)
    A_log, dt_bias = torch.randn(HV, generator=gen), torch.randn(HV, generator=gen)
    g = -A_log.exp() * F.softplus(a.float() + dt_bias)
    beta = b.sigmoid().float()  # the decode step rounds beta to b's dtype, as transformers does
    o_all, s_all = naive_recurrent_gated_delta_rule(q, k, v, g, beta, output_final_state=True,
                                                    use_qk_l2norm_in_kernel=True)
    _, state = kernels.chunk_gated_delta_rule(q[:, :20], k[:, :20], v[:, :20], g[:, :20], beta[:, :20],
                                              output_final_state=True, use_qk_l2norm_in_kernel=True)
    for t in range(20, T):
        o_t = kernels.gated_delta_decode_step(q[:, t], k[:, t], v[:, t], a[:, t], b[:, t], A_log, dt_bias, state,
                                              backend="triton")
        assert o_t.dtype == dtype
        assert_close(o_t, o_all[:, t], dtype)
    assert_close(state, s_all, dtype)


# ---------------------------------------------------------------- GPUs with less shared memory

class _SharedMemoryHolds:
    """Stands in for a GPU whose shared memory holds only the launches `fits` accepts: the others raise
    what Triton raises before such a launch (OutOfResources); the rest run in the interpreter."""

    def __init__(self, kernel, fits):
        self.kernel, self.fits, self.launches = kernel, fits, []

    def __getitem__(self, grid):
        from triton.runtime.errors import OutOfResources

        def launch(*args, **kwargs):
            self.launches.append(kwargs)
            if not self.fits(kwargs):
                raise OutOfResources(165_888, 101_376, "shared memory")
            return self.kernel[grid](*args, **kwargs)
        return launch


@needs_interpreter("gdn_chunk")
def test_triton_chunk_takes_the_first_state_pass_option_that_fits(monkeypatch):
    """A 99 KB card (RTX 40-series): fp32 dot operands do not fit, so the state pass is launched with
    operands in the input dtype, still matching the reference at bf16 tolerance; the choice is kept."""
    import triton.language as tl

    from vlagent.kernels.gated_delta_rule import chunk

    fake = _SharedMemoryHolds(chunk._chunk_state_kernel, lambda kw: kw["ROUND_DT"] != tl.float32)
    monkeypatch.setattr(chunk, "_chunk_state_kernel", fake)
    monkeypatch.setattr(chunk, "_FITTING_OPTION", {})
    q, k, v, g, beta, h0 = gdn_inputs(1, 130, 2, 4, 32, 32, dtype=torch.bfloat16, with_state=True, seed=3)
    kw = dict(initial_state=h0, output_final_state=True, use_qk_l2norm_in_kernel=True)
    o, s = kernels.chunk_gated_delta_rule(q, k, v, g, beta, backend="triton", **kw)
    o_ref, s_ref = chunk_gated_delta_rule_torch(q, k, v, g, beta, **kw)
    assert [(launch["ROUND_DT"], launch["num_stages"]) for launch in fake.launches] == [
        (tl.float32, 2), (tl.float32, 1), (tl.bfloat16, 2)]
    assert fake.launches[-1]["DOT_DT"] == tl.float32  # the interpreter's 16-bit dots are wrong: rounded, fp32 dot
    assert_close(o, o_ref, torch.bfloat16)
    assert_close(s, s_ref, torch.bfloat16)
    fake.launches.clear()
    kernels.chunk_gated_delta_rule(q, k, v, g, beta, backend="triton", **kw)
    assert [launch["ROUND_DT"] for launch in fake.launches] == [tl.bfloat16]  # remembered, not retried


@needs_interpreter("gdn_chunk")
def test_input_dtype_operands_round_the_dot_operands(monkeypatch):
    """The input-dtype option really rounds: its result differs from the fp32-operand one, by bf16 amounts."""
    from vlagent.kernels.gated_delta_rule import chunk

    q, k, v, g, beta, h0 = gdn_inputs(1, 70, 1, 2, 16, 16, dtype=torch.bfloat16, with_state=True, seed=4)
    kw = dict(initial_state=h0, output_final_state=True, use_qk_l2norm_in_kernel=True)
    results = {}
    for rounded in (False, True):
        monkeypatch.setattr(chunk, "state_pass_options", lambda dtype, r=rounded: [chunk.StatePassOption(r, 1)])
        monkeypatch.setattr(chunk, "_FITTING_OPTION", {})
        results[rounded] = kernels.chunk_gated_delta_rule(q, k, v, g, beta, backend="triton", **kw)[1]
    difference = (results[True] - results[False]).abs().max().item()
    assert 0 < difference < 0.05 * results[False].abs().max().item()


@needs_interpreter("gdn_chunk")
@pytest.mark.parametrize("kernel_name", ["_chunk_state_kernel", "_chunk_prepare_kernel"])
def test_triton_chunk_falls_back_to_the_recurrent_kernel_when_nothing_fits(monkeypatch, kernel_name):
    """fp32 on a 99 KB card: neither chunk kernel fits; the same result comes from the fused recurrent
    kernel, with a warning that names the kernel."""
    from vlagent.kernels.gated_delta_rule import chunk

    monkeypatch.setattr(chunk, kernel_name, _SharedMemoryHolds(getattr(chunk, kernel_name), lambda kw: False))
    monkeypatch.setattr(chunk, "_FITTING_OPTION", {})
    q, k, v, g, beta, h0 = gdn_inputs(2, 40, 2, 4, 16, 16, with_state=True, seed=6)
    kw = dict(initial_state=h0, output_final_state=True, use_qk_l2norm_in_kernel=True)
    with pytest.warns(RuntimeWarning, match="does not fit this GPU.*fused recurrent"):
        o, s = kernels.chunk_gated_delta_rule(q, k, v, g, beta, backend="triton", **kw)
    o_ref, s_ref = naive_recurrent_gated_delta_rule(q, k, v, g, beta, **kw)
    assert_close(o, o_ref)
    assert_close(s, s_ref)
    fake = getattr(chunk, kernel_name)
    fake.launches.clear()
    with pytest.warns(RuntimeWarning, match="earlier call"):  # remembered: no launch is tried again
        kernels.chunk_gated_delta_rule(q, k, v, g, beta, backend="triton", **kw)
    assert fake.launches == []
