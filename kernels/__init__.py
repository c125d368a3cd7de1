"""Kernels for the Qwen3.5 engine: each op has a plain-PyTorch reference beside its Triton kernel.

Every public op takes backend="auto" | "triton" | "torch" (see dispatch.py). Importing this package
does not need triton.
"""
from .backend import resolve_backend, triton_available
from .dispatch import (
    apply_rotary,
    attention,
    causal_conv1d,
    causal_conv1d_update,
    chunk_gated_delta_rule,
    fused_moe,
    fused_recurrent_gated_delta_rule,
    gated_delta_decode_step,
    gated_rms_norm,
    rms_norm,
    rotate_half_,
)
from .rotary.reference import mrope_cos_sin

__all__ = [
    "apply_rotary",
    "attention",
    "causal_conv1d",
    "causal_conv1d_update",
    "chunk_gated_delta_rule",
    "fused_moe",
    "fused_recurrent_gated_delta_rule",
    "gated_delta_decode_step",
    "gated_rms_norm",
    "mrope_cos_sin",
    "resolve_backend",
    "rms_norm",
    "rotate_half_",
    "triton_available",
]
