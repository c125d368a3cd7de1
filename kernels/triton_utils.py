"""Small helpers for the Triton launchers (only imported on Triton paths)."""
from __future__ import annotations

import torch

from .backend import check_kernel_mode


class KernelDoesNotFit(RuntimeError):
    """No launch option of a Triton kernel fits this GPU (its shared memory); the caller may take another
    path. Raised before anything was written to the outputs."""


def next_pow2(n: int) -> int:
    return 1 << max(0, (int(n) - 1).bit_length())


def state_block_v(K: int, V: int, heads: int, target_programs: int = 256) -> int:
    """V-block of a [K, BV] fp32 state tile: at most 8K values per program, and small enough that
    (V / BV) * heads programs can fill a GPU (the state pass has no other parallelism)."""
    bv = max(16, min(next_pow2(V), 8192 // next_pow2(K)))
    while bv > 16 and -(-V // bv) * heads < target_programs:
        bv //= 2
    return bv


def dot_precision(dtype: torch.dtype) -> str:
    """tl.dot input precision for fp32 operands: "tf32x3" (three tf32 MMAs, about fp32 accuracy, on tensor
    cores; plain "ieee" fp32 dots compile to huge FMA code) for fp32 inputs, "tf32" when the inputs were
    bf16/fp16 anyway. The interpreter ignores it and computes in fp32."""
    return "tf32x3" if dtype == torch.float32 else "tf32"


def prepare_launch(kernel, *tensors: torch.Tensor | None) -> None:
    """Fail clearly before launching a compiled kernel on CPU tensors."""
    check_kernel_mode(kernel, *tensors)


def sequence_bounds(B: int, T: int, cu_seqlens: torch.Tensor | None, device) -> torch.Tensor:
    """int32 [N+1] start offsets into the flattened [B*T] token axis (B>1 batches are equal-length sequences)."""
    if cu_seqlens is not None:
        return cu_seqlens.to(device=device, dtype=torch.int32)
    return torch.arange(0, B + 1, device=device, dtype=torch.int32) * T


def tl_dtype(dtype: torch.dtype):
    """The triton.language dtype for a torch float dtype (used to reproduce torch's rounding points)."""
    import triton.language as tl

    table = {torch.float32: tl.float32, torch.bfloat16: tl.bfloat16, torch.float16: tl.float16}
    if dtype not in table:
        raise TypeError(f"unsupported dtype {dtype}; expected float32, bfloat16 or float16")
    return table[dtype]


def dot_operand_dtype(dtype: torch.dtype, kernel):
    """Dtype tl.dot operands are cast to: the input dtype on GPU; fp32 under the interpreter, whose
    bf16 tl.dot (Triton 3.9) multiplies the raw uint16 storage instead of the values."""
    import triton.language as tl

    from .backend import is_interpreted

    return tl.float32 if is_interpreted(kernel) else tl_dtype(dtype)
