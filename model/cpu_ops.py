"""CPU fast paths the engine uses instead of vlagent.kernels' PyTorch references.

Same arithmetic as the references (tests check them against each other and against
transformers); they differ only in how the work is laid out for a CPU:

- `causal_conv1d_prefill`: the depthwise 4-tap conv as four multiply-adds over [B, T, D]
  (oneDNN's fp32 depthwise Conv1d took ~80 ms per layer for a 932-token prompt on one core).
- `chunk_gated_delta_rule_prefill`: every intra-chunk quantity for all chunks at once, the
  triangular system inverted by block doubling (small matmuls; torch.linalg.solve_triangular
  ran at ~5 GFLOP/s here) and applied to both right-hand sides in one matmul, and only the
  state recurrence in the Python loop (two small matmuls per chunk); outputs read the stacked
  per-chunk states in one matmul.

Candidates for the CPU paths of vlagent.kernels.causal_conv1d / chunk_gated_delta_rule; the
engine would then call those and this file would keep only the process settings below.

Plus two process-level CPU settings: glibc keeps large freed blocks (`keep_freed_memory_in_heap`)
and single-row products skip oneDNN (`matvec_mode`).
"""

from __future__ import annotations

from contextlib import contextmanager

import torch
import torch.nn.functional as F
from torch import Tensor

CHUNK = 64


def _l2norm_scaled(x: Tensor, scale: float = 1.0, eps: float = 1e-6) -> Tensor:
    return x * (torch.rsqrt((x * x).sum(-1, keepdim=True) + eps) * scale)


def causal_conv1d_prefill(x: Tensor, weight: Tensor, state: Tensor, rows_per_block: int = 64) -> Tensor:
    """SiLU(depthwise causal conv) of x [B, T, D] (model dtype) with weight [D, W], the history
    `state` [B, D, W-1] prepended; `state` is updated in place to the newest W-1 inputs.
    Accumulates in fp32, rounds once to x.dtype. Runs over blocks of rows small enough to stay
    in the core's cache (the whole-prompt version streamed 5 fp32 [T, D] passes through memory)."""
    B, T, D = x.shape
    W = weight.shape[1]
    w = weight.float().t()  # [W, D]
    padded = torch.cat([state.transpose(1, 2).to(x.dtype), x[:, : W - 1]], dim=1) if T else None
    out = torch.empty_like(x)
    for s in range(0, T, rows_per_block):
        e = min(T, s + rows_per_block)
        # padded rows s .. e+W-2: the W-1 inputs before token s, then tokens s .. e-1
        if s < W - 1:
            block = torch.cat([padded[:, s : W - 1], x[:, max(s - (W - 1), 0) : e]], dim=1).float()
        else:
            block = x[:, s - (W - 1) : e].float()
        y = block[:, : e - s] * w[0]
        for j in range(1, W):
            y.addcmul_(block[:, j : j + e - s], w[j])
        out[:, s:e] = F.silu(y, inplace=True)
    if T:  # the newest W-1 inputs of history ++ x
        state.copy_((x if T >= W - 1 else padded)[:, -(W - 1) :].transpose(1, 2))
    return out


def chunk_gated_delta_rule_prefill(q: Tensor, k: Tensor, v: Tensor, g: Tensor, beta: Tensor, state: Tensor) -> Tensor:
    """Gated delta rule over a prompt, chunked (UT/WY form), all arithmetic in fp32.

    q, k [B, T, H, K] (L2-normalised here, q scaled by K^-0.5); v [B, T, HV, V]; g (log decay)
    and beta [B, T, HV]; state [B, HV, K, V] fp32, read as the initial state and overwritten
    with the final one. Returns o [B, T, HV, V] in v.dtype.

    Per chunk (cumulative log decay c, Gamma_ij = exp(c_i - c_j), j <= i):
        A = (I + strict_lower((beta k) k^T * Gamma))^-1,  u = A (beta v),  w = A (beta k e^c)
        v_new = u - w S,  o = (q e^c) S + ((q k^T) * Gamma) v_new,
        S' = e^{c_last} S + (k e^{c_last - c})^T v_new
    """
    B, T, H, Kd = q.shape
    HV, Vd = v.shape[2], v.shape[3]
    C = CHUNK
    N = -(-T // C)
    full = T // C
    BH = B * HV

    def chunk_major(x: Tensor) -> Tensor:  # [B, T, h, ...] -> fp32 [N, B, h, C, ...], zero-padded, one copy
        rest = x.shape[3:]
        out = torch.empty((N, B, x.shape[2], C, *rest), dtype=torch.float32, device=x.device)
        view = out.movedim(0, 1).movedim(3, 2)  # [B, N, C, h, ...] over out's memory
        if full:
            view[:, :full] = x[:, : full * C].reshape(B, full, C, *x.shape[2:])
        if full < N:
            view[:, full, : T - full * C] = x[:, full * C :]
            view[:, full, T - full * C :] = 0
        return out

    def per_value_head(x: Tensor) -> Tensor:  # [N, B, H, C, d] -> [N, B*HV, C, d]
        if H != HV:
            x = x.repeat_interleave(HV // H, dim=2)
        return x.reshape(N, BH, C, x.shape[-1])

    qf = per_value_head(_l2norm_scaled(chunk_major(q), Kd**-0.5))
    kf = per_value_head(_l2norm_scaled(chunk_major(k)))
    vf = chunk_major(v).view(N, BH, C, Vd)
    c = chunk_major(g).view(N, BH, C).cumsum(-1)
    bt = chunk_major(beta).view(N, BH, C, 1)

    # exponents clamped to [-80, 0]: e^-80 ~ 2e-35 stands in for smaller decays, which keeps the
    # exps and products out of fp32's subnormal range (several times slower on x86) and off -inf
    lower = torch.ones(C, C, dtype=torch.float32, device=q.device).tril_()
    gamma = (c[..., :, None] - c[..., None, :]).clamp_(-80.0, 0.0).exp_().mul_(lower)
    decay_in = c.clamp(min=-80.0).exp_()[..., None]  # from the chunk start to each token
    decay_out = (c[..., -1:] - c).clamp_(min=-80.0).exp_()[..., None]  # from each token to the chunk end
    chunk_decay = c[..., -1].clamp(min=-80.0).exp_().view(N, BH, 1, 1)

    k_beta = kf * bt
    system = torch.matmul(k_beta, kf.transpose(-1, -2)).mul_(gamma)
    rhs = torch.cat([vf.mul_(bt), k_beta.mul_(decay_in)], dim=-1)  # [N, BH, C, V + K]
    uw = torch.matmul(_unit_lower_inverse(system), rhs)
    u, w = uw[..., :Vd], uw[..., Vd:]
    attn = torch.matmul(qf, kf.transpose(-1, -2)).mul_(gamma)
    q_decayed = qf.mul_(decay_in)
    k_decayed_t = kf.mul_(decay_out).transpose(-1, -2).contiguous()  # [N, BH, K, C]

    states = torch.empty(N + 1, BH, Kd, Vd, dtype=torch.float32, device=q.device)  # entering chunk i; final
    states[0] = state.view(BH, Kd, Vd)
    v_new = torch.empty(N, BH, C, Vd, dtype=torch.float32, device=q.device)
    for i in range(N):
        torch.baddbmm(u[i], w[i], states[i], alpha=-1, out=v_new[i])
        torch.mul(states[i], chunk_decay[i], out=states[i + 1]).baddbmm_(k_decayed_t[i], v_new[i])
    state.copy_(states[N].view_as(state))
    o = torch.matmul(q_decayed, states[:N])
    o.view(N * BH, C, Vd).baddbmm_(attn.view(N * BH, C, C), v_new.view(N * BH, C, Vd))
    out = torch.empty(B, N * C, HV, Vd, dtype=v.dtype, device=v.device)
    out.view(B, N, C, HV, Vd).copy_(o.view(N, B, HV, C, Vd).permute(1, 0, 3, 2, 4))
    return out[:, :T]


def _unit_lower_inverse(m: Tensor) -> Tensor:
    """(I + strict_lower(m))^-1 for a batch of C x C matrices (C a power of two), by doubling
    the size of the inverted diagonal blocks: [[A, 0], [B, D]]^-1 = [[A', 0], [-D' B A', D']].
    Six levels of small matmuls; torch.linalg.solve_triangular on the same batch ran at ~5 GFLOP/s."""
    C = m.shape[-1]
    if C & (C - 1):
        raise ValueError(f"chunk size must be a power of two; got {C}")
    shape = m.shape
    m = m.reshape(-1, C, C)
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


def keep_freed_memory_in_heap() -> bool:
    """Ask glibc to serve large blocks from the heap and keep freed memory there.

    By default every block over ~32 MB is a fresh mmap, and each first touch of its pages is a
    page fault: on this kind of (virtualised) CPU that made elementwise ops over prompt-sized
    activations 2-4x slower than the arithmetic. Process-wide; set VLAGENT_MALLOC_TUNING=0 to
    skip. Returns whether the setting was applied (glibc only)."""
    import ctypes
    import os
    import sys

    if os.environ.get("VLAGENT_MALLOC_TUNING", "1") == "0" or not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return False
    M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3
    return bool(libc.mallopt(M_MMAP_THRESHOLD, 1 << 30)) and bool(libc.mallopt(M_TRIM_THRESHOLD, 1 << 30))


@contextmanager
def matvec_mode(device: torch.device, active: bool = True):
    """Run single-row products (one decode token, the last prompt position's logits) through
    PyTorch's own bf16 matrix-vector kernel instead of oneDNN's: ~1.6x the memory bandwidth on
    this CPU for [1, K] x [K, N] (27 vs 17 GB/s, 2 threads); oneDNN stays faster from 2 rows
    up. The oneDNN switch is process-wide, so it is restored on exit."""
    if not active or device.type != "cpu" or not torch.backends.mkldnn.enabled:
        yield
        return
    torch.backends.mkldnn.enabled = False
    try:
        yield
    finally:
        torch.backends.mkldnn.enabled = True
