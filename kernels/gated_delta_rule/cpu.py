"""The CPU path of chunk_gated_delta_rule: the arithmetic of reference.chunk_gated_delta_rule_torch
(chunks of 64, WY/UT form, fp32), laid out for a CPU.

- every intra-chunk quantity is computed for all chunks at once, in chunk-major layout (contiguous
  per-chunk operands);
- the unit lower triangular system is inverted by block doubling (small matmuls;
  torch.linalg.solve_triangular ran at ~5 GFLOP/s here) and applied to both right-hand sides in
  one matmul;
- only the state recurrence stays in the Python loop (two small matmuls per chunk, states written
  in place); the outputs read the stacked per-chunk states in one matmul;
- decay exponents are clamped at -80 (e^-80 ~ 2e-35 stands in for smaller decays), which keeps the
  exps and products out of fp32's subnormal range (several times slower on x86) and off -inf.

Variable-length batches (cu_seqlens) are not handled here; the dispatcher sends them to the reference.
"""
from __future__ import annotations

import torch

CHUNK = 64


def chunk_gated_delta_rule_cpu(q, k, v, g, beta, scale=None, initial_state=None, output_final_state=False,
                               use_qk_l2norm_in_kernel=False):
    """q, k [B,T,H,K]; v [B,T,HV,V]; g (log decay), beta [B,T,HV]; initial_state [B,HV,K,V] (None = zeros).

    Per chunk (cumulative log decay c, Gamma_ij = exp(c_i - c_j), j <= i):
        A = (I + strict_lower((beta k) k^T * Gamma))^-1,  u = A (beta v),  w = A (beta k e^c)
        v_new = u - w S,  o = (q e^c) S + ((q k^T) * Gamma) v_new,
        S' = e^{c_last} S + (k e^{c_last - c})^T v_new
    Returns (o [B,T,HV,V] in v.dtype, final state [B,HV,K,V] fp32 or None).
    """
    B, T, H, Kd = q.shape
    HV, Vd = v.shape[2], v.shape[3]
    scale = Kd**-0.5 if scale is None else scale
    C = CHUNK
    N = -(-T // C)
    full = T // C
    BH = B * HV
    dev = q.device

    def chunk_major(x):  # [B, T, h, ...] -> fp32 [N, B, h, C, ...], zero-padded, one copy
        rest = x.shape[3:]
        out = torch.empty((N, B, x.shape[2], C, *rest), dtype=torch.float32, device=dev)
        view = out.movedim(0, 1).movedim(3, 2)  # [B, N, C, h, ...] over out's memory
        if full:
            view[:, :full] = x[:, : full * C].reshape(B, full, C, *x.shape[2:])
        if full < N:
            view[:, full, : T - full * C] = x[:, full * C :]
            view[:, full, T - full * C :] = 0
        return out

    def per_value_head(x):  # [N, B, H, C, d] -> [N, B*HV, C, d]
        if H != HV:
            x = x.repeat_interleave(HV // H, dim=2)
        return x.reshape(N, BH, C, x.shape[-1])

    qf, kf = chunk_major(q), chunk_major(k)
    if use_qk_l2norm_in_kernel:
        qf = qf.mul_(torch.rsqrt((qf * qf).sum(-1, keepdim=True) + 1e-6).mul_(scale))
        kf = kf.mul_(torch.rsqrt((kf * kf).sum(-1, keepdim=True) + 1e-6))
    else:
        qf = qf.mul_(scale)
    qf, kf = per_value_head(qf), per_value_head(kf)
    vf = chunk_major(v).view(N, BH, C, Vd)
    c = chunk_major(g).view(N, BH, C).cumsum(-1)
    bt = chunk_major(beta).view(N, BH, C, 1)

    lower = torch.ones(C, C, dtype=torch.float32, device=dev).tril_()
    # upper differences zeroed before exp (they could overflow), then masked out after it
    gamma = (c[..., :, None] - c[..., None, :]).mul_(lower).clamp_(min=-80.0).exp_().mul_(lower)
    decay_in = c.clamp(min=-80.0).exp_()[..., None]  # from the chunk start to each token
    decay_out = (c[..., -1:] - c).clamp_(min=-80.0).exp_()[..., None]  # from each token to the chunk end
    chunk_decay = c[..., -1].clamp(min=-80.0).exp_().view(N, BH, 1, 1)

    k_beta = kf * bt
    system = torch.matmul(k_beta, kf.transpose(-1, -2)).mul_(gamma)
    rhs = torch.cat([vf.mul_(bt), k_beta.mul_(decay_in)], dim=-1)  # [N, BH, C, V + K]
    uw = torch.matmul(unit_lower_inverse(system), rhs)
    u, w = uw[..., :Vd], uw[..., Vd:]
    attn = torch.matmul(qf, kf.transpose(-1, -2)).mul_(gamma)
    q_decayed = qf.mul_(decay_in)
    k_decayed_t = kf.mul_(decay_out).transpose(-1, -2).contiguous()  # [N, BH, K, C]

    states = torch.empty(N + 1, BH, Kd, Vd, dtype=torch.float32, device=dev)  # entering chunk i; final
    if initial_state is None:
        states[0].zero_()
    else:
        states[0].copy_(initial_state.reshape(BH, Kd, Vd))
    v_new = torch.empty(N, BH, C, Vd, dtype=torch.float32, device=dev)
    for i in range(N):
        torch.baddbmm(u[i], w[i], states[i], alpha=-1, out=v_new[i])
        torch.mul(states[i], chunk_decay[i], out=states[i + 1]).baddbmm_(k_decayed_t[i], v_new[i])
    o = torch.matmul(q_decayed, states[:N])
    o.view(N * BH, C, Vd).baddbmm_(attn.view(N * BH, C, C), v_new.view(N * BH, C, Vd))
    out = torch.empty(B, N * C, HV, Vd, dtype=v.dtype, device=dev)
    out.view(B, N, C, HV, Vd).copy_(o.view(N, B, HV, C, Vd).permute(1, 0, 3, 2, 4))
    final = states[N].view(B, HV, Kd, Vd) if output_final_state else None
    return out[:, :T].contiguous(), final


def unit_lower_inverse(m: torch.Tensor) -> torch.Tensor:
    """(I + strict_lower(m))^-1 for a batch of C x C matrices (C a power of two), by doubling the
    size of the inverted diagonal blocks: [[A, 0], [B, D]]^-1 = [[A', 0], [-D' B A', D']].
    log2(C) levels of small matmuls; torch.linalg.solve_triangular on the same batch ran at ~5 GFLOP/s."""
    C = m.shape[-1]
    if C & (C - 1):
        raise ValueError(f"chunk size must be a power of two; got {C}")
    shape = m.shape
    m = m.reshape(-1, C, C).contiguous()  # as_strided below assumes a dense layout
    M = m.shape[0]
    x = torch.zeros_like(m)
    x.diagonal(dim1=-2, dim2=-1).fill_(1.0)
    s = 1
    while s < C:
        b, nb = 2 * s, C // (2 * s)
        stride = (C * C, (C + 1) * b, C, 1)
        xb = x.as_strided((M, nb, b, b), stride)
        mb = m.as_strided((M, nb, b, b), stride)
        xb[:, :, s:, :s] = -torch.matmul(torch.matmul(xb[:, :, s:, s:], mb[:, :, s:, :s]), xb[:, :, :s, :s])
        s = b
    return x.view(shape)
