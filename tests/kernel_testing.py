"""Helpers for the kernel tests: Triton's interpreter on CPU, tolerances, random inputs.

Import this module before anything imports triton kernels:

    from kernel_testing import needs_interpreter, assert_close

TRITON_INTERPRET must be set before a @triton.jit kernel is created (Triton decides interpreted vs
compiled at decoration time, i.e. when vlagent.kernels.<op>.triton modules are first imported), so
it is set here at import; if the kernels were already imported compiled (no GPU here), the Triton
tests skip with the reason instead of failing obscurely.
"""
from __future__ import annotations

import importlib
import importlib.util
import os

os.environ.setdefault("TRITON_INTERPRET", "1")

import pytest  # noqa: E402
import torch  # noqa: E402

TRITON_MODULES = {
    "gdn_chunk": ("vlagent.kernels.gated_delta_rule.chunk", "_chunk_state_kernel"),
    "gdn_recurrent": ("vlagent.kernels.gated_delta_rule.fused_recurrent", "_fused_recurrent_kernel"),
    "conv1d": ("vlagent.kernels.conv1d.triton", "_causal_conv1d_kernel"),
    "norm": ("vlagent.kernels.norm.triton", "_rms_norm_kernel"),
    "rotary": ("vlagent.kernels.rotary.triton", "_rotary_kernel"),
    "moe": ("vlagent.kernels.moe.triton", "_combine_kernel"),
}

# bf16 has an 8-bit significand; Triton 3.9's interpreter also truncates (not rounds) fp32 -> bf16
# casts, so bf16 Triton-vs-torch comparisons allow a couple of ulps.
TOLERANCES = {
    torch.float32: dict(atol=2e-5, rtol=2e-5),
    torch.bfloat16: dict(atol=3e-2, rtol=3e-2),
}


def interpreter_reason(name: str) -> str | None:
    """None when the named Triton module runs under the interpreter here, else why not."""
    if importlib.util.find_spec("triton") is None:
        return "triton is not installed"
    if os.environ.get("TRITON_INTERPRET", "0") not in ("1", "true", "True"):
        return "TRITON_INTERPRET was set to a false value in this process"
    module_name, kernel_name = TRITON_MODULES[name]
    kernel = getattr(importlib.import_module(module_name), kernel_name)
    if type(kernel).__name__ != "InterpretedFunction":
        return f"{module_name} was imported before TRITON_INTERPRET=1 was set (compiled kernels, no GPU)"
    return None


def needs_interpreter(name: str):
    """Skip marker for tests that run the named Triton kernels on CPU."""
    reason = interpreter_reason(name)
    return pytest.mark.skipif(reason is not None, reason=reason or "")


def assert_close(actual: torch.Tensor, expected: torch.Tensor, dtype: torch.dtype | None = None, scale: float = 1.0):
    tol = TOLERANCES[dtype or expected.dtype]
    torch.testing.assert_close(actual.float(), expected.float(), atol=tol["atol"] * scale, rtol=tol["rtol"] * scale)


def gdn_inputs(B, T, H, HV, K, V, dtype=torch.float32, seed=0, with_state=False, N=None):
    """Random gated-delta-rule inputs in the model's ranges: g = log decay <= 0, beta in (0, 1)."""
    gen = torch.Generator().manual_seed(seed)
    q = torch.randn(B, T, H, K, generator=gen).to(dtype)
    k = torch.randn(B, T, H, K, generator=gen).to(dtype)
    v = torch.randn(B, T, HV, V, generator=gen).to(dtype)
    g = torch.nn.functional.logsigmoid(torch.randn(B, T, HV, generator=gen) + 2.0)
    beta = torch.rand(B, T, HV, generator=gen).to(dtype)
    state = torch.randn(N or B, HV, K, V, generator=gen) * 0.1 if with_state else None
    return q, k, v, g, beta, state
