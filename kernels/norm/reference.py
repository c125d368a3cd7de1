"""RMSNorm variants of Qwen3.5, with HF's numerics (where each cast happens matters in bf16)."""
from __future__ import annotations

import torch
import torch.nn.functional as F


def rms_norm_torch(x, weight, eps=1e-6, zero_centered=True):
    """Qwen3_5RMSNorm: fp32 x_hat * (1 + w) (zero-centred) or x_hat * w, cast back to x.dtype once."""
    xf = x.float()
    xf = xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + eps)
    w = weight.float()
    return (xf * (1.0 + w if zero_centered else w)).to(x.dtype)


def gated_rms_norm_torch(x, z, weight, eps=1e-6):
    """Qwen3_5RMSNormGated: x_hat is cast to x.dtype, times w (in torch's promoted dtype), times silu(fp32 z)."""
    input_dtype = x.dtype
    xf = x.float()
    xf = xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + eps)
    y = weight * xf.to(input_dtype)
    y = y * F.silu(z.float())
    return y.to(input_dtype)
