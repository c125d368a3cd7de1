"""Few-row bf16 linear on CPU through cpu_gemv.c (AVX512-BF16), called through ctypes.

One decode step is memory-bound: every weight byte is read once per token. The C loop reads them at
close to the machine's bandwidth; oneDNN and PyTorch's own matrix-vector kernel each lose up to 2x
on one of the dev CPUs. Anything the kernel does not cover returns None, and the caller uses
F.linear.
"""
from __future__ import annotations

import ctypes
from pathlib import Path

import torch

from .. import native

SOURCE = Path(__file__).with_name("cpu_gemv.c")
FLAGS = ("-mavx512f", "-mavx512bw", "-mavx512vl", "-mavx512bf16", "-fopenmp")
MAX_ROWS = 8  # activation rows per call (decode batch, MTP verification)
i64, ptr = ctypes.c_int64, ctypes.c_void_p
KERNEL = native.NativeKernel(SOURCE, FLAGS, needs="AVX512F/BW + AVX512-BF16", signatures={
    "vl_gemv_bf16": ([ptr, i64, i64, i64, ptr, i64, ptr, ptr, i64, ctypes.c_int], ctypes.c_int),
})


def linear_few_rows(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor | None:
    """x [..., K] bf16 with at most MAX_ROWS rows, weight [N, K] bf16 contiguous, bias [N] bf16 or None
    -> x @ weight.T + bias in bf16 (fp32 accumulation, one rounding); None when not covered."""
    K = x.shape[-1]
    rows = x.numel() // K if K else 0
    if (
        x.dtype != torch.bfloat16 or weight.dtype != torch.bfloat16
        or x.device.type != "cpu" or weight.device.type != "cpu"
        or not 0 < rows <= MAX_ROWS or K % 32 or weight.dim() != 2 or weight.shape[1] != K
        or not weight.is_contiguous() or x.stride(-1) != 1 or x.requires_grad or weight.requires_grad
        or (bias is not None and (bias.dtype != torch.bfloat16 or bias.device.type != "cpu" or bias.dim() != 1
                                  or bias.shape[0] != weight.shape[0] or not bias.is_contiguous()
                                  or bias.requires_grad))
        or KERNEL.lib is None
    ):
        return None  # F.linear handles it (and raises its own errors for bad shapes)
    x2 = x.reshape(rows, K)  # a view for the usual [B, 1, K] / [1, T, K] layouts
    N = weight.shape[0]
    y = torch.empty(rows, N, dtype=torch.bfloat16)
    rc = KERNEL.lib.vl_gemv_bf16(x2.data_ptr(), rows, K, x2.stride(0), weight.data_ptr(), N,
                                 None if bias is None else bias.data_ptr(), y.data_ptr(), N,
                                 torch.get_num_threads())
    return y.view(*x.shape[:-1], N) if rc == 0 else None
