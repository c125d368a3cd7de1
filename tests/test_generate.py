"""Generation: MTP speculative decoding == greedy, batches, sampling, stops, streaming."""

from __future__ import annotations

import pytest
import torch

from tiny_checkpoints import tiny_checkpoint
from vlagent.model import load_model


@pytest.fixture(autouse=True, scope="module")
def _single_thread():
    """Tiny models: one intra-op thread is much faster than two on a shared 2-core machine."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="module")
def dense():
    return load_model(tiny_checkpoint("dense"), with_vision=False)


@pytest.fixture(scope="module")
def moe():
    return load_model(tiny_checkpoint("moe"), with_vision=False)


def _prompt(length: int, seed: int) -> torch.Tensor:
    return torch.randint(11, 560, (1, length), generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("kind,k", [("dense", 1), ("dense", 3), ("moe", 2)])
def test_mtp_speculative_equals_greedy(dense, moe, kind, k):
    model = dense if kind == "dense" else moe
    ids = _prompt(70, seed=11)
    plain = model.generate(input_ids=ids, max_new_tokens=36)
    res = model.generate(input_ids=ids, max_new_tokens=36, speculative="mtp", num_draft_tokens=k, return_dict=True)
    assert res.sequences.tolist() == plain.tolist()
    s = res.stats
    assert 0.0 <= s["acceptance_rate"] <= 1.0
    assert s["drafted_tokens"] == k * s["verify_rounds"] and s["accepted_tokens"] <= s["drafted_tokens"]
    assert model.generation_stats is s


class OracleDrafter:
    """Proposes the known greedy continuation, wrong on every `wrong_every`-th draft, so
    verification must accept some drafts and roll back after others."""

    def __init__(self, continuation: list[int], prompt_len: int, wrong_every: int):
        self.cont, self.L, self.wrong_every, self.calls = continuation, prompt_len, wrong_every, 0

    def start(self, hidden, input_ids, positions, first):
        assert int(first) == self.cont[0]

    def propose(self, k, base_len, base_pos):
        done = base_len - self.L + 1  # tokens decided so far (the current token included)
        out = []
        for j in range(k):
            self.calls += 1
            t = self.cont[done + j] if done + j < len(self.cont) else 0
            out.append((t + 1) % 500 if self.calls % self.wrong_every == 0 else t)
        return out

    def observe(self, hidden, next_tokens, positions):
        pass


@pytest.mark.parametrize("kind", ["dense", "moe"])
def test_rollback_after_partly_accepted_drafts(dense, moe, kind):
    model = dense if kind == "dense" else moe
    ids = _prompt(66, seed=12)
    plain = model.generate(input_ids=ids, max_new_tokens=40)
    cont = plain[0, 66:].tolist()
    res = model.generate(input_ids=ids, max_new_tokens=40, speculative=OracleDrafter(cont, 66, wrong_every=4),
                         num_draft_tokens=3, return_dict=True)
    assert res.sequences[0, 66:].tolist() == cont
    assert 0.3 < res.stats["acceptance_rate"] < 1.0  # both accepted and rejected drafts happened
    assert res.stats["verify_rounds"] < 40  # accepted drafts saved forwards


@pytest.mark.parametrize("kind", ["dense", "moe"])
def test_batch_of_different_lengths_equals_each_alone(dense, moe, kind):
    model = dense if kind == "dense" else moe
    a, b = _prompt(75, seed=21)[0], _prompt(20, seed=22)[0]
    ids = torch.stack([a, torch.cat([torch.zeros(55, dtype=torch.long), b])])
    mask = torch.ones_like(ids)
    mask[1, :55] = 0
    both = model.generate(input_ids=ids, attention_mask=mask, max_new_tokens=32)
    alone_a = model.generate(input_ids=a[None], max_new_tokens=32)
    alone_b = model.generate(input_ids=b[None], max_new_tokens=32)
    assert both[0, 75:].tolist() == alone_a[0, 75:].tolist()
    assert both[1, 75:].tolist() == alone_b[0, 20:].tolist()


def test_right_padding_is_refused(dense):
    ids = _prompt(10, seed=1).repeat(2, 1)
    mask = torch.ones_like(ids)
    mask[1, -3:] = 0
    with pytest.raises(ValueError, match="left-padded"):
        dense.generate(input_ids=ids, attention_mask=mask, max_new_tokens=4)


def test_sampling_is_seeded_and_top_k_1_is_greedy(dense):
    ids = _prompt(30, seed=31)
    greedy = dense.generate(input_ids=ids, max_new_tokens=20)
    s1 = dense.generate(input_ids=ids, max_new_tokens=20, temperature=1.5, top_p=0.95, seed=7)
    s2 = dense.generate(input_ids=ids, max_new_tokens=20, temperature=1.5, top_p=0.95, seed=7)
    s3 = dense.generate(input_ids=ids, max_new_tokens=20, temperature=1.5, top_p=0.95, seed=8)
    assert s1.tolist() == s2.tolist()
    assert s1.tolist() != s3.tolist() or s1.tolist() != greedy.tolist()
    top1 = dense.generate(input_ids=ids, max_new_tokens=20, do_sample=True, temperature=2.0, top_k=1, seed=3)
    assert top1.tolist() == greedy.tolist()
    with pytest.raises(ValueError, match="temperature"):
        dense.generate(input_ids=ids, max_new_tokens=2, do_sample=True, temperature=0.0)


def test_no_stop_token_runs_to_max_new_tokens_and_stop_ids_stop(dense):
    assert dense.config.eos_token_ids == []
    ids = _prompt(25, seed=41)
    full = dense.generate(input_ids=ids, max_new_tokens=24)
    assert full.shape[1] == 25 + 24
    stop = full[0, 25 + 6].item()
    first = full[0, 25:].tolist().index(stop)
    cut = dense.generate(input_ids=ids, max_new_tokens=24, stop_token_ids=[stop])
    assert cut[0, 25:].tolist() == full[0, 25 : 25 + first + 1].tolist()


def test_eos_from_generation_config_stops():
    ids = _prompt(25, seed=41)
    plain = load_model(tiny_checkpoint("dense"), with_vision=False).generate(input_ids=ids, max_new_tokens=24)
    eos = plain[0, 25 + 4].item()
    model = load_model(tiny_checkpoint("dense", eos_token_id=eos), with_vision=False)
    assert model.config.eos_token_ids == [eos]
    out = model.generate(input_ids=ids, max_new_tokens=24)
    assert out[0, -1].item() == eos and out.shape[1] <= 25 + 5


def test_stop_strings_and_streaming(dense):
    tok = dense.tokenizer
    ids = _prompt(25, seed=51)
    full = dense.generate(input_ids=ids, max_new_tokens=24)
    new = full[0, 25:].tolist()
    # a stop string that ends inside the text of the 8th new token
    text8 = tok.decode(new[:8], skip_special_tokens=False)
    stop = text8[-2:] if len(text8) >= 2 else text8
    assert stop and stop in text8
    first_hit = next(i for i in range(1, 25) if stop in tok.decode(new[:i], skip_special_tokens=False))
    streamed_ids, pieces = [], []
    out = dense.generate(
        input_ids=ids, max_new_tokens=24, stop_strings=[stop],
        on_token=lambda row, t: streamed_ids.extend(t), on_text=lambda row, s: pieces.append(s),
    )
    assert out[0, 25:].tolist() == new[:first_hit]
    assert streamed_ids == new[:first_hit]
    assert "".join(pieces) == tok.decode(new[:first_hit], skip_special_tokens=True)


def test_max_image_tokens_is_validated(dense):
    img = dense.config.image_token_id
    ids = torch.tensor([[dense.config.vision_start_token_id] + [img] * 16 + [dense.config.vision_end_token_id, 40]])
    with pytest.raises(ValueError, match="max_image_tokens=8"):
        dense.generate(input_ids=ids, max_new_tokens=2, max_image_tokens=8)


@pytest.mark.parametrize("kind", ["dense", "moe"])
def test_prefill_in_pieces_equals_whole_prompt(dense, moe, kind):
    model = dense if kind == "dense" else moe
    a, b = _prompt(100, seed=61)[0], _prompt(45, seed=62)[0]
    ids = torch.stack([a, torch.cat([torch.zeros(55, dtype=torch.long), b])])
    mask = torch.ones_like(ids)
    mask[1, :55] = 0
    whole = model.generate(input_ids=ids, attention_mask=mask, max_new_tokens=20, prefill_chunk_size=None)
    pieces = model.generate(input_ids=ids, attention_mask=mask, max_new_tokens=20, prefill_chunk_size=30)
    assert pieces.tolist() == whole.tolist()
    spec = model.generate(input_ids=a[None], max_new_tokens=20, speculative="mtp", prefill_chunk_size=30)
    assert spec[0, 100:].tolist() == whole[0, 100:].tolist()


@pytest.mark.parametrize("kind", ["dense", "moe"])
def test_static_decode_step_equals_the_eager_loop(dense, moe, kind, monkeypatch):
    """generate(cuda_graph=True) drives the CUDA-graph decoder's static-buffer step (run eagerly on
    CPU): same tokens as the eager loop, for a left-padded batch."""
    from vlagent.model import cuda_decode

    calls = []
    real_call = cuda_decode.CudaGraphDecoder.__call__
    monkeypatch.setattr(cuda_decode.CudaGraphDecoder, "__call__", lambda self, ids: calls.append(1) or real_call(self, ids))
    model = dense if kind == "dense" else moe
    ids = torch.cat([_prompt(40, seed=5), _prompt(40, seed=6)])
    mask = torch.ones_like(ids)
    mask[1, :9] = 0  # row 1 is left-padded
    eager = model.generate(input_ids=ids, attention_mask=mask, max_new_tokens=12, cuda_graph=False, return_dict=True)
    static = model.generate(input_ids=ids, attention_mask=mask, max_new_tokens=12, cuda_graph=True, return_dict=True)
    assert static.sequences.tolist() == eager.sequences.tolist()
    assert static.stats["cuda_graph"] is False and eager.stats["cuda_graph"] is False  # nothing captured on CPU
    assert len(calls) == 11  # every decode step after the first token went through the static step


def test_decoders_are_kept_across_calls_and_reset_for_each_prompt(dense):
    """generate keeps its static-step decoders (with their caches) per (batch, length bucket): a later
    call of similar length resets and reuses one, and decodes what the eager loop decodes. A prompt as
    long as the previous call's whole output stops where that call's buffers stopped, which must not
    let the stale rotary positions and slot through."""
    from vlagent.model.cuda_decode import decode_graphs, length_bucket

    graphs = decode_graphs(dense)
    graphs.clear()

    def both(ids: torch.Tensor, mask: torch.Tensor | None = None, n: int = 12):
        kw = dict(input_ids=ids, attention_mask=mask, max_new_tokens=n, stop_token_ids=[], return_dict=True)
        eager = dense.generate(**kw, cuda_graph=False)
        static = dense.generate(**kw, cuda_graph=True)
        assert static.sequences.tolist() == eager.sequences.tolist()
        return static.stats

    padded = torch.cat([_prompt(40, seed=1), _prompt(40, seed=2)])
    mask = torch.ones_like(padded)
    mask[1, :9] = 0  # row 1's positions run 9 behind its cache slots
    assert not both(padded, mask)["cuda_graph_reused"]
    kept = dict(graphs._kept)
    assert list(kept) == [(2, length_bucket(52))]
    # 40 + 11 tokens written: a 51-token prompt stops at the same slot, with other positions for row 1
    assert both(torch.cat([_prompt(51, seed=3), _prompt(51, seed=4)]))["cuda_graph_reused"]
    decoder = kept[(2, length_bucket(52))]
    assert decoder.positions.tolist() == [51 + 11] * 2 and decoder.write_index.tolist() == [51 + 11]
    assert both(torch.cat([_prompt(30, seed=5), _prompt(30, seed=6)]))["cuda_graph_reused"]
    assert dict(graphs._kept) == kept
    assert not both(_prompt(30, seed=7))["cuda_graph_reused"]  # batch 1
    assert not both(_prompt(300, seed=8))["cuda_graph_reused"]  # a longer bucket
    assert len(graphs) == 2 and (2, length_bucket(52)) not in graphs._kept  # least recently used dropped
    graphs.keep_up_to = 512
    assert not both(_prompt(600, seed=9))["cuda_graph_reused"]
    assert not both(_prompt(600, seed=10))["cuda_graph_reused"]  # a long prompt's cache is not kept
    graphs.keep_up_to = 32_768
    graphs.clear()
    assert len(graphs) == 0


def test_length_buckets():
    from vlagent.model.cuda_decode import length_bucket

    assert [length_bucket(n) for n in (1, 256, 257, 4096, 4097, 5000, 100_000)] == [
        256, 256, 512, 4096, 4608, 5120, 106_496]
    assert all(n <= length_bucket(n) <= n + max(256, n // 8) for n in range(1, 20_000, 37))
    with pytest.raises(ValueError):
        length_bucket(0)


def test_options_object_equals_keywords_and_unknown_keywords_are_refused(dense):
    from vlagent.model import GenerationOptions, generate

    ids = _prompt(12, 9)
    options = GenerationOptions(max_new_tokens=5, stop_token_ids=[], do_sample=True, seed=3, top_k=4)
    by_keywords = dense.generate(ids, max_new_tokens=5, stop_token_ids=[], do_sample=True, seed=3, top_k=4)
    assert torch.equal(generate(dense, ids, options=options), by_keywords)
    # a keyword overrides the options object, which is left as it was
    shorter = generate(dense, ids, options=options, max_new_tokens=2, return_dict=True)
    assert shorter.sequences.shape == (1, 14) and options.max_new_tokens == 5
    assert torch.equal(shorter.sequences, by_keywords[:, :14])
    with pytest.raises(TypeError, match="min_new_tokens"):
        dense.generate(ids, max_new_tokens=2, min_new_tokens=2)
    dense.generate(ids, max_new_tokens=1, mm_token_type_ids=torch.zeros_like(ids))  # transformers' input, ignored


def test_decode_time_leaves_out_the_cuda_graph_capture():
    """A CUDA graph's warm-up runs and capture happen once per generate call, in its first decode step:
    reported as graph_capture_s, not counted in decode_s or decode_tokens_per_s."""
    from vlagent.model.generate import _timing_stats

    plain = _timing_stats([[1, 2, 3, 4, 5]], t_prefill=1.0, t_total=3.0)
    captured = _timing_stats([[1, 2, 3, 4, 5]], t_prefill=1.0, t_total=3.0, capture_s=1.0)
    assert plain["decode_s"] == 2.0 and plain["decode_tokens_per_s"] == 2.0
    assert captured["decode_s"] == 1.0 and captured["decode_tokens_per_s"] == 4.0
