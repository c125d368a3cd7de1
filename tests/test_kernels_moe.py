"""Fused MoE: torch path == transformers' Qwen3_5MoeSparseMoeBlock; Triton (interpreter) == torch path;
routing without renormalization (top-1 and top-k > 1) == transformers' Qwen3-MoE block with norm_topk_prob=False
and a token-by-token float64 computation."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from kernel_testing import assert_close, interpreter_reason, needs_interpreter
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


def _qwen3_moe_block(D, E, top_k, I, seed):
    """transformers' Qwen3-MoE block (routed experts only, the same expert layout), norm_topk_prob=False:
    an implementation of top-k routing without renormalization that is not ours."""
    import transformers.models.qwen3_moe.modeling_qwen3_moe as hf_qwen3_moe
    from transformers import Qwen3MoeConfig

    config = Qwen3MoeConfig(hidden_size=D, num_experts=E, num_experts_per_tok=top_k, moe_intermediate_size=I,
                            norm_topk_prob=False)
    block = hf_qwen3_moe.Qwen3MoeSparseMoeBlock(config)
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in block.parameters():
            p.copy_(torch.randn(p.shape, generator=gen) / p.shape[-1] ** 0.5)
    return block.eval()


def _by_hand(x, router_weight, w_gate_up, w_down, top_k):
    """Token by token, in float64: y = sum over the top-k experts of softmax prob * expert(x)."""
    x, router, gu, down = (t.double() for t in (x, router_weight, w_gate_up, w_down))
    out = torch.zeros_like(x)
    for n in range(x.shape[0]):
        probs = torch.softmax(router @ x[n], dim=-1)
        for e in torch.argsort(probs, descending=True)[:top_k].tolist():
            gate, up = (gu[e] @ x[n]).chunk(2)
            out[n] += probs[e] * (down[e] @ (F.silu(gate) * up))
    return out


@pytest.mark.parametrize("top_k", [1, 2, 3])
@pytest.mark.parametrize("backend", ["torch", "triton"])
def test_moe_without_renormalization_matches_independent_references(top_k, backend):
    """renormalize=False weights each chosen expert by its softmax probability over all experts (the
    weights of a token sum to less than 1): against transformers' Qwen3-MoE block with
    norm_topk_prob=False and against a token-by-token float64 computation, top-1 and top-k > 1."""
    if backend == "triton" and interpreter_reason("moe"):
        pytest.skip(interpreter_reason("moe"))
    block = _qwen3_moe_block(D=32, E=6, top_k=top_k, I=16, seed=top_k)
    x = torch.randn(11, 32, generator=torch.Generator().manual_seed(10 + top_k))
    w = dict(router_weight=block.gate.weight, w_gate_up=block.experts.gate_up_proj, w_down=block.experts.down_proj)
    with torch.no_grad():
        raw = kernels.fused_moe(x, top_k=top_k, renormalize=False, backend=backend, **w)
        renormalized = kernels.fused_moe(x, top_k=top_k, backend=backend, **w)
        expected = block(x[None])[0]
    assert_close(raw, expected)
    assert_close(raw, _by_hand(x, top_k=top_k, **w).float())
    # the two settings really differ: each token's chosen weights sum to less than 1 without renormalizing
    probs = torch.softmax(x @ w["router_weight"].T, dim=-1)
    kept = probs.topk(top_k, dim=-1).values.sum(-1)
    assert (kept < 0.99).all()
    assert not torch.allclose(raw, renormalized, atol=1e-3)


def test_norm_topk_prob_from_the_config_reaches_every_moe_layer(tmp_path):
    """config.json's norm_topk_prob=false makes the engine's MoE layers route without renormalizing."""
    import json
    import shutil

    from tiny_checkpoints import tiny_checkpoint
    from vlagent.model import load_model
    from vlagent.model.qwen35 import MoE

    folder = tmp_path / "moe"
    shutil.copytree(tiny_checkpoint("moe"), folder)
    cfg = json.loads((folder / "config.json").read_text())
    cfg["text_config"]["norm_topk_prob"] = False
    (folder / "config.json").write_text(json.dumps(cfg))
    engine = load_model(folder, with_vision=False, with_mtp=False)
    layers = [m for m in engine.modules() if isinstance(m, MoE)]
    assert layers and all(m.renormalize is False for m in layers)
    moe = layers[0]
    x = torch.randn(5, moe.router.shape[1], generator=torch.Generator().manual_seed(0))
    gate, up = moe.shared_gate_up.chunk(2, dim=0)
    shared = torch.sigmoid(x @ moe.shared_gate.T) * (F.silu(x @ gate.T) * (x @ up.T)) @ moe.shared_down.T
    with torch.no_grad():
        got = moe(x)
    expected = _by_hand(x, moe.router, moe.w_gate_up, moe.w_down, moe.top_k).float() + shared
    assert_close(got, expected)


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
