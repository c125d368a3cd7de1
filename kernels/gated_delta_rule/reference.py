"""Chunked gated delta rule in plain PyTorch (fp32): the reference for chunk.py (Triton) and cpu.py (CPU path).

Within a chunk of C tokens (cumulative log decay c_i, Gamma_ij = exp(c_i - c_j) for j <= i) the delta
rule's C rank-1 updates collapse (WY / UT transform) into
    A = (I + strict_lower((beta k) k^T * Gamma))^-1
    u = A (beta v),   w = A (beta k * exp(c))
and, given the state S entering the chunk,
    v_new = u - w S
    o     = (q * exp(c)) S + ((q k^T) * Gamma, lower incl. diagonal) v_new
    S'    = exp(c_last) S + (k * exp(c_last - c))^T v_new
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from .utils import check_inputs, expand_heads, l2norm, pack_padded, unpack_padded

CHUNK_SIZE = 64


def chunk_gated_delta_rule_torch(
    q, k, v, g, beta, scale=None, initial_state=None, output_final_state=False,
    use_qk_l2norm_in_kernel=False, cu_seqlens=None, chunk_size: int = CHUNK_SIZE,
):
    N, groups = check_inputs(q, k, v, g, beta, initial_state, cu_seqlens)
    out_dtype = v.dtype
    K = q.shape[-1]
    scale = K**-0.5 if scale is None else scale
    lengths = None
    if cu_seqlens is not None:
        (q, k, v, g, beta), lengths = pack_padded((q, k, v, g, beta), cu_seqlens)
    q, k = expand_heads(q, groups), expand_heads(k, groups)
    # [B, HV, T, D] fp32
    q, k, v = (x.transpose(1, 2).float() for x in (q, k, v))
    g, beta = (x.transpose(1, 2).float() for x in (g, beta))
    if use_qk_l2norm_in_kernel:
        q, k = l2norm(q), l2norm(k)
    q = q * scale
    B, HV, T, V = v.shape
    C = chunk_size
    pad = (C - T % C) % C
    if pad:
        q, k, v = (F.pad(x, (0, 0, 0, pad)) for x in (q, k, v))
        g, beta = (F.pad(x, (0, pad)) for x in (g, beta))
    n_chunks = (T + pad) // C
    q, k, v = (x.reshape(B, HV, n_chunks, C, x.shape[-1]) for x in (q, k, v))
    g, beta = (x.reshape(B, HV, n_chunks, C) for x in (g, beta))

    c = g.cumsum(-1)
    lower = torch.ones(C, C, dtype=torch.bool, device=q.device).tril()
    # masked before exp so the (positive) upper differences cannot overflow
    gamma = (c[..., :, None] - c[..., None, :]).masked_fill(~lower, float("-inf")).exp()
    k_beta = k * beta[..., None]
    system = (k_beta @ k.transpose(-1, -2)) * gamma
    u = torch.linalg.solve_triangular(system, v * beta[..., None], upper=False, unitriangular=True)
    w = torch.linalg.solve_triangular(system, k_beta * c.exp()[..., None], upper=False, unitriangular=True)
    attn = (q @ k.transpose(-1, -2)) * gamma
    q_decayed = q * c.exp()[..., None]
    k_decayed = k * (c[..., -1:] - c).exp()[..., None]
    chunk_decay = c[..., -1].exp()[..., None, None]

    state = q.new_zeros(B, HV, K, V) if initial_state is None else initial_state.float().clone()
    o = torch.empty_like(v)
    for i in range(n_chunks):
        v_new = u[:, :, i] - w[:, :, i] @ state
        o[:, :, i] = q_decayed[:, :, i] @ state + attn[:, :, i] @ v_new
        state = state * chunk_decay[:, :, i] + k_decayed[:, :, i].transpose(-1, -2) @ v_new
    o = o.reshape(B, HV, -1, V)[:, :, :T].transpose(1, 2)
    if lengths is not None:
        o = unpack_padded(o, lengths)
    return o.to(out_dtype).contiguous(), (state if output_final_state else None)


def gated_delta_decode_step_torch(q, k, v, a, b, A_log, dt_bias, state, scale=None, use_qk_l2norm=True):
    """One token per sequence; gate and beta computed here; `state` [B,HV,K,V] fp32 is updated in place.

    The readable reference (einsums, state-sized temporaries); the dispatched CPU path is the in-place
    decode.gated_delta_decode_step_inplace, tested against this one. beta = sigmoid(b) rounded to b's
    dtype (transformers' rounding), then fp32.
    """
    B, H, K = q.shape
    HV = v.shape[1]
    groups = HV // H
    scale = K**-0.5 if scale is None else scale
    qf, kf = q.float(), k.float()
    if use_qk_l2norm:
        qf, kf = l2norm(qf), l2norm(kf)
    qf = (qf * scale).repeat_interleave(groups, dim=1)
    kf = kf.repeat_interleave(groups, dim=1)
    g = -A_log.float().exp() * F.softplus(a.float() + dt_bias.float())
    beta = b.sigmoid().float()
    s = state.float() * g.exp()[..., None, None]
    predicted = torch.einsum("bhk,bhkv->bhv", kf, s)
    delta = (v.float() - predicted) * beta[..., None]
    s = s + kf[..., :, None] * delta[..., None, :]
    state.copy_(s)
    return torch.einsum("bhk,bhkv->bhv", qf, s).to(v.dtype)
