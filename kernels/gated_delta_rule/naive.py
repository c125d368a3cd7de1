"""Step-by-step gated delta rule recurrence: the definition every other path is checked against.

Per value head, with state S [K, V] (fp32), for each token t:
    S <- exp(g_t) * S
    S <- S + k_t (beta_t * (v_t - S^T k_t))^T
    o_t = S^T (scale * q_t)
"""
from __future__ import annotations

import torch

from .utils import check_inputs, expand_heads, l2norm, pack_padded, unpack_padded


def naive_recurrent_gated_delta_rule(
    q, k, v, g, beta, scale=None, initial_state=None, output_final_state=False,
    use_qk_l2norm_in_kernel=False, cu_seqlens=None,
):
    N, groups = check_inputs(q, k, v, g, beta, initial_state, cu_seqlens)
    out_dtype = v.dtype
    K = q.shape[-1]
    scale = K**-0.5 if scale is None else scale
    lengths = None
    if cu_seqlens is not None:
        (q, k, v, g, beta), lengths = pack_padded((q, k, v, g, beta), cu_seqlens)
    q, k = expand_heads(q, groups), expand_heads(k, groups)
    q, k, v, g, beta = (x.float() for x in (q, k, v, g, beta))
    if use_qk_l2norm_in_kernel:
        q, k = l2norm(q), l2norm(k)
    q = q * scale
    B, T, HV, V = v.shape
    state = q.new_zeros(B, HV, K, V) if initial_state is None else initial_state.float().clone()
    o = q.new_zeros(B, T, HV, V)
    for t in range(T):
        state = state * g[:, t].exp()[..., None, None]
        predicted = torch.einsum("bhk,bhkv->bhv", k[:, t], state)
        delta = (v[:, t] - predicted) * beta[:, t, :, None]
        state = state + k[:, t, :, :, None] * delta[:, :, None, :]
        o[:, t] = torch.einsum("bhk,bhkv->bhv", q[:, t], state)
    if lengths is not None:
        o = unpack_padded(o, lengths)
    return o.to(out_dtype), (state if output_final_state else None)
