"""Rotate-half rotary in place on bf16 CPU rows (cpu_rotate.c, AVX512-BF16), through ctypes.

Used by the vision tower, where rotary is fp32 math rounded once to bf16; one pass over q and k
instead of PyTorch's six. Falls back to the reference (rotary/reference.py) where unavailable.
"""
from __future__ import annotations

import ctypes
from pathlib import Path

import torch

from .. import native

SOURCE = Path(__file__).with_name("cpu_rotate.c")
FLAGS = ("-mavx512f", "-mavx512bw", "-mavx512vl", "-mavx512bf16", "-fopenmp")

i64, ptr = ctypes.c_int64, ctypes.c_void_p
KERNEL = native.NativeKernel(SOURCE, FLAGS, needs="AVX512F/BW/VL + AVX512-BF16", signatures={
    "vl_rotate_half_bf16": ([ptr] + [i64] * 5 + [ptr] * 2 + [i64, ctypes.c_int], ctypes.c_int),
})


def cpu_rotary_available() -> bool:
    return KERNEL.lib is not None


def supports(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> bool:
    D = x.shape[-1]
    return (
        x.device.type == "cpu" and x.dtype == torch.bfloat16 and x.dim() == 3 and D % 2 == 0
        and x.stride(-1) == 1 and not x.requires_grad
        and cos.dtype == sin.dtype == torch.float32 and cos.dim() == 2 and cos.shape == sin.shape
        and cos.shape[0] == x.shape[0] and cos.shape[1] >= D // 2
        and cos.stride(-1) == 1 and sin.stride() == cos.stride()
        and cpu_rotary_available()
    )


def rotate_half_native(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor | None:
    """x bf16 [n, ..., D] rotated in place through cpu_rotate.c and returned; None (x untouched) when
    the kernel does not cover it. The groups (heads of q and k) are merged when strides allow."""
    if x.dtype != torch.bfloat16 or x.device.type != "cpu":
        return None
    try:
        rows = x.view(x.shape[0], -1, x.shape[-1])
    except RuntimeError:
        return None
    if not supports(rows, cos, sin):
        return None
    rotate_half_inplace_cpu(rows, cos, sin)
    return x


def rotate_half_inplace_cpu(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """x bf16 [n, G, D] (D contiguous, any token/group strides), cos/sin fp32 [n, >= D/2]: rotated in place."""
    if not supports(x, cos, sin):
        raise ValueError(
            "rotate_half_inplace_cpu needs bf16 CPU x [n, G, D] (D even and contiguous) and fp32 cos/sin "
            f"[n, >= D/2] with equal strides; got x {tuple(x.shape)} {x.dtype}, cos {tuple(cos.shape)} {cos.dtype}"
        )
    n, G, D = x.shape
    lib = KERNEL.lib
    rc = lib.vl_rotate_half_bf16(x.data_ptr(), n, G, D, x.stride(0), x.stride(1), cos.data_ptr(), sin.data_ptr(),
                                 cos.stride(0), torch.get_num_threads())
    if rc != 0:
        raise ValueError(f"cpu rotary rejected its arguments (n={n}, G={G}, D={D})")
    return x
