"""Flush subnormal floats to zero on every CPU thread PyTorch computes on, for a block of code.

Strongly decaying Gated DeltaNet heads (exp of large negative cumulative gates) fill the chunked
delta rule's intermediate products and the recurrent state with subnormal fp32 values. Intel cores
handle those in microcode, many times slower than normal floats (benchmarks/README.md,
"Subnormals"). torch.set_flush_denormal only changes the calling thread, so denormals.c sets
FTZ/DAZ through the OpenMP team PyTorch, MKL and oneDNN share (PyTorch's bundled libgomp, which the
compiled helper binds to because it is already loaded).

The results change only where a value is below fp32's smallest normal (1.2e-38): far under the
rounding of any sum it takes part in.
"""
from __future__ import annotations

import ctypes
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import torch

from . import native

SOURCE = Path(__file__).with_name("denormals.c")
FLAGS = ("-fopenmp",)
ptr = ctypes.c_void_p
KERNEL = native.NativeKernel(SOURCE, FLAGS, needs="SSE", signatures={
    "vl_set_flush_denormals": ([ctypes.c_int, ptr], None),
    "vl_restore_flush_denormals": ([ctypes.c_int, ptr], None),
    "vl_count_flushing_threads": ([ctypes.c_int], ctypes.c_int),
})


@contextmanager
def flush_denormals(device: torch.device | str = "cpu") -> Iterator[None]:
    """Within the block, CPU float ops treat subnormal inputs and results as zero (FTZ/DAZ) on
    every intra-op thread; each thread's previous mode is restored on exit (exceptions included).
    No-op for other devices, and where the helper cannot be built."""
    if torch.device(device).type != "cpu":
        yield
        return
    lib, threads = KERNEL.lib, torch.get_num_threads()
    if lib is None:  # no helper (no compiler, not x86): subnormals stay slow but correct
        yield
        return
    saved = (ctypes.c_uint * threads)()
    lib.vl_set_flush_denormals(threads, saved)
    try:
        yield
    finally:
        lib.vl_restore_flush_denormals(threads, saved)
