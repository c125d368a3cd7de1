"""One decode step of the engine captured in a CUDA graph and replayed per token.

A CUDA graph replays fixed kernels on fixed addresses, so the step reads everything that changes from
token to token out of static device buffers instead of Python values:

- `token_ids` [B]: the ids fed this step (written by the caller before each replay);
- `positions` [B]: each row's rotary position (cache.next_pos), advanced by 1 inside the graph;
- `write_index` [1]: the cache slot written this step (cache.length), advanced by 1 inside the graph.

Attention writes its key/value at `write_index` with index_copy_ and attends over the whole
preallocated KV buffer with a mask (key_valid & slot <= write_index): the engine's own Attention
slices the cache at the Python int cache.length, which a replay could not move. DeltaNet layers,
norms, MoE and the LM head run through the model's own modules (their T == 1 paths update the conv
and recurrent states in place and launch without host synchronisation on the Triton backend).

    decoder = CudaGraphDecoder(model, cache)      # after the prefill filled `cache`
    logits = decoder(next_ids)                    # [B, vocab]; cache.length / cache.next_pos advanced
    next_ids = sampler(logits)                    # read logits before the next call (static buffer)

capture=False runs the very same static step eagerly on any device (tests, debugging).

`generate` keeps its decoders across calls (DecodeGraphs, one per model): a capture costs warm-up runs
plus the capture itself, more than an agent step's ~30 tokens take to decode, so a later call with the
same batch size whose prompt and new tokens fit the same length bucket resets that decoder's cache and
replays the graph it already has.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict

import torch
import torch.nn.functional as F
from torch import Tensor

from vlagent import kernels as K
from vlagent.kernels import CapturedStep

from .qwen35 import Attention, Cache, Qwen35ForConditionalGeneration


def attention_at(attn: Attention, x: Tensor, cos: Tensor, sin: Tensor, cache: Cache, write_index: Tensor,
                 key_mask: Tensor) -> Tensor:
    """Attention.forward for one token [B, 1, H], with the cache slot taken from a device tensor.

    Same projections, norms, rotary and output gate as Attention.forward (tests check they agree);
    key_mask [B, 1, 1, max_len] selects the keys to attend to.
    """
    B, T, _ = x.shape
    proj = F.linear(x, attn.qkv_proj, attn.qkv_bias)
    qg = proj[..., : attn.q_size].view(B, T, attn.nh, 2 * attn.hd)
    q, gate = qg[..., : attn.hd], qg[..., attn.hd :]
    k = proj[..., attn.q_size : attn.q_size + attn.kv_size].view(B, T, attn.nkv, attn.hd)
    v = proj[..., attn.q_size + attn.kv_size :].view(B, T, attn.nkv, attn.hd)
    q = K.rms_norm(q, attn.q_norm, attn.eps, zero_centered=True, backend=attn.backend)
    k = K.rms_norm(k, attn.k_norm, attn.eps, zero_centered=True, backend=attn.backend)
    q, k = K.apply_rotary(q, k, cos.to(q.dtype), sin.to(q.dtype), backend=attn.backend)
    k_cache, v_cache = cache.kv[attn.cache_index]
    k_cache.index_copy_(2, write_index, k.transpose(1, 2))
    v_cache.index_copy_(2, write_index, v.transpose(1, 2))
    # One token: the query heads sharing a key/value head are that head's queries ([B, nkv, nh/nkv, hd]),
    # so the masked attention has equal head counts and a memory-efficient kernel takes it (with
    # enable_gqa and a mask, PyTorch falls back to its math path: the whole cache in fp32, every layer)
    q = q.reshape(B, attn.nkv, attn.nh // attn.nkv, attn.hd)  # T == 1
    out = F.scaled_dot_product_attention(q, k_cache, v_cache, attn_mask=key_mask, scale=attn.hd**-0.5)
    out = out.reshape(B, T, attn.nh * attn.hd)
    out = out * torch.sigmoid(gate.reshape(B, T, attn.nh * attn.hd))
    return F.linear(out, attn.o_proj, attn.o_bias)


class CudaGraphDecoder:
    """Decode steps of `model` over the preallocated `cache`, captured once in a CUDA graph.

    The cache must be the one the prefill filled (its tensors are the graph's addresses; Cache never
    reallocates them). Captured on the first call; each call feeds next_ids [B], replays, and returns
    the static logits buffer [B, vocab]. Rows that finished keep decoding (their output is ignored),
    exactly like the eager loop.
    """

    def __init__(self, model: Qwen35ForConditionalGeneration, cache: Cache, *, capture: bool = True,
                 warmup: int = 2, pool=None) -> None:
        device = model.device
        if capture and device.type != "cuda":
            raise ValueError(
                f"CudaGraphDecoder captures CUDA graphs; the model is on {device}. "
                "Use the eager decode loop on CPU (or capture=False to run the static step eagerly)."
            )
        if cache.key_valid is None or cache.next_pos is None or cache.key_valid.device != device:
            raise ValueError("cache must be an allocated Cache on the model's device (model.new_cache)")
        if cache.keep_per_token_states:
            raise ValueError("a speculative verify is in progress on this cache (keep_per_token_states)")
        if capture and model.config.text.is_moe and K.resolve_backend(model.backend, cache.key_valid) != "triton":
            # the PyTorch MoE groups tokens with a host-side count per expert, which a capture cannot hold
            raise ValueError("capturing an MoE model needs the Triton kernels (backend='auto' or 'triton')")
        self.model, self.cache = model, cache
        self.batch, self.max_len = cache.batch, cache.max_len
        self.token_ids = torch.zeros(self.batch, dtype=torch.long, device=device)
        self.positions = torch.zeros(self.batch, dtype=torch.long, device=device)
        self.write_index = torch.zeros(1, dtype=torch.long, device=device)
        self.slots = torch.arange(self.max_len, device=device)
        self.capture, self.warmup, self.pool = capture, warmup, pool
        self._graph: CapturedStep | None = None
        self.capture_s = 0.0  # seconds the warm-up runs and the capture took (the first call)
        self._synced_length: int | None = None

    # -- the step (captured as is) --------------------------------------------------------

    def step(self, token_ids: Tensor, positions: Tensor, write_index: Tensor, *cache_state: Tensor) -> Tensor:
        """The decode step over the static buffers -> logits [B, vocab]. `cache_state` is unused here; it
        is passed so CapturedStep restores those tensors after its warm-up runs."""
        model, cache = self.model, self.cache
        B = self.batch
        x = F.embedding(token_ids[:, None], model.embed_tokens)  # [B, 1, H]
        cos, sin = model.rotary(positions.view(1, B, 1).expand(3, B, 1))
        cache.key_valid.index_fill_(1, write_index, True)
        key_mask = (cache.key_valid & (self.slots <= write_index))[:, None, None, :]
        for layer in model.layers:
            h = layer.input_norm(x)
            if layer.kind == "linear_attention":
                h = layer.mixer(h, cache, None)  # T == 1: conv update + fused decode step, in place
            else:
                h = attention_at(layer.mixer, h, cos, sin, cache, write_index, key_mask)
            x = x + h
            x = x + layer.mlp(layer.post_norm(x))
        logits = model.logits(model.norm(x)[:, -1])
        positions.add_(1)
        write_index.add_(1)
        return logits

    @property
    def captured(self) -> bool:
        return self._graph is not None

    def restart(self) -> None:
        """The cache was reset and prefilled again: read positions and slot from it on the next call."""
        self._synced_length = None

    def _state_tensors(self) -> list[Tensor]:
        c = self.cache
        return [c.key_valid, *c.conv.values(), *c.rec.values()]

    # -- driving it -------------------------------------------------------------------------

    def __call__(self, next_ids: Tensor) -> Tensor:
        """Feed next_ids [B] at slot cache.length / position cache.next_pos; returns logits [B, vocab]
        (the same tensor every call when captured). Advances cache.length and cache.next_pos."""
        cache = self.cache
        if tuple(next_ids.shape) != (self.batch,):
            raise ValueError(f"next_ids must be [{self.batch}]; got {tuple(next_ids.shape)}")
        if cache.length >= self.max_len:
            raise ValueError(f"cache holds {self.max_len} tokens; cannot decode past it")
        if self._synced_length != cache.length:  # first call, a reset cache, or the cache moved outside the graph
            self.positions.copy_(cache.next_pos)
            self.write_index.fill_(cache.length)
        self.token_ids.copy_(next_ids)
        args = (self.token_ids, self.positions, self.write_index, *self._state_tensors())
        if not self.capture:
            logits = self.step(*args)
        else:
            if self._graph is None:
                if cache.length + self.warmup > self.max_len:  # each warm-up run writes the next slot
                    raise ValueError(f"capturing the decode step needs {self.warmup} free cache slots (its warm-up "
                                     f"runs); the cache holds {self.max_len} and {cache.length} are taken")
                start = time.perf_counter()
                self._graph = CapturedStep(self.step, *args, warmup=self.warmup, pool=self.pool)
                if cache.key_valid.is_cuda:
                    torch.cuda.synchronize(cache.key_valid.device)
                self.capture_s = time.perf_counter() - start
            logits = self._graph()
        cache.length += 1
        cache.next_pos = self.positions.clone()
        self._synced_length = cache.length
        return logits


def length_bucket(n: int) -> int:
    """The cache length a decoder for n tokens is built with: n rounded up to a multiple of 256, or of
    an eighth of n's power of two above 4096 tokens, so prompts of similar length share one decoder and
    the masked attention over the whole cache reads at most ~1/8 more slots than needed."""
    if n < 1:
        raise ValueError(f"a cache holds at least 1 token; got {n}")
    step = max(256, 1 << max(n.bit_length() - 4, 0))
    return -(-n // step) * step


class DecodeGraphs:
    """A model's CUDA-graph decoders, kept across generate calls, keyed by (batch, length bucket).

    Each decoder owns the Cache its graph was captured over. `checkout` hands out a decoder whose cache
    holds at least `min_len` tokens, reset for a new prompt (`reused` says whether its graph, if any,
    is already captured), and `release` takes it back. Up to `capacity` decoders are kept (least
    recently used dropped first), each holding its cache's memory until dropped or `clear()`ed; caches
    longer than `keep_up_to` tokens (a long video's prompt: its prefill dwarfs a capture) are not kept. A
    decoder is never handed out twice at once: a concurrent call gets a fresh one, not kept. The kept
    decoders are dropped when the model's parameters move (model.to), its backend or dtype changes.
    """

    def __init__(self, model: Qwen35ForConditionalGeneration, capacity: int = 2, keep_up_to: int = 32_768) -> None:
        if capacity < 0:
            raise ValueError(f"capacity must be >= 0; got {capacity}")
        self.model, self.capacity, self.keep_up_to = model, capacity, keep_up_to
        self._kept: OrderedDict[tuple[int, int], CudaGraphDecoder] = OrderedDict()
        self._busy: set[int] = set()
        self._identity: tuple | None = None
        self._lock = threading.Lock()

    def _model_identity(self) -> tuple:
        m = self.model
        return (m.backend, m.dtype, str(m.device), tuple(p.data_ptr() for p in m.parameters()))

    def checkout(self, batch: int, min_len: int, capture: bool) -> tuple[CudaGraphDecoder, bool]:
        """(decoder, reused): a decoder over a reset cache of at least min_len slots for `batch` rows.
        `capture` applies to a new decoder (a kept one was made on the same device, so alike)."""
        key = (batch, length_bucket(min_len))
        with self._lock:
            identity = self._model_identity()
            if identity != self._identity:
                self._kept.clear()
                self._identity = identity
            decoder = self._kept.get(key)
            if decoder is not None and id(decoder) not in self._busy:
                self._kept.move_to_end(key)
                self._busy.add(id(decoder))
                _reset(decoder.cache)
                decoder.restart()
                return decoder, True
        decoder = CudaGraphDecoder(self.model, self.model.new_cache(batch, key[1]), capture=capture)
        with self._lock:
            self._busy.add(id(decoder))
        return decoder, False

    def release(self, decoder: CudaGraphDecoder) -> None:
        """Take back a checked-out decoder (kept for reuse when there is room)."""
        with self._lock:
            self._busy.discard(id(decoder))
            key = (decoder.batch, decoder.max_len)
            if self.capacity == 0 or decoder.max_len > self.keep_up_to or self._kept.get(key, decoder) is not decoder:
                return  # another decoder of that bucket was kept meanwhile (a concurrent call)
            self._kept[key] = decoder
            self._kept.move_to_end(key)
            while len(self._kept) > self.capacity:
                self._kept.popitem(last=False)

    def clear(self) -> None:
        """Drop every kept decoder and its cache (frees their memory once no call holds them)."""
        with self._lock:
            self._kept.clear()

    def __len__(self) -> int:
        return len(self._kept)


def _reset(cache: Cache) -> None:
    """An empty cache, its tensors kept in place (the graph's addresses). The keys and values are left:
    key_valid masks them, and a PromptCache may still copy the previous prompt's prefix out of them."""
    cache.key_valid.zero_()
    for t in (*cache.conv.values(), *cache.rec.values()):
        t.zero_()
    cache.next_pos.zero_()
    cache.length = 0
    cache.pending.clear()
    cache.keep_per_token_states = False
    cache.resets += 1


def decode_graphs(model: Qwen35ForConditionalGeneration) -> DecodeGraphs:
    """The model's DecodeGraphs (made on first use)."""
    graphs = getattr(model, "_decode_graphs", None)
    if graphs is None:
        graphs = DecodeGraphs(model)
        model._decode_graphs = graphs
    return graphs
