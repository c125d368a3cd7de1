"""Qwen3.5 vision tower: pixels of images and video frames -> LM-width visual tokens.

Input is the processor's flat patch layout: one row per 16×16 (×2 frames) patch,
ordered frame by frame, and inside a frame by 2×2 merge block (block row, block
column, then the four patches of the block). Every per-patch quantity below (the
interpolated learned position, the 2-D rotary angle) is produced in that same
block order, so the final 2×2 merge is a plain reshape of consecutive rows.

Path: 3-D patch embedding -> + learned position table resampled (bilinear,
align_corners) to the image grid -> ViT blocks (LayerNorm, attention with 2-D
rotary restricted to one frame, GELU-tanh MLP) -> merger (LayerNorm, 2×2 concat,
MLP) into the language model's hidden size.

Parameter names equal Hugging Face's `model.visual.*` with the prefix stripped.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from vlagent import kernels as K

from .config import VisionConfig


def _check_grid(pixel_values: Tensor, grid_thw: Tensor, cfg: VisionConfig) -> list[tuple[int, int, int]]:
    if pixel_values.ndim != 2 or pixel_values.shape[1] != cfg.patch_dim:
        raise ValueError(
            f"pixel_values must be [n_patches, {cfg.patch_dim}] (C*T*P*P), got {tuple(pixel_values.shape)}"
        )
    if grid_thw.ndim != 2 or grid_thw.shape[1] != 3:
        raise ValueError(f"grid_thw must be [n_images, 3] (t, h, w), got {tuple(grid_thw.shape)}")
    grids = [tuple(int(v) for v in row) for row in grid_thw.tolist()]
    m = cfg.spatial_merge_size
    for t, h, w in grids:
        if t < 1 or h < 1 or w < 1 or h % m or w % m:
            raise ValueError(f"grid (t={t}, h={h}, w={w}) is invalid: sides must be positive multiples of {m}")
    total = sum(t * h * w for t, h, w in grids)
    if total != pixel_values.shape[0]:
        raise ValueError(f"grid_thw describes {total} patches but pixel_values has {pixel_values.shape[0]} rows")
    return grids


def block_order_coords(h: int, w: int, merge: int, device: torch.device | None = None) -> tuple[Tensor, Tensor]:
    """(row, col) of every patch of an h×w grid, listed in merge-block order."""
    rows = torch.arange(h, device=device).view(h // merge, merge, 1, 1).expand(-1, -1, w // merge, merge)
    cols = torch.arange(w, device=device).view(1, 1, w // merge, merge).expand(h // merge, merge, -1, -1)
    # (block_row, in_row, block_col, in_col) -> (block_row, block_col, in_row, in_col)
    return rows.permute(0, 2, 1, 3).reshape(-1), cols.permute(0, 2, 1, 3).reshape(-1)


def _axis_taps(index: Tensor, size: int, side: int) -> tuple[Tensor, Tensor, Tensor]:
    """Two bilinear taps (align_corners=True) on a `side`-long table for `index` in [0, size)."""
    src = index.to(torch.float32) * (side - 1) / max(size - 1, 1)
    lo = src.floor()
    frac = src - lo
    lo = lo.long().clamp(0, side - 1)
    hi = (lo + 1).clamp(max=side - 1)
    return lo, hi, frac


class PatchEmbed(nn.Module):
    """Conv3d with stride == kernel over (T, P, P) patches, i.e. one matmul per patch row."""

    def __init__(self, cfg: VisionConfig):
        super().__init__()
        k = (cfg.temporal_patch_size, cfg.patch_size, cfg.patch_size)
        self.proj = nn.Conv3d(cfg.in_channels, cfg.hidden_size, kernel_size=k, stride=k, bias=True)

    def forward(self, x: Tensor) -> Tensor:
        w = self.proj.weight
        return F.linear(x.to(w.dtype), w.view(w.shape[0], -1), self.proj.bias)


class VisionAttention(nn.Module):
    def __init__(self, cfg: VisionConfig):
        super().__init__()
        self.num_heads = cfg.num_heads
        self.head_dim = cfg.head_dim
        self.qkv = nn.Linear(cfg.hidden_size, 3 * cfg.hidden_size, bias=True)
        self.proj = nn.Linear(cfg.hidden_size, cfg.hidden_size, bias=True)

    def forward(self, x: Tensor, cos: Tensor, sin: Tensor, segments: list[tuple[int, int]]) -> Tensor:
        """`segments`: (count, length) runs; attention stays inside each run's
        consecutive `length`-row pieces (one piece = one image or one video frame)."""
        n = x.shape[0]
        qkv = self.qkv(x).view(n, 3, self.num_heads, self.head_dim)
        # rotary in fp32, rounded once, written back over q and k: the attention op takes strided
        # [count, heads, length, dim] views of qkv and writes token-major rows, so nothing is transposed
        K.rotate_half_(qkv[:, :2], cos, sin)
        out = torch.empty(n, self.num_heads, self.head_dim, dtype=x.dtype, device=x.device)
        start = 0
        for count, length in segments:
            stop = start + count * length

            def batch(t: Tensor) -> Tensor:  # [rows, heads, dim] -> [count, heads, length, dim]
                return t[start:stop].view(count, length, self.num_heads, self.head_dim).transpose(1, 2)

            K.attention(batch(qkv[:, 0]), batch(qkv[:, 1]), batch(qkv[:, 2]), out=batch(out))
            start = stop
        return self.proj(out.view(n, -1))


class VisionMLP(nn.Module):
    def __init__(self, cfg: VisionConfig):
        super().__init__()
        if cfg.hidden_act not in ("gelu_pytorch_tanh", "gelu"):
            raise ValueError(f"unsupported vision hidden_act {cfg.hidden_act!r}")
        self.approximate = "tanh" if cfg.hidden_act == "gelu_pytorch_tanh" else "none"
        self.linear_fc1 = nn.Linear(cfg.hidden_size, cfg.intermediate_size, bias=True)
        self.linear_fc2 = nn.Linear(cfg.intermediate_size, cfg.hidden_size, bias=True)

    def forward(self, x: Tensor) -> Tensor:
        hidden = K.linear_gelu(x, self.linear_fc1.weight, self.linear_fc1.bias, self.approximate)
        return self.linear_fc2(hidden)


class VisionBlock(nn.Module):
    def __init__(self, cfg: VisionConfig):
        super().__init__()
        self.norm1 = nn.LayerNorm(cfg.hidden_size, eps=1e-6)
        self.norm2 = nn.LayerNorm(cfg.hidden_size, eps=1e-6)
        self.attn = VisionAttention(cfg)
        self.mlp = VisionMLP(cfg)

    def forward(self, x: Tensor, cos: Tensor, sin: Tensor, segments: list[tuple[int, int]]) -> Tensor:
        x = x + self.attn(self.norm1(x), cos, sin, segments)
        return x + self.mlp(self.norm2(x))


class PatchMerger(nn.Module):
    """LayerNorm per patch, concat each 2×2 block (consecutive rows), 2-layer MLP."""

    def __init__(self, cfg: VisionConfig):
        super().__init__()
        self.merged_size = cfg.hidden_size * cfg.spatial_merge_size**2
        self.norm = nn.LayerNorm(cfg.hidden_size, eps=1e-6)
        self.linear_fc1 = nn.Linear(self.merged_size, self.merged_size, bias=True)
        self.linear_fc2 = nn.Linear(self.merged_size, cfg.out_hidden_size, bias=True)

    def forward(self, x: Tensor) -> Tensor:
        x = self.norm(x).view(-1, self.merged_size)
        return self.linear_fc2(K.linear_gelu(x, self.linear_fc1.weight, self.linear_fc1.bias))


class VisionTower(nn.Module):
    def __init__(self, cfg: VisionConfig):
        super().__init__()
        if cfg.deepstack_visual_indexes:
            raise ValueError("deepstack visual features (Qwen3-VL) are not part of Qwen3.5's vision tower")
        side = math.isqrt(cfg.num_position_embeddings)
        if side * side != cfg.num_position_embeddings:
            raise ValueError(f"num_position_embeddings ({cfg.num_position_embeddings}) must be a perfect square")
        if cfg.head_dim % 4:
            raise ValueError(f"vision head_dim ({cfg.head_dim}) must be a multiple of 4 for 2-D rotary")
        self.cfg = cfg
        self.side = side
        self.patch_embed = PatchEmbed(cfg)
        self.pos_embed = nn.Embedding(cfg.num_position_embeddings, cfg.hidden_size)
        self.blocks = nn.ModuleList(VisionBlock(cfg) for _ in range(cfg.depth))
        self.merger = PatchMerger(cfg)
        quarter = cfg.head_dim // 4  # frequencies per axis
        inv_freq = 1.0 / cfg.rope_theta ** (torch.arange(0, 2 * quarter, 2, dtype=torch.float32) / (2 * quarter))
        self.register_buffer("inv_freq", inv_freq, persistent=False)

    @property
    def spatial_merge_size(self) -> int:
        return self.cfg.spatial_merge_size

    def position_embedding(self, grids: list[tuple[int, int, int]], device: torch.device) -> Tensor:
        """Learned side×side table bilinearly resampled to each (h, w) grid, block order, fp32."""
        table = self.pos_embed.weight.float()
        pieces = []
        for t, h, w in grids:
            rows, cols = block_order_coords(h, w, self.cfg.spatial_merge_size, device)
            r0, r1, fr = _axis_taps(rows, h, self.side)
            c0, c1, fc = _axis_taps(cols, w, self.side)
            s = self.side
            emb = (
                table[r0 * s + c0] * ((1 - fr) * (1 - fc))[:, None]
                + table[r0 * s + c1] * ((1 - fr) * fc)[:, None]
                + table[r1 * s + c0] * (fr * (1 - fc))[:, None]
                + table[r1 * s + c1] * (fr * fc)[:, None]
            )
            pieces.append(emb.repeat(t, 1))
        return torch.cat(pieces)

    def rotary(self, grids: list[tuple[int, int, int]], device: torch.device) -> tuple[Tensor, Tensor]:
        """cos/sin [n_patches, head_dim]: first half rotates by row, second by column (each
        half's frequencies duplicated for rotate-half)."""
        inv_freq = self.inv_freq.to(device)
        angles = []
        for t, h, w in grids:
            rows, cols = block_order_coords(h, w, self.cfg.spatial_merge_size, device)
            a = torch.cat([rows[:, None].float() * inv_freq, cols[:, None].float() * inv_freq], dim=-1)
            angles.append(a.repeat(t, 1))
        a = torch.cat(angles)
        a = torch.cat([a, a], dim=-1)
        return a.cos(), a.sin()

    def forward(self, pixel_values: Tensor, grid_thw: Tensor) -> Tensor:
        """[n_patches, C*T*P*P] patches + [n, 3] grids -> [n_patches // merge², out_hidden_size]."""
        grids = _check_grid(pixel_values, grid_thw, self.cfg)
        device = pixel_values.device
        x = self.patch_embed(pixel_values)
        x = x + self.position_embedding(grids, device).to(x.dtype)
        cos, sin = self.rotary(grids, device)
        segments = [(t, h * w) for t, h, w in grids]
        for block in self.blocks:
            x = block(x, cos, sin, segments)
        return self.merger(x)


__all__ = ["VisionTower", "block_order_coords"]
