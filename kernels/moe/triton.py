"""Triton MoE: tokens sorted by expert, grouped GEMMs, combine in token order.

1. route (torch: router GEMM, fp32 softmax, top-k, renormalize) and build, with device ops only (no
   host sync), a block table: each expert's slots padded to a multiple of BM rows.
2. _expert_gate_up_kernel: per (row block, I tile): gather x rows, gate and up GEMMs, SiLU(gate) * up.
3. _expert_down_kernel: per (row block, D tile): down GEMM, times the routing weight, one row per slot.
4. _combine_kernel: per token, add its top-k slot rows in ascending expert order (HF's index_add order)
   and the sigmoid-gated shared expert (its GEMMs run in torch/cuBLAS).
Each rounding to x.dtype that HF performs is reproduced with an explicit cast.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
import triton
import triton.language as tl

from ..triton_utils import dot_operand_dtype, dot_precision, next_pow2, prepare_launch, tl_dtype
from .reference import route, split_shared_gate_up



def _block_m(num_slots: int, num_experts: int) -> int:
    """Rows per expert tile: 16 for decode-sized batches, up to 64 when experts get many tokens each."""
    per_expert = num_slots / num_experts
    return 64 if per_expert >= 64 else 32 if per_expert >= 32 else 16


@triton.jit
def _expert_gate_up_kernel(
    x, w_gate_up, h, sorted_slots, block_expert, num_slots, D, I,
    TOP_K: tl.constexpr, BM: tl.constexpr, BN: tl.constexpr, BK: tl.constexpr,
    DT: tl.constexpr, DOT_DT: tl.constexpr, PREC: tl.constexpr,
):
    i_m = tl.program_id(0)
    i_n = tl.program_id(1)
    e = tl.load(block_expert + i_m).to(tl.int64)
    if e >= 0:
        o_m = i_m * BM + tl.arange(0, BM)
        slot = tl.load(sorted_slots + o_m)
        m_m = slot < num_slots
        token = (slot // TOP_K).to(tl.int64)
        o_n = i_n * BN + tl.arange(0, BN)
        m_n = o_n < I
        acc_gate = tl.zeros([BM, BN], dtype=tl.float32)
        acc_up = tl.zeros([BM, BN], dtype=tl.float32)
        w_base = w_gate_up + e * (2 * I) * D
        for k0 in range(0, D, BK):
            o_k = k0 + tl.arange(0, BK)
            m_k = o_k < D
            b_x = tl.load(x + token[:, None] * D + o_k[None, :], mask=m_m[:, None] & m_k[None, :], other=0.0)
            m_w = m_k[:, None] & m_n[None, :]
            b_wg = tl.load(w_base + o_n[None, :] * D + o_k[:, None], mask=m_w, other=0.0)
            b_wu = tl.load(w_base + (I + o_n[None, :]) * D + o_k[:, None], mask=m_w, other=0.0)
            b_x = b_x.to(DOT_DT)
            acc_gate = tl.dot(b_x, b_wg.to(DOT_DT), acc_gate, input_precision=PREC)
            acc_up = tl.dot(b_x, b_wu.to(DOT_DT), acc_up, input_precision=PREC)
        gate = acc_gate.to(DT).to(tl.float32)
        up = acc_up.to(DT).to(tl.float32)
        act = (gate / (1.0 + tl.exp(-gate))).to(DT).to(tl.float32)
        tl.store(h + o_m[:, None].to(tl.int64) * I + o_n[None, :], (act * up).to(DT),
                 mask=m_m[:, None] & m_n[None, :])


@triton.jit
def _expert_down_kernel(
    h, w_down, routing_weights, y_slots, sorted_slots, block_expert, num_slots, D, I,
    BM: tl.constexpr, BN: tl.constexpr, BK: tl.constexpr, DT: tl.constexpr, DOT_DT: tl.constexpr,
    PREC: tl.constexpr,
):
    i_m = tl.program_id(0)
    i_n = tl.program_id(1)
    e = tl.load(block_expert + i_m).to(tl.int64)
    if e >= 0:
        o_m = i_m * BM + tl.arange(0, BM)
        slot = tl.load(sorted_slots + o_m)
        m_m = slot < num_slots
        o_n = i_n * BN + tl.arange(0, BN)
        m_n = o_n < D
        acc = tl.zeros([BM, BN], dtype=tl.float32)
        w_base = w_down + e * D * I
        for k0 in range(0, I, BK):
            o_k = k0 + tl.arange(0, BK)
            m_k = o_k < I
            b_h = tl.load(h + o_m[:, None].to(tl.int64) * I + o_k[None, :], mask=m_m[:, None] & m_k[None, :], other=0.0)
            b_w = tl.load(w_base + o_n[None, :] * I + o_k[:, None], mask=m_k[:, None] & m_n[None, :], other=0.0)
            acc = tl.dot(b_h.to(DOT_DT), b_w.to(DOT_DT), acc, input_precision=PREC)
        weight = tl.load(routing_weights + slot, mask=m_m, other=0.0).to(tl.float32)
        out = acc.to(DT).to(tl.float32) * weight[:, None]
        tl.store(y_slots + slot[:, None].to(tl.int64) * D + o_n[None, :], out.to(DT), mask=m_m[:, None] & m_n[None, :])


@triton.jit
def _combine_kernel(
    y_slots, slot_order, shared, shared_gate, out, D,
    TOP_K: tl.constexpr, BD: tl.constexpr, HAS_SHARED: tl.constexpr, HAS_SHARED_GATE: tl.constexpr,
    DT: tl.constexpr,
):
    i_t = tl.program_id(0).to(tl.int64)
    o_d = tl.program_id(1) * BD + tl.arange(0, BD)
    m_d = o_d < D
    acc = tl.zeros([BD], dtype=tl.float32)
    for j in tl.static_range(TOP_K):
        slot = tl.load(slot_order + i_t * TOP_K + j).to(tl.int64)
        acc = (acc + tl.load(y_slots + slot * D + o_d, mask=m_d, other=0.0).to(tl.float32)).to(DT).to(tl.float32)
    if HAS_SHARED:
        b_s = tl.load(shared + i_t * D + o_d, mask=m_d, other=0.0).to(tl.float32)
        if HAS_SHARED_GATE:
            logit = tl.load(shared_gate + i_t).to(tl.float32)
            gate = (1.0 / (1.0 + tl.exp(-logit))).to(DT).to(tl.float32)
            b_s = (gate * b_s).to(DT).to(tl.float32)
        acc = acc + b_s
    tl.store(out + i_t * D + o_d, acc.to(DT), mask=m_d)


def _block_table(experts: torch.Tensor, num_experts: int, BM: int):
    """Slots (token * top_k + j) sorted by expert, each expert's run padded to BM rows; -1 marks unused blocks."""
    flat = experts.reshape(-1)
    num_slots = flat.numel()
    order = flat.argsort(stable=True)
    # scatter_add, not bincount: bincount syncs with the host on CUDA (breaks graph capture)
    counts = torch.zeros(num_experts, dtype=torch.long, device=flat.device).scatter_add_(0, flat, torch.ones_like(flat))
    padded = (counts + BM - 1) // BM * BM
    padded_end = padded.cumsum(0)
    padded_start = padded_end - padded
    start = counts.cumsum(0) - counts
    sorted_expert = flat[order]
    rank = torch.arange(num_slots, device=flat.device) - start[sorted_expert]
    max_blocks = (num_slots + num_experts * (BM - 1)) // BM
    sorted_slots = torch.full((max_blocks * BM,), num_slots, dtype=torch.int32, device=flat.device)
    sorted_slots[padded_start[sorted_expert] + rank] = order.to(torch.int32)
    block_first_row = torch.arange(max_blocks, device=flat.device) * BM
    block_expert = torch.searchsorted(padded_end, block_first_row, right=True)
    block_expert = torch.where(block_expert < num_experts, block_expert, -1).to(torch.int32)
    return sorted_slots, block_expert, max_blocks


def fused_moe_triton(x, router_weight, w_gate_up, w_down, top_k, renormalize=True,
                     shared_gate_up=None, shared_down=None, shared_gate_weight=None):
    prepare_launch(_combine_kernel, x)
    N, D = x.shape
    E, two_i, _ = w_gate_up.shape
    I = two_i // 2
    x = x.contiguous()
    w_gate_up, w_down = w_gate_up.contiguous(), w_down.contiguous()
    weights, experts = route(x, router_weight, top_k, renormalize)
    num_slots = N * top_k
    BM = _block_m(num_slots, E)
    sorted_slots, block_expert, max_blocks = _block_table(experts, E, BM)
    dt = tl_dtype(x.dtype)
    prec = dot_precision(x.dtype)
    dot_dt = dot_operand_dtype(x.dtype, _combine_kernel)

    h = x.new_empty(max_blocks * BM, I)
    BN, BK = 64, 64
    num_warps = 8 if BM >= 32 else 4  # no spills at sm_90 either way (compile_check)
    _expert_gate_up_kernel[(max_blocks, triton.cdiv(I, BN))](
        x, w_gate_up, h, sorted_slots, block_expert, num_slots, D, I,
        TOP_K=top_k, BM=BM, BN=BN, BK=BK, DT=dt, DOT_DT=dot_dt, PREC=prec, num_warps=num_warps,
    )
    y_slots = x.new_empty(num_slots, D)
    _expert_down_kernel[(max_blocks, triton.cdiv(D, BN))](
        h, w_down, weights.reshape(-1).contiguous(), y_slots, sorted_slots, block_expert, num_slots, D, I,
        BM=BM, BN=BN, BK=BK, DT=dt, DOT_DT=dot_dt, PREC=prec, num_warps=num_warps,
    )

    # each token's slots in ascending expert order, the order HF accumulates them in
    slot_base = torch.arange(N, device=x.device)[:, None] * top_k
    slot_order = (slot_base + experts.argsort(dim=-1)).to(torch.int32).contiguous()
    shared = gate_logits = None
    if shared_down is not None:
        gate_w, up_w = split_shared_gate_up(shared_gate_up)
        shared = F.linear(F.silu(F.linear(x, gate_w)) * F.linear(x, up_w), shared_down).contiguous()
        if shared_gate_weight is not None:
            gate_logits = F.linear(x, shared_gate_weight).reshape(N).contiguous()
    out = torch.empty_like(x)
    BD = min(512, next_pow2(D))
    _combine_kernel[(N, triton.cdiv(D, BD))](
        y_slots, slot_order, shared, gate_logits, out, D,
        TOP_K=top_k, BD=BD, HAS_SHARED=shared is not None, HAS_SHARED_GATE=gate_logits is not None, DT=dt,
    )
    return out
