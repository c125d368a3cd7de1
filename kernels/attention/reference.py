"""Reference attention: PyTorch's scaled_dot_product_attention (non-causal), any device and dtype."""
from __future__ import annotations

import torch
import torch.nn.functional as F


def attention_torch(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, scale: float | None = None) -> torch.Tensor:
    """q, k, v [B, H, L, D] -> [B, H, L, D], softmax(scale * q k^T) v with scale 1/sqrt(D) by default."""
    return F.scaled_dot_product_attention(q, k, v, scale=scale)


def attention_fp32(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, scale: float | None = None) -> torch.Tensor:
    """The same product written out in fp32 (what the tests hold kernels to)."""
    scale = q.shape[-1] ** -0.5 if scale is None else scale
    scores = (q.float() @ k.float().transpose(-1, -2)) * scale
    return scores.softmax(-1) @ v.float()
