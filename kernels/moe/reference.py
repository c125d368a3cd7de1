"""Qwen3.5-MoE sparse block (softmax top-k router, SiLU-gated experts, sigmoid-gated shared expert).

Numerics follow HF Qwen3_5MoeTopKRouter / Qwen3_5MoeExperts / Qwen3_5MoeSparseMoeBlock: router softmax in
fp32, top-k weights renormalized then cast to x.dtype, expert math in x.dtype, results index_add-ed in
x.dtype. Only experts that received tokens are visited.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F


def route(x, router_weight, top_k, renormalize=True):
    """-> (weights [N,top_k] in x.dtype, expert ids [N,top_k])."""
    logits = F.linear(x, router_weight)
    probs = torch.softmax(logits, dim=-1, dtype=torch.float32)
    top_w, top_i = torch.topk(probs, top_k, dim=-1)
    if renormalize:
        top_w = top_w / top_w.sum(dim=-1, keepdim=True)
    return top_w.to(logits.dtype), top_i


def split_shared_gate_up(shared_gate_up):
    """Accept [2Is, D] (gate rows first, like experts.gate_up_proj) or a (gate [Is,D], up [Is,D]) pair."""
    if isinstance(shared_gate_up, (tuple, list)):
        gate, up = shared_gate_up
        return gate, up
    return shared_gate_up.chunk(2, dim=0)


def shared_expert_torch(x, shared_gate_up, shared_down, shared_gate_weight):
    gate_w, up_w = split_shared_gate_up(shared_gate_up)
    out = F.linear(F.silu(F.linear(x, gate_w)) * F.linear(x, up_w), shared_down)
    if shared_gate_weight is not None:
        out = torch.sigmoid(F.linear(x, shared_gate_weight)) * out
    return out


def fused_moe_torch(x, router_weight, w_gate_up, w_down, top_k, renormalize=True,
                    shared_gate_up=None, shared_down=None, shared_gate_weight=None):
    weights, experts = route(x, router_weight, top_k, renormalize)
    out = torch.zeros_like(x)
    flat_experts = experts.reshape(-1)
    order = flat_experts.argsort(stable=True)
    counts = torch.bincount(flat_experts, minlength=w_gate_up.shape[0]).tolist()
    start = 0
    for e, n in enumerate(counts):
        if n == 0:
            continue
        slots = order[start : start + n]
        start += n
        token = slots // top_k
        gate, up = F.linear(x[token], w_gate_up[e]).chunk(2, dim=-1)
        y = F.linear(F.silu(gate) * up, w_down[e]) * weights.reshape(-1)[slots, None]
        out.index_add_(0, token, y.to(out.dtype))
    if shared_down is not None:
        out = out + shared_expert_torch(x, shared_gate_up, shared_down, shared_gate_weight)
    return out
