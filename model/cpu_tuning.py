"""CPU tuning for the engine: settings and defaults, not ops (the CPU ops and the choice between
them live in vlagent.kernels).

- `keep_freed_memory_in_heap`: glibc serves large blocks from the heap and keeps freed ones there
  (no page-fault storm on prompt-sized activations); process-wide, see its docstring;
- `preferred_dtype`: bf16 where the hardware computes in bf16 natively, fp32 elsewhere.
"""

from __future__ import annotations

import torch


def keep_freed_memory_in_heap() -> bool:
    """Ask glibc to serve large blocks from the heap and keep freed memory there.

    By default every block over ~32 MB is a fresh mmap, and each first touch of its pages is a
    page fault: on this kind of (virtualised) CPU that made elementwise ops over prompt-sized
    activations 2-4x slower than the arithmetic. Process-wide; set VLAGENT_MALLOC_TUNING=0 to
    skip. Returns whether the setting was applied (glibc only)."""
    import ctypes
    import os
    import sys

    if os.environ.get("VLAGENT_MALLOC_TUNING", "1") == "0" or not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return False
    M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3
    return bool(libc.mallopt(M_MMAP_THRESHOLD, 1 << 30)) and bool(libc.mallopt(M_TRIM_THRESHOLD, 1 << 30))


def cpu_has_native_bf16() -> bool:
    """Whether this CPU multiplies bf16 in hardware (x86 AVX512-BF16 / AMX, Arm BF16; Linux flags)."""
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith(("flags", "Features")):
                    flags = set(line.split(":", 1)[1].split())
                    return bool(flags & {"avx512_bf16", "amx_bf16", "bf16"})
    except OSError:
        pass
    return False


def preferred_dtype(device: str | torch.device) -> torch.dtype:
    """The engine's default dtype for a device: bf16 on CUDA and on CPUs with native bf16 (there it
    was faster than fp32 for both prefill and decode, benchmarks/README.md), fp32 elsewhere (bf16
    emulated in software is slower than fp32)."""
    kind = torch.device(device).type
    if kind == "cuda":
        return torch.bfloat16
    if kind == "cpu" and cpu_has_native_bf16():
        return torch.bfloat16
    return torch.float32
