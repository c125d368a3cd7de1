"""RMSNorm and gated RMSNorm over bf16 rows on CPU through cpu_norm.c (AVX512), called through ctypes.

Same roundings as norm/reference.py (HF Qwen3.5); the row statistics are fp32 sums in another order,
so outputs may differ from the reference by one bf16 rounding step. None = not covered (the caller
uses the reference).
"""
from __future__ import annotations

import ctypes
from pathlib import Path

import torch

from .. import native

SOURCE = Path(__file__).with_name("cpu_norm.c")
FLAGS = ("-mavx512f", "-mavx512bw", "-fopenmp")
i64, ptr = ctypes.c_int64, ctypes.c_void_p
KERNEL = native.NativeKernel(SOURCE, FLAGS, needs="AVX512F/BW", signatures={
    "vl_rms_norm_bf16": ([ptr, i64, i64, i64, ptr, ctypes.c_int, ctypes.c_float, ptr, ctypes.c_int], ctypes.c_int),
    "vl_gated_rms_norm_bf16": ([ptr, ptr, i64, i64, i64, i64, ptr, ctypes.c_float, ptr, ctypes.c_int], ctypes.c_int),
})


def _rows(t: torch.Tensor) -> torch.Tensor:
    """t as [rows, D] with unit stride along D (a view where possible, else a copy)."""
    t2 = t.reshape(-1, t.shape[-1])
    return t2 if t2.stride(-1) == 1 or t2.shape[-1] == 1 else t2.contiguous()


def _covered(*tensors: torch.Tensor) -> bool:
    return (all(t.dtype == torch.bfloat16 and t.device.type == "cpu" and not t.requires_grad for t in tensors)
            and KERNEL.lib is not None)


def rms_norm_cpu(x: torch.Tensor, weight: torch.Tensor, eps: float, zero_centered: bool) -> torch.Tensor | None:
    if not _covered(x, weight) or x.numel() == 0:
        return None
    x2, w = _rows(x), weight.contiguous()
    y = torch.empty(x.shape, dtype=torch.bfloat16)
    rc = KERNEL.lib.vl_rms_norm_bf16(x2.data_ptr(), x2.shape[0], x2.shape[1], x2.stride(0), w.data_ptr(),
                                     int(zero_centered), float(eps), y.data_ptr(), torch.get_num_threads())
    return y if rc == 0 else None


def gated_rms_norm_cpu(x: torch.Tensor, z: torch.Tensor, weight: torch.Tensor, eps: float) -> torch.Tensor | None:
    if not _covered(x, z, weight) or x.numel() == 0:
        return None
    x2, z2, w = _rows(x), _rows(z), weight.contiguous()
    y = torch.empty(x.shape, dtype=torch.bfloat16)
    rc = KERNEL.lib.vl_gated_rms_norm_bf16(x2.data_ptr(), z2.data_ptr(), x2.shape[0], x2.shape[1], x2.stride(0),
                                           z2.stride(0), w.data_ptr(), float(eps), y.data_ptr(),
                                           torch.get_num_threads())
    return y if rc == 0 else None
