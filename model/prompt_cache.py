"""Reuse work between consecutive prompts of one conversation (the agent's screenshot -> act loop).

Each agent step sends a prompt that starts like the previous one (system prompt with the tool
description, the task) and repeats screenshots the model has already seen (the history window).
A `PromptCache` passed to `generate(..., prompt_cache=pc)` keeps, from the previous call:

- the vision tower's features of recent images, keyed by a hash of their pixels and grid, so a
  screenshot is encoded once however many steps show it;
- the decoder state at message boundaries (positions of `boundary_token_ids`, e.g. Qwen's
  `<|im_start|>`, and the prompt's end): attention layers' keys/values for the prefix and the
  DeltaNet conv and recurrent states there. A new prompt restarts from the last boundary inside
  the part it shares with the previous prompt (same tokens, same image pixels), so only the rest
  is prefilled.

A hybrid model cannot cut a DeltaNet state at an arbitrary token, which is why states are kept at
boundaries only. The result equals a fresh prefill up to floating-point rounding (the prompt is
prefilled in different pieces); tests/test_prompt_cache.py checks logits and greedy tokens.
One conversation, batch 1, no padding; not combined with speculative decoding (the MTP head
needs the hidden state of every prompt position).
"""
from __future__ import annotations

import hashlib
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass

import torch
from torch import Tensor

from .qwen35 import Cache


@dataclass
class _Snapshot:
    length: int  # prompt tokens covered
    next_pos: Tensor  # [1] rotary position after them
    conv: dict[int, Tensor]
    rec: dict[int, Tensor]


@dataclass
class _ImageSpan:
    start: int  # first placeholder token
    end: int  # one past the last
    key: str  # hash of pixels + grid
    rows: slice  # its rows in pixel_values
    grid: tuple[int, int, int]  # (t, h, w)


@dataclass
class PrefillPlan:
    """What generate() runs for one prompt: tokens from `start` on, with these image features."""

    start: int
    image_embeds: Tensor | None  # features of the images after `start`, in order (None: no images)
    boundaries: list[int]  # positions after `start` where a snapshot is taken (ascending, may end at L)
    spans: list[_ImageSpan]


class PromptCache:
    """Vision features of recent images + decoder snapshots at message boundaries (see module doc).

    boundary_token_ids: token ids that start a message (snapshots are taken just before them);
    max_images: how many images' features to keep (least recently used dropped first).
    `last_stats` reports the previous call: reused_tokens, prefilled_tokens, image_hits,
    image_misses.
    """

    def __init__(self, boundary_token_ids: Iterable[int] = (), max_images: int = 8):
        if max_images < 0:
            raise ValueError(f"max_images must be >= 0; got {max_images}")
        self.boundary_token_ids = frozenset(int(t) for t in boundary_token_ids)
        self.max_images = max_images
        self._features: OrderedDict[str, Tensor] = OrderedDict()
        self._ids: Tensor | None = None  # the previous prompt [L] (CPU)
        self._spans: list[_ImageSpan] = []
        self._cache: Cache | None = None  # the previous call's decoder cache (keys/values of its prefix)
        self._cache_resets = 0  # its `resets` when this prompt was recorded into it
        self._snapshots: list[_Snapshot] = []
        self._model_id: int | None = None
        self.last_stats: dict[str, int] = {}

    def clear(self) -> None:
        """Forget everything (e.g. a new conversation with unrelated prompts, or to free memory)."""
        self._features.clear()
        self._ids, self._spans, self._cache, self._snapshots = None, [], None, []

    # -- planning --------------------------------------------------------------------------

    def plan(self, model, input_ids: Tensor, pixel_values: Tensor | None, image_grid_thw: Tensor | None,
             has_video: bool, cache: Cache | None = None) -> PrefillPlan:
        """Decide where prefill starts and gather image features (encoding only unseen images).
        `cache`: the one this prompt is prefilled into (it may be the previous call's, reset)."""
        if input_ids.shape[0] != 1:
            raise ValueError("prompt_cache serves one conversation: batch size 1")
        if self._model_id is not None and self._model_id != id(model):
            self.clear()  # another model's features and states mean nothing here
        self._model_id = id(model)
        ids = input_ids[0].cpu()
        L = ids.shape[0]
        spans = _image_spans(model, ids, pixel_values, image_grid_thw)
        start = 0 if has_video or not self._prefix_intact(cache) else self._reusable_start(ids, spans)

        needed = [s for s in spans if s.start >= start]
        hits = sum(1 for s in needed if s.key in self._features)
        misses = [s for s in needed if s.key not in self._features]
        if misses:
            rows = torch.cat([torch.arange(s.rows.start, s.rows.stop) for s in misses])
            grids = torch.tensor([s.grid for s in misses], dtype=torch.long)
            feats = model.visual(pixel_values[rows.to(pixel_values.device)].to(model.device, model.dtype),
                                 grids.to(model.device)).to(model.dtype)
            offset = 0
            for s in misses:
                n = s.end - s.start
                self._remember(s.key, feats[offset : offset + n])
                offset += n
        for s in needed:
            self._features.move_to_end(s.key)
        embeds = torch.cat([self._features[s.key] for s in needed]) if needed else None
        self._trim()

        boundaries = [int(p) for p in range(start + 1, L) if int(ids[p]) in self.boundary_token_ids]
        boundaries.append(L)
        self.last_stats = dict(reused_tokens=start, prefilled_tokens=L - start, image_hits=hits,
                               image_misses=len(misses))
        return PrefillPlan(start=start, image_embeds=embeds, boundaries=boundaries, spans=spans)

    def _prefix_intact(self, target: Cache | None) -> bool:
        """Whether the previous call's cache still holds that prompt's keys and values. generate reuses
        caches (cuda_decode.DecodeGraphs): one reset for another prompt no longer does, unless it is the
        very cache this prompt is about to be prefilled into, reset once for it (resetting keeps them)."""
        prev = self._cache
        if prev is None or prev.resets == self._cache_resets:
            return True
        return prev is target and prev.resets == self._cache_resets + 1

    def _reusable_start(self, ids: Tensor, spans: list[_ImageSpan]) -> int:
        """The last snapshot inside the prefix shared with the previous prompt (0: none)."""
        if self._ids is None or not self._snapshots:
            return 0
        prev = self._ids
        n = min(prev.shape[0], ids.shape[0])
        differs = (prev[:n] != ids[:n]).nonzero()
        common = int(differs[0]) if differs.numel() else n
        # an image placeholder run only matches when the pixels behind it match too
        prev_keys = {(s.start, s.end): s.key for s in self._spans}
        for s in spans:
            if s.start < common and prev_keys.get((s.start, s.end)) != s.key:
                common = s.start
                break
        usable = [snap.length for snap in self._snapshots if snap.length <= common and snap.length < ids.shape[0]]
        return max(usable, default=0)

    def _remember(self, key: str, feats: Tensor) -> None:
        if self.max_images:
            self._features[key] = feats

    def _trim(self) -> None:
        while len(self._features) > self.max_images:
            self._features.popitem(last=False)

    # -- decoder state ---------------------------------------------------------------------

    def restore(self, plan: PrefillPlan, cache: Cache) -> None:
        """Put the previous prompt's state at `plan.start` into a fresh `cache`."""
        if plan.start == 0:
            return
        snap = next(s for s in self._snapshots if s.length == plan.start)
        prev = self._cache
        for i, (k, v) in cache.kv.items():
            k[:, :, : plan.start].copy_(prev.kv[i][0][:, :, : plan.start])
            v[:, :, : plan.start].copy_(prev.kv[i][1][:, :, : plan.start])
        for i in cache.conv:
            cache.conv[i].copy_(snap.conv[i])
            cache.rec[i].copy_(snap.rec[i])
        cache.key_valid[:, : plan.start] = True
        cache.length = plan.start
        cache.next_pos = snap.next_pos.clone()

    def start_recording(self, plan: PrefillPlan, ids: Tensor, cache: Cache) -> None:
        """Begin a new prompt: keep the snapshots it can still use, forget the rest."""
        self._snapshots = [s for s in self._snapshots if s.length <= plan.start]
        self._ids = ids[0].cpu().clone()
        self._spans = plan.spans
        self._cache, self._cache_resets = cache, cache.resets

    def snapshot(self, cache: Cache) -> None:
        """Record the DeltaNet states after `cache.length` prompt tokens (called at each boundary)."""
        self._snapshots.append(_Snapshot(
            length=cache.length, next_pos=cache.next_pos.clone(),
            conv={i: t.clone() for i, t in cache.conv.items()},
            rec={i: t.clone() for i, t in cache.rec.items()},
        ))


def _image_spans(model, ids: Tensor, pixel_values: Tensor | None, image_grid_thw: Tensor | None) -> list[_ImageSpan]:
    """Each image's placeholder run in `ids`, its pixel rows and a content key."""
    if pixel_values is None or image_grid_thw is None:
        return []
    merge = model.config.vision.spatial_merge_size
    grids = image_grid_thw.cpu().tolist()
    positions = (ids == model.config.image_token_id).nonzero().flatten().tolist()
    spans, cursor, row = [], 0, 0
    pixels = pixel_values.detach()
    for t, h, w in grids:
        n_tokens, n_rows = t * h * w // merge**2, t * h * w
        run = positions[cursor : cursor + n_tokens]
        if len(run) != n_tokens or run[-1] - run[0] != n_tokens - 1:
            raise ValueError(
                f"image placeholders do not match image_grid_thw {grids}: expected a run of {n_tokens} "
                "<image pad> tokens per image"
            )
        block = pixels[row : row + n_rows].contiguous().cpu()
        digest = hashlib.blake2b(block.numpy().tobytes() if block.dtype != torch.bfloat16
                                 else block.view(torch.int16).numpy().tobytes(), digest_size=16)
        digest.update(f"{t}x{h}x{w}/{block.dtype}".encode())
        spans.append(_ImageSpan(start=run[0], end=run[-1] + 1, key=digest.hexdigest(),
                                rows=slice(row, row + n_rows), grid=(t, h, w)))
        cursor += n_tokens
        row += n_rows
    if cursor != len(positions):
        raise ValueError(f"{len(positions)} <image pad> tokens in input_ids but image_grid_thw {grids} "
                         f"accounts for {cursor}")
    return spans


__all__ = ["PromptCache", "PrefillPlan"]
