"""Kernels for the Qwen3.5 engine: each op has a plain-PyTorch reference beside its Triton kernel.

Every public op takes backend="auto" | "triton" | "torch" (see dispatch.py). The engine
(`vlagent.model`) uses this package's names only, never its submodules. Importing this package
does not need triton.

This folder is installed as `vlagent.kernels`. Run from a checkout (`python -m pytest` puts the
repository root on sys.path) it can also be found as a top-level `kernels`, the import name of
Hugging Face's `kernels` distribution that transformers >= 5.25 imports; under that name it hands
over to that distribution (or says why it cannot) instead of shadowing it.
"""
if __name__ == "kernels":
    from ._shadow import load_hub_kernels

    load_hub_kernels()
else:
    from .backend import resolve_backend, triton_available
    from .cuda_graph import CapturedStep
    from .denormals import flush_denormals
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
        linear,
        linear_gelu,
        matvec_mode,
        rms_norm,
        rotate_half_,
    )
    from .rotary.reference import mrope_cos_sin

__all__ = [
    "CapturedStep",
    "apply_rotary",
    "attention",
    "causal_conv1d",
    "causal_conv1d_update",
    "chunk_gated_delta_rule",
    "flush_denormals",
    "fused_moe",
    "fused_recurrent_gated_delta_rule",
    "gated_delta_decode_step",
    "gated_rms_norm",
    "linear",
    "linear_gelu",
    "matvec_mode",
    "mrope_cos_sin",
    "resolve_backend",
    "rms_norm",
    "rotate_half_",
    "triton_available",
]
