"""Fused MoE: torch path == transformers' Qwen3_5MoeSparseMoeBlock; Triton (interpreter) == torch path."""
from __future__ import annotations

import pytest
import torch

from kernel_testing import assert_close, needs_interpreter
from vlagent import kernels

import transformers.models.qwen3_5_moe.modeling_qwen3_5_moe as hf_moe  # noqa: E402
from transformers import Qwen3_5MoeTextConfig  # noqa: E402


def _hf_block(D=32, E=8, top_k=2, I=16, Is=24, dtype=torch.float32, seed=0):
    config = Qwen3_5MoeTextConfig(hidden_size=D, num_experts=E, num_experts_per_tok=top_k,
                                  moe_intermediate_size=I, shared_expert_intermediate_size=Is)
    block = hf_moe.Qwen3_5MoeSparseMoeBlock(config)
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in block.parameters():
            p.copy_(torch.randn(p.shape, generator=gen) / p.shape[-1] ** 0.5)
    return block.to(dtype).eval()


def _weights(block):
    return dict(
        router_weight=block.gate.weight, w_gate_up=block.experts.gate_up_proj, w_down=block.experts.down_proj,
        top_k=block.gate.top_k,
        shared_gate_up=(block.shared_expert.gate_proj.weight, block.shared_expert.up_proj.weight),
        shared_down=block.shared_expert.down_proj.weight, shared_gate_weight=block.shared_expert_gate.weight,
    )


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_torch_moe_matches_transformers_block(dtype):
    block = _hf_block(dtype=dtype)
    x = torch.randn(3, 7, 32, generator=torch.Generator().manual_seed(1)).to(dtype)
    with torch.no_grad():
        expected = block(x).reshape(-1, 32)
        w = _weights(block)
        top_k = w.pop("top_k")
        y = kernels.fused_moe(x.reshape(-1, 32), top_k=top_k, **w)
        # the concatenated shared layout (gate rows first) is the same computation
        w["shared_gate_up"] = torch.cat(w["shared_gate_up"], dim=0)
        y_cat = kernels.fused_moe(x.reshape(-1, 32), top_k=top_k, **w)
    if dtype == torch.float32:
        assert_close(y, expected)
    else:  # same ops, same rounding points, same accumulation order
        assert torch.equal(y, expected)
    assert torch.equal(y, y_cat)


def test_moe_without_shared_expert_and_without_renormalization():
    block = _hf_block(E=4, top_k=1)
    x = torch.randn(5, 32, generator=torch.Generator().manual_seed(2))
    w = _weights(block)
    with torch.no_grad():
        routed = kernels.fused_moe(x, w["router_weight"], w["w_gate_up"], w["w_down"], 1)
        raw = kernels.fused_moe(x, w["router_weight"], w["w_gate_up"], w["w_down"], 1, renormalize=False)
        probs = torch.softmax(x @ w["router_weight"].T, dim=-1)
        top_p = probs.max(dim=-1).values
    # top-1 renormalized weight is 1; without renormalization it is the softmax probability
    assert_close(raw, routed * top_p[:, None])


def test_moe_bad_inputs():
    x = torch.zeros(4, 8)
    with pytest.raises(ValueError, match="w_down"):
        kernels.fused_moe(x, torch.zeros(3, 8), torch.zeros(3, 10, 8), torch.zeros(3, 8, 4), 2)
    with pytest.raises(ValueError, match="top_k"):
        kernels.fused_moe(x, torch.zeros(3, 8), torch.zeros(3, 10, 8), torch.zeros(3, 8, 5), 4)
    with pytest.raises(ValueError, match="both"):
        kernels.fused_moe(x, torch.zeros(3, 8), torch.zeros(3, 10, 8), torch.zeros(3, 8, 5), 2,
                          shared_down=torch.zeros(8, 4))


@needs_interpreter("moe")
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("N,E,top_k,shared", [(1, 4, 2, True), (19, 8, 3, True), (6, 16, 2, False), (70, 4, 2, True)])
def test_triton_moe_matches_torch(dtype, N, E, top_k, shared):
    block = _hf_block(D=48, E=E, top_k=top_k, I=40, Is=24, dtype=dtype, seed=N)
    x = torch.randn(N, 48, generator=torch.Generator().manual_seed(N)).to(dtype)
    w = _weights(block)
    w.pop("top_k")
    if not shared:
        w.update(shared_gate_up=None, shared_down=None, shared_gate_weight=None)
    with torch.no_grad():
        y = kernels.fused_moe(x, top_k=top_k, backend="triton", **w)
        y_ref = kernels.fused_moe(x, top_k=top_k, backend="torch", **w)
    assert y.dtype == dtype and y.shape == x.shape
    assert_close(y, y_ref, dtype)
