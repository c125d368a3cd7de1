"""Backend selection shared by every op: "auto", "triton" or "torch".

Triton is imported lazily so that the base install (no triton) can import
vlagent.kernels and run the PyTorch references.
"""
from __future__ import annotations

import importlib.util
import os

import torch

BACKENDS = ("auto", "triton", "torch")


def triton_available() -> bool:
    try:
        return importlib.util.find_spec("triton") is not None
    except (ImportError, ValueError):
        return False


def interpreter_requested() -> bool:
    """True when TRITON_INTERPRET is set, so @triton.jit kernels run on CPU tensors."""
    return os.environ.get("TRITON_INTERPRET", "0").lower() in ("1", "true", "yes", "on")


def is_interpreted(kernel) -> bool:
    """Whether a @triton.jit object was created in interpreter mode (decided when its module was imported)."""
    return type(kernel).__name__ == "InterpretedFunction"


def resolve_backend(backend: str, *tensors: torch.Tensor | None) -> str:
    """Pick "triton" or "torch" for these tensors.

    auto:   Triton for CUDA tensors (when triton is installed), the PyTorch path otherwise.
    triton: always Triton; CPU tensors need TRITON_INTERPRET=1 (Triton's interpreter).
    torch:  always the PyTorch reference / CPU path.
    """
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
    if backend == "torch":
        return "torch"
    on_cuda = any(t is not None and t.is_cuda for t in tensors)
    if backend == "auto":
        return "triton" if on_cuda and triton_available() else "torch"
    if not triton_available():
        raise RuntimeError("backend='triton' needs the triton package (pip install 'vlagent[gpu]')")
    if not on_cuda and not interpreter_requested():
        raise RuntimeError(
            "backend='triton' was asked for CPU tensors: Triton runs on CPU only in its interpreter; "
            "set TRITON_INTERPRET=1 in the environment before triton kernels are imported, or use backend='torch'"
        )
    return "triton"


def check_kernel_mode(kernel, *tensors: torch.Tensor | None) -> None:
    """Raise a clear error when a compiled (non-interpreted) kernel would receive CPU tensors."""
    check_mode(is_interpreted(kernel), *tensors)


def check_mode(interpreted: bool, *tensors: torch.Tensor | None) -> None:
    """check_kernel_mode for kernels known to be interpreted or compiled."""
    on_cuda = any(t is not None and t.is_cuda for t in tensors)
    if not on_cuda and not interpreted:
        raise RuntimeError(
            "Triton kernels were imported without TRITON_INTERPRET=1, so they cannot run on CPU tensors in this "
            "process; set TRITON_INTERPRET=1 before the first Triton call, or use backend='torch'"
        )
