"""The CPU path of the gated delta rule: the arithmetic of reference.py, laid out for a CPU.

Whole sequences (`chunk_gated_delta_rule_cpu`, chunks of 64, WY/UT form, fp32):
- every intra-chunk quantity is computed for all chunks at once, in chunk-major layout (contiguous
  per-chunk operands);
- the unit lower triangular system is inverted by block doubling (small matmuls, where
  torch.linalg.solve_triangular is slow on CPU) and applied to both right-hand sides in one matmul;
- only the state recurrence stays in the Python loop (two small matmuls per chunk, states written
  in place); the outputs read the stacked per-chunk states in one matmul;
- decay exponents are clamped at -80 (e^-80 ~ 2e-35 stands in for smaller decays), which keeps the
  exps and products out of fp32's subnormal range (much slower on x86) and off -inf.
Variable-length batches (cu_seqlens) are not handled here; the dispatcher sends them to the reference.

One decode token (`gated_delta_decode_step_inplace`): the reference builds the decayed state, an
outer-product update and the new state as separate [B,HV,K,V] temporaries (einsum); here the state
is decayed and updated in place (mul_, baddbmm_), so the only state-sized traffic is the state
itself. `gated_delta_decode_step_native` runs the same arithmetic for bf16 inputs on AVX512 CPUs in
cpu_decode.c (two passes over the state, gates included, one call per layer), or returns None
where that kernel does not cover the inputs.
"""
from __future__ import annotations

import ctypes
from pathlib import Path

import torch
import torch.nn.functional as F

from .. import native
from .utils import l2norm

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
    BH = B * HV
    dev = q.device

    def per_value_head(x):  # [N, B, H, C, d] -> [N, B*HV, C, d]
        if H != HV:
            x = x.repeat_interleave(HV // H, dim=2)
        return x.reshape(N, BH, C, x.shape[-1])

    qf, kf = _chunk_major(q, N), _chunk_major(k, N)
    if use_qk_l2norm_in_kernel:
        qf = qf.mul_(torch.rsqrt((qf * qf).sum(-1, keepdim=True) + 1e-6).mul_(scale))
        kf = kf.mul_(torch.rsqrt((kf * kf).sum(-1, keepdim=True) + 1e-6))
    else:
        qf = qf.mul_(scale)
    qf, kf = per_value_head(qf), per_value_head(kf)
    vf = _chunk_major(v, N).view(N, BH, C, Vd)
    c = _chunk_major(g, N).view(N, BH, C).cumsum(-1)
    bt = _chunk_major(beta, N).view(N, BH, C, 1)

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

    states, v_new = _chunk_recurrence(u, w, k_decayed_t, chunk_decay, initial_state)
    o = torch.matmul(q_decayed, states[:N])
    o.view(N * BH, C, Vd).baddbmm_(attn.view(N * BH, C, C), v_new.view(N * BH, C, Vd))
    out = torch.empty(B, N * C, HV, Vd, dtype=v.dtype, device=dev)
    out.view(B, N, C, HV, Vd).copy_(o.view(N, B, HV, C, Vd).permute(1, 0, 3, 2, 4))
    final = states[N].view(B, HV, Kd, Vd) if output_final_state else None
    return out[:, :T].contiguous(), final


def _chunk_major(x: torch.Tensor, n_chunks: int) -> torch.Tensor:
    """[B, T, h, ...] -> fp32 [N, B, h, C, ...], zero-padded to whole chunks, in one copy."""
    B, T = x.shape[:2]
    C, full = CHUNK, T // CHUNK
    out = torch.empty((n_chunks, B, x.shape[2], C, *x.shape[3:]), dtype=torch.float32, device=x.device)
    view = out.movedim(0, 1).movedim(3, 2)  # [B, N, C, h, ...] over out's memory
    if full:
        view[:, :full] = x[:, : full * C].reshape(B, full, C, *x.shape[2:])
    if full < n_chunks:
        view[:, full, : T - full * C] = x[:, full * C :]
        view[:, full, T - full * C :] = 0
    return out


def _chunk_recurrence(u, w, k_decayed_t, chunk_decay, initial_state):
    """The only sequential part: the state entering each chunk, chunk by chunk.

    u, w [N, BH, C, V / K]; k_decayed_t [N, BH, K, C]; chunk_decay [N, BH, 1, 1]; initial_state
    reshapeable to [BH, K, V] or None. Returns (states [N+1, BH, K, V]: entering chunk i, then the
    final one; v_new [N, BH, C, V])."""
    N, BH, C, Vd = u.shape
    Kd = w.shape[-1]
    states = torch.empty(N + 1, BH, Kd, Vd, dtype=torch.float32, device=u.device)
    if initial_state is None:
        states[0].zero_()
    else:
        states[0].copy_(initial_state.reshape(BH, Kd, Vd))
    v_new = torch.empty(N, BH, C, Vd, dtype=torch.float32, device=u.device)
    for i in range(N):
        torch.baddbmm(u[i], w[i], states[i], alpha=-1, out=v_new[i])
        torch.mul(states[i], chunk_decay[i], out=states[i + 1]).baddbmm_(k_decayed_t[i], v_new[i])
    return states, v_new


def unit_lower_inverse(m: torch.Tensor) -> torch.Tensor:
    """(I + strict_lower(m))^-1 for a batch of C x C matrices (C a power of two), by doubling the
    size of the inverted diagonal blocks: [[A, 0], [B, D]]^-1 = [[A', 0], [-D' B A', D']].
    log2(C) levels of small matmuls, which keep the CPU's matrix units busy where a triangular
    solve runs row by row."""
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


# ---------------------------------------------------------------- one decode token

SOURCE = Path(__file__).with_name("cpu_decode.c")
FLAGS = ("-mavx512f", "-mavx512bw", "-fopenmp")
MAX_DIM = 512
i64, ptr = ctypes.c_int64, ctypes.c_void_p
KERNEL = native.NativeKernel(SOURCE, FLAGS, needs="AVX512F/BW", signatures={
    "vl_gated_delta_decode_bf16": ([ptr] * 9 + [i64] * 10 + [ctypes.c_float, ctypes.c_int, ctypes.c_int], ctypes.c_int),
})


def gated_delta_decode_step_native(q, k, v, a, b, A_log, dt_bias, state, scale=None, use_qk_l2norm=True):
    """cpu_decode.c for bf16 CPU inputs in the layouts it reads (arguments as
    gated_delta_decode_step_inplace); None when it does not cover them."""
    B, H, K = q.shape
    HV, V = v.shape[1:]
    scale = K**-0.5 if scale is None else scale
    tensors = (q, k, v, a, b, A_log, dt_bias)
    if (any(t.dtype != torch.bfloat16 or t.device.type != "cpu" or t.stride(-1) != 1 for t in tensors)
            or state.device.type != "cpu" or state.dtype != torch.float32
            or q.stride(1) != K or k.stride(1) != K or v.stride(1) != V or not A_log.is_contiguous()
            or not dt_bias.is_contiguous() or not state.is_contiguous() or K > MAX_DIM or V > MAX_DIM or V % 16
            or state.requires_grad or KERNEL.lib is None):
        return None
    o = torch.empty(B, HV, V, dtype=torch.bfloat16)
    rc = KERNEL.lib.vl_gated_delta_decode_bf16(
        q.data_ptr(), k.data_ptr(), v.data_ptr(), a.data_ptr(), b.data_ptr(), A_log.data_ptr(), dt_bias.data_ptr(),
        state.data_ptr(), o.data_ptr(), B, H, HV, K, V, q.stride(0), k.stride(0), v.stride(0), a.stride(0),
        b.stride(0), float(scale), int(use_qk_l2norm), torch.get_num_threads())
    return o if rc == 0 else None


def gated_delta_decode_step_inplace(q, k, v, a, b, A_log, dt_bias, state, scale=None, use_qk_l2norm=True):
    """q, k [B,H,K]; v [B,HV,V]; a, b [B,HV]; A_log, dt_bias [HV]; state [B,HV,K,V] fp32 updated in place.

    g = -exp(A_log) * softplus(a + dt_bias) in fp32; beta = sigmoid(b) rounded to b's dtype (as
    transformers computes it), then fp32. Returns o [B,HV,V] in v.dtype.
    """
    B, H, K = q.shape
    HV, V = v.shape[1:]
    scale = K**-0.5 if scale is None else scale
    qf, kf = q.float(), k.float()
    if use_qk_l2norm:
        qf, kf = l2norm(qf), l2norm(kf)
    if HV != H:
        qf, kf = qf.repeat_interleave(HV // H, dim=1), kf.repeat_interleave(HV // H, dim=1)
    qf = (qf * scale).reshape(B * HV, 1, K)
    kf = kf.reshape(B * HV, 1, K)
    g = -A_log.float().exp() * F.softplus(a.float() + dt_bias.float())  # [B, HV]
    beta = b.sigmoid().float()
    s = state if state.is_contiguous() else state.contiguous()
    s3 = s.view(B * HV, K, V)
    s3.mul_(g.exp().view(B * HV, 1, 1))
    delta = (v.float().reshape(B * HV, 1, V) - torch.bmm(kf, s3)).mul_(beta.view(B * HV, 1, 1))
    s3.baddbmm_(kf.transpose(1, 2), delta)  # S += k^T delta
    o = torch.bmm(qf, s3)
    if s is not state:
        state.copy_(s)
    return o.view(B, HV, V).to(v.dtype)
