"""Small helpers for the Triton launchers (only imported on Triton paths)."""
from __future__ import annotations

import torch

from .backend import check_kernel_mode


def next_pow2(n: int) -> int:
    return 1 << max(0, (int(n) - 1).bit_length())


def dot_precision(dtype: torch.dtype) -> str:
    """fp32 inputs get exact fp32 dots; bf16/fp16 inputs may use tf32 (still finer than their own rounding)."""
    return "ieee" if dtype == torch.float32 else "tf32"


def prepare_launch(kernel, *tensors: torch.Tensor | None) -> None:
    """Fail clearly before launching a compiled kernel on CPU tensors."""
    check_kernel_mode(kernel, *tensors)


def sequence_bounds(B: int, T: int, cu_seqlens: torch.Tensor | None, device) -> torch.Tensor:
    """int32 [N+1] start offsets into the flattened [B*T] token axis (B>1 batches are equal-length sequences)."""
    if cu_seqlens is not None:
        return cu_seqlens.to(device=device, dtype=torch.int32)
    return torch.arange(0, B + 1, device=device, dtype=torch.int32) * T
