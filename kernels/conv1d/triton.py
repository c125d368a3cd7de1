"""Triton depthwise causal conv1d: a prefill kernel over [B, T, D] and a one-token update kernel.

Both accumulate in fp32 and apply SiLU before the single cast back to x.dtype.
"""
from __future__ import annotations

import torch
import triton
import triton.language as tl

from ..triton_utils import next_pow2, prepare_launch


@triton.jit
def _causal_conv1d_kernel(
    x, weight, bias, h0, y, T, D,
    W: tl.constexpr, BT: tl.constexpr, BD: tl.constexpr,
    HAS_BIAS: tl.constexpr, HAS_H0: tl.constexpr, SILU: tl.constexpr,
):
    i_t = tl.program_id(0)
    i_d = tl.program_id(1)
    i_b = tl.program_id(2).to(tl.int64)
    o_t = i_t * BT + tl.arange(0, BT)
    o_d = i_d * BD + tl.arange(0, BD)
    m_d = o_d < D
    acc = tl.zeros([BT, BD], dtype=tl.float32)
    for j in tl.static_range(W):
        src = o_t - (W - 1) + j  # input position read by tap j
        b_w = tl.load(weight + o_d * W + j, mask=m_d, other=0.0).to(tl.float32)
        m_x = (src >= 0)[:, None] & (src < T)[:, None] & m_d[None, :]
        b_x = tl.load(x + (i_b * T + src[:, None]) * D + o_d[None, :], mask=m_x, other=0.0).to(tl.float32)
        if HAS_H0:
            # positions -1 .. -(W-1) come from the history, stored oldest first: column W-1+src
            m_h = (src < 0)[:, None] & (src >= -(W - 1))[:, None] & m_d[None, :]
            b_h = tl.load(h0 + (i_b * D + o_d[None, :]) * (W - 1) + (W - 1) + src[:, None], mask=m_h, other=0.0)
            b_x += b_h.to(tl.float32)
        acc += b_x * b_w[None, :]
    if HAS_BIAS:
        acc += tl.load(bias + o_d, mask=m_d, other=0.0).to(tl.float32)[None, :]
    if SILU:
        acc = acc / (1.0 + tl.exp(-acc))
    m_y = (o_t < T)[:, None] & m_d[None, :]
    tl.store(y + (i_b * T + o_t[:, None]) * D + o_d[None, :], acc.to(y.dtype.element_ty), mask=m_y)


@triton.jit
def _causal_conv1d_update_kernel(
    x, state, weight, bias, y, D,
    W: tl.constexpr, BW: tl.constexpr, BD: tl.constexpr, HAS_BIAS: tl.constexpr, SILU: tl.constexpr,
):
    i_b = tl.program_id(0).to(tl.int64)
    i_d = tl.program_id(1)
    o_d = i_d * BD + tl.arange(0, BD)
    o_w = tl.arange(0, BW)
    m_d = o_d < D
    m_s = m_d[:, None] & (o_w < W - 1)[None, :]
    rows = state + (i_b * D + o_d[:, None]) * (W - 1) + o_w[None, :]
    b_s = tl.load(rows, mask=m_s, other=0.0)  # [BD, BW], oldest input first
    b_x = tl.load(x + i_b * D + o_d, mask=m_d, other=0.0)
    b_w = tl.load(weight + o_d[:, None] * W + o_w[None, :], mask=m_s, other=0.0).to(tl.float32)
    acc = tl.sum(b_s.to(tl.float32) * b_w, axis=1)
    acc += b_x.to(tl.float32) * tl.load(weight + o_d * W + (W - 1), mask=m_d, other=0.0).to(tl.float32)
    # shift the window left by one (the whole tile was read above) and append x
    tl.store(rows - 1, b_s, mask=m_s & (o_w >= 1)[None, :])
    tl.store(state + (i_b * D + o_d) * (W - 1) + (W - 2), b_x.to(state.dtype.element_ty), mask=m_d)
    if HAS_BIAS:
        acc += tl.load(bias + o_d, mask=m_d, other=0.0).to(tl.float32)
    if SILU:
        acc = acc / (1.0 + tl.exp(-acc))
    tl.store(y + i_b * D + o_d, acc.to(y.dtype.element_ty), mask=m_d)


def causal_conv1d_triton(x, weight, bias=None, activation="silu", initial_state=None):
    prepare_launch(_causal_conv1d_kernel, x)
    B, T, D = x.shape
    W = weight.shape[1]
    x = x.contiguous()
    weight = weight.contiguous()
    h0 = initial_state.contiguous() if initial_state is not None else None
    y = torch.empty_like(x)
    BT, BD = 16, 64  # 8 warps, 78 registers at sm_90 (compile_check)
    if T:
        grid = (triton.cdiv(T, BT), triton.cdiv(D, BD), B)
        _causal_conv1d_kernel[grid](
            x, weight, bias, h0, y, T, D, W=W, BT=BT, BD=BD,
            HAS_BIAS=bias is not None, HAS_H0=h0 is not None, SILU=activation is not None, num_warps=8,
        )
    # the last W-1 inputs of [history, x]: a small copy, left to torch
    history = x.new_zeros(B, D, W - 1) if h0 is None else h0.to(x.dtype)
    final_state = torch.cat([history, x[:, max(0, T - (W - 1)):].transpose(1, 2)], dim=-1)[:, :, -(W - 1):]
    return y, final_state.contiguous()


def causal_conv1d_update_triton(x, conv_state, weight, bias=None, activation="silu"):
    prepare_launch(_causal_conv1d_update_kernel, x)
    if not conv_state.is_contiguous():
        raise ValueError("conv_state must be contiguous to be updated in place")
    B, D = x.shape
    W = weight.shape[1]
    x = x.contiguous()
    y = torch.empty_like(x)
    BD = 128
    _causal_conv1d_update_kernel[(B, triton.cdiv(D, BD))](
        x, conv_state, weight.contiguous(), bias, y, D, W=W, BW=next_pow2(W - 1), BD=BD,
        HAS_BIAS=bias is not None, SILU=activation is not None,
    )
    return y
