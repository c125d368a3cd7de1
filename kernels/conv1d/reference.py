"""Depthwise causal conv1d (the short conv before Gated DeltaNet) in plain PyTorch.

Computed in fp32 and cast back once (HF's causal_conv1d_fn computes in the weight dtype; for fp32 inputs
the two agree exactly, for bf16 they differ by bf16 rounding).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

ACTIVATIONS = (None, "silu", "swish")


def _activate(y: torch.Tensor, activation: str | None) -> torch.Tensor:
    return F.silu(y) if activation in ("silu", "swish") else y


def causal_conv1d_torch(x, weight, bias=None, activation="silu", initial_state=None):
    """x [B,T,D], weight [D,W] -> (y [B,T,D], final_state [B,D,W-1] = the last W-1 inputs)."""
    B, T, D = x.shape
    W = weight.shape[1]
    xt = x.transpose(1, 2)  # [B, D, T]
    if initial_state is None:
        history = xt.new_zeros(B, D, W - 1)
    else:
        history = initial_state.to(x.dtype)
    padded = torch.cat([history, xt], dim=-1)  # [B, D, W-1+T]
    y = F.conv1d(padded.float(), weight.float().unsqueeze(1), None if bias is None else bias.float(), groups=D)
    y = _activate(y, activation)
    final_state = padded[:, :, padded.shape[-1] - (W - 1):].contiguous()
    return y.transpose(1, 2).to(x.dtype).contiguous(), final_state


def causal_conv1d_update_torch(x, conv_state, weight, bias=None, activation="silu"):
    """One token: x [B,D]; conv_state [B,D,W-1] is shifted in place to hold the newest W-1 inputs."""
    window = torch.cat([conv_state.float(), x.float().unsqueeze(-1)], dim=-1)  # [B, D, W]
    y = (window * weight.float()).sum(-1)
    if bias is not None:
        y = y + bias.float()
    y = _activate(y, activation)
    conv_state.copy_(window[:, :, 1:].to(conv_state.dtype))
    return y.to(x.dtype)
