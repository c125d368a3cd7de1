"""The CPU path of causal_conv1d: the same arithmetic as reference.causal_conv1d_torch, laid out for a CPU.

The depthwise W-tap conv is W multiply-adds over row blocks of [B, T, D], accumulated in fp32 and
rounded once to x's dtype (`causal_conv1d_cpu`). Row blocks small enough to stay in a core's cache
avoid streaming several fp32 [T, D] passes through memory, which is what oneDNN's depthwise
Conv1d (the reference's F.conv1d) does. bf16 inputs on AVX512-BF16 CPUs can take the same
arithmetic in one C pass (cpu_conv.c, built on first use): `causal_conv1d_native` and
`causal_conv1d_update_native` return None where it does not cover the inputs.
"""
from __future__ import annotations

import ctypes
from pathlib import Path

import torch
import torch.nn.functional as F

from .. import native

ROWS_PER_BLOCK = 64
SOURCE = Path(__file__).with_name("cpu_conv.c")
FLAGS = ("-mavx512f", "-mavx512bw", "-mavx512vl", "-mavx512bf16", "-fopenmp")
MAX_WIDTH = 16
i64, ptr = ctypes.c_int64, ctypes.c_void_p
KERNEL = native.NativeKernel(SOURCE, FLAGS, needs="AVX512F/BW/VL + AVX512-BF16", signatures={
    "vl_causal_conv1d_bf16": ([ptr] * 5 + [i64] * 6 + [ctypes.c_int, ctypes.c_int], ctypes.c_int),
    "vl_causal_conv1d_update_bf16": ([ptr, i64, ptr, ptr, ptr, ptr, i64, i64, i64, ctypes.c_int, ctypes.c_int], ctypes.c_int),
})


def _native_conv(x, history, weight, bias, silu: bool):
    """bf16 x [B,T,D] (D contiguous) + history [B,W-1,D] -> y [B,T,D] through cpu_conv.c, or None."""
    B, T, D = x.shape
    W = weight.shape[1]
    if (x.stride(-1) != 1 or W > MAX_WIDTH or T == 0 or x.requires_grad or KERNEL.lib is None
            or any(t is not None and t.device.type != "cpu" for t in (history, weight, bias))):
        return None
    history = history.to(torch.bfloat16).contiguous()
    w = weight.float().t().contiguous()  # [W, D]
    b = None if bias is None else bias.float().contiguous()
    y = torch.empty(B, T, D, dtype=torch.bfloat16)
    rc = KERNEL.lib.vl_causal_conv1d_bf16(x.data_ptr(), history.data_ptr(), w.data_ptr(),
                                          None if b is None else b.data_ptr(), y.data_ptr(), B, T, D, W,
                                          x.stride(0), x.stride(1), int(silu), torch.get_num_threads())
    return y if rc == 0 else None


def _history_and_final_state(x, weight, initial_state):
    """(history [B,W-1,D] before x in x.dtype, final_state [B,D,W-1] = the last W-1 inputs)."""
    B, T, D = x.shape
    W = weight.shape[1]
    if initial_state is None:
        history = x.new_zeros(B, W - 1, D)
    else:
        history = initial_state.transpose(1, 2).to(x.dtype)  # [B, W-1, D]
    final_state = (x if T >= W - 1 else torch.cat([history, x], dim=1))[:, -(W - 1) :].transpose(1, 2).contiguous()
    return history, final_state


def causal_conv1d_native(x, weight, bias=None, activation="silu", initial_state=None):
    """cpu_conv.c for bf16 CPU x (results as causal_conv1d_cpu); None when it does not cover the inputs."""
    if x.dtype != torch.bfloat16 or x.device.type != "cpu" or x.shape[1] == 0 or KERNEL.lib is None:
        return None
    history, final_state = _history_and_final_state(x, weight, initial_state)
    y = _native_conv(x, history, weight, bias, activation in ("silu", "swish"))
    return None if y is None else (y, final_state)


def causal_conv1d_cpu(x, weight, bias=None, activation="silu", initial_state=None,
                      rows_per_block: int = ROWS_PER_BLOCK):
    """x [B,T,D], weight [D,W] -> (y [B,T,D] in x.dtype, final_state [B,D,W-1] = the last W-1 inputs of
    initial_state ++ x, in x.dtype). initial_state [B,D,W-1] (None = zeros) is the history before x."""
    B, T, D = x.shape
    W = weight.shape[1]
    history, final_state = _history_and_final_state(x, weight, initial_state)
    if T == 0:
        return x.new_empty(B, 0, D), history.transpose(1, 2).contiguous()
    silu = activation in ("silu", "swish")
    w = weight.float().t()  # [W, D]
    b = None if bias is None else bias.float()
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
    return out, final_state


def causal_conv1d_update_native(x, conv_state, weight, bias=None, activation="silu"):
    """One token through cpu_conv.c, as reference.causal_conv1d_update_torch: x [B,D] -> y [B,D];
    conv_state [B,D,W-1] shifted in place. None (and the state untouched) when not covered."""
    B, D = x.shape
    W = weight.shape[1]
    if not (x.dtype == conv_state.dtype == weight.dtype == torch.bfloat16
            and all(t.device.type == "cpu" for t in (x, conv_state, weight) + ((bias,) if bias is not None else ()))
            and x.stride(-1) == 1 and conv_state.is_contiguous() and weight.is_contiguous() and W <= MAX_WIDTH
            and (bias is None or (bias.dtype == torch.bfloat16 and bias.is_contiguous()))
            and not conv_state.requires_grad and KERNEL.lib is not None):
        return None
    y = torch.empty(B, D, dtype=torch.bfloat16)
    rc = KERNEL.lib.vl_causal_conv1d_update_bf16(
        x.data_ptr(), x.stride(0), conv_state.data_ptr(), weight.data_ptr(),
        None if bias is None else bias.data_ptr(), y.data_ptr(), B, D, W,
        int(activation in ("silu", "swish")), torch.get_num_threads())
    return y if rc == 0 else None
