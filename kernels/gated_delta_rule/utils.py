"""Input checks and layout helpers shared by the gated delta rule implementations."""
from __future__ import annotations

import torch


def l2norm(x: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """x / sqrt(sum(x^2) + eps) along the last dim (the flash-linear-attention / HF convention)."""
    return x * torch.rsqrt((x * x).sum(dim=-1, keepdim=True) + eps)


def check_inputs(q, k, v, g, beta, initial_state, cu_seqlens) -> tuple[int, int]:
    """Validate shapes; return (number of sequences N, value heads per q/k head)."""
    if q.dim() != 4 or k.shape != q.shape:
        raise ValueError(f"q and k must both be [B,T,H,K]; got q {tuple(q.shape)}, k {tuple(k.shape)}")
    B, T, H, K = q.shape
    if v.dim() != 4 or v.shape[:2] != (B, T):
        raise ValueError(f"v must be [B,T,HV,V] with B={B}, T={T}; got {tuple(v.shape)}")
    HV, V = v.shape[2], v.shape[3]
    if HV % H != 0:
        raise ValueError(f"value heads ({HV}) must be a multiple of q/k heads ({H})")
    for name, t in (("g", g), ("beta", beta)):
        if t.shape != (B, T, HV):
            raise ValueError(f"{name} must be [B,T,HV]=({B},{T},{HV}); got {tuple(t.shape)}")
    if cu_seqlens is not None:
        if B != 1:
            raise ValueError(f"with cu_seqlens the batch size must be 1 (packed sequences); got B={B}")
        if cu_seqlens.dim() != 1 or cu_seqlens.numel() < 2:
            raise ValueError("cu_seqlens must be a 1-D tensor [N+1] of sequence boundaries")
        cu = cu_seqlens.tolist()
        if cu[0] != 0 or cu[-1] != T or any(b < a for a, b in zip(cu, cu[1:])):
            raise ValueError(f"cu_seqlens must start at 0, end at T={T} and not decrease; got {cu}")
        N = len(cu) - 1
    else:
        N = B
    if initial_state is not None and initial_state.shape != (N, HV, K, V):
        raise ValueError(f"initial_state must be [N,HV,K,V]=({N},{HV},{K},{V}); got {tuple(initial_state.shape)}")
    return N, HV // H


def expand_heads(x: torch.Tensor, groups: int) -> torch.Tensor:
    """q/k head j serves value heads j*groups ... j*groups+groups-1."""
    return x if groups == 1 else x.repeat_interleave(groups, dim=2)


def pack_padded(tensors, cu_seqlens: torch.Tensor):
    """Turn packed [1, T, ...] tensors into right-zero-padded [N, Tmax, ...] ones.

    Zero padding is exact for the delta rule: with beta = 0 and g = 0 a step leaves the state unchanged.
    """
    cu = cu_seqlens.tolist()
    lengths = [b - a for a, b in zip(cu, cu[1:])]
    tmax = max(max(lengths), 1)
    out = []
    for t in tensors:
        padded = t.new_zeros((len(lengths), tmax, *t.shape[2:]))
        for i, (a, n) in enumerate(zip(cu, lengths)):
            padded[i, :n] = t[0, a : a + n]
        out.append(padded)
    return out, lengths


def unpack_padded(x: torch.Tensor, lengths) -> torch.Tensor:
    """Inverse of pack_padded for an output [N, Tmax, ...] -> [1, sum(lengths), ...]."""
    return torch.cat([x[i, :n] for i, n in enumerate(lengths)], dim=0).unsqueeze(0)
