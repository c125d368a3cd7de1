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
"""

from __future__ import annotations

import time

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
        if self._synced_length != cache.length:  # first call, or the cache moved outside the graph
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
