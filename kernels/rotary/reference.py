"""Partial rotary embedding (rotate_half style) and Qwen3.5's interleaved M-RoPE cos/sin."""
from __future__ import annotations

import torch


def _rotate_half(x: torch.Tensor) -> torch.Tensor:
    half = x.shape[-1] // 2
    return torch.cat((-x[..., half:], x[..., :half]), dim=-1)


def apply_rotary_torch(q, k, cos, sin):
    """q [B,T,Hq,D], k [B,T,Hk,D], cos/sin [B,T,R]: the first R dims rotate, the rest pass through.

    Same arithmetic and dtype as HF's apply_rotary_pos_emb (computed in q's dtype with cos/sin cast to it).
    """
    R = cos.shape[-1]
    cos = cos.unsqueeze(2).to(q.dtype)
    sin = sin.unsqueeze(2).to(q.dtype)

    def rotate(x):
        x_rot, x_pass = x[..., :R], x[..., R:]
        return torch.cat([x_rot * cos + _rotate_half(x_rot) * sin, x_pass], dim=-1)

    return rotate(q), rotate(k)


def mrope_cos_sin(position_ids, inv_freq, mrope_section, interleaved=True, dtype=torch.float32):
    """position_ids [3,B,T] (temporal, height, width), inv_freq [R/2] -> cos, sin [B,T,R].

    Interleaved M-RoPE (Qwen3.5): frequency slot i takes the temporal position, except slots
    1, 4, 7, ... (< 3*section[1]) take the height and slots 2, 5, 8, ... (< 3*section[2]) the width.
    interleaved=False gives the chunked layout of Qwen2-VL (section[0] T slots, then H, then W).

    Interleaved, the sections need not sum to R/2 (transformers only reads section[1] and section[2], and
    its slices stop at R/2): slots past 3*section[axis] stay temporal, slots past R/2 do not exist. The
    chunked layout needs sum(mrope_section) == R/2.
    """
    if position_ids.dim() == 2:
        position_ids = position_ids.unsqueeze(0).expand(3, -1, -1)
    if position_ids.dim() != 3 or position_ids.shape[0] != 3:
        raise ValueError(f"position_ids must be [3,B,T] (or [B,T]); got {tuple(position_ids.shape)}")
    half = inv_freq.shape[0]
    if len(mrope_section) != 3 or any(int(n) < 0 for n in mrope_section):
        raise ValueError(f"mrope_section must be 3 non-negative sizes (t, h, w); got {list(mrope_section)}")
    if not interleaved and sum(mrope_section) != half:
        raise ValueError(f"mrope_section {list(mrope_section)} must sum to len(inv_freq)={half} (chunked M-RoPE)")
    freqs = position_ids[..., None].float() * inv_freq.float().to(position_ids.device)  # [3,B,T,R/2]
    axis = torch.zeros(half, dtype=torch.long, device=freqs.device)
    if interleaved:
        for dim, offset in ((1, 1), (2, 2)):
            axis[offset : int(mrope_section[dim]) * 3 : 3] = dim  # clipped at R/2, like transformers
    else:
        axis[mrope_section[0] : mrope_section[0] + mrope_section[1]] = 1
        axis[mrope_section[0] + mrope_section[1] :] = 2
    picked = freqs.gather(0, axis.view(1, 1, 1, half).expand(1, *freqs.shape[1:])).squeeze(0)
    emb = torch.cat([picked, picked], dim=-1)
    return emb.cos().to(dtype), emb.sin().to(dtype)


def rotate_half_fp32(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate-half rotary over the whole head dim of x [n, ..., D] in fp32 (returned in fp32; the caller
    rounds once). cos/sin [n, >= D/2]: only their first D/2 columns are read (the vision tower's tables
    repeat their first half), so each half of the result is two products: x1*c - x2*s | x2*c + x1*s."""
    xf = x.float()
    half = x.shape[-1] // 2
    view = (x.shape[0],) + (1,) * (x.dim() - 2) + (half,)
    c, s = cos[:, :half].reshape(view), sin[:, :half].reshape(view)
    x1, x2 = xf[..., :half], xf[..., half:]
    out = torch.empty_like(xf)
    torch.mul(x1, c, out=out[..., :half]).addcmul_(x2, s, value=-1)
    torch.mul(x2, c, out=out[..., half:]).addcmul_(x1, s)
    return out
