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


def causal_conv1d_prefill(x: Tensor, weight: Tensor, state: Tensor) -> Tensor:
    """SiLU(depthwise causal conv) of x [B, T, D] (model dtype) with weight [D, W], the history
    `state` [B, D, W-1] prepended; `state` is updated in place to the newest W-1 inputs.
    Accumulates in fp32, rounds once to x.dtype."""
    B, T, D = x.shape
    W = weight.shape[1]
    padded = torch.empty(B, W - 1 + T, D, dtype=torch.float32, device=x.device)
    padded[:, : W - 1] = state.transpose(1, 2)
    padded[:, W - 1 :] = x
    w = weight.float().t()  # [W, D]
    y = padded[:, 0:T] * w[0]
    for j in range(1, W):
        y.addcmul_(padded[:, j : j + T], w[j])
    state.copy_(padded[:, T:].transpose(1, 2))
    return F.silu(y, inplace=True).to(x.dtype)


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
    Tp = N * C

    def heads_major(x: Tensor, n_heads: int) -> Tensor:  # [B, T, h, d] -> fp32 [B, HV, N, C, d], zero-padded
        out = x.new_zeros((B, n_heads, Tp, x.shape[-1]), dtype=torch.float32)
        out[:, :, :T] = x.transpose(1, 2)
        if n_heads != HV:
            out = out.repeat_interleave(HV // n_heads, dim=1)
        return out.view(B, HV, N, C, x.shape[-1])

    qf = _l2norm_scaled(heads_major(q, H), Kd**-0.5)
    kf = _l2norm_scaled(heads_major(k, H))
    vf = heads_major(v, HV)
    gb = torch.zeros(2, B, HV, Tp, dtype=torch.float32, device=q.device)
    gb[0, :, :, :T] = g.transpose(1, 2)
    gb[1, :, :, :T] = beta.transpose(1, 2)
    c = gb[0].view(B, HV, N, C).cumsum(-1)
    bt = gb[1].view(B, HV, N, C, 1)

    lower = torch.ones(C, C, dtype=torch.bool, device=q.device).tril()
    gamma = (c[..., :, None] - c[..., None, :]).masked_fill_(~lower, float("-inf")).exp_()
    k_beta = kf * bt
    system = torch.matmul(k_beta, kf.transpose(-1, -2)).mul_(gamma)
    rhs = torch.cat([vf * bt, k_beta.mul_(c.exp()[..., None])], dim=-1)  # [.., C, V + K]
    uw = torch.matmul(_unit_lower_inverse(system), rhs)
    u, w = uw[..., :Vd], uw[..., Vd:]
    attn = torch.matmul(qf, kf.transpose(-1, -2)).mul_(gamma)
    qf.mul_(c.exp()[..., None])
    k_decayed = kf.mul_((c[..., -1:] - c).exp()[..., None])
    chunk_decay = c[..., -1].exp()  # [B, HV, N]

    BH = B * HV
    S = state.view(BH, Kd, Vd)
    states = torch.empty(BH, N, Kd, Vd, dtype=torch.float32, device=q.device)
    v_new = torch.empty(BH, N, C, Vd, dtype=torch.float32, device=q.device)
    u, w = u.reshape(BH, N, C, Vd), w.reshape(BH, N, C, Kd)
    k_decayed_t = k_decayed.view(BH, N, C, Kd).transpose(-1, -2).contiguous()  # [BH, N, K, C]
    chunk_decay = chunk_decay.view(BH, N, 1, 1)
    for i in range(N):
        states[:, i] = S
        torch.baddbmm(u[:, i], w[:, i], S, alpha=-1, out=v_new[:, i])
        S.mul_(chunk_decay[:, i]).baddbmm_(k_decayed_t[:, i], v_new[:, i])
    o = torch.matmul(qf.view(BH, N, C, Kd), states)
    o.view(BH * N, C, Vd).baddbmm_(attn.view(BH * N, C, C), v_new.view(BH * N, C, Vd))
    return o.view(B, HV, Tp, Vd)[:, :, :T].transpose(1, 2).to(v.dtype)


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
