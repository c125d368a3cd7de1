"""The engine in bfloat16 against transformers' Qwen3.5 on the same weights, dense and MoE.

bf16 is the engine's default dtype on CPUs that compute in it natively (and the only one the C
kernels take), so the whole model is compared here, not just each kernel. bf16 rounds: neither
implementation equals the exact result, so the yardstick is transformers' own bf16 error. Against
the float32 reference, the engine's bf16 logits must be about as close as transformers' bf16 logits
are: after a prefill (short, and longer than the DeltaNet chunk of 64) and at every step of a
generation (the decode path: caches, one-token kernels).

Greedy tokens: on the tiny random checkpoints the next-token logits are nearly flat (a random
model has no favourite), so bf16 rounding flips the top token for transformers itself against its
own float32 run. A trained model is confident; `confident_checkpoint` makes the tiny checkpoints so
(each token gets a likely successor, with a margin many times the bf16 error), and there the
engine's greedy tokens must equal transformers' (bf16 and float32) over a generation, on several
prompts.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch

from tiny_checkpoints import tiny_checkpoint
from vlagent.model import load_model

import transformers  # noqa: E402  (the reference: a missing or broken install fails, never skips)

KINDS = ["dense", "moe"]
# The engine's bf16 error (against float32) may be this many times transformers' bf16 error,
# in mean and in max over the logits. Measured here: 0.7x to 1.3x in mean, up to 2.3x in max.
MEAN_RATIO, MAX_RATIO = 1.6, 3.0


@pytest.fixture(autouse=True, scope="module")
def _single_thread():
    """Tiny models: one intra-op thread is much faster than two on a shared 2-core machine."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def _reference_class(kind: str):
    return transformers.Qwen3_5ForConditionalGeneration if kind == "dense" else transformers.Qwen3_5MoeForConditionalGeneration


def _models(folder: Path, kind: str):
    """(engine in bf16, transformers in bf16, transformers in float32), all on the weights in `folder`."""
    engine = load_model(folder, dtype=torch.bfloat16, with_vision=False)
    ref16 = _reference_class(kind).from_pretrained(folder, dtype=torch.bfloat16).eval()
    ref32 = _reference_class(kind).from_pretrained(folder, dtype=torch.float32).eval()
    return engine, ref16, ref32


@pytest.fixture(scope="module", params=KINDS)
def models(request):
    kind = request.param
    return (kind, *_models(tiny_checkpoint(kind), kind))


def _prompt(batch: int, length: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randint(11, 560, (batch, length), generator=g)


def _errors(logits: torch.Tensor, exact: torch.Tensor) -> tuple[float, float]:
    d = (logits.float() - exact.float()).abs()
    return d.mean().item(), d.max().item()


def _assert_as_close_as_transformers(ours: torch.Tensor, theirs: torch.Tensor, exact: torch.Tensor, what: str) -> None:
    assert ours.shape == theirs.shape == exact.shape
    assert torch.isfinite(ours).all()
    (our_mean, our_max), (their_mean, their_max) = _errors(ours, exact), _errors(theirs, exact)
    slack = 1e-3 * exact.abs().max().item()
    report = (f"{what}: engine bf16 vs float32 mean {our_mean:.3g} max {our_max:.3g}; "
              f"transformers bf16 vs float32 mean {their_mean:.3g} max {their_max:.3g}")
    assert our_mean <= MEAN_RATIO * their_mean + slack, report
    assert our_max <= MAX_RATIO * their_max + slack, report


def test_the_engine_really_runs_in_bf16(models):
    kind, engine, ref16, _ = models
    assert engine.dtype == torch.bfloat16
    assert {p.dtype for p in engine.parameters() if p.is_floating_point()} == {torch.bfloat16}
    assert next(ref16.parameters()).dtype == torch.bfloat16


@pytest.mark.parametrize("length", [7, 100])
def test_bf16_logits_as_close_as_transformers_bf16(models, length):
    kind, engine, ref16, ref32 = models
    ids = _prompt(2, length, seed=length)
    with torch.no_grad():
        ours = engine(input_ids=ids).logits
        theirs, exact = ref16(input_ids=ids).logits, ref32(input_ids=ids).logits
    _assert_as_close_as_transformers(ours, theirs, exact, f"{kind} prefill of {length}")
    # and the two bf16 runs agree with each other within their two errors
    assert _errors(ours, theirs)[0] <= 2 * MEAN_RATIO * _errors(theirs, exact)[0] + 1e-3 * exact.abs().max().item()


def test_bf16_decode_steps_as_close_as_transformers_bf16(models, monkeypatch):
    """Every step of a bf16 generation (prefill's last position, then one-token decode steps with
    their caches) against transformers' bf16 and float32 forward passes over the generated sequence."""
    kind, engine, ref16, ref32 = models
    prompt, n = _prompt(1, 70, seed=3), 12
    steps: list[torch.Tensor] = []
    logits = engine.logits
    monkeypatch.setattr(engine, "logits", lambda hidden: steps.append(logits(hidden)) or steps[-1])
    out = engine.generate(input_ids=prompt, max_new_tokens=n)
    assert out.shape == (1, 70 + n) and len(steps) >= n - 1
    ours = torch.cat([s[:, None] if s.dim() == 2 else s for s in steps[: n - 1]], dim=1)
    with torch.no_grad():
        positions = slice(69, 69 + ours.shape[1])
        theirs = ref16(input_ids=out).logits[:, positions]
        exact = ref32(input_ids=out).logits[:, positions]
    _assert_as_close_as_transformers(ours, theirs, exact, f"{kind} decode steps")
    assert ours.argmax(-1).tolist()[0] == out[0, 70 : 70 + ours.shape[1]].tolist()  # the steps chose these tokens


# --------------------------------------------------------------------------- greedy tokens


def confident_checkpoint(kind: str, folder: Path, *, seed: int = 7, embed_scale: float = 12.0,
                         successor_weight: float = 2.5) -> tuple[Path, torch.Tensor]:
    """A copy of the tiny `kind` checkpoint (untied embeddings) made confident like a trained model:
    the token embeddings are scaled up and each token's normalized embedding is added to the output
    row of one successor token (a random permutation), so the next token has a clear favourite.
    Every layer still runs and adds to the residual stream. Returns (folder, successor of each id)."""
    from safetensors.torch import load_file, save_file

    shutil.copytree(tiny_checkpoint(kind, tie_word_embeddings=False), folder)
    tensors = load_file(folder / "model.safetensors")
    embed = tensors["model.language_model.embed_tokens.weight"]
    successor = torch.randperm(embed.shape[0], generator=torch.Generator().manual_seed(seed))
    head = tensors["lm_head.weight"].clone()
    head[successor] += successor_weight * embed / embed.norm(dim=1, keepdim=True)
    tensors["model.language_model.embed_tokens.weight"] = (embed * embed_scale).contiguous()
    tensors["lm_head.weight"] = head.contiguous()
    save_file(tensors, folder / "model.safetensors", metadata={"format": "pt"})
    return folder, successor


@pytest.mark.parametrize("kind", KINDS)
def test_bf16_greedy_tokens_equal_transformers(kind, tmp_path):
    folder, successor = confident_checkpoint(kind, tmp_path / kind)
    engine, ref16, ref32 = _models(folder, kind)
    followed = 0
    for seed in range(5):
        prompt = _prompt(1, 40, seed=100 + seed)
        ours = engine.generate(input_ids=prompt, max_new_tokens=16)[0, 40:].tolist()
        theirs = ref16.generate(input_ids=prompt, max_new_tokens=16, min_new_tokens=16, do_sample=False)[0, 40:].tolist()
        exact = ref32.generate(input_ids=prompt, max_new_tokens=16, min_new_tokens=16, do_sample=False)[0, 40:].tolist()
        assert ours == theirs == exact, f"{kind} prompt {seed}"
        chain = [prompt[0, -1].item(), *ours]
        followed += sum(successor[a].item() == b for a, b in zip(chain, chain[1:]))
    # the generations are the model's favourites, not a constant or a loop
    assert followed >= 0.9 * 5 * 16
    # and their margins are what makes equality a fair demand: far above transformers' bf16 error
    ids = _prompt(2, 70, seed=1)
    with torch.no_grad():
        exact_logits, bf16_logits = ref32(input_ids=ids).logits, ref16(input_ids=ids).logits.float()
    top2 = exact_logits.topk(2, dim=-1).values
    assert (top2[..., 0] - top2[..., 1]).min() > 3 * _errors(bf16_logits, exact_logits)[1]
