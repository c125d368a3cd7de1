"""Triton partial rotary embedding (rotate_half layout), q and k in one launch.

For bf16/fp16 inputs the kernel rounds where HF's apply_rotary_pos_emb does (x*cos, rotate_half(x)*sin,
their sum), so it reproduces HF bit for bit up to fp32 arithmetic.
"""
from __future__ import annotations

import torch
import triton
import triton.language as tl

from ..triton_utils import next_pow2, prepare_launch, tl_dtype


@triton.jit
def _rotary_kernel(
    x, cos, sin, y, H, D, R,
    BH: tl.constexpr, BHALF: tl.constexpr, BP: tl.constexpr, DT: tl.constexpr,
):
    i_bt = tl.program_id(0).to(tl.int64)
    o_h = tl.program_id(1) * BH + tl.arange(0, BH)
    half = R // 2
    o_r = tl.arange(0, BHALF)
    m_h = o_h < H
    m_r = m_h[:, None] & (o_r < half)[None, :]
    row = x + (i_bt * H + o_h[:, None]) * D
    out = y + (i_bt * H + o_h[:, None]) * D
    x1 = tl.load(row + o_r[None, :], mask=m_r, other=0.0).to(tl.float32)
    x2 = tl.load(row + half + o_r[None, :], mask=m_r, other=0.0).to(tl.float32)
    c1 = tl.load(cos + i_bt * R + o_r, mask=o_r < half, other=0.0).to(DT).to(tl.float32)[None, :]
    c2 = tl.load(cos + i_bt * R + half + o_r, mask=o_r < half, other=0.0).to(DT).to(tl.float32)[None, :]
    s1 = tl.load(sin + i_bt * R + o_r, mask=o_r < half, other=0.0).to(DT).to(tl.float32)[None, :]
    s2 = tl.load(sin + i_bt * R + half + o_r, mask=o_r < half, other=0.0).to(DT).to(tl.float32)[None, :]
    # rotate_half(x) = [-x2, x1]
    y1 = (x1 * c1).to(DT).to(tl.float32) + (-x2 * s1).to(DT).to(tl.float32)
    y2 = (x2 * c2).to(DT).to(tl.float32) + (x1 * s2).to(DT).to(tl.float32)
    tl.store(out + o_r[None, :], y1.to(y.dtype.element_ty), mask=m_r)
    tl.store(out + half + o_r[None, :], y2.to(y.dtype.element_ty), mask=m_r)
    o_p = R + tl.arange(0, BP)
    m_p = m_h[:, None] & (o_p < D)[None, :]
    tl.store(out + o_p[None, :], tl.load(row + o_p[None, :], mask=m_p, other=0.0), mask=m_p)


def _rotate(x, cos, sin):
    B, T, H, D = x.shape
    R = cos.shape[-1]
    x = x.contiguous()
    y = torch.empty_like(x)
    BH = min(16, next_pow2(H))
    if B * T:
        _rotary_kernel[(B * T, triton.cdiv(H, BH))](
            x, cos, sin, y, H, D, R, BH=BH, BHALF=next_pow2(max(R // 2, 1)), BP=next_pow2(max(D - R, 1)),
            DT=tl_dtype(x.dtype),
        )
    return y


def apply_rotary_triton(q, k, cos, sin):
    prepare_launch(_rotary_kernel, q)
    cos, sin = cos.contiguous(), sin.contiguous()
    return _rotate(q, cos, sin), _rotate(k, cos, sin)
