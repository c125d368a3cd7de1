"""The engine with backend="triton" (every kernel through Triton's interpreter on CPU) against
transformers, on the tiny random checkpoints (fp32); and the CUDA-graph decode step
(model/cuda_decode.py) run eagerly on CPU against the engine's own decode.

Dense and MoE configs; the prompt (66 tokens) crosses a 64-token DeltaNet chunk so the Triton chunk
kernel passes state between chunks; greedy generation runs 8 decode steps through the Triton decode
step and conv update. Each test also checks which Triton launchers ran, so a layer that silently
falls back to PyTorch fails here. The interpreter is slow: shapes are kept minimal.

The CUDA graph itself cannot run here (no GPU): the tests run its static step (tensor-held cache
slot and positions) eagerly, and its capture/replay bookkeeping with a stand-in for CapturedStep.
"""

from __future__ import annotations

import collections
import importlib

import pytest
import torch
import torch.nn.functional as F

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
needs_interpreter = pytest.mark.skipif(_reason is not None, reason=_reason or "")


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


@needs_interpreter
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


@needs_interpreter
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


# ---------------------------------------------------------------- CUDA-graph decode step, run on CPU


@pytest.fixture(scope="module", params=KINDS)
def torch_engine(request):
    return load_model(tiny_checkpoint(request.param), backend="torch", with_vision=False, with_mtp=False)


def _prefilled(engine, ids, mask):
    """A cache after the prompt, and the first greedy token, as generate() does it."""
    cache = engine.new_cache(ids.shape[0], ids.shape[1] + 8)
    x = engine.embed(ids)
    hidden = engine.decode_hidden(x, engine.position_ids(ids, mask), cache, mask)
    return cache, engine.logits(hidden[:, -1]).argmax(-1)


def _left_padded_batch():
    ids = _prompt(2, seed=4)[:, :20]
    ids[1, :5] = 0
    mask = torch.ones_like(ids)
    mask[1, :5] = 0  # row 1: pad keys, and positions behind the cache slot
    return ids, mask


def test_static_decode_step_matches_the_engines_decode(torch_engine):
    """The step captured on CUDA (KV slot and positions read from tensors, masked attention over the
    whole buffer), run eagerly: same logits, cache and positions as decode_hidden, step after step."""
    from vlagent.model.cuda_decode import CudaGraphDecoder

    engine = torch_engine
    ids, mask = _left_padded_batch()
    cache_a, first = _prefilled(engine, ids, mask)
    cache_b, first_b = _prefilled(engine, ids, mask)
    assert torch.equal(first, first_b)
    for c in (cache_a, cache_b):  # stale marks past the end, as a rolled-back speculative verify leaves them
        c.key_valid[:, c.length :] = True
    decoder = CudaGraphDecoder(engine, cache_a, capture=False)
    next_a = next_b = first
    with torch.inference_mode():
        for _ in range(6):
            logits_a = decoder(next_a)
            pos = cache_b.next_pos.view(1, 2, 1).expand(3, 2, 1)
            hidden = engine.decode_hidden(F.embedding(next_b[:, None], engine.embed_tokens), pos, cache_b)
            logits_b = engine.logits(hidden[:, -1])
            torch.testing.assert_close(logits_a, logits_b, atol=1e-5, rtol=1e-5)
            assert cache_a.length == cache_b.length
            assert torch.equal(cache_a.next_pos, cache_b.next_pos)
            next_a, next_b = logits_a.argmax(-1), logits_b.argmax(-1)
            assert torch.equal(next_a, next_b)
    assert torch.equal(cache_a.key_valid, cache_b.key_valid)
    for i, (k, v) in cache_b.kv.items():
        torch.testing.assert_close(cache_a.kv[i][0][:, :, : cache_b.length], k[:, :, : cache_b.length])
        torch.testing.assert_close(cache_a.kv[i][1][:, :, : cache_b.length], v[:, :, : cache_b.length])
    for i in cache_b.rec:
        torch.testing.assert_close(cache_a.rec[i], cache_b.rec[i], atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(cache_a.conv[i], cache_b.conv[i])


class _FakeCapture:
    """Stands in for CapturedStep: records what would be captured; a "replay" runs the step again on
    the same (static) tensors."""

    made: list = []

    def __init__(self, fn, *args, warmup=2, pool=None):
        self.fn, self.args = fn, args
        self.pointers = [a.data_ptr() for a in args]
        _FakeCapture.made.append(self)

    def __call__(self):
        assert [a.data_ptr() for a in self.args] == self.pointers, "a static buffer was reallocated"
        return self.fn(*self.args)


def test_graph_is_captured_once_and_resyncs_after_an_eager_step(torch_engine, monkeypatch):
    from vlagent.model import cuda_decode

    engine = torch_engine
    ids, mask = _left_padded_batch()
    cache, first = _prefilled(engine, ids, mask)
    ref_cache, _ = _prefilled(engine, ids, mask)
    monkeypatch.setattr(cuda_decode, "CapturedStep", _FakeCapture)
    _FakeCapture.made = []
    decoder = cuda_decode.CudaGraphDecoder(engine, cache, capture=False)
    decoder.capture = True  # the capture path, minus the CUDA check (no GPU here)
    ref = cuda_decode.CudaGraphDecoder(engine, ref_cache, capture=False)
    with torch.inference_mode():
        tokens = first
        for step in range(4):
            if step == 2:  # one step outside the graph (e.g. the eager loop): the buffers must resync
                pos = cache.next_pos.view(1, 2, 1).expand(3, 2, 1)
                engine.decode_hidden(F.embedding(tokens[:, None], engine.embed_tokens), pos, cache)
                ref(tokens)
                tokens = tokens.flip(0)
            logits = decoder(tokens)
            expected = ref(tokens)
            torch.testing.assert_close(logits, expected, atol=1e-5, rtol=1e-5)
            tokens = logits.argmax(-1)
    assert len(_FakeCapture.made) == 1
    captured = _FakeCapture.made[0].args
    assert captured[0] is decoder.token_ids and captured[1] is decoder.positions and captured[2] is decoder.write_index
    assert any(t is cache.key_valid for t in captured) and all(any(t is r for t in captured) for r in cache.rec.values())
    assert cache.length == ref_cache.length == 20 + 5 and torch.equal(cache.next_pos, ref_cache.next_pos)


def test_a_kept_graph_is_captured_once_and_replayed_by_later_generate_calls(torch_engine, monkeypatch):
    """generate keeps its decoder (cuda_decode.DecodeGraphs): the graph captured by the first call is
    replayed by the next, over the same static buffers, its cache reset; only the first reports a
    capture time. Both decode what the eager loop decodes."""
    from vlagent.model import cuda_decode

    engine = torch_engine
    monkeypatch.setattr(cuda_decode, "CapturedStep", _FakeCapture)
    _FakeCapture.made = []
    graphs = cuda_decode.decode_graphs(engine)
    graphs.clear()
    decoder, _ = graphs.checkout(2, 20 + 8, capture=False)
    decoder.capture = True  # the capture path, minus the CUDA check (no GPU here)
    graphs.release(decoder)
    ids, mask = _left_padded_batch()
    runs = []
    for prompt_ids in (ids, ids.flip(0)):
        prompt_mask = mask if prompt_ids is ids else mask.flip(0)
        kw = dict(input_ids=prompt_ids, attention_mask=prompt_mask, max_new_tokens=8, stop_token_ids=[],
                  return_dict=True)
        eager = engine.generate(**kw, cuda_graph=False)
        static = engine.generate(**kw, cuda_graph=True)
        assert static.sequences.tolist() == eager.sequences.tolist()
        runs.append(static.stats)
    assert len(_FakeCapture.made) == 1 and _FakeCapture.made[0].args[0] is decoder.token_ids
    assert runs[0]["graph_capture_s"] > 0 and runs[1]["graph_capture_s"] == 0.0
    assert runs[0]["cuda_graph_reused"] and runs[1]["cuda_graph_reused"]
    graphs.clear()


def test_capture_needs_a_free_cache_slot_per_warm_up_run(torch_engine, monkeypatch):
    """The warm-up runs before a capture each write the next cache slot: with fewer slots free than runs,
    the capture is refused with a message (on a GPU the write would be an out-of-bounds device assert)."""
    from vlagent.model import cuda_decode

    engine = torch_engine
    ids, mask = _left_padded_batch()
    monkeypatch.setattr(cuda_decode, "CapturedStep", _FakeCapture)
    _FakeCapture.made = []
    cache = engine.new_cache(2, ids.shape[1] + 1)
    with torch.inference_mode():
        engine.decode_hidden(engine.embed(ids), engine.position_ids(ids, mask), cache, mask)
    decoder = cuda_decode.CudaGraphDecoder(engine, cache, capture=False, warmup=2)
    decoder.capture = True
    with pytest.raises(ValueError, match="needs 2 free cache slots"):
        decoder(torch.tensor([1, 2]))
    assert _FakeCapture.made == [] and cache.length == ids.shape[1]


def test_cuda_graph_decoder_refuses_cpu_and_bad_input(torch_engine):
    from vlagent.model.cuda_decode import CudaGraphDecoder

    engine = torch_engine
    cache = engine.new_cache(1, 3)
    with pytest.raises(ValueError, match="CUDA graphs"):
        CudaGraphDecoder(engine, cache)
    decoder = CudaGraphDecoder(engine, cache, capture=False)
    with pytest.raises(ValueError, match=r"next_ids must be \[1\]"):
        decoder(torch.tensor([1, 2]))
    with torch.inference_mode():
        for _ in range(3):
            decoder(torch.tensor([5]))
        with pytest.raises(ValueError, match="cannot decode past"):
            decoder(torch.tensor([5]))
