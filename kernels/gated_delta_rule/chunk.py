"""Triton chunked gated delta rule (chunk 64, WY/UT form), in two kernels.

1. _chunk_prepare_kernel, one program per (chunk, value head), all chunks in parallel: cumulative
   decay c, the UT inverse A = (I + strict_lower(beta k k^T * Gamma))^-1 (16x16 diagonal blocks by
   forward substitution, then block forward substitution with matrix products), and
   w = A (beta k e^c), u = A (beta v), written to fp32 scratch.
2. _chunk_state_kernel, one program per (sequence, value head, V-block), walking its chunks in order
   with the [K, BV] state in fp32 registers: v_new = u - w S, o = (q e^c) S + (q k^T * Gamma) v_new,
   S <- e^{c_last} S + (k e^{c_last - c})^T v_new.
Sequences (batch rows or cu_seqlens pieces) never share a chunk. See reference.py for the algebra.
"""
from __future__ import annotations

from typing import NamedTuple

import torch
import triton
import triton.language as tl

from triton.runtime.errors import OutOfResources

from ..backend import check_mode, is_interpreted
from ..triton_utils import KernelDoesNotFit, dot_precision, next_pow2, sequence_bounds, state_block_v, tl_dtype
from .utils import check_inputs

CHUNK_SIZE = 64
# state pass: 8 warps (otherwise ptxas spills kilobytes per thread at K = V = 128; see compile_check);
# the prepare kernel spills least with 4
NUM_WARPS = 8


class StatePassOption(NamedTuple):
    """How the state pass is compiled: its tl.dot operands in fp32 (tf32 dots) or in the input dtype, and
    its software-pipeline depth."""
    operands_in_input_dtype: bool
    num_stages: int

    def __str__(self) -> str:
        operands = "input-dtype" if self.operands_in_input_dtype else "fp32"
        return f"{operands} operands, {self.num_stages} stage{'s' if self.num_stages > 1 else ''}"


def state_pass_options(dtype: torch.dtype) -> list[StatePassOption]:
    """Launch options of the state pass, best first; the launcher takes the first one the GPU's shared
    memory holds. Shared memory per block at K = V = 128, BV = 64, bf16 inputs (compile_check, sm_90 /
    sm_80 and sm_89): fp32 operands with 2 stages 193 / 161 KB, 1 stage 144 / 112 KB; input-dtype
    operands with 2 stages 81 KB. An H100 gives a block 227 KB, an A100 163 KB, RTX 30/40/50-series
    cards, L4 and A10 99 KB. fp32 inputs take fp32 operands and one stage (192 / 128 KB; two stages need
    305 KB); where that does not fit, neither does the prepare kernel (128 KB) and the caller falls back.
    Input-dtype operands are what flash-linear-attention uses; their error is about 3x the fp32 ones'."""
    if dtype == torch.float32:
        return [StatePassOption(False, 1)]
    return [StatePassOption(False, 2), StatePassOption(False, 1), StatePassOption(True, 2),
            StatePassOption(True, 1)]


# (device, dtype, K, V, BV, flags) -> index in state_pass_options of the first option that launched;
# len(options): none does
_FITTING_OPTION: dict[tuple, int] = {}


@triton.jit
def _chunk_prepare_kernel(
    k, v, g, beta, w, u, gc, chunk_seq, chunk_start, cu_seqlens,
    H: tl.constexpr, HV: tl.constexpr, K: tl.constexpr, V: tl.constexpr,
    BK: tl.constexpr, BVF: tl.constexpr, C: tl.constexpr,
    USE_L2NORM: tl.constexpr, PREC: tl.constexpr, SUB: tl.constexpr,
):
    i_c = tl.program_id(0)
    i_hv = tl.program_id(1)
    i_h = i_hv // (HV // H)
    i_n = tl.load(chunk_seq + i_c)
    start = tl.load(chunk_start + i_c).to(tl.int64)
    eos = tl.load(cu_seqlens + i_n + 1).to(tl.int64)

    o_i = tl.arange(0, C)
    o_t = start + o_i
    m_t = o_t < eos
    o_k = tl.arange(0, BK)
    o_v = tl.arange(0, BVF)
    m_k = o_k < K
    m_v = o_v < V

    b_k = tl.load(k + (o_t[:, None] * H + i_h) * K + o_k[None, :], mask=m_t[:, None] & m_k[None, :], other=0.0)
    b_k = b_k.to(tl.float32)
    if USE_L2NORM:
        b_k = b_k / tl.sqrt(tl.sum(b_k * b_k, axis=1) + 1e-6)[:, None]
    b_g = tl.load(g + o_t * HV + i_hv, mask=m_t, other=0.0).to(tl.float32)
    b_beta = tl.load(beta + o_t * HV + i_hv, mask=m_t, other=0.0).to(tl.float32)
    b_c = tl.cumsum(b_g, axis=0)
    tl.store(gc + o_t * HV + i_hv, b_c, mask=m_t)

    b_kb = b_k * b_beta[:, None]
    strict = o_i[:, None] > o_i[None, :]
    gamma = tl.exp(tl.where(strict, b_c[:, None] - b_c[None, :], float("-inf")))
    b_l = tl.dot(b_kb, tl.trans(b_k), input_precision=PREC) * gamma

    # A = (I + L)^-1 for strictly lower L, blockwise: the four 16x16 diagonal blocks are inverted
    # together by forward substitution (15 steps; each step one matrix product whose only non-zero rows
    # are the i-th row of every block), then the block rows below are filled in by block forward
    # substitution: A_b = D_b^-1 - D_b^-1 sum_{j<b} L_bj A_j.
    block = o_i // SUB
    same_block = block[:, None] == block[None, :]
    l_diag = tl.where(same_block, b_l, 0.0)
    b_d = tl.where(o_i[:, None] == o_i[None, :], 1.0, 0.0)
    for i in range(1, SUB):
        rows = (o_i % SUB)[:, None] == i
        b_d -= tl.dot(tl.where(rows, l_diag, 0.0), b_d, input_precision=PREC)
    b_a = b_d
    for b in tl.static_range(1, C // SUB):
        l_rows = tl.where((block[:, None] == b) & ~same_block, b_l, 0.0)
        b_a -= tl.dot(b_d, tl.dot(l_rows, b_a, input_precision=PREC), input_precision=PREC)

    b_w = tl.dot(b_a, b_kb * tl.exp(b_c)[:, None], input_precision=PREC)
    # v is loaded only now, to keep it out of registers while A is built
    b_v = tl.load(v + (o_t[:, None] * HV + i_hv) * V + o_v[None, :], mask=m_t[:, None] & m_v[None, :], other=0.0)
    b_u = tl.dot(b_a, b_v.to(tl.float32) * b_beta[:, None], input_precision=PREC)
    tl.store(w + (o_t[:, None] * HV + i_hv) * K + o_k[None, :], b_w, mask=m_t[:, None] & m_k[None, :])
    tl.store(u + (o_t[:, None] * HV + i_hv) * V + o_v[None, :], b_u, mask=m_t[:, None] & m_v[None, :])


@triton.jit
def _operand(x, ROUND_DT: tl.constexpr, DOT_DT: tl.constexpr):
    """A tl.dot operand rounded to ROUND_DT and handed to the dot as DOT_DT: both fp32 (tf32 dots) by
    default; both the input dtype where shared memory is short; under the interpreter, whose 16-bit
    dots are wrong, rounded to the input dtype and multiplied in fp32, the same products a GPU makes."""
    return x.to(ROUND_DT).to(DOT_DT)


@triton.jit
def _chunk_state_kernel(
    q, k, w, u, gc, o, h0, ht, cu_seqlens, scale,
    H: tl.constexpr, HV: tl.constexpr, K: tl.constexpr, V: tl.constexpr,
    BK: tl.constexpr, BV: tl.constexpr, C: tl.constexpr,
    USE_L2NORM: tl.constexpr, HAS_H0: tl.constexpr, STORE_HT: tl.constexpr, PREC: tl.constexpr,
    ROUND_DT: tl.constexpr, DOT_DT: tl.constexpr,
):
    i_v = tl.program_id(0)
    i_nh = tl.program_id(1)
    i_n = i_nh // HV
    i_hv = i_nh % HV
    i_h = i_hv // (HV // H)
    bos = tl.load(cu_seqlens + i_n).to(tl.int64)
    eos = tl.load(cu_seqlens + i_n + 1).to(tl.int64)

    o_i = tl.arange(0, C)
    o_k = tl.arange(0, BK)
    o_v = i_v * BV + tl.arange(0, BV)
    m_k = o_k < K
    m_v = o_v < V
    m_kv = m_k[:, None] & m_v[None, :]
    causal = o_i[:, None] >= o_i[None, :]
    state_offsets = (i_n * HV + i_hv) * K * V + o_k[:, None] * V + o_v[None, :]
    if HAS_H0:
        state = tl.load(h0 + state_offsets, mask=m_kv, other=0.0).to(tl.float32)
    else:
        state = tl.zeros([BK, BV], dtype=tl.float32)

    for start in range(bos, eos, C):
        o_t = start + o_i
        m_t = o_t < eos
        m_tk = m_t[:, None] & m_k[None, :]
        m_tv = m_t[:, None] & m_v[None, :]
        b_q = tl.load(q + (o_t[:, None] * H + i_h) * K + o_k[None, :], mask=m_tk, other=0.0).to(tl.float32)
        b_k = tl.load(k + (o_t[:, None] * H + i_h) * K + o_k[None, :], mask=m_tk, other=0.0).to(tl.float32)
        if USE_L2NORM:
            b_q = b_q / tl.sqrt(tl.sum(b_q * b_q, axis=1) + 1e-6)[:, None]
            b_k = b_k / tl.sqrt(tl.sum(b_k * b_k, axis=1) + 1e-6)[:, None]
        b_q = b_q * scale
        b_c = tl.load(gc + o_t * HV + i_hv, mask=m_t, other=0.0)
        last = tl.minimum(start + C, eos) - 1
        c_last = tl.sum(tl.where(o_t == last, b_c, 0.0), axis=0)
        b_w = tl.load(w + (o_t[:, None] * HV + i_hv) * K + o_k[None, :], mask=m_tk, other=0.0)
        b_u = tl.load(u + (o_t[:, None] * HV + i_hv) * V + o_v[None, :], mask=m_tv, other=0.0)

        v_new = b_u - tl.dot(_operand(b_w, ROUND_DT, DOT_DT), _operand(state, ROUND_DT, DOT_DT), input_precision=PREC)
        gamma = tl.exp(tl.where(causal, b_c[:, None] - b_c[None, :], float("-inf")))
        attn = tl.dot(_operand(b_q, ROUND_DT, DOT_DT), tl.trans(_operand(b_k, ROUND_DT, DOT_DT)), input_precision=PREC)
        attn = attn * gamma
        b_o = tl.dot(_operand(b_q * tl.exp(b_c)[:, None], ROUND_DT, DOT_DT), _operand(state, ROUND_DT, DOT_DT),
                     input_precision=PREC)
        b_o += tl.dot(_operand(attn, ROUND_DT, DOT_DT), _operand(v_new, ROUND_DT, DOT_DT), input_precision=PREC)
        tl.store(o + (o_t[:, None] * HV + i_hv) * V + o_v[None, :], b_o.to(o.dtype.element_ty), mask=m_tv)

        k_decayed = tl.where(m_t[:, None], b_k * tl.exp(c_last - b_c)[:, None], 0.0)
        k_decayed = _operand(k_decayed, ROUND_DT, DOT_DT)
        state = state * tl.exp(c_last) + tl.dot(tl.trans(k_decayed), _operand(v_new, ROUND_DT, DOT_DT),
                                                input_precision=PREC)

    if STORE_HT:
        tl.store(ht + state_offsets, state, mask=m_kv)


# Whether both kernels run in Triton's interpreter, decided when this module was imported
_INTERPRETED = is_interpreted(_chunk_state_kernel)


def _chunk_table(bounds: torch.Tensor, C: int):
    """(sequence id, first token) of every chunk; chunks never straddle two sequences."""
    cu = bounds.tolist()
    seq, start = [], []
    for n, (a, b) in enumerate(zip(cu, cu[1:])):
        for s in range(a, b, C):
            seq.append(n)
            start.append(s)
    device = bounds.device
    return (torch.tensor(seq, dtype=torch.int32, device=device),
            torch.tensor(start, dtype=torch.int32, device=device))


def chunk_gated_delta_rule_triton(
    q, k, v, g, beta, scale=None, initial_state=None, output_final_state=False,
    use_qk_l2norm_in_kernel=False, cu_seqlens=None,
):
    N, _ = check_inputs(q, k, v, g, beta, initial_state, cu_seqlens)
    check_mode(_INTERPRETED, q)
    B, T, H, K = q.shape
    HV, V = v.shape[2:]
    if K < 16 or V < 16:
        raise ValueError(f"the Triton chunk kernel needs K, V >= 16 (tl.dot tiles); got K={K}, V={V}")
    scale = K**-0.5 if scale is None else scale
    C = CHUNK_SIZE
    q, k, v, g, beta = (x.contiguous() for x in (q, k, v, g, beta))
    bounds = sequence_bounds(B, T, cu_seqlens, q.device)
    o = torch.empty_like(v)
    final_state = q.new_empty(N, HV, K, V, dtype=torch.float32) if output_final_state else None
    h0 = initial_state.float().contiguous() if initial_state is not None else None
    total = B * T
    w = torch.empty(total, HV, K, dtype=torch.float32, device=q.device)
    u = torch.empty(total, HV, V, dtype=torch.float32, device=q.device)
    gc = torch.empty(total, HV, dtype=torch.float32, device=q.device)
    BK = next_pow2(K)
    prec = dot_precision(q.dtype)
    BV = state_block_v(K, V, N * HV)
    key = (q.device, q.dtype, K, V, BV, use_qk_l2norm_in_kernel, initial_state is not None, output_final_state)
    options = state_pass_options(q.dtype)
    if _FITTING_OPTION.get(key) == len(options):  # found before: nothing fits this GPU
        raise KernelDoesNotFit(f"the chunked gated delta rule ({q.dtype}, K={K}, V={V}, BV={BV}) does not fit this "
                               "GPU with any launch option (found on an earlier call)")
    chunk_seq, chunk_start = _chunk_table(bounds, C)
    if chunk_seq.numel():
        try:
            _chunk_prepare_kernel[(chunk_seq.numel(), HV)](
                k, v, g, beta, w, u, gc, chunk_seq, chunk_start, bounds,
                H=H, HV=HV, K=K, V=V, BK=BK, BVF=next_pow2(V), C=C, USE_L2NORM=use_qk_l2norm_in_kernel,
                PREC=prec, SUB=16, num_warps=4,
            )
        except OutOfResources as exc:
            _FITTING_OPTION[key] = len(options)
            raise KernelDoesNotFit(f"the chunked gated delta rule's prepare kernel ({q.dtype}, K={K}, V={V}) "
                                   f"does not fit this GPU: {exc}") from exc
    errors = []
    for index in range(_FITTING_OPTION.get(key, 0), len(options)):
        option = options[index]
        round_dt = tl_dtype(q.dtype) if option.operands_in_input_dtype else tl.float32
        try:
            _chunk_state_kernel[(triton.cdiv(V, BV), N * HV)](
                q, k, w, u, gc, o, h0, final_state, bounds, scale,
                H=H, HV=HV, K=K, V=V, BK=BK, BV=BV, C=C, USE_L2NORM=use_qk_l2norm_in_kernel,
                HAS_H0=h0 is not None, STORE_HT=output_final_state, PREC=prec,
                ROUND_DT=round_dt, DOT_DT=tl.float32 if _INTERPRETED else round_dt,
                num_warps=NUM_WARPS, num_stages=option.num_stages,
            )
        except OutOfResources as exc:  # raised before the launch: nothing was written
            errors.append(f"{option}: {exc}")
            continue
        _FITTING_OPTION[key] = index
        return o, final_state
    _FITTING_OPTION[key] = len(options)
    raise KernelDoesNotFit(f"the chunked gated delta rule's state pass ({q.dtype}, K={K}, V={V}, BV={BV}) "
                           f"does not fit this GPU with any launch option: " + "; ".join(errors))
