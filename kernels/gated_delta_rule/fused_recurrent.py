"""Triton gated delta rule, token by token: prefill for short sequences and the fused decode step.

One program owns one (sequence, value head, V-block) and keeps its [K, BV] slice of the state in fp32
registers while it walks the sequence, so the state is read and written once per call.
"""
from __future__ import annotations

import torch
import triton
import triton.language as tl

from ..triton_utils import next_pow2, prepare_launch, sequence_bounds, state_block_v
from .utils import check_inputs


@triton.jit
def _fused_recurrent_kernel(
    q, k, v, g, beta,            # g/beta [T_total, HV]; in GATE_FROM_PARAMS mode they are a/b
    A_log, dt_bias,              # [HV], only read in GATE_FROM_PARAMS mode
    o, h0, ht, cu_seqlens,
    scale,
    H: tl.constexpr, HV: tl.constexpr, K: tl.constexpr, V: tl.constexpr,
    BK: tl.constexpr, BV: tl.constexpr,
    USE_L2NORM: tl.constexpr, HAS_H0: tl.constexpr, STORE_HT: tl.constexpr,
    GATE_FROM_PARAMS: tl.constexpr,
):
    i_v = tl.program_id(0)
    i_nh = tl.program_id(1)
    i_n = i_nh // HV
    i_hv = i_nh % HV
    i_h = i_hv // (HV // H)
    bos = tl.load(cu_seqlens + i_n).to(tl.int64)
    eos = tl.load(cu_seqlens + i_n + 1).to(tl.int64)

    o_k = tl.arange(0, BK)
    o_v = i_v * BV + tl.arange(0, BV)
    m_k = o_k < K
    m_v = o_v < V
    m_kv = m_k[:, None] & m_v[None, :]
    state_offsets = (i_n * HV + i_hv) * K * V + o_k[:, None] * V + o_v[None, :]
    if HAS_H0:
        state = tl.load(h0 + state_offsets, mask=m_kv, other=0.0).to(tl.float32)
    else:
        state = tl.zeros([BK, BV], dtype=tl.float32)
    if GATE_FROM_PARAMS:
        neg_a = -tl.exp(tl.load(A_log + i_hv).to(tl.float32))
        bias = tl.load(dt_bias + i_hv).to(tl.float32)

    for t in range(bos, eos):
        b_q = tl.load(q + (t * H + i_h) * K + o_k, mask=m_k, other=0.0).to(tl.float32)
        b_k = tl.load(k + (t * H + i_h) * K + o_k, mask=m_k, other=0.0).to(tl.float32)
        b_v = tl.load(v + (t * HV + i_hv) * V + o_v, mask=m_v, other=0.0).to(tl.float32)
        b_g = tl.load(g + t * HV + i_hv).to(tl.float32)
        b_beta = tl.load(beta + t * HV + i_hv).to(tl.float32)
        if GATE_FROM_PARAMS:
            x = b_g + bias
            softplus = tl.where(x > 20.0, x, tl.log(1.0 + tl.exp(tl.minimum(x, 20.0))))
            b_g = neg_a * softplus
            # rounded to b's dtype like transformers' b.sigmoid(), then used in fp32
            b_beta = (1.0 / (1.0 + tl.exp(-b_beta))).to(beta.dtype.element_ty).to(tl.float32)
        if USE_L2NORM:
            b_q = b_q / tl.sqrt(tl.sum(b_q * b_q) + 1e-6)
            b_k = b_k / tl.sqrt(tl.sum(b_k * b_k) + 1e-6)
        b_q = b_q * scale
        state = state * tl.exp(b_g)
        delta = (b_v - tl.sum(state * b_k[:, None], axis=0)) * b_beta
        state = state + b_k[:, None] * delta[None, :]
        b_o = tl.sum(state * b_q[:, None], axis=0)
        tl.store(o + (t * HV + i_hv) * V + o_v, b_o.to(o.dtype.element_ty), mask=m_v)

    if STORE_HT:
        tl.store(ht + state_offsets, state, mask=m_kv)


def fused_recurrent_gated_delta_rule_triton(
    q, k, v, g, beta, scale=None, initial_state=None, output_final_state=False,
    use_qk_l2norm_in_kernel=False, cu_seqlens=None,
):
    N, _ = check_inputs(q, k, v, g, beta, initial_state, cu_seqlens)
    prepare_launch(_fused_recurrent_kernel, q)
    B, T, H, K = q.shape
    HV, V = v.shape[2:]
    scale = K**-0.5 if scale is None else scale
    q, k, v, g, beta = (x.contiguous() for x in (q, k, v, g, beta))
    o = torch.empty_like(v)
    final_state = q.new_empty(N, HV, K, V, dtype=torch.float32) if output_final_state else None
    h0 = initial_state.contiguous() if initial_state is not None else None
    bounds = sequence_bounds(B, T, cu_seqlens, q.device)
    BK, BV = next_pow2(K), state_block_v(K, V, N * HV)
    grid = (triton.cdiv(V, BV), N * HV)
    _fused_recurrent_kernel[grid](
        q, k, v, g, beta, g, g, o, h0, final_state, bounds, scale,
        H=H, HV=HV, K=K, V=V, BK=BK, BV=BV,
        USE_L2NORM=use_qk_l2norm_in_kernel, HAS_H0=h0 is not None, STORE_HT=output_final_state,
        GATE_FROM_PARAMS=False,
    )
    return o, final_state


def gated_delta_decode_step_triton(q, k, v, a, b, A_log, dt_bias, state, scale=None, use_qk_l2norm=True):
    """q, k [B,H,K]; v [B,HV,V]; a, b [B,HV]; state [B,HV,K,V] fp32 contiguous, updated in place."""
    prepare_launch(_fused_recurrent_kernel, q)
    if not state.is_contiguous():
        raise ValueError("state must be contiguous to be updated in place")
    B, H, K = q.shape
    HV, V = v.shape[1:]
    scale = K**-0.5 if scale is None else scale
    q, k, v, a, b = (x.contiguous() for x in (q, k, v, a, b))
    o = torch.empty_like(v)
    bounds = torch.arange(0, B + 1, device=q.device, dtype=torch.int32)
    BK, BV = next_pow2(K), state_block_v(K, V, B * HV)
    grid = (triton.cdiv(V, BV), B * HV)
    _fused_recurrent_kernel[grid](
        q, k, v, a, b, A_log.contiguous(), dt_bias.contiguous(), o, state, state, bounds, scale,
        H=H, HV=HV, K=K, V=V, BK=BK, BV=BV,
        USE_L2NORM=use_qk_l2norm, HAS_H0=True, STORE_HT=True, GATE_FROM_PARAMS=True,
    )
    return o
