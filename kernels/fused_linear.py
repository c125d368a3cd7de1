"""Linear + GELU in one oneDNN call on CPU (the vision tower's MLP and merger).

oneDNN applies GELU to the fp32 accumulator before the one rounding to bf16, so the [tokens, 4x]
activation is written once instead of written, read and written again (benchmarks/README.md has
the timings). The fused call is PyTorch's internal `torch.ops.mkldnn._linear_pointwise` (what
torch.compile emits on CPU), so it is feature-checked once; where it is missing, or fails the
check, `linear_gelu_fused` returns None and the caller uses the two PyTorch ops.
"""
from __future__ import annotations

import functools

import torch

APPROXIMATIONS = ("none", "tanh")


@functools.cache
def fused_available() -> bool:
    """Whether this torch build runs the fused oneDNN linear + GELU (tried once on a tiny input)."""
    try:
        op = torch.ops.mkldnn._linear_pointwise
        x = torch.ones(2, 4, dtype=torch.bfloat16)
        w = torch.ones(3, 4, dtype=torch.bfloat16)
        y = op(x, w, None, "gelu", [], "tanh")
        return torch.backends.mkldnn.is_available() and tuple(y.shape) == (2, 3)
    except (AttributeError, RuntimeError, NotImplementedError):
        return False


def linear_gelu_fused(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None,
                      approximate: str = "none") -> torch.Tensor | None:
    """gelu(x @ weight.T + bias) in one oneDNN call for bf16 CPU tensors; None when not covered
    (other dtypes or devices, autograd, oneDNN switched off, or no fused op in this build)."""
    if not (x.device.type == "cpu" and x.dtype == torch.bfloat16 and x.dtype == weight.dtype
            and not x.requires_grad and torch.backends.mkldnn.enabled and fused_available()):
        return None
    lead = x.shape[:-1]
    y = torch.ops.mkldnn._linear_pointwise(x.reshape(-1, x.shape[-1]), weight, bias, "gelu", [], approximate)
    return y.view(*lead, weight.shape[0])
