"""M-RoPE positions for Qwen3.5: three position ids (time, row, column) per token.

Text tokens advance all three ids together. A run of visual tokens (one image, or
one temporal patch of a video: Qwen3.5 writes "<t seconds><|vision_start|>…pads…
<|vision_end|>" per temporal patch, so every video run is a single frame group)
starts at the current position p: token (r, c) of its merged grid gets
(p, p + r, p + c); the text after it continues at p + max(rows, cols).

`rope_deltas` is max(position) + 1 - (number of real tokens): decoding step k
after a prompt of length L uses position L + k + delta on all three axes.
"""

from __future__ import annotations

import torch
from torch import Tensor

from .config import ModelConfig


def _vision_grids(grid_thw: Tensor | None, *, split_time: bool) -> list[tuple[int, int, int]]:
    if grid_thw is None:
        return []
    grids = [tuple(int(v) for v in row) for row in grid_thw.tolist()]
    if split_time:  # each temporal patch of a video is its own run, framed by its timestamp
        grids = [(1, h, w) for t, h, w in grids for _ in range(t)]
    return grids


def _runs(token_type: list[int]) -> list[tuple[int, int, int]]:
    """(type, start, stop) of maximal runs of equal token types."""
    runs = []
    start = 0
    for i in range(1, len(token_type) + 1):
        if i == len(token_type) or token_type[i] != token_type[start]:
            runs.append((token_type[start], start, i))
            start = i
    return runs


def get_rope_index(
    input_ids: Tensor,
    image_grid_thw: Tensor | None = None,
    video_grid_thw: Tensor | None = None,
    attention_mask: Tensor | None = None,
    *,
    config: ModelConfig,
) -> tuple[Tensor, Tensor]:
    """(position_ids LongTensor[3, B, L], rope_deltas LongTensor[B, 1]) for a padded batch.

    Padding (attention_mask == 0) gets position 0 and is skipped when counting.
    Images and videos are consumed in order across the whole batch, as the processor
    lays them out.
    """
    if input_ids.ndim != 2:
        raise ValueError(f"input_ids must be [batch, length], got {tuple(input_ids.shape)}")
    merge = config.vision.spatial_merge_size
    device = input_ids.device
    batch, length = input_ids.shape
    position_ids = torch.zeros(3, batch, length, dtype=torch.long, device=device)
    deltas = []
    queues = {
        1: _vision_grids(image_grid_thw, split_time=False),
        2: _vision_grids(video_grid_thw, split_time=True),
    }
    used = {1: 0, 2: 0}
    names = {1: "image", 2: "video"}

    ids_cpu = input_ids.cpu()
    mask_cpu = attention_mask.bool().cpu() if attention_mask is not None else None
    for b in range(batch):
        ids = ids_cpu[b] if mask_cpu is None else ids_cpu[b][mask_cpu[b]]
        token_type = torch.zeros_like(ids)
        token_type[ids == config.image_token_id] = 1
        token_type[ids == config.video_token_id] = 2

        pieces: list[Tensor] = []
        pos = 0
        for kind, start, stop in _runs(token_type.tolist()):
            if kind == 0:
                pieces.append(torch.arange(pos, pos + stop - start).expand(3, -1))
                pos += stop - start
                continue
            remaining = stop - start
            while remaining > 0:  # a run may hold several adjacent images
                if used[kind] >= len(queues[kind]):
                    raise ValueError(f"more {names[kind]} placeholder tokens than {names[kind]} grids were given")
                t, h, w = queues[kind][used[kind]]
                used[kind] += 1
                gt, gh, gw = t, h // merge, w // merge
                if gt * gh * gw > remaining:
                    raise ValueError(
                        f"{names[kind]} grid ({t}, {h}, {w}) needs {gt * gh * gw} placeholder tokens "
                        f"but its run has only {remaining} left"
                    )
                tt = torch.arange(gt).view(-1, 1, 1).expand(gt, gh, gw).reshape(-1)
                hh = torch.arange(gh).view(1, -1, 1).expand(gt, gh, gw).reshape(-1)
                ww = torch.arange(gw).view(1, 1, -1).expand(gt, gh, gw).reshape(-1)
                pieces.append(torch.stack([tt, hh, ww]) + pos)
                pos += max(gh, gw)
                remaining -= gt * gh * gw
        positions = torch.cat(pieces, dim=1) if pieces else torch.zeros(3, 0, dtype=torch.long)
        if mask_cpu is None:
            position_ids[:, b] = positions.to(device)
        else:
            position_ids[:, b, mask_cpu[b].to(device)] = positions.to(device)
        top = int(positions.max()) + 1 if positions.numel() else 0
        deltas.append(top - len(ids))

    for kind in (1, 2):
        if used[kind] != len(queues[kind]):
            raise ValueError(
                f"{len(queues[kind])} {names[kind]} grids given but only {used[kind]} found placeholder tokens"
            )
    return position_ids, torch.tensor(deltas, dtype=torch.long, device=device).view(batch, 1)


__all__ = ["get_rope_index"]
