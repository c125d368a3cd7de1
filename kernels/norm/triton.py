"""Triton RMSNorm kernels: a tile of rows per program, statistics in fp32.

The rounding points of HF's Qwen3_5RMSNorm / Qwen3_5RMSNormGated are reproduced with explicit casts.
"""
from __future__ import annotations

import torch
import triton
import triton.language as tl

from ..triton_utils import next_pow2, prepare_launch, tl_dtype


@triton.jit
def _rms_norm_kernel(x, weight, y, M, D, eps, BM: tl.constexpr, BD: tl.constexpr, ZERO_CENTERED: tl.constexpr):
    o_m = tl.program_id(0) * BM + tl.arange(0, BM)
    o_d = tl.arange(0, BD)
    mask = (o_m < M)[:, None] & (o_d < D)[None, :]
    offsets = o_m[:, None].to(tl.int64) * D + o_d[None, :]
    b_x = tl.load(x + offsets, mask=mask, other=0.0).to(tl.float32)
    b_w = tl.load(weight + o_d, mask=o_d < D, other=0.0).to(tl.float32)
    if ZERO_CENTERED:
        b_w = 1.0 + b_w
    rstd = 1.0 / tl.sqrt(tl.sum(b_x * b_x, axis=1) / D + eps)
    b_y = (b_x * rstd[:, None]) * b_w[None, :]
    tl.store(y + offsets, b_y.to(y.dtype.element_ty), mask=mask)


@triton.jit
def _gated_rms_norm_kernel(
    x, z, weight, y, M, D, eps,
    BM: tl.constexpr, BD: tl.constexpr, IN_DTYPE: tl.constexpr, PRODUCT_DTYPE: tl.constexpr,
):
    o_m = tl.program_id(0) * BM + tl.arange(0, BM)
    o_d = tl.arange(0, BD)
    mask = (o_m < M)[:, None] & (o_d < D)[None, :]
    offsets = o_m[:, None].to(tl.int64) * D + o_d[None, :]
    b_x = tl.load(x + offsets, mask=mask, other=0.0).to(tl.float32)
    b_z = tl.load(z + offsets, mask=mask, other=0.0).to(tl.float32)
    b_w = tl.load(weight + o_d, mask=o_d < D, other=0.0).to(tl.float32)
    rstd = 1.0 / tl.sqrt(tl.sum(b_x * b_x, axis=1) / D + eps)
    normed = (b_x * rstd[:, None]).to(IN_DTYPE).to(tl.float32)      # HF: .to(input_dtype)
    scaled = (b_w[None, :] * normed).to(PRODUCT_DTYPE).to(tl.float32)  # HF: weight * x_hat in promoted dtype
    b_y = scaled * (b_z / (1.0 + tl.exp(-b_z)))                       # HF: * silu(z.float())
    tl.store(y + offsets, b_y.to(y.dtype.element_ty), mask=mask)


def _rows(x: torch.Tensor):
    D = x.shape[-1]
    BD = next_pow2(D)
    BM = max(1, min(16, 4096 // BD))
    return x.reshape(-1, D).contiguous(), D, BD, BM


def rms_norm_triton(x, weight, eps=1e-6, zero_centered=True):
    prepare_launch(_rms_norm_kernel, x)
    x2, D, BD, BM = _rows(x)
    M = x2.shape[0]
    y = torch.empty_like(x2)
    if M:
        _rms_norm_kernel[(triton.cdiv(M, BM),)](x2, weight.contiguous(), y, M, D, eps,
                                                BM=BM, BD=BD, ZERO_CENTERED=zero_centered)
    return y.view(x.shape)


def gated_rms_norm_triton(x, z, weight, eps=1e-6):
    prepare_launch(_gated_rms_norm_kernel, x)
    x2, D, BD, BM = _rows(x)
    z2 = z.reshape(-1, D).contiguous()
    M = x2.shape[0]
    y = torch.empty_like(x2)
    product_dtype = torch.promote_types(weight.dtype, x.dtype)
    if M:
        _gated_rms_norm_kernel[(triton.cdiv(M, BM),)](
            x2, z2, weight.contiguous(), y, M, D, eps, BM=BM, BD=BD,
            IN_DTYPE=tl_dtype(x.dtype), PRODUCT_DTYPE=tl_dtype(product_dtype),
        )
    return y.view(x.shape)
