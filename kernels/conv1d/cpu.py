"""The CPU path of causal_conv1d: the same arithmetic as reference.causal_conv1d_torch, laid out for a CPU.

The depthwise W-tap conv is W multiply-adds over row blocks of [B, T, D], accumulated in fp32 and
rounded once to x's dtype. oneDNN's fp32 depthwise Conv1d (the reference's F.conv1d) took ~80 ms per
layer for a 932-token prompt on one core; row blocks small enough to stay in the core's cache avoid
streaming several fp32 [T, D] passes through memory.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

ROWS_PER_BLOCK = 64


def causal_conv1d_cpu(x, weight, bias=None, activation="silu", initial_state=None,
                      rows_per_block: int = ROWS_PER_BLOCK):
    """x [B,T,D], weight [D,W] -> (y [B,T,D] in x.dtype, final_state [B,D,W-1] = the last W-1 inputs of
    initial_state ++ x, in x.dtype). initial_state [B,D,W-1] (None = zeros) is the history before x."""
    B, T, D = x.shape
    W = weight.shape[1]
    if initial_state is None:
        history = x.new_zeros(B, W - 1, D)
    else:
        history = initial_state.transpose(1, 2).to(x.dtype)  # [B, W-1, D]
    if T == 0:
        return x.new_empty(B, 0, D), history.transpose(1, 2).contiguous()
    w = weight.float().t()  # [W, D]
    b = None if bias is None else bias.float()
    silu = activation in ("silu", "swish")
    padded = torch.cat([history, x[:, : W - 1]], dim=1)  # history ++ the first W-1 tokens
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
        if b is not None:
            y.add_(b)
        out[:, s:e] = F.silu(y, inplace=True) if silu else y
    final_state = (x if T >= W - 1 else padded)[:, -(W - 1) :].transpose(1, 2).contiguous()
    return out, final_state
