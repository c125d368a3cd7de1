"""The engine with backend="triton" (every kernel through Triton's interpreter on CPU) against
transformers, on the tiny random checkpoints (fp32).

Dense and MoE configs; the prompt (66 tokens) crosses a 64-token DeltaNet chunk so the Triton chunk
kernel passes state between chunks; greedy generation runs 8 decode steps through the Triton decode
step and conv update. Each test also checks which Triton launchers ran, so a layer that silently
falls back to PyTorch fails here. The interpreter is slow: shapes are kept minimal.
"""

from __future__ import annotations

import collections
import importlib

import pytest
import torch

from kernel_testing import interpreter_reason
from tiny_checkpoints import tiny_checkpoint
from vlagent.model import load_model

KINDS = ["dense", "moe"]
PROMPT_LEN = 66  # > 64: two DeltaNet chunks
NEW_TOKENS = 9  # the first comes from the prefill, then 8 decode steps

# (module, launcher) of every Triton path the engine should take
LAUNCHERS = {
    "chunk": ("vlagent.kernels.gated_delta_rule.chunk", "chunk_gated_delta_rule_triton"),
    "decode_step": ("vlagent.kernels.gated_delta_rule.fused_recurrent", "gated_delta_decode_step_triton"),
    "conv1d": ("vlagent.kernels.conv1d.triton", "causal_conv1d_triton"),
    "conv1d_update": ("vlagent.kernels.conv1d.triton", "causal_conv1d_update_triton"),
    "rms_norm": ("vlagent.kernels.norm.triton", "rms_norm_triton"),
    "gated_rms_norm": ("vlagent.kernels.norm.triton", "gated_rms_norm_triton"),
    "rotary": ("vlagent.kernels.rotary.triton", "apply_rotary_triton"),
    "moe": ("vlagent.kernels.moe.triton", "fused_moe_triton"),
}
PREFILL_OPS = {"chunk", "conv1d", "rms_norm", "gated_rms_norm", "rotary"}
DECODE_OPS = {"decode_step", "conv1d_update", "rms_norm", "gated_rms_norm", "rotary"}

_reason = interpreter_reason("gdn_chunk")
pytestmark = pytest.mark.skipif(_reason is not None, reason=_reason or "")


@pytest.fixture(autouse=True, scope="module")
def _single_thread():
    """Tiny models: one intra-op thread is faster than two on a shared 2-core machine."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="module", params=KINDS)
def pair(request):
    import transformers

    kind = request.param
    folder = tiny_checkpoint(kind)
    engine = load_model(folder, dtype=torch.float32, backend="triton", with_vision=False, with_mtp=False)
    cls = transformers.Qwen3_5ForConditionalGeneration if kind == "dense" else transformers.Qwen3_5MoeForConditionalGeneration
    return kind, engine, cls.from_pretrained(folder, dtype=torch.float32).eval()


@pytest.fixture
def triton_calls(monkeypatch):
    """Counts calls of each Triton launcher (dispatch imports them from their modules at call time)."""
    calls: collections.Counter = collections.Counter()
    for op, (module_name, name) in LAUNCHERS.items():
        module = importlib.import_module(module_name)
        launcher = getattr(module, name)

        def counted(*args, _launcher=launcher, _op=op, **kwargs):
            calls[_op] += 1
            return _launcher(*args, **kwargs)

        monkeypatch.setattr(module, name, counted)
    return calls


def _prompt(batch: int, seed: int) -> torch.Tensor:
    return torch.randint(11, 560, (batch, PROMPT_LEN), generator=torch.Generator().manual_seed(seed))


def test_prefill_logits_match_transformers(pair, triton_calls):
    kind, engine, ref = pair
    ids = _prompt(2 if kind == "dense" else 1, seed=1)  # MoE: one row keeps the interpreter time down
    ours = engine(input_ids=ids).logits
    with torch.no_grad():
        theirs = ref(input_ids=ids).logits
    assert ours.shape == theirs.shape
    scale = theirs.abs().max().item()
    diff = (ours - theirs).abs().max().item()
    assert diff <= 1e-4 * max(scale, 1.0), f"{kind}: max abs diff {diff:.3g} (logit scale {scale:.3g})"
    expected = PREFILL_OPS | ({"moe"} if kind == "moe" else set())
    assert expected <= set(triton_calls), f"ops that did not run in Triton: {sorted(expected - set(triton_calls))}"
    assert not {"decode_step", "conv1d_update"} & set(triton_calls)


def test_greedy_generation_matches_transformers(pair, triton_calls):
    kind, engine, ref = pair
    ids = _prompt(1, seed=2)
    ours = engine.generate(input_ids=ids, max_new_tokens=NEW_TOKENS, stop_token_ids=[])
    theirs = ref.generate(input_ids=ids, max_new_tokens=NEW_TOKENS, min_new_tokens=NEW_TOKENS, do_sample=False)
    assert ours.shape == (1, PROMPT_LEN + NEW_TOKENS)
    assert ours[0, PROMPT_LEN:].tolist() == theirs[0, PROMPT_LEN:].tolist()
    n_linear = engine.config.text.layer_types.count("linear_attention")
    # one prefill of each DeltaNet layer, then NEW_TOKENS - 1 decode steps through each
    assert triton_calls["chunk"] == n_linear
    assert triton_calls["decode_step"] == triton_calls["conv1d_update"] == n_linear * (NEW_TOKENS - 1)
    expected = DECODE_OPS | ({"moe"} if kind == "moe" else set())
    assert expected <= set(triton_calls), f"ops that did not run in Triton: {sorted(expected - set(triton_calls))}"
