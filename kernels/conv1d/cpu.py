"""The CPU path of causal_conv1d: the same arithmetic as reference.causal_conv1d_torch, laid out for a CPU.

The depthwise W-tap conv is W multiply-adds over row blocks of [B, T, D], accumulated in fp32 and
rounded once to x's dtype. bf16 inputs on AVX512-BF16 CPUs take the same arithmetic in one C pass
(cpu_conv.c, built on first use; ~13x fewer memory passes), everything else the PyTorch blocks. oneDNN's fp32 depthwise Conv1d (the reference's F.conv1d) took ~80 ms per
layer for a 932-token prompt on one core; row blocks small enough to stay in the core's cache avoid
streaming several fp32 [T, D] passes through memory.
"""
from __future__ import annotations

import ctypes
from pathlib import Path

import torch
import torch.nn.functional as F

from .. import native
from .reference import causal_conv1d_update_torch

ROWS_PER_BLOCK = 64
SOURCE = Path(__file__).with_name("cpu_conv.c")
FLAGS = ("-mavx512f", "-mavx512bw", "-mavx512vl", "-mavx512bf16", "-fopenmp")
MAX_WIDTH = 16
i64, ptr = ctypes.c_int64, ctypes.c_void_p
KERNEL = native.NativeKernel(SOURCE, FLAGS, needs="AVX512F/BW/VL + AVX512-BF16", signatures={
    "vl_causal_conv1d_bf16": ([ptr] * 5 + [i64] * 6 + [ctypes.c_int, ctypes.c_int], ctypes.c_int),
    "vl_causal_conv1d_update_bf16": ([ptr, i64, ptr, ptr, ptr, ptr, i64, i64, i64, ctypes.c_int, ctypes.c_int], ctypes.c_int),
})


def native_conv_available() -> bool:
    """Whether bf16 inputs take the C kernel (cpu_conv.c): one pass, fp32 accumulation."""
    return KERNEL.lib is not None


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


def causal_conv1d_cpu(x, weight, bias=None, activation="silu", initial_state=None,
                      rows_per_block: int = ROWS_PER_BLOCK, native_kernel: bool = True):
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
    silu = activation in ("silu", "swish")
    final_state = (x if T >= W - 1 else torch.cat([history, x], dim=1))[:, -(W - 1) :].transpose(1, 2).contiguous()
    if native_kernel and x.dtype == torch.bfloat16 and x.device.type == "cpu":
        y = _native_conv(x, history, weight, bias, silu)
        if y is not None:
            return y, final_state
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


def causal_conv1d_update_cpu(x, conv_state, weight, bias=None, activation="silu", native_kernel: bool = True):
    """One token, as reference.causal_conv1d_update_torch: x [B,D] -> y [B,D]; conv_state [B,D,W-1]
    shifted in place. bf16 on AVX512-BF16 CPUs takes cpu_conv.c (one pass, no temporaries) unless
    native_kernel=False."""
    B, D = x.shape
    W = weight.shape[1]
    if (x.dtype == conv_state.dtype == weight.dtype == torch.bfloat16 and native_kernel
            and all(t.device.type == "cpu" for t in (x, conv_state, weight) + ((bias,) if bias is not None else ()))
            and x.stride(-1) == 1 and conv_state.is_contiguous() and weight.is_contiguous() and W <= MAX_WIDTH
            and (bias is None or (bias.dtype == torch.bfloat16 and bias.is_contiguous()))
            and not conv_state.requires_grad and KERNEL.lib is not None):
        y = torch.empty(B, D, dtype=torch.bfloat16)
        rc = KERNEL.lib.vl_causal_conv1d_update_bf16(
            x.data_ptr(), x.stride(0), conv_state.data_ptr(), weight.data_ptr(),
            None if bias is None else bias.data_ptr(), y.data_ptr(), B, D, W,
            int(activation in ("silu", "swish")), torch.get_num_threads())
        if rc == 0:
            return y
    return causal_conv1d_update_torch(x, conv_state, weight, bias, activation)
