"""The one dispatch point: every public op checks its inputs here and picks its path.

backend="auto" runs Triton for CUDA tensors and the PyTorch path otherwise, taking a native CPU
kernel first where one covers the inputs; "triton" forces Triton (CPU tensors need
TRITON_INTERPRET=1); "torch" forces the PyTorch path, never a native kernel. Triton modules are
imported only when a Triton path is taken.

Native CPU kernels (the C kernels in <op>/cpu.py, oneDNN's fused linear + GELU) are chosen one way
for every op: only under backend="auto" with CPU tensors (`_native_allowed`), through a function
that returns None when its kernel does not cover the inputs (dtype, layout, CPU features, a
failed build); the PyTorch path then runs. The PyTorch path of an op is its CPU-laid-out PyTorch
code (<op>/cpu.py) for CPU tensors where one exists, its plain reference otherwise; tests check
each against the reference.
"""
from __future__ import annotations

import threading
import warnings
from contextlib import contextmanager
from typing import Iterator, Sequence

import torch
import torch.nn.functional as F

from . import fused_linear
from .attention import cpu as attention_cpu
from .attention.reference import attention_torch
from .backend import resolve_backend
from .conv1d import cpu as conv1d_cpu
from .conv1d.reference import ACTIVATIONS, causal_conv1d_torch, causal_conv1d_update_torch
from .gated_delta_rule import cpu as gated_delta_cpu
from .gated_delta_rule.naive import naive_recurrent_gated_delta_rule
from .gated_delta_rule.reference import chunk_gated_delta_rule_torch
from .gated_delta_rule.utils import check_inputs
from .linear import cpu as linear_cpu
from .moe.reference import fused_moe_torch
from .norm import cpu as norm_cpu
from .norm.reference import gated_rms_norm_torch, rms_norm_torch
from .rotary import cpu as rotary_cpu
from .rotary.reference import apply_rotary_torch, rotate_half_fp32

Tensor = torch.Tensor


def _native_allowed(backend: str, *tensors: Tensor | None) -> bool:
    """Whether this call may try a native CPU kernel: backend "auto" and every tensor on the CPU."""
    return backend == "auto" and all(t is None or t.device.type == "cpu" for t in tensors)


# ---------------------------------------------------------------- gated delta rule

def chunk_gated_delta_rule(
    q: Tensor, k: Tensor, v: Tensor, g: Tensor, beta: Tensor,
    scale: float | None = None,
    initial_state: Tensor | None = None,
    output_final_state: bool = False,
    use_qk_l2norm_in_kernel: bool = False,
    cu_seqlens: Tensor | None = None,
    backend: str = "auto",
) -> tuple[Tensor, Tensor | None]:
    """Gated delta rule over whole sequences, chunked (64 tokens, WY/UT form), fp32 state.

    q, k [B,T,H,K]; v [B,T,HV,V]; g (log decay), beta [B,T,HV]; HV a multiple of H (value head j uses q/k
    head j // (HV//H)). initial_state / final state [N,HV,K,V] fp32, N = B or len(cu_seqlens)-1 (then B=1).
    Returns (o [B,T,HV,V] in v.dtype, final_state or None).
    """
    check_inputs(q, k, v, g, beta, initial_state, cu_seqlens)
    if resolve_backend(backend, q) == "triton":
        from .gated_delta_rule.chunk import chunk_gated_delta_rule_triton
        from .triton_utils import KernelDoesNotFit
        try:
            return chunk_gated_delta_rule_triton(q, k, v, g, beta, scale, initial_state, output_final_state,
                                                 use_qk_l2norm_in_kernel, cu_seqlens)
        except KernelDoesNotFit as exc:
            # e.g. fp32 on a GPU with 99 KB of shared memory per block: same result, token by token
            warnings.warn(f"{exc}; running the fused recurrent kernel instead", RuntimeWarning, stacklevel=2)
            return fused_recurrent_gated_delta_rule(q, k, v, g, beta, scale, initial_state, output_final_state,
                                                    use_qk_l2norm_in_kernel, cu_seqlens, backend="triton")
    if q.device.type == "cpu" and cu_seqlens is None:
        return gated_delta_cpu.chunk_gated_delta_rule_cpu(q, k, v, g, beta, scale, initial_state,
                                                          output_final_state, use_qk_l2norm_in_kernel)
    return chunk_gated_delta_rule_torch(q, k, v, g, beta, scale, initial_state, output_final_state,
                                        use_qk_l2norm_in_kernel, cu_seqlens)


def fused_recurrent_gated_delta_rule(
    q: Tensor, k: Tensor, v: Tensor, g: Tensor, beta: Tensor,
    scale: float | None = None,
    initial_state: Tensor | None = None,
    output_final_state: bool = False,
    use_qk_l2norm_in_kernel: bool = False,
    cu_seqlens: Tensor | None = None,
    backend: str = "auto",
) -> tuple[Tensor, Tensor | None]:
    """Same inputs and result as chunk_gated_delta_rule, computed token by token (best for short T)."""
    check_inputs(q, k, v, g, beta, initial_state, cu_seqlens)
    if resolve_backend(backend, q) == "triton":
        from .gated_delta_rule.fused_recurrent import fused_recurrent_gated_delta_rule_triton
        return fused_recurrent_gated_delta_rule_triton(q, k, v, g, beta, scale, initial_state, output_final_state,
                                                       use_qk_l2norm_in_kernel, cu_seqlens)
    return naive_recurrent_gated_delta_rule(q, k, v, g, beta, scale, initial_state, output_final_state,
                                            use_qk_l2norm_in_kernel, cu_seqlens)


def gated_delta_decode_step(
    q: Tensor, k: Tensor, v: Tensor, a: Tensor, b: Tensor, A_log: Tensor, dt_bias: Tensor, state: Tensor,
    scale: float | None = None,
    use_qk_l2norm: bool = True,
    backend: str = "auto",
) -> Tensor:
    """One decode token per sequence with the gates fused in; `state` [B,HV,K,V] fp32 is updated IN PLACE.

    q, k [B,H,K]; v [B,HV,V]; a, b [B,HV]; A_log, dt_bias [HV].
    g = -exp(A_log) * softplus(a + dt_bias) in fp32, beta = sigmoid(b) rounded to b's dtype (as transformers
    does) then fp32. Returns o [B,HV,V] in v.dtype. The PyTorch path, on every device, is the in-place
    version in gated_delta_rule/cpu.py; the einsum reference is reference.gated_delta_decode_step_torch.
    """
    if q.dim() != 3 or k.shape != q.shape:
        raise ValueError(f"q and k must be [B,H,K]; got q {tuple(q.shape)}, k {tuple(k.shape)}")
    B, H, K = q.shape
    if v.dim() != 3 or v.shape[0] != B or v.shape[1] % H:
        raise ValueError(f"v must be [B,HV,V] with B={B} and HV a multiple of H={H}; got {tuple(v.shape)}")
    HV, V = v.shape[1:]
    for name, t, shape in (("a", a, (B, HV)), ("b", b, (B, HV)), ("A_log", A_log, (HV,)), ("dt_bias", dt_bias, (HV,))):
        if tuple(t.shape) != shape:
            raise ValueError(f"{name} must have shape {shape}; got {tuple(t.shape)}")
    if tuple(state.shape) != (B, HV, K, V) or state.dtype != torch.float32:
        raise ValueError(f"state must be fp32 [B,HV,K,V]=({B},{HV},{K},{V}); got {state.dtype} {tuple(state.shape)}")
    if resolve_backend(backend, q) == "triton":
        from .gated_delta_rule.fused_recurrent import gated_delta_decode_step_triton
        return gated_delta_decode_step_triton(q, k, v, a, b, A_log, dt_bias, state, scale, use_qk_l2norm)
    if _native_allowed(backend, q, k, v, a, b, A_log, dt_bias, state):
        o = gated_delta_cpu.gated_delta_decode_step_native(q, k, v, a, b, A_log, dt_bias, state, scale, use_qk_l2norm)
        if o is not None:
            return o
    return gated_delta_cpu.gated_delta_decode_step_inplace(q, k, v, a, b, A_log, dt_bias, state, scale,
                                                           use_qk_l2norm)


# ---------------------------------------------------------------- causal conv1d

def _check_conv(x: Tensor, weight: Tensor, bias: Tensor | None, activation: str | None) -> None:
    if weight.dim() != 2 or weight.shape[0] != x.shape[-1]:
        raise ValueError(f"weight must be [D,W] with D={x.shape[-1]}; got {tuple(weight.shape)}")
    if weight.shape[1] < 2:
        raise ValueError("conv width W must be at least 2")
    if bias is not None and tuple(bias.shape) != (x.shape[-1],):
        raise ValueError(f"bias must be [D]={x.shape[-1]}; got {tuple(bias.shape)}")
    if activation not in ACTIVATIONS:
        raise ValueError(f"activation must be one of {ACTIVATIONS}; got {activation!r}")


def causal_conv1d(
    x: Tensor, weight: Tensor, bias: Tensor | None = None, activation: str | None = "silu",
    initial_state: Tensor | None = None, backend: str = "auto",
) -> tuple[Tensor, Tensor]:
    """Depthwise causal conv: x [B,T,D], weight [D,W] -> (y [B,T,D], final_state [B,D,W-1]).

    final_state holds the last W-1 inputs (zero-padded on the left for short sequences, after
    initial_state [B,D,W-1] when given, which is prepended to x as history).
    """
    if x.dim() != 3:
        raise ValueError(f"x must be [B,T,D]; got {tuple(x.shape)}")
    _check_conv(x, weight, bias, activation)
    B, T, D = x.shape
    W = weight.shape[1]
    if initial_state is not None and tuple(initial_state.shape) != (B, D, W - 1):
        raise ValueError(f"initial_state must be [B,D,W-1]=({B},{D},{W - 1}); got {tuple(initial_state.shape)}")
    if resolve_backend(backend, x) == "triton":
        from .conv1d.triton import causal_conv1d_triton
        return causal_conv1d_triton(x, weight, bias, activation, initial_state)
    if _native_allowed(backend, x, weight, bias, initial_state):
        result = conv1d_cpu.causal_conv1d_native(x, weight, bias, activation, initial_state)
        if result is not None:
            return result
    if x.device.type == "cpu":
        return conv1d_cpu.causal_conv1d_cpu(x, weight, bias, activation, initial_state)
    return causal_conv1d_torch(x, weight, bias, activation, initial_state)


def causal_conv1d_update(
    x: Tensor, conv_state: Tensor, weight: Tensor, bias: Tensor | None = None,
    activation: str | None = "silu", backend: str = "auto",
) -> Tensor:
    """One token: x [B,D] -> y [B,D]; conv_state [B,D,W-1] (oldest first) is updated in place."""
    if x.dim() != 2:
        raise ValueError(f"x must be [B,D]; got {tuple(x.shape)}")
    _check_conv(x, weight, bias, activation)
    B, D = x.shape
    W = weight.shape[1]
    if tuple(conv_state.shape) != (B, D, W - 1):
        raise ValueError(f"conv_state must be [B,D,W-1]=({B},{D},{W - 1}); got {tuple(conv_state.shape)}")
    if resolve_backend(backend, x) == "triton":
        from .conv1d.triton import causal_conv1d_update_triton
        return causal_conv1d_update_triton(x, conv_state, weight, bias, activation)
    if _native_allowed(backend, x, conv_state, weight, bias):
        y = conv1d_cpu.causal_conv1d_update_native(x, conv_state, weight, bias, activation)
        if y is not None:
            return y
    return causal_conv1d_update_torch(x, conv_state, weight, bias, activation)


# ---------------------------------------------------------------- norms

def rms_norm(x: Tensor, weight: Tensor, eps: float = 1e-6, zero_centered: bool = True,
             backend: str = "auto") -> Tensor:
    """RMSNorm over the last dim in fp32, cast back once: x_hat * (1 + w) (zero-centred, Qwen3.5) or x_hat * w."""
    if weight.dim() != 1 or weight.shape[0] != x.shape[-1]:
        raise ValueError(f"weight must be [{x.shape[-1]}]; got {tuple(weight.shape)}")
    if resolve_backend(backend, x) == "triton":
        from .norm.triton import rms_norm_triton
        return rms_norm_triton(x, weight, eps, zero_centered)
    if _native_allowed(backend, x, weight):
        y = norm_cpu.rms_norm_cpu(x, weight, eps, zero_centered)
        if y is not None:
            return y
    return rms_norm_torch(x, weight, eps, zero_centered)


def gated_rms_norm(x: Tensor, z: Tensor, weight: Tensor, eps: float = 1e-6, backend: str = "auto") -> Tensor:
    """rmsnorm(x) * w * silu(z) with HF Qwen3_5RMSNormGated's casts (x_hat rounded to x.dtype before * w)."""
    if z.shape != x.shape:
        raise ValueError(f"z must have x's shape {tuple(x.shape)}; got {tuple(z.shape)}")
    if weight.dim() != 1 or weight.shape[0] != x.shape[-1]:
        raise ValueError(f"weight must be [{x.shape[-1]}]; got {tuple(weight.shape)}")
    if resolve_backend(backend, x) == "triton":
        from .norm.triton import gated_rms_norm_triton
        return gated_rms_norm_triton(x, z, weight, eps)
    if _native_allowed(backend, x, z, weight):
        y = norm_cpu.gated_rms_norm_cpu(x, z, weight, eps)
        if y is not None:
            return y
    return gated_rms_norm_torch(x, z, weight, eps)


# ---------------------------------------------------------------- MoE

def fused_moe(
    x: Tensor, router_weight: Tensor, w_gate_up: Tensor, w_down: Tensor, top_k: int, *,
    renormalize: bool = True,
    shared_gate_up: Tensor | Sequence[Tensor] | None = None,
    shared_down: Tensor | None = None,
    shared_gate_weight: Tensor | None = None,
    backend: str = "auto",
) -> Tensor:
    """Qwen3.5-MoE sparse block: x [N,D] -> y [N,D].

    router_weight [E,D]; w_gate_up [E,2I,D] (gate rows first, HF experts.gate_up_proj); w_down [E,D,I]
    (HF experts.down_proj). Shared expert (optional): shared_gate_up [2Is,D] (gate rows first) or a
    (gate_proj.weight [Is,D], up_proj.weight [Is,D]) pair, shared_down [D,Is], shared_gate_weight [1,D]
    (sigmoid gate; None = ungated).
    """
    if x.dim() != 2:
        raise ValueError(f"x must be [N,D] (flatten batch and time); got {tuple(x.shape)}")
    N, D = x.shape
    E = router_weight.shape[0]
    if tuple(router_weight.shape) != (E, D):
        raise ValueError(f"router_weight must be [E,D] with D={D}; got {tuple(router_weight.shape)}")
    if w_gate_up.dim() != 3 or w_gate_up.shape[0] != E or w_gate_up.shape[2] != D or w_gate_up.shape[1] % 2:
        raise ValueError(f"w_gate_up must be [E,2I,D]=({E},2I,{D}); got {tuple(w_gate_up.shape)}")
    I = w_gate_up.shape[1] // 2
    if tuple(w_down.shape) != (E, D, I):
        raise ValueError(f"w_down must be [E,D,I]=({E},{D},{I}); got {tuple(w_down.shape)}")
    if not 1 <= top_k <= E:
        raise ValueError(f"top_k must be in [1, {E}]; got {top_k}")
    if (shared_gate_up is None) != (shared_down is None):
        raise ValueError("give both shared_gate_up and shared_down, or neither")
    if shared_down is not None:
        from .moe.reference import split_shared_gate_up
        gate_w, up_w = split_shared_gate_up(shared_gate_up)
        Is = shared_down.shape[1]
        if tuple(gate_w.shape) != (Is, D) or tuple(up_w.shape) != (Is, D) or tuple(shared_down.shape) != (D, Is):
            raise ValueError(f"shared expert weights must be gate/up [Is,D] and down [D,Is] with D={D}")
        if shared_gate_weight is not None and tuple(shared_gate_weight.shape) != (1, D):
            raise ValueError(f"shared_gate_weight must be [1,D]; got {tuple(shared_gate_weight.shape)}")
    if resolve_backend(backend, x) == "triton":
        from .moe.triton import fused_moe_triton
        return fused_moe_triton(x, router_weight, w_gate_up, w_down, top_k, renormalize,
                                shared_gate_up, shared_down, shared_gate_weight)
    return fused_moe_torch(x, router_weight, w_gate_up, w_down, top_k, renormalize,
                           shared_gate_up, shared_down, shared_gate_weight)


# ---------------------------------------------------------------- rotary

def apply_rotary(q: Tensor, k: Tensor, cos: Tensor, sin: Tensor, backend: str = "auto") -> tuple[Tensor, Tensor]:
    """q [B,T,Hq,D], k [B,T,Hk,D], cos/sin [B,T,R] (R <= D, even): rotate_half rotary on the first R dims."""
    if q.dim() != 4 or k.dim() != 4 or q.shape[:2] != k.shape[:2] or q.shape[-1] != k.shape[-1]:
        raise ValueError(f"q, k must be [B,T,H,D] with equal B, T, D; got {tuple(q.shape)}, {tuple(k.shape)}")
    B, T, _, D = q.shape
    if cos.shape != sin.shape or cos.dim() != 3 or tuple(cos.shape[:2]) != (B, T):
        raise ValueError(f"cos/sin must be [B,T,R] with B={B}, T={T}; got {tuple(cos.shape)}, {tuple(sin.shape)}")
    R = cos.shape[-1]
    if R > D or R % 2:
        raise ValueError(f"rotary dim R={R} must be even and <= head dim {D}")
    if resolve_backend(backend, q) == "triton":
        from .rotary.triton import apply_rotary_triton
        return apply_rotary_triton(q, k, cos, sin)
    return apply_rotary_torch(q, k, cos, sin)


def rotate_half_(x: Tensor, cos: Tensor, sin: Tensor, backend: str = "auto") -> Tensor:
    """In place: rotate-half rotary over the whole head dim of x [n, ..., D], fp32 math, one rounding
    to x's dtype (the vision tower's rotary). cos/sin [n, >= D/2]: their first D/2 columns are read.

    auto: one fused pass (rotary/cpu_rotate.c) where it covers x (bf16 CPU tensors on AVX512-BF16
    CPUs), the PyTorch reference otherwise; torch: always the reference.
    """
    if backend not in ("auto", "torch"):
        raise ValueError(f"rotate_half_ backend must be 'auto' or 'torch' (no Triton kernel for it); got {backend!r}")
    if x.dim() < 2 or x.shape[-1] % 2:
        raise ValueError(f"x must be [n, ..., D] with D even; got {tuple(x.shape)}")
    if cos.shape != sin.shape or cos.dim() != 2 or cos.shape[0] != x.shape[0] or cos.shape[1] < x.shape[-1] // 2:
        raise ValueError(f"cos/sin must be [n={x.shape[0]}, >= {x.shape[-1] // 2}]; got {tuple(cos.shape)}, "
                         f"{tuple(sin.shape)}")
    if _native_allowed(backend, x, cos, sin) and rotary_cpu.rotate_half_native(x, cos, sin) is not None:
        return x
    x.copy_(rotate_half_fp32(x, cos, sin))
    return x


# ---------------------------------------------------------------- attention (vision tower)

def attention(q: Tensor, k: Tensor, v: Tensor, scale: float | None = None, out: Tensor | None = None,
              backend: str = "auto") -> Tensor:
    """Non-causal softmax(scale * q k^T) v over q, k, v [B, H, L, D]; scale defaults to 1/sqrt(D).

    auto: a fused bf16 CPU kernel where one covers the operands and is preferred for them —
    attention/cpu_amx.c on AMX CPUs (head dim 64), attention/cpu_flash.c on other AVX512-BF16 CPUs
    (VLAGENT_CPU_ATTENTION=1 / 0 forces them on / off, see attention/cpu.py) — PyTorch's SDPA
    otherwise (on CUDA that is FlashAttention; there is no Triton kernel for this op).
    torch: always SDPA.
    `out` [B, H, L, D] (any strides, head dim contiguous) receives the result when given.
    """
    if backend not in ("auto", "torch"):
        raise ValueError(f"attention backend must be 'auto' or 'torch' (no Triton kernel for it); got {backend!r}")
    if q.dim() != 4 or k.shape != q.shape or v.shape != q.shape:
        raise ValueError(f"q, k, v must share one shape [B,H,L,D]; got {tuple(q.shape)}, {tuple(k.shape)}, "
                         f"{tuple(v.shape)}")
    if _native_allowed(backend, q, k, v, out):
        result = attention_cpu.attention_native(q, k, v, scale, out)
        if result is not None:
            return result
    result = attention_torch(q, k, v, scale)
    if out is None:
        return result
    out.copy_(result)
    return out


# ---------------------------------------------------------------- linear

def linear(x: Tensor, weight: Tensor, bias: Tensor | None = None, backend: str = "auto") -> Tensor:
    """F.linear(x, weight, bias); with backend="auto", a few bf16 rows on an AVX512-BF16 CPU
    (decoding) take linear/cpu_gemv.c, which reads the weights at close to memory bandwidth."""
    if _native_allowed(backend, x, weight, bias):
        y = linear_cpu.linear_few_rows(x, weight, bias)
        if y is not None:
            return y
    return F.linear(x, weight, bias)


_matvec_lock = threading.Lock()
_matvec = {"users": 0, "restore": False}  # blocks open now; whether the last one out turns oneDNN back on


@contextmanager
def matvec_mode(device: torch.device, active: bool = True) -> Iterator[None]:
    """Within the block, single-row bf16 products on a CPU without linear/cpu_gemv.c run through
    PyTorch's own matrix-vector kernel instead of oneDNN's, which reads the weights at a lower
    bandwidth for one row (benchmarks/README.md); oneDNN stays faster from 2 rows up, so callers
    wrap one-token decode steps only. No-op where cpu_gemv.c is in use, off the CPU, or when
    `active` is False.

    The switch (torch.backends.mkldnn.enabled) is process-wide: threads computing on the CPU
    meanwhile, inside such a block or not, run without oneDNN too. Blocks open in several threads
    (or nested) share one switch: it goes off with the first and its previous state comes back
    when the last one closes, exceptions included."""
    if not active or device.type != "cpu" or linear_cpu.KERNEL.lib is not None:
        yield
        return
    with _matvec_lock:
        if _matvec["users"] == 0:
            _matvec["restore"] = torch.backends.mkldnn.enabled
            torch.backends.mkldnn.enabled = False
        _matvec["users"] += 1
    try:
        yield
    finally:
        with _matvec_lock:
            _matvec["users"] -= 1
            if _matvec["users"] == 0 and _matvec["restore"]:
                torch.backends.mkldnn.enabled = True


def linear_gelu(x: Tensor, weight: Tensor, bias: Tensor | None = None, approximate: str = "none",
                backend: str = "auto") -> Tensor:
    """gelu(x @ weight.T + bias) with GELU `approximate` "none" (erf) or "tanh"; with backend="auto",
    bf16 CPU tensors take one oneDNN call (fused_linear.py) where this torch build has it."""
    if approximate not in fused_linear.APPROXIMATIONS:
        raise ValueError(f"approximate must be 'none' or 'tanh'; got {approximate!r}")
    if backend not in ("auto", "torch"):
        raise ValueError(f"linear_gelu backend must be 'auto' or 'torch' (no Triton kernel for it); got {backend!r}")
    if _native_allowed(backend, x, weight, bias):
        y = fused_linear.linear_gelu_fused(x, weight, bias, approximate)
        if y is not None:
            return y
    return F.gelu(F.linear(x, weight, bias), approximate=approximate)
