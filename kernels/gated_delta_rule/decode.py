"""The CPU path of the fused decode step: the same arithmetic as reference.gated_delta_decode_step_torch,
done in place on the state with batched matrix-vector products.

The reference builds the decayed state, an outer-product update and the new state as separate
[B,HV,K,V] temporaries (einsum); here the state is decayed and updated in place (mul_, baddbmm_),
so the only state-sized traffic is the state itself. Several times faster on CPU at model shapes.
bf16 inputs on AVX512 CPUs take cpu_decode.c: the same arithmetic in two passes over the state, gates
included, one call per layer.
"""
from __future__ import annotations

import ctypes
from pathlib import Path

import torch
import torch.nn.functional as F

from .. import native
from .utils import l2norm

SOURCE = Path(__file__).with_name("cpu_decode.c")
FLAGS = ("-mavx512f", "-mavx512bw", "-fopenmp")
MAX_DIM = 512
i64, ptr = ctypes.c_int64, ctypes.c_void_p
KERNEL = native.NativeKernel(SOURCE, FLAGS, needs="AVX512F/BW", signatures={
    "vl_gated_delta_decode_bf16": ([ptr] * 9 + [i64] * 10 + [ctypes.c_float, ctypes.c_int, ctypes.c_int], ctypes.c_int),
})


def native_decode_available() -> bool:
    """Whether bf16 decode steps take cpu_decode.c on this machine."""
    return KERNEL.lib is not None


def _native_step(q, k, v, a, b, A_log, dt_bias, state, scale, use_qk_l2norm):
    """cpu_decode.c for bf16 CPU inputs in the layouts it reads; None when not covered."""
    B, H, K = q.shape
    HV, V = v.shape[1:]
    tensors = (q, k, v, a, b, A_log, dt_bias)
    if (any(t.dtype != torch.bfloat16 or t.device.type != "cpu" or t.stride(-1) != 1 for t in tensors)
            or state.device.type != "cpu" or state.dtype != torch.float32
            or q.stride(1) != K or k.stride(1) != K or v.stride(1) != V or not A_log.is_contiguous()
            or not dt_bias.is_contiguous() or not state.is_contiguous() or K > MAX_DIM or V > MAX_DIM or V % 16
            or state.requires_grad or KERNEL.lib is None):
        return None
    o = torch.empty(B, HV, V, dtype=torch.bfloat16)
    rc = KERNEL.lib.vl_gated_delta_decode_bf16(
        q.data_ptr(), k.data_ptr(), v.data_ptr(), a.data_ptr(), b.data_ptr(), A_log.data_ptr(), dt_bias.data_ptr(),
        state.data_ptr(), o.data_ptr(), B, H, HV, K, V, q.stride(0), k.stride(0), v.stride(0), a.stride(0),
        b.stride(0), float(scale), int(use_qk_l2norm), torch.get_num_threads())
    return o if rc == 0 else None


def gated_delta_decode_step_inplace(q, k, v, a, b, A_log, dt_bias, state, scale=None, use_qk_l2norm=True,
                                    native_kernel: bool = True):
    """q, k [B,H,K]; v [B,HV,V]; a, b [B,HV]; A_log, dt_bias [HV]; state [B,HV,K,V] fp32 updated in place.

    g = -exp(A_log) * softplus(a + dt_bias) in fp32; beta = sigmoid(b) rounded to b's dtype (as
    transformers computes it), then fp32. Returns o [B,HV,V] in v.dtype.
    """
    B, H, K = q.shape
    HV, V = v.shape[1:]
    scale = K**-0.5 if scale is None else scale
    if native_kernel and q.dtype == torch.bfloat16 and q.device.type == "cpu":
        o = _native_step(q, k, v, a, b, A_log, dt_bias, state, scale, use_qk_l2norm)
        if o is not None:
            return o
    qf, kf = q.float(), k.float()
    if use_qk_l2norm:
        qf, kf = l2norm(qf), l2norm(kf)
    if HV != H:
        qf, kf = qf.repeat_interleave(HV // H, dim=1), kf.repeat_interleave(HV // H, dim=1)
    qf = (qf * scale).reshape(B * HV, 1, K)
    kf = kf.reshape(B * HV, 1, K)
    g = -A_log.float().exp() * F.softplus(a.float() + dt_bias.float())  # [B, HV]
    beta = b.sigmoid().float()
    s = state if state.is_contiguous() else state.contiguous()
    s3 = s.view(B * HV, K, V)
    s3.mul_(g.exp().view(B * HV, 1, 1))
    delta = (v.float().reshape(B * HV, 1, V) - torch.bmm(kf, s3)).mul_(beta.view(B * HV, 1, 1))
    s3.baddbmm_(kf.transpose(1, 2), delta)  # S += k^T delta
    o = torch.bmm(qf, s3)
    if s is not state:
        state.copy_(s)
    return o.view(B, HV, V).to(v.dtype)
