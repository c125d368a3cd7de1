"""Fused bf16 attention on CPU, called through ctypes: two C kernels with one signature.

- cpu_flash.c: flash form on AVX512-BF16 register tiles, any even head dim <= 256;
- cpu_amx.c: AMX tiles for both products, exact softmax per 16-query block, head dim 64 (the
  vision tower's).

Which one `attention_native` takes, and when it leaves the work to PyTorch's SDPA, follows the
measurements in benchmarks/README.md: on AMX CPUs PyTorch's own attention already runs on AMX
through oneDNN and beats cpu_flash.c, so there only cpu_amx.c is used; elsewhere cpu_flash.c is.
Both are built on first use (see kernels/native.py); KERNEL / AMX_KERNEL say whether this process
can use them and, if not, why.
"""
from __future__ import annotations

import ctypes
import functools
import os
from pathlib import Path

import torch

from .. import native

SOURCE = Path(__file__).with_name("cpu_flash.c")
FLAGS = ("-mavx512f", "-mavx512bf16", "-mavx512vl", "-mavx512dq", "-fopenmp")
MAX_HEAD_DIM = 256
AMX_SOURCE = Path(__file__).with_name("cpu_amx.c")
AMX_FLAGS = FLAGS + ("-mavx512bw", "-mamx-tile", "-mamx-bf16")
AMX_HEAD_DIM = 64
AMX_MAX_KEYS = 32768

_ATTENTION_ARGS = ([ctypes.c_void_p] * 4 + [ctypes.c_int64] * 16 + [ctypes.c_float, ctypes.c_int], ctypes.c_int)
KERNEL = native.NativeKernel(SOURCE, FLAGS, needs="AVX512F + AVX512-BF16",
                             signatures={"vl_attention_bf16": _ATTENTION_ARGS})
AMX_KERNEL = native.NativeKernel(AMX_SOURCE, AMX_FLAGS,
                                 needs="AMX-TILE + AMX-BF16 + AVX512-BF16 (and Linux's permission for AMX tile data)",
                                 signatures={"vl_attention_amx_bf16": _ATTENTION_ARGS})


def amx_attention_available() -> bool:
    return AMX_KERNEL.lib is not None


def amx_attention_unavailable_reason() -> str | None:
    return AMX_KERNEL.reason


def _amx_fits(q: torch.Tensor) -> bool:
    return q.shape[-1] == AMX_HEAD_DIM and q.shape[2] <= AMX_MAX_KEYS and amx_attention_available()


def cpu_attention_available() -> bool:
    return KERNEL.lib is not None


def cpu_attention_unavailable_reason() -> str | None:
    return KERNEL.reason


@functools.cache
def cpu_has_amx() -> bool:
    """Whether this CPU has AMX bf16 tiles (Linux /proc/cpuinfo; read once). There PyTorch's own CPU
    attention runs on AMX through oneDNN."""
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("flags"):
                    return "amx_bf16" in line.split()
    except OSError:
        pass
    return False


def preferred(q: torch.Tensor | None = None) -> bool:
    """Whether a fused kernel should take bf16 CPU attention over `q`'s shape:
    VLAGENT_CPU_ATTENTION=1 / 0 forces it on / off. By default: on AMX CPUs only where cpu_amx.c
    fits (head dim 64; there cpu_flash.c is slower than SDPA), elsewhere cpu_flash.c."""
    forced = os.environ.get("VLAGENT_CPU_ATTENTION")
    if forced is not None and forced.strip() != "":
        return forced.strip() not in ("0", "false", "no", "off")
    if cpu_has_amx():
        return q is not None and _amx_fits(q)
    return True


def supports(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> bool:
    """Whether these operands can take the fused kernel (else the caller uses the reference)."""
    d = q.shape[-1]
    return (
        all(t.device.type == "cpu" for t in (q, k, v)) and q.dtype == k.dtype == v.dtype == torch.bfloat16
        and q.dim() == 4 and q.shape == k.shape == v.shape
        and d % 2 == 0 and d <= MAX_HEAD_DIM
        and all(t.stride(-1) == 1 for t in (q, k, v))
        and not any(t.requires_grad for t in (q, k, v))
        and cpu_attention_available()
    )


def attention_native(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, scale: float | None = None,
                     out: torch.Tensor | None = None) -> torch.Tensor | None:
    """attention_cpu where a fused kernel covers these operands and is preferred for them; None otherwise."""
    if not (supports(q, k, v) and preferred(q)):
        return None
    return attention_cpu(q, k, v, scale, out)


def attention_cpu(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, scale: float | None = None,
                  out: torch.Tensor | None = None, kernel: str = "auto") -> torch.Tensor:
    """softmax(scale * q k^T) v for bf16 q, k, v [B, H, L, D] (head dim contiguous, any other strides).

    `out` ([B, H, L, D], head dim contiguous, may be a strided view such as a [B, L, H, D] buffer's
    transpose) receives the result; a new contiguous tensor is returned when it is None.
    kernel: "amx" (cpu_amx.c), "avx512" (cpu_flash.c) or "auto" (AMX where it fits).
    """
    if kernel not in ("auto", "amx", "avx512"):
        raise ValueError(f"kernel must be 'auto', 'amx' or 'avx512'; got {kernel!r}")
    if kernel == "amx" and not _amx_fits(q):
        raise ValueError(f"the AMX kernel needs head dim {AMX_HEAD_DIM}, at most {AMX_MAX_KEYS} keys and an AMX "
                         f"CPU; got {tuple(q.shape)} ({amx_attention_unavailable_reason() or 'AMX available'})")
    lib = KERNEL.lib
    if lib is None:
        raise RuntimeError(f"fused CPU attention is unavailable: {cpu_attention_unavailable_reason()}")
    if not supports(q, k, v):
        raise ValueError(
            "attention_cpu needs bf16 CPU tensors q, k, v of one shape [B, H, L, D] with D even, "
            f"D <= {MAX_HEAD_DIM} and the head dim contiguous; got q {tuple(q.shape)} {q.dtype}, "
            f"k {tuple(k.shape)} {k.dtype}, v {tuple(v.shape)} {v.dtype}"
        )
    B, H, L, D = q.shape
    scale = D ** -0.5 if scale is None else float(scale)
    if not scale > 0:
        raise ValueError(f"scale must be positive, got {scale}")
    if out is None:
        out = torch.empty(B, H, L, D, dtype=q.dtype)
    elif out.shape != q.shape or out.dtype != q.dtype or out.device.type != "cpu" or out.stride(-1) != 1:
        raise ValueError(f"out must be a bf16 CPU tensor of shape {tuple(q.shape)} with the head dim contiguous")
    strides = [s for t in (q, k, v, out) for s in t.stride()[:3]]
    run = lib.vl_attention_bf16
    if kernel == "amx" or (kernel == "auto" and _amx_fits(q)):
        run = AMX_KERNEL.lib.vl_attention_amx_bf16
    rc = run(q.data_ptr(), k.data_ptr(), v.data_ptr(), out.data_ptr(), B, H, L, D, *strides, scale,
             torch.get_num_threads())
    if rc == 2:
        raise MemoryError(f"fused CPU attention could not allocate its workspace (B={B}, H={H}, L={L}, D={D})")
    if rc != 0:
        raise ValueError(f"fused CPU attention rejected its arguments (B={B}, H={H}, L={L}, D={D})")
    return out
