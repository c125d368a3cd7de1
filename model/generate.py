"""Generation for the Qwen3.5 engine: prefill, then a short decode loop over preallocated caches.

`generate(model, input_ids, ...)` returns, like transformers' `generate`, the prompt followed
by the new tokens: LongTensor [B, L + n]; rows that stopped early are filled with the pad id.
With `return_dict=True` it returns a `GenerationResult` (sequences, per-row new tokens,
stats). Stats (prefill/decode seconds, tokens/s, MTP acceptance, the CUDA graph's capture seconds,
which decode time leaves out) are also left on
`model.generation_stats`.

The steps, each a function: the options (`GenerationOptions`, also accepted keyword by keyword)
and the prompt are checked, `prefill` runs the prompt into a preallocated cache (in pieces,
restoring what a prompt cache already holds), `decode_n_tokens` is the decode loop, and the
result is assembled from the per-row tokens the stopper kept.

Speculative decoding (`speculative="mtp"`, batch 1, greedy): the MTP head drafts
`num_draft_tokens` tokens, the main model checks them in one forward, the longest prefix
that matches its own greedy choice is kept plus its next token. DeltaNet layers keep their
state after every verified token so the cache rolls back exactly to the accepted prefix;
the output is the same as plain greedy decoding.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, fields, replace

import torch
import torch.nn.functional as F
from torch import Tensor

from .cuda_decode import decode_graphs
from .prompt_cache import PromptCache
from .qwen35 import Cache, Qwen35ForConditionalGeneration


@dataclass
class GenerationResult:
    sequences: Tensor  # [B, L + n]: prompt + new tokens (pad after a row stopped)
    new_tokens: list[list[int]]  # per row, the generated ids (a final stop token included)
    stats: dict = field(default_factory=dict)


class _Sampler:
    """Greedy, or temperature / top-k / top-p sampling with an optional seeded generator."""

    def __init__(self, do_sample: bool, temperature: float, top_k: int | None, top_p: float | None,
                 generator: torch.Generator | None):
        if do_sample and temperature <= 0:
            raise ValueError(f"temperature must be > 0 when sampling; got {temperature}")
        if top_k is not None and top_k < 1:
            raise ValueError(f"top_k must be >= 1; got {top_k}")
        if top_p is not None and not 0 < top_p <= 1:
            raise ValueError(f"top_p must be in (0, 1]; got {top_p}")
        self.do_sample, self.temperature, self.top_k, self.top_p = do_sample, temperature, top_k, top_p
        self.generator = generator

    def __call__(self, logits: Tensor) -> Tensor:
        """logits [B, V] -> token ids [B]."""
        logits = logits.float()
        if not self.do_sample:
            return logits.argmax(-1)
        logits = logits / self.temperature
        if self.top_k is not None and self.top_k < logits.shape[-1]:
            kth = torch.topk(logits, self.top_k, dim=-1).values[..., -1:]
            logits = logits.masked_fill(logits < kth, float("-inf"))
        if self.top_p is not None and self.top_p < 1.0:
            sorted_logits, order = logits.sort(dim=-1, descending=True)
            probs = sorted_logits.softmax(-1)
            # drop a token when the tokens ranked above it already reach top_p (the top one always stays)
            drop = probs.cumsum(-1) - probs >= self.top_p
            sorted_logits = sorted_logits.masked_fill(drop, float("-inf"))
            logits = torch.full_like(logits, float("-inf")).scatter(-1, order, sorted_logits)
        probs = logits.softmax(-1)
        # drawn on the generator's device (a CPU one by default: the same draws on every device)
        where = self.generator.device if self.generator is not None else torch.device("cpu")
        return torch.multinomial(probs.to(where), 1, generator=self.generator).squeeze(-1).to(logits.device)


class _Stopper:
    """Per-row stop tokens, stop strings and streaming of ids / text pieces."""

    def __init__(self, batch: int, stop_ids: set[int], stop_strings: Sequence[str], tokenizer,
                 on_token: Callable[[int, list[int]], None] | None, on_text: Callable[[int, str], None] | None):
        self.stop_ids, self.stop_strings, self.tok = stop_ids, list(stop_strings), tokenizer
        self.on_token, self.on_text = on_token, on_text
        self.new: list[list[int]] = [[] for _ in range(batch)]
        self.done = [False] * batch
        self.text_sent = [""] * batch

    def push(self, row: int, ids: list[int]) -> None:
        """Append this step's ids for a row (stops at the first stop condition)."""
        if self.done[row]:
            return
        kept = []
        for t in ids:
            kept.append(t)
            self.new[row].append(t)
            if t in self.stop_ids:
                self.done[row] = True
                break
            if self.stop_strings and self._hit_stop_string(row):
                self.done[row] = True
                break
        if self.on_token is not None and kept:
            self.on_token(row, kept)
        if self.on_text is not None and kept:
            text = self.tok.decode(self.new[row], skip_special_tokens=True)
            if not self.done[row] and text.endswith("\ufffd"):  # incomplete UTF-8: wait for more bytes
                return
            piece = text[len(self.text_sent[row]):]
            if piece:
                self.text_sent[row] = text
                self.on_text(row, piece)

    def _hit_stop_string(self, row: int) -> bool:
        # only the tail can complete a new match; decode a window long enough for every stop string
        window = self.new[row][-(max(len(s) for s in self.stop_strings) + 8):]
        tail = self.tok.decode(window, skip_special_tokens=False)
        return any(s in tail for s in self.stop_strings)

    def cap(self, row: int, limit: int) -> None:
        if len(self.new[row]) >= limit:
            del self.new[row][limit:]
            self.done[row] = True


@dataclass
class GenerationOptions:
    """How `generate` decodes; every field is also a keyword argument of `generate`.

    Sampling: greedy by default; sampling when do_sample=True or any of temperature/top_k/top_p
    is given (seed or generator makes it reproducible).
    Stopping: a row stops at a stop token (default: the checkpoint's eos ids from
    generation_config.json / config; an empty list runs to max_new_tokens) or when its text
    contains one of `stop_strings` (needs a tokenizer; the model's own is used when loaded from
    a folder). on_token(row, ids) / on_text(row, piece) stream results; rows that stopped early
    are filled with `pad_token_id` (default: the config's, else the smallest stop id, else 0).
    speculative="mtp": the MTP head drafts `num_draft_tokens` tokens (batch 1, greedy); any
    object with MTPDrafter's start/propose/observe methods can stand in for it.
    max_image_tokens: refuse prompts holding more image tokens.
    prefill_chunk_size: long prompts (video) are run in pieces of this many tokens (None: at once).
    cuda_graph: None replays the decode step as a CUDA graph on CUDA with the Triton backend
    (model/cuda_decode.py); True forces that static-buffer step (captured on CUDA, run eagerly
    elsewhere, which is how CPU tests check it); False always uses the eager loop. Captured decoders
    are kept for later calls of similar length (cuda_decode.DecodeGraphs: two, each holding its
    cache's memory); `decode_graphs(model).clear()` frees them.
    prompt_cache: a PromptCache (model/prompt_cache.py) shared by the calls of one conversation
    (batch 1, no padding, not with speculative): screenshots seen before are not encoded again
    and prefill restarts from the last message boundary shared with the previous prompt.
    return_dict: return a GenerationResult instead of the sequences.
    """

    max_new_tokens: int = 32
    do_sample: bool | None = None
    temperature: float | None = None
    top_k: int | None = None
    top_p: float | None = None
    seed: int | None = None
    generator: torch.Generator | None = None
    stop_token_ids: Sequence[int] | None = None
    stop_strings: Sequence[str] | str | None = None
    tokenizer: object | None = None
    on_token: Callable[[int, list[int]], None] | None = None
    on_text: Callable[[int, str], None] | None = None
    speculative: str | object | None = None
    num_draft_tokens: int = 2
    max_image_tokens: int | None = None
    prefill_chunk_size: int | None = 4096
    pad_token_id: int | None = None
    cuda_graph: bool | None = None
    prompt_cache: PromptCache | None = None
    return_dict: bool = False

    @classmethod
    def from_keywords(cls, options: "GenerationOptions | None", keywords: dict) -> "GenerationOptions":
        """`options` (or the defaults) with `keywords` applied; unknown names are a TypeError."""
        keywords = dict(keywords)
        keywords.pop("mm_token_type_ids", None)  # transformers needs it; derived from input_ids here
        unknown = sorted(set(keywords) - {f.name for f in fields(cls)})
        if unknown:
            raise TypeError(f"generate() got unexpected arguments: {unknown}")
        return replace(options or cls(), **keywords)


@dataclass
class _Prompt:
    """The validated inputs of one call: ids [B, L] and mask on the model's device, and the media."""

    input_ids: Tensor
    attention_mask: Tensor | None  # None when nothing is padded
    pixel_values: Tensor | None
    image_grid_thw: Tensor | None
    pixel_values_videos: Tensor | None
    video_grid_thw: Tensor | None


def _check_left_padded(mask: Tensor) -> None:
    m = mask.bool()
    # once a row has a real token, every later one must be real
    if bool((m[:, :-1] & ~m[:, 1:]).any()):
        raise ValueError("attention_mask must be left-padded (zeros only before the first real token)")
    if not bool(m[:, -1].all()):
        raise ValueError("every row needs at least one real token at the end (left padding)")


def _count_image_tokens(model, input_ids: Tensor, image_grid_thw: Tensor | None) -> int:
    n_ids = int((input_ids == model.config.image_token_id).sum())
    if image_grid_thw is None:
        return n_ids
    merge = model.config.vision.spatial_merge_size
    return max(n_ids, int((image_grid_thw.prod(-1) // merge**2).sum()))


@torch.inference_mode()
def generate(
    model: Qwen35ForConditionalGeneration,
    input_ids: Tensor,
    attention_mask: Tensor | None = None,
    pixel_values: Tensor | None = None,
    image_grid_thw: Tensor | None = None,
    pixel_values_videos: Tensor | None = None,
    video_grid_thw: Tensor | None = None,
    *,
    options: GenerationOptions | None = None,
    **keywords,
) -> Tensor | GenerationResult:
    """Generate up to `max_new_tokens` tokens after each (left-padded) prompt.

    The options are a GenerationOptions, given whole (`options=`) or field by field as keywords
    (`max_new_tokens=8, stop_token_ids=[]`; keywords override `options`). Returns prompt + new
    tokens [B, L + n] (transformers' convention), or a GenerationResult with return_dict=True.
    """
    opts = GenerationOptions.from_keywords(options, keywords)
    if opts.max_new_tokens < 1:
        raise ValueError(f"max_new_tokens must be >= 1; got {opts.max_new_tokens}")
    prompt = _prepare_prompt(model, input_ids, attention_mask, pixel_values, image_grid_thw, pixel_values_videos,
                             video_grid_thw, opts.max_image_tokens)
    B, L = prompt.input_ids.shape
    sampler = _sampler_for(opts)
    stopper, pad_token_id = _stopper_for(model, B, opts)
    _check_decoding_mode(model, prompt, opts, sampler.do_sample)

    t0 = time.perf_counter()
    graphs = decode_graphs(model) if _wants_static_decoder(model, opts) else None
    graph, reused = graphs.checkout(B, L + opts.max_new_tokens, model.device.type == "cuda") if graphs is not None else (None, False)
    try:
        margin = opts.num_draft_tokens + 1 if opts.speculative else 0
        cache = graph.cache if graph is not None else model.new_cache(B, L + opts.max_new_tokens + margin)
        hidden, positions, stats = prefill(model, prompt, cache, opts.prefill_chunk_size, opts.prompt_cache,
                                           keep_all_hidden=opts.speculative is not None)
        next_ids = sampler(model.logits(hidden[:, -1]))
        if next_ids.is_cuda:  # greedy sampling does not wait for the GPU: the prefill's time would leak into decode's
            torch.cuda.synchronize(next_ids.device)
        t_prefill = time.perf_counter() - t0
        if opts.speculative:
            drafter = MTPDrafter(model, cache.max_len) if opts.speculative == "mtp" else opts.speculative
            _speculative_loop(model, drafter, prompt.input_ids, hidden, positions, next_ids, cache, stopper,
                              opts.max_new_tokens, opts.num_draft_tokens, stats)
        else:
            captured_before = graph is not None and graph.captured
            stats["cuda_graph"] = graph is not None and graph.capture
            stats["cuda_graph_reused"] = reused
            decode_n_tokens(model, cache, next_ids, sampler, stopper, opts.max_new_tokens, graph)
            stats["graph_capture_s"] = graph.capture_s if graph is not None and not captured_before else 0.0
    finally:
        if graph is not None:
            graphs.release(graph)
    t_total = time.perf_counter() - t0
    stats.update(_timing_stats(stopper.new, t_prefill, t_total, stats.get("graph_capture_s", 0.0)))
    model.generation_stats = stats
    out = _sequences(prompt.input_ids, stopper.new, pad_token_id)
    if opts.return_dict:
        return GenerationResult(sequences=out, new_tokens=stopper.new, stats=stats)
    return out


def _prepare_prompt(model, input_ids: Tensor, attention_mask: Tensor | None, pixel_values: Tensor | None,
                    image_grid_thw: Tensor | None, pixel_values_videos: Tensor | None,
                    video_grid_thw: Tensor | None, max_image_tokens: int | None) -> _Prompt:
    """Ids as [B, L] on the model's device; a left-padded mask (dropped when nothing is padded);
    the image-token cap checked."""
    device = model.device
    input_ids = input_ids.to(device)
    if input_ids.dim() == 1:
        input_ids = input_ids[None]
    if attention_mask is not None:
        attention_mask = attention_mask.to(device)
        if attention_mask.shape != input_ids.shape:
            raise ValueError(f"attention_mask {tuple(attention_mask.shape)} must match input_ids {tuple(input_ids.shape)}")
        _check_left_padded(attention_mask)
        if bool(attention_mask.bool().all()):
            attention_mask = None
    if max_image_tokens is not None:
        n_img = _count_image_tokens(model, input_ids, image_grid_thw)
        if n_img > max_image_tokens:
            raise ValueError(
                f"the prompt holds {n_img} image tokens, more than max_image_tokens={max_image_tokens}; "
                "downscale the image (the processor's max_pixels) or raise the cap"
            )
    return _Prompt(input_ids, attention_mask, pixel_values, image_grid_thw, pixel_values_videos, video_grid_thw)


def _sampler_for(opts: GenerationOptions) -> _Sampler:
    do_sample = opts.do_sample
    if do_sample is None:
        do_sample = opts.temperature is not None or opts.top_k is not None or opts.top_p is not None
    generator = opts.generator
    if generator is None and opts.seed is not None:
        generator = torch.Generator().manual_seed(opts.seed)
    temperature = 1.0 if opts.temperature is None else opts.temperature
    return _Sampler(do_sample, temperature, opts.top_k, opts.top_p, generator)


def _stopper_for(model, batch: int, opts: GenerationOptions) -> tuple[_Stopper, int]:
    """The per-row stop conditions, and the id that fills rows which stopped early."""
    stop_strings = [opts.stop_strings] if isinstance(opts.stop_strings, str) else opts.stop_strings
    stop_strings = [s for s in (stop_strings or []) if s]
    tokenizer = opts.tokenizer
    if (stop_strings or opts.on_text is not None) and tokenizer is None:
        tokenizer = model.tokenizer
    stop_ids = set(model.config.eos_token_ids if opts.stop_token_ids is None else opts.stop_token_ids)
    pad_token_id = opts.pad_token_id
    if pad_token_id is None:
        pad_token_id = model.config.text.pad_token_id
        if pad_token_id is None:
            pad_token_id = min(stop_ids) if stop_ids else 0
    return _Stopper(batch, stop_ids, stop_strings, tokenizer, opts.on_token, opts.on_text), pad_token_id


def _check_decoding_mode(model, prompt: _Prompt, opts: GenerationOptions, do_sample: bool) -> None:
    """Speculative decoding, the prompt cache and chunked prefill: what each combination allows."""
    batch = prompt.input_ids.shape[0]
    speculative = opts.speculative
    if isinstance(speculative, str) and speculative != "mtp":
        raise ValueError(f"speculative must be None, 'mtp' or a drafter object; got {speculative!r}")
    if speculative is not None:
        if batch != 1:
            raise ValueError("speculative='mtp' decodes one prompt at a time (batch size 1)")
        if do_sample:
            raise ValueError("speculative='mtp' is greedy only (sampling would need rejection sampling)")
        if opts.num_draft_tokens < 1:
            raise ValueError(f"num_draft_tokens must be >= 1; got {opts.num_draft_tokens}")
        if speculative == "mtp" and model.mtp is None:
            raise RuntimeError("speculative='mtp' needs a checkpoint with mtp.* tensors")
    if opts.prompt_cache is not None:
        if batch != 1 or prompt.attention_mask is not None:
            raise ValueError("prompt_cache serves one conversation: one prompt (batch 1) without padding")
        if speculative is not None:
            raise ValueError("prompt_cache cannot be combined with speculative decoding (the MTP head needs "
                             "the hidden state of every prompt position)")
    if opts.prefill_chunk_size is not None and opts.prefill_chunk_size < 1:
        raise ValueError(f"prefill_chunk_size must be >= 1; got {opts.prefill_chunk_size}")


def prefill(model: Qwen35ForConditionalGeneration, prompt: _Prompt, cache: Cache, chunk_size: int | None,
            prompt_cache: PromptCache | None = None, keep_all_hidden: bool = False) -> tuple[Tensor, Tensor, dict]:
    """Run the prompt into `cache`: (final hidden states, M-RoPE positions [3, B, L], stats).

    The hidden states are the last position's [B, 1, H], or every position's with
    keep_all_hidden (the MTP drafter reads them). With a prompt cache, the part of the prompt it
    already holds is restored instead of computed."""
    input_ids, mask = prompt.input_ids, prompt.attention_mask
    B, L = input_ids.shape
    positions = model.position_ids(input_ids, mask, prompt.image_grid_thw, prompt.video_grid_thw)
    start, snapshot_at = 0, set()
    if prompt_cache is None:
        x = model.embed(input_ids, prompt.pixel_values, prompt.image_grid_thw, prompt.pixel_values_videos,
                        prompt.video_grid_thw)
    else:
        plan = prompt_cache.plan(model, input_ids, prompt.pixel_values, prompt.image_grid_thw,
                                 prompt.pixel_values_videos is not None, cache)
        prompt_cache.restore(plan, cache)
        x = model.embed(input_ids[:, plan.start:], None, None, prompt.pixel_values_videos, prompt.video_grid_thw,
                        image_embeds=plan.image_embeds)
        prompt_cache.start_recording(plan, input_ids, cache)
        start, snapshot_at = plan.start, set(plan.boundaries)
    piece_len = L if chunk_size is None else chunk_size
    # long prompts in pieces (activation memory bounded by the piece), also cut where the prompt
    # cache keeps a snapshot
    cuts = sorted(set(range(start + piece_len, L, piece_len)) | snapshot_at | {L})
    pieces, s = [], start
    for e in cuts:
        piece_mask = None if mask is None else mask[:, s:e]
        h = model.decode_hidden(x[:, s - start : e - start], positions[:, :, s:e], cache, piece_mask)
        pieces.append(h if keep_all_hidden else h[:, -1:])
        if e in snapshot_at:
            prompt_cache.snapshot(cache)
        s = e
    hidden = pieces[0] if len(pieces) == 1 else torch.cat(pieces, dim=1)
    stats: dict = {"prompt_tokens": L, "batch": B}
    if prompt_cache is not None:
        stats.update(prompt_cache.last_stats)
    return hidden, positions, stats


def decode_n_tokens(model: Qwen35ForConditionalGeneration, cache: Cache, next_ids: Tensor, sampler: _Sampler,
                    stopper: _Stopper, max_new_tokens: int, graph=None) -> None:
    """The decode loop: hand each chosen token to the stopper, then run it to choose the next,
    until every row has stopped or `max_new_tokens` are chosen. `graph`: the static decode step
    (model/cuda_decode.py) or None for the eager forward."""
    B = next_ids.shape[0]
    for step in range(max_new_tokens):
        ids = next_ids.tolist()
        for b in range(B):
            stopper.push(b, [ids[b]])
        if all(stopper.done) or step == max_new_tokens - 1:
            break
        if graph is not None:
            logits = graph(next_ids)  # a static buffer: sampled before the next replay
        else:
            x = F.embedding(next_ids[:, None], model.embed_tokens)
            logits = model.logits(model.decode_hidden(x, cache.next_pos.view(1, B, 1).expand(3, B, 1), cache)[:, -1])
        next_ids = sampler(logits)


def _sequences(input_ids: Tensor, new: list[list[int]], pad_token_id: int) -> Tensor:
    """Prompt + new tokens [B, L + n], rows that stopped early padded."""
    B, L = input_ids.shape
    out = torch.full((B, L + max(len(r) for r in new)), pad_token_id, dtype=torch.long, device=input_ids.device)
    out[:, :L] = input_ids
    for b, row in enumerate(new):
        out[b, L : L + len(row)] = torch.tensor(row, dtype=torch.long, device=input_ids.device)
    return out


def _timing_stats(new: list[list[int]], t_prefill: float, t_total: float, capture_s: float = 0.0) -> dict:
    """prefill_s, decode_s (the decode loop, less the CUDA graph's warm-up and capture, which
    graph_capture_s reports), new_tokens per row and decode_tokens_per_s."""
    n_new = max(len(r) for r in new)
    decode_s = t_total - t_prefill - capture_s
    return dict(
        prefill_s=t_prefill,
        decode_s=decode_s,
        new_tokens=[len(r) for r in new],
        decode_tokens_per_s=(max(n_new - 1, 0) / decode_s) if decode_s > 0 else float("nan"),
    )


def _wants_static_decoder(model: Qwen35ForConditionalGeneration, opts: GenerationOptions) -> bool:
    """Whether this call decodes through the CUDA-graph step (model/cuda_decode.py)."""
    if opts.speculative:
        return False
    cuda_graph = opts.cuda_graph
    if cuda_graph is None:
        cuda_graph = model.device.type == "cuda" and model.backend != "torch"
    return bool(cuda_graph) and opts.max_new_tokens > 2  # capturing costs more than it saves for 1-2 steps


class MTPDrafter:
    """Drafts tokens with the checkpoint's MTP head.

    MTP at position t reads the main model's final hidden state at t and token t+1, and
    predicts token t+2; further drafts chain it on its own output. Its KV cache holds one
    slot per verified position (drafted slots are overwritten by the next catch-up)."""

    def __init__(self, model: Qwen35ForConditionalGeneration, max_len: int):
        self.model = model
        self.cache = model.new_mtp_cache(1, max_len)
        self.out: Tensor | None = None  # MTP hidden at the newest verified position [1, 1, H]

    def start(self, hidden: Tensor, input_ids: Tensor, positions: Tensor, first: Tensor) -> None:
        shifted = torch.cat([input_ids[:, 1:], first.view(1, 1)], dim=1)
        self.out = self.model.mtp_hidden(hidden, shifted, positions, self.cache)[:, -1:]

    def propose(self, k: int, base_len: int, base_pos: Tensor) -> list[int]:
        m = self.model
        drafts = [m.logits(self.out[:, -1]).argmax(-1)]
        out = self.out
        for j in range(1, k):
            pos = (base_pos + j - 1).view(1, 1, 1).expand(3, 1, 1)
            out = m.mtp_hidden(out, drafts[-1].view(1, 1), pos, self.cache)
            drafts.append(m.logits(out[:, -1]).argmax(-1))
        self.cache.length = base_len
        return [int(d) for d in drafts]

    def observe(self, hidden: Tensor, next_tokens: Tensor, positions: Tensor) -> None:
        """Catch up on verified positions: main hidden at t [1, n, H] + token t+1 [1, n]."""
        self.out = self.model.mtp_hidden(hidden, next_tokens, positions, self.cache)[:, -1:]


def _speculative_loop(model, drafter, input_ids, hidden, positions, first: Tensor, cache: Cache,
                      stopper: _Stopper, max_new_tokens: int, k: int, stats: dict) -> None:
    """Draft k tokens -> one verify forward -> keep the matching prefix + the model's next token."""
    drafter.start(hidden, input_ids, positions, first)
    cur = int(first)  # chosen by the main model, not yet in its cache
    drafted = accepted = rounds = 0
    while True:
        stopper.push(0, [cur])
        stopper.cap(0, max_new_tokens)
        if stopper.done[0]:
            break
        base_len, base_pos = cache.length, cache.next_pos.clone()  # [1]
        drafts = drafter.propose(k, base_len, base_pos)

        # verify [cur, d1..dk] in one forward, keeping per-token DeltaNet states
        tokens = torch.tensor([[cur, *drafts]], dtype=torch.long, device=model.device)
        pos = (base_pos + torch.arange(k + 1, device=tokens.device)).view(1, 1, -1).expand(3, 1, -1)
        cache.keep_per_token_states = True
        try:
            h = model.decode_hidden(F.embedding(tokens, model.embed_tokens), pos, cache)
        finally:
            cache.keep_per_token_states = False
        preds = model.logits(h[0]).argmax(-1).tolist()  # main model's choice after each token
        n = 0
        while n < k and drafts[n] == preds[n]:
            n += 1
        drafted += k
        accepted += n
        rounds += 1

        # roll back to cur + the n accepted drafts
        cache.commit(n + 1)
        cache.length = base_len + n + 1
        cache.next_pos = base_pos + n + 1
        stopper.push(0, drafts[:n])
        stopper.cap(0, max_new_tokens)
        if stopper.done[0]:
            break
        cur = preds[n]
        next_tokens = torch.tensor([drafts[:n] + [cur]], dtype=torch.long, device=model.device)
        drafter.observe(h[:, : n + 1], next_tokens, pos[:, :, : n + 1])

    stats.update(
        speculative="mtp" if isinstance(drafter, MTPDrafter) else type(drafter).__name__,
        num_draft_tokens=k,
        drafted_tokens=drafted,
        accepted_tokens=accepted,
        verify_rounds=rounds,
        acceptance_rate=(accepted / drafted) if drafted else 0.0,
    )
