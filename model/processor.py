"""Qwen3.5 processor: text + images + videos -> the model's input tensors.

What it does, in the order the model needs it:
- images: RGB, smart-resize (sides multiples of 32 = patch 16 × merge 2, area in
  [min_pixels, max_pixels]), bicubic resize, rescale to [0, 1], normalize with the
  checkpoint's mean/std, and cut into the flat patch rows the vision tower reads
  (frame, 2×2 merge block, patch; each row C × T × 16 × 16 with the still image
  repeated over T = 2);
- videos: frames the caller already picked, with their timestamps in seconds (or
  an fps); the whole clip is smart-resized with a clip-level pixel budget, padded
  to an even frame count with its last frame, normalized and cut the same way;
- text: every `<|image_pad|>` becomes one pad per merged visual token, and every
  `<|video_pad|>` becomes, per temporal patch, "<t seconds><|vision_start|>pads
  <|vision_end|>" (t = mean time of the patch's two frames, one decimal), replacing
  the template's own <|vision_start|><|video_pad|><|vision_end|> wrapper.

The numbers follow transformers' Qwen3-VL processors exactly (tests compare them):
images as its PIL backend (`Qwen2VLImageProcessorPil`, the one AutoProcessor picks
without torchvision) or, with `image_backend="torch"`, as its torchvision backend;
videos as `Qwen3VLVideoProcessor` (torch's uint8 antialiased bicubic, rescale fused
into mean/std). Only the tokenizer comes from transformers (AutoTokenizer).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from .resize import smart_resize, smart_resize_video  # also importable from here, as part of the processor

IMAGE_TOKEN = "<|image_pad|>"
VIDEO_TOKEN = "<|video_pad|>"
VISION_START = "<|vision_start|>"
VISION_END = "<|vision_end|>"
END_OF_TURN = ("<|im_end|>", "<|endoftext|>")
MESSAGE_START = "<|im_start|>"

ImageLike = Any  # PIL.Image, a path, or an HxWx3 / HxW uint8 array
FrameList = Sequence[ImageLike]


@dataclass(frozen=True)
class PixelConfig:
    """Pre-processing settings (preprocessor_config.json / video_preprocessor_config.json)."""

    min_pixels: int
    max_pixels: int
    patch_size: int = 16
    temporal_patch_size: int = 2
    merge_size: int = 2
    image_mean: tuple[float, ...] = (0.5, 0.5, 0.5)
    image_std: tuple[float, ...] = (0.5, 0.5, 0.5)
    rescale_factor: float = 1 / 255
    do_resize: bool = True
    do_rescale: bool = True
    do_normalize: bool = True

    @property
    def factor(self) -> int:
        return self.patch_size * self.merge_size

    @classmethod
    def from_dict(cls, d: dict[str, Any], default: "PixelConfig") -> "PixelConfig":
        size = d.get("size") or {}
        kw: dict[str, Any] = {}
        kw["min_pixels"] = int(d.get("min_pixels") or size.get("shortest_edge") or default.min_pixels)
        kw["max_pixels"] = int(d.get("max_pixels") or size.get("longest_edge") or default.max_pixels)
        for key in ("patch_size", "temporal_patch_size", "merge_size"):
            if d.get(key) is not None:
                kw[key] = int(d[key][0] if isinstance(d[key], (list, tuple)) else d[key])
        for key in ("image_mean", "image_std"):
            if d.get(key) is not None:
                v = d[key]
                kw[key] = tuple(float(x) for x in (v if isinstance(v, (list, tuple)) else [v] * 3))
        if d.get("rescale_factor") is not None:
            kw["rescale_factor"] = float(d["rescale_factor"])
        for key in ("do_resize", "do_rescale", "do_normalize"):
            if d.get(key) is not None:
                kw[key] = bool(d[key])
        return replace(default, **kw)

    def to_dict(self, kind: str) -> dict[str, Any]:
        """transformers-readable config (preprocessor_config.json or video_preprocessor_config.json)."""
        d: dict[str, Any] = {
            "size": {"shortest_edge": self.min_pixels, "longest_edge": self.max_pixels},
            "patch_size": self.patch_size,
            "temporal_patch_size": self.temporal_patch_size,
            "merge_size": self.merge_size,
            "image_mean": list(self.image_mean),
            "image_std": list(self.image_std),
            "rescale_factor": self.rescale_factor,
            "do_resize": self.do_resize,
            "do_rescale": self.do_rescale,
            "do_normalize": self.do_normalize,
            "do_convert_rgb": True,
            "resample": 3,  # bicubic
            "processor_class": "Qwen3VLProcessor",
        }
        if kind == "image":
            d["image_processor_type"] = "Qwen2VLImageProcessor"
        else:
            d.update(video_processor_type="Qwen3VLVideoProcessor", fps=2, min_frames=4, max_frames=768)
            d.update(do_sample_frames=False, return_metadata=False, cap_pixels_per_frame=False)
        return d


# Qwen3.5's published processor settings.
QWEN35_IMAGE = PixelConfig(min_pixels=65536, max_pixels=16777216)
QWEN35_VIDEO = PixelConfig(min_pixels=4096, max_pixels=25165824)


def save_processor_config(
    folder: str | os.PathLike,
    image: PixelConfig = QWEN35_IMAGE,
    video: PixelConfig = QWEN35_VIDEO,
) -> None:
    """Write processor_config.json, preprocessor_config.json and video_preprocessor_config.json
    (what transformers' AutoProcessor and `Processor.from_pretrained` read)."""
    folder = Path(folder)
    img, vid = image.to_dict("image"), video.to_dict("video")
    (folder / "preprocessor_config.json").write_text(json.dumps(img, indent=2))
    (folder / "video_preprocessor_config.json").write_text(json.dumps(vid, indent=2))
    (folder / "processor_config.json").write_text(json.dumps({"processor_class": "Qwen3VLProcessor"}, indent=2))


# --- pixels ------------------------------------------------------------------


def load_rgb(image: ImageLike) -> np.ndarray:
    """HxWx3 uint8 RGB from a PIL image (transparency composited onto white), a path, or an array."""
    if isinstance(image, (str, os.PathLike)):
        if not Path(image).exists():
            raise FileNotFoundError(f"image file not found: {image}")
        with Image.open(image) as im:
            im.load()
            return load_rgb(im)
    if isinstance(image, Image.Image):
        if "A" in image.getbands() or image.info.get("transparency") is not None:
            rgba = image.convert("RGBA")
            white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
            return np.asarray(Image.alpha_composite(white, rgba).convert("RGB"))
        return np.asarray(image.convert("RGB"))
    if isinstance(image, torch.Tensor):
        image = image.cpu().numpy()
    if isinstance(image, np.ndarray):
        if image.dtype != np.uint8:
            raise ValueError(f"image arrays must be uint8, got {image.dtype}")
        if image.ndim == 2:
            return np.repeat(image[:, :, None], 3, axis=2)
        if image.ndim == 3 and image.shape[2] == 3:
            return image
        raise ValueError(f"image arrays must be HxWx3 (RGB) or HxW, got shape {image.shape}")
    raise TypeError(f"unsupported image type {type(image).__name__}: use a PIL image, a path or a uint8 array")


def _resize_torch(frames: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """uint8 [N, C, H, W] -> uint8 [N, C, height, width], antialiased bicubic (torch's uint8 kernel)."""
    if frames.shape[-2:] == (height, width):
        return frames
    return F.interpolate(frames, size=(height, width), mode="bicubic", align_corners=False, antialias=True)


def _normalize_torch(frames: torch.Tensor, cfg: PixelConfig) -> torch.Tensor:
    """uint8 [..., C, H, W] -> float32, with the 1/255 rescale folded into mean and std."""
    x = frames.to(torch.float32, copy=True)  # never the caller's tensor: normalized in place below
    mean = torch.tensor(cfg.image_mean, dtype=torch.float32)
    std = torch.tensor(cfg.image_std, dtype=torch.float32)
    if cfg.do_rescale and cfg.do_normalize:
        mean, std = mean * (1.0 / cfg.rescale_factor), std * (1.0 / cfg.rescale_factor)
    elif cfg.do_rescale:
        return x.mul_(cfg.rescale_factor)
    elif not cfg.do_normalize:
        return x
    # in place: the same arithmetic without two more frame-sized temporaries (a video's frames are hundreds
    # of MB as float32, and every fresh page costs a fault)
    return x.sub_(mean.view(-1, 1, 1)).div_(std.view(-1, 1, 1))


def _image_pixels_pil(rgb: np.ndarray, height: int, width: int, cfg: PixelConfig) -> np.ndarray:
    """HxWx3 uint8 -> float32 [C, height, width]: PIL bicubic, then rescale (float64) and normalize."""
    if cfg.do_resize:
        rgb = np.asarray(Image.fromarray(rgb).resize((width, height), Image.Resampling.BICUBIC))
    x = np.moveaxis(rgb, -1, 0)
    if cfg.do_rescale:
        x = (x.astype(np.float64) * cfg.rescale_factor).astype(np.float32)
    if cfg.do_normalize:
        x = x.astype(np.float32, copy=False)
        mean = np.array(cfg.image_mean, dtype=np.float32)[:, None, None]
        std = np.array(cfg.image_std, dtype=np.float32)[:, None, None]
        x = (x - mean) / std
    return np.asarray(x, dtype=np.float32)


def patchify(frames: torch.Tensor, cfg: PixelConfig) -> tuple[torch.Tensor, tuple[int, int, int]]:
    """float [T, C, H, W] (T a multiple of temporal_patch_size) -> rows [t*h*w, C*T*P*P] in the
    vision tower's order (temporal patch, merge-block row, merge-block col, in-block row/col)."""
    n, c, height, width = frames.shape
    tp, p, m = cfg.temporal_patch_size, cfg.patch_size, cfg.merge_size
    gt, gh, gw = n // tp, height // p, width // p
    x = frames.reshape(gt, tp, c, gh // m, m, p, gw // m, m, p)
    # -> (gt, block_row, block_col, in_row, in_col, C, T, P, P)
    x = x.permute(0, 3, 6, 4, 7, 2, 1, 5, 8)
    return x.reshape(gt * gh * gw, c * tp * p * p), (gt, gh, gw)


def frame_group_timestamps(timestamps: Sequence[float], temporal_patch_size: int = 2) -> list[float]:
    """Seconds of each temporal patch: mean of its first and last frame (last frame repeated to pad)."""
    ts = [float(t) for t in timestamps]
    if not ts:
        raise ValueError("a video needs at least one frame timestamp")
    while len(ts) % temporal_patch_size:
        ts.append(ts[-1])
    return [(ts[i] + ts[i + temporal_patch_size - 1]) / 2 for i in range(0, len(ts), temporal_patch_size)]


# --- processor ----------------------------------------------------------------


class MultimodalInputs(dict):
    """The processor's output: input_ids, attention_mask and, when present, pixel_values,
    image_grid_thw, pixel_values_videos, video_grid_thw (all torch tensors)."""

    def to(self, device: str | torch.device | None = None, dtype: torch.dtype | None = None) -> "MultimodalInputs":
        """Move every tensor to `device`; cast pixel tensors (only) to `dtype`."""
        out = MultimodalInputs()
        for key, value in self.items():
            if isinstance(value, torch.Tensor):
                if dtype is not None and key.startswith("pixel_values"):
                    value = value.to(dtype)
                value = value.to(device) if device is not None else value
            out[key] = value
        return out


@dataclass
class _Video:
    frames: torch.Tensor  # uint8 [T, 3, H, W]
    timestamps: list[float]


class Processor:
    """Qwen3.5 processor. `Processor.from_pretrained(checkpoint_dir)` reads the tokenizer, the chat
    template and the pre-processing configs (Qwen3.5 defaults when the configs are missing).

    max_pixels: per-image pixel cap (overrides the checkpoint's); max_image_tokens: cap on the
    visual tokens of all images of one call together (images shrink evenly until they fit).
    """

    def __init__(
        self,
        tokenizer: Any,
        image_config: PixelConfig = QWEN35_IMAGE,
        video_config: PixelConfig = QWEN35_VIDEO,
        *,
        max_pixels: int | None = None,
        min_pixels: int | None = None,
        max_image_tokens: int | None = None,
        image_backend: str = "pil",
        padding_side: str = "left",
    ):
        if image_backend not in ("pil", "torch"):
            raise ValueError(f"image_backend must be 'pil' or 'torch', got {image_backend!r}")
        if padding_side not in ("left", "right"):
            raise ValueError(f"padding_side must be 'left' or 'right', got {padding_side!r}")
        if max_pixels is not None:
            image_config = replace(image_config, max_pixels=int(max_pixels))
        if min_pixels is not None:
            image_config = replace(image_config, min_pixels=int(min_pixels))
        if image_config.min_pixels > image_config.max_pixels:
            raise ValueError(f"min_pixels ({image_config.min_pixels}) > max_pixels ({image_config.max_pixels})")
        if max_image_tokens is not None and max_image_tokens < 1:
            raise ValueError(f"max_image_tokens must be positive, got {max_image_tokens}")
        self.tokenizer = tokenizer
        self.image_config = image_config
        self.video_config = video_config
        self.max_image_tokens = max_image_tokens
        self.image_backend = image_backend
        self.padding_side = padding_side
        vocab = tokenizer.get_vocab()
        missing = [t for t in (IMAGE_TOKEN, VIDEO_TOKEN, VISION_START, VISION_END) if t not in vocab]
        if missing:
            raise ValueError(f"tokenizer lacks Qwen's vision tokens {missing}")
        self.image_token_id = vocab[IMAGE_TOKEN]
        self.video_token_id = vocab[VIDEO_TOKEN]
        self.vision_start_token_id = vocab[VISION_START]
        self.vision_end_token_id = vocab[VISION_END]
        # Qwen's end-of-turn tokens: a chat reply stops at either
        self.end_of_turn_ids = frozenset(vocab[t] for t in END_OF_TURN if t in vocab)
        # where a chat message starts (prompt-cache snapshot points); empty for a template without it
        self.message_start_ids = frozenset([vocab[MESSAGE_START]] if MESSAGE_START in vocab else [])

    @classmethod
    def from_pretrained(cls, path: str | os.PathLike, **kwargs: Any) -> "Processor":
        from transformers import AutoTokenizer

        folder = Path(path)
        if not folder.is_dir():
            raise FileNotFoundError(f"checkpoint folder not found: {folder}")
        tokenizer = AutoTokenizer.from_pretrained(str(folder))
        if not getattr(tokenizer, "chat_template", None):
            for name in ("chat_template.jinja", "chat_template.json"):
                f = folder / name
                if f.exists():
                    text = f.read_text()
                    tokenizer.chat_template = json.loads(text)["chat_template"] if name.endswith("json") else text
                    break

        def read(name: str) -> dict[str, Any]:
            f = folder / name
            try:
                return json.loads(f.read_text()) if f.exists() else {}
            except json.JSONDecodeError as exc:
                raise ValueError(f"{f} is not valid JSON: {exc}") from None

        proc = read("processor_config.json")  # newer checkpoints may nest both configs here
        image = PixelConfig.from_dict(read("preprocessor_config.json") or proc.get("image_processor", {}), QWEN35_IMAGE)
        video = PixelConfig.from_dict(
            read("video_preprocessor_config.json") or proc.get("video_processor", {}), QWEN35_VIDEO
        )
        return cls(tokenizer, image, video, **kwargs)

    # -- images --

    def image_size(self, width: int, height: int, *, max_pixels: int | None = None) -> tuple[int, int]:
        """(width, height) the model sees for an image of this size (coordinate conversion uses it)."""
        cfg = self.image_config
        h, w = smart_resize(
            height, width, factor=cfg.factor, min_pixels=min(cfg.min_pixels, max_pixels or cfg.max_pixels),
            max_pixels=max_pixels or cfg.max_pixels,
        )
        return w, h

    def _image_limits(self, sizes: list[tuple[int, int]]) -> list[int]:
        """Per-image max_pixels so that all images together stay within max_image_tokens."""
        cfg = self.image_config
        limits = [cfg.max_pixels] * len(sizes)
        if self.max_image_tokens is None or not sizes:
            return limits
        cell = cfg.factor**2
        if len(sizes) > self.max_image_tokens:
            raise ValueError(f"{len(sizes)} images cannot fit in max_image_tokens={self.max_image_tokens}")
        for _ in range(64):
            dims = [self.image_size(w, h, max_pixels=lim) for (w, h), lim in zip(sizes, limits)]
            total = sum(w * h // cell for w, h in dims)
            if total <= self.max_image_tokens:
                return limits
            scale = self.max_image_tokens / total
            limits = [max(cell, min(lim, int(w * h * scale))) for (w, h), lim in zip(dims, limits)]
        raise ValueError(f"could not fit {len(sizes)} images into max_image_tokens={self.max_image_tokens}")

    def preprocess_images(self, images: Sequence[ImageLike]) -> tuple[torch.Tensor, torch.Tensor]:
        """(pixel_values [n_patches, C*T*P*P] float32, image_grid_thw [n_images, 3])."""
        cfg = self.image_config
        arrays = [load_rgb(im) for im in images]
        limits = self._image_limits([(a.shape[1], a.shape[0]) for a in arrays])
        rows, grids = [], []
        for rgb, limit in zip(arrays, limits):
            height, width = rgb.shape[:2]
            if cfg.do_resize:
                height, width = smart_resize(
                    height, width, factor=cfg.factor, min_pixels=min(cfg.min_pixels, limit), max_pixels=limit
                )
            elif height % cfg.factor or width % cfg.factor:
                raise ValueError(f"with do_resize off, image sides must be multiples of {cfg.factor}")
            if self.image_backend == "pil":
                chw = torch.from_numpy(_image_pixels_pil(rgb, height, width, cfg))
            else:
                u8 = torch.from_numpy(np.array(rgb)).permute(2, 0, 1)[None]
                chw = _normalize_torch(_resize_torch(u8, height, width), cfg)[0]
            still = chw[None].expand(cfg.temporal_patch_size, -1, -1, -1)  # an image is T identical frames
            patches, grid = patchify(still, cfg)
            rows.append(patches)
            grids.append(grid)
        return torch.cat(rows), torch.tensor(grids, dtype=torch.long)

    # -- videos --

    def _video(self, frames: FrameList | np.ndarray | torch.Tensor, timestamps: Sequence[float] | None,
               fps: float | None) -> _Video:
        if isinstance(frames, (str, os.PathLike)):
            raise ValueError(
                f"a video must be given as decoded frames (a list of images or a [T, H, W, 3] array), "
                f"not a path ({str(frames)[:60]!r}); sample frames with vlagent.video first"
            )
        if isinstance(frames, np.ndarray) and frames.ndim == 4:
            frames = list(frames)
        if isinstance(frames, torch.Tensor) and frames.ndim == 4:
            frames = [f.cpu().numpy() for f in frames]
        arrays = [load_rgb(f) for f in frames]
        if not arrays:
            raise ValueError("a video needs at least one frame")
        if len({a.shape for a in arrays}) != 1:
            raise ValueError(f"all frames of a video must have one size, got {sorted({a.shape for a in arrays})}")
        if timestamps is None:
            if fps is None or fps <= 0:
                raise ValueError("each video needs frame timestamps (seconds) or a positive fps")
            timestamps = [i / fps for i in range(len(arrays))]
        if len(timestamps) != len(arrays):
            raise ValueError(f"video has {len(arrays)} frames but {len(timestamps)} timestamps")
        if any(b < a for a, b in zip(timestamps, timestamps[1:])):
            raise ValueError("video timestamps must not decrease")
        stacked = torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).contiguous()
        return _Video(stacked, [float(t) for t in timestamps])

    def preprocess_video(self, video: _Video) -> tuple[torch.Tensor, tuple[int, int, int], list[float]]:
        """(patch rows, (t, h, w) grid, seconds per temporal patch) of one video."""
        cfg = self.video_config
        frames = video.frames
        n, _, height, width = frames.shape
        if cfg.do_resize:
            height, width = smart_resize_video(
                n, height, width, factor=cfg.factor, temporal_factor=cfg.temporal_patch_size,
                min_pixels=cfg.min_pixels, max_pixels=cfg.max_pixels,
            )
            frames = _resize_torch(frames, height, width)
        pixels = _normalize_torch(frames, cfg)
        if pad := -n % cfg.temporal_patch_size:
            pixels = torch.cat([pixels, pixels[-1:].expand(pad, -1, -1, -1)])
        patches, grid = patchify(pixels, cfg)
        return patches, grid, frame_group_timestamps(video.timestamps, cfg.temporal_patch_size)

    # -- text --

    def _expand(self, text: str, image_counts: Iterable[int], video_parts: Iterable[str]) -> str:
        images, videos = iter(image_counts), iter(video_parts)
        # Each temporal patch of a video brings its own <|vision_start|>..<|vision_end|>, so the chat
        # template's wrapper around the whole video is dropped (as transformers >= 5.25 does).
        text = text.replace(VISION_START + VIDEO_TOKEN + VISION_END, VIDEO_TOKEN)
        out = []
        for i, piece in enumerate(text.split(IMAGE_TOKEN)):
            if i:
                out.append(IMAGE_TOKEN * next(images))
            vpieces = piece.split(VIDEO_TOKEN)
            out.append(vpieces[0])
            for rest in vpieces[1:]:
                out.append(next(videos))
                out.append(rest)
        return "".join(out)

    def __call__(
        self,
        text: str | Sequence[str],
        images: Sequence[ImageLike] | None = None,
        videos: Sequence[FrameList] | None = None,
        video_timestamps: Sequence[Sequence[float]] | None = None,
        video_fps: float | Sequence[float] | None = None,
    ) -> MultimodalInputs:
        """Tokenize `text` (one string or a batch; padded on `padding_side`) with each
        `<|image_pad|>` / `<|video_pad|>` expanded for the images / videos given, in order."""
        texts = [text] if isinstance(text, str) else list(text)
        if isinstance(images, (Image.Image, str, os.PathLike, np.ndarray)):
            images = [images]  # one image given bare
        if isinstance(videos, (np.ndarray, torch.Tensor)):
            videos = [videos]  # one video given as a [T, H, W, 3] array
        images = list(images or [])
        videos = list(videos or [])
        n_image_slots = sum(t.count(IMAGE_TOKEN) for t in texts)
        n_video_slots = sum(t.count(VIDEO_TOKEN) for t in texts)
        if n_image_slots != len(images):
            raise ValueError(f"text has {n_image_slots} {IMAGE_TOKEN} placeholders but {len(images)} images were given")
        if n_video_slots != len(videos):
            raise ValueError(f"text has {n_video_slots} {VIDEO_TOKEN} placeholders but {len(videos)} videos were given")
        if video_timestamps is not None and len(video_timestamps) != len(videos):
            raise ValueError(f"{len(videos)} videos but {len(video_timestamps)} timestamp lists")
        fps_list = list(video_fps) if isinstance(video_fps, (list, tuple)) else [video_fps] * len(videos)
        if len(fps_list) != len(videos):
            raise ValueError(f"{len(videos)} videos but {len(fps_list)} fps values")

        out = MultimodalInputs()
        merge = self.image_config.merge_size**2
        image_counts: list[int] = []
        if images:
            pixel_values, grid = self.preprocess_images(images)
            out["pixel_values"], out["image_grid_thw"] = pixel_values, grid
            image_counts = (grid.prod(-1) // merge).tolist()
        video_parts: list[str] = []
        if videos:
            rows, grids = [], []
            vmerge = self.video_config.merge_size**2
            for i, frames in enumerate(videos):
                ts = video_timestamps[i] if video_timestamps is not None else None
                patches, grid, seconds = self.preprocess_video(self._video(frames, ts, fps_list[i]))
                rows.append(patches)
                grids.append(grid)
                per_frame = VISION_START + VIDEO_TOKEN * (grid[1] * grid[2] // vmerge) + VISION_END
                video_parts.append("".join(f"<{s:.1f} seconds>" + per_frame for s in seconds))
            out["pixel_values_videos"] = torch.cat(rows)
            out["video_grid_thw"] = torch.tensor(grids, dtype=torch.long)

        counts = iter(image_counts)
        parts = iter(video_parts)
        expanded = []
        for t in texts:
            k, v = t.count(IMAGE_TOKEN), t.count(VIDEO_TOKEN)
            expanded.append(self._expand(t, [next(counts) for _ in range(k)], [next(parts) for _ in range(v)]))
        ids = [self.tokenizer(t)["input_ids"] for t in expanded]
        length = max(map(len, ids))
        pad_id = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else 0
        input_ids = torch.full((len(ids), length), pad_id, dtype=torch.long)
        attention_mask = torch.zeros((len(ids), length), dtype=torch.long)
        for row, seq in enumerate(ids):
            sl = slice(length - len(seq), length) if self.padding_side == "left" else slice(0, len(seq))
            input_ids[row, sl] = torch.tensor(seq, dtype=torch.long)
            attention_mask[row, sl] = 1
        result = MultimodalInputs(input_ids=input_ids, attention_mask=attention_mask)
        result.update(out)
        return result

    def mm_token_type_ids(self, input_ids: torch.Tensor) -> torch.Tensor:
        """0 text, 1 image, 2 video per token (what transformers' Qwen3.5 forward also wants)."""
        return (input_ids == self.image_token_id).long() + 2 * (input_ids == self.video_token_id).long()

    # -- chat --

    def render_chat(self, messages: Sequence[dict[str, Any]], *, add_generation_prompt: bool = True,
                    **template_kwargs: Any) -> tuple[str, list[ImageLike], list[dict[str, Any]]]:
        """(prompt text, images in order, videos in order) for chat `messages`.

        Content parts: {"type": "text", "text": ...}; {"type": "image", "image": PIL | path | array}
        (or OpenAI's {"type": "image_url", "image_url": {"url": "data:image/...;base64,..."}});
        {"type": "video", "video": [frames], "timestamps": [seconds] or "fps": float}.
        """
        images: list[ImageLike] = []
        videos: list[dict[str, Any]] = []
        slim_messages = []
        for m in messages:
            if not isinstance(m, dict) or "role" not in m:
                raise ValueError(f"each message must be a dict with a 'role', got {m!r:.80}")
            content = m.get("content")
            if isinstance(content, list):
                slim = []
                for part in content:
                    kind = _part_kind(part)
                    if kind == "image":
                        images.append(_part_image(part))
                        slim.append({"type": "image"})
                    elif kind == "video":
                        if "video" not in part:
                            raise ValueError("a video part needs 'video': a list of frames")
                        videos.append(part)
                        slim.append({"type": "video"})
                    else:
                        slim.append({"type": "text", "text": part["text"]})
                m = {**m, "content": slim}
            slim_messages.append(m)
        text = self.tokenizer.apply_chat_template(
            slim_messages, tokenize=False, add_generation_prompt=add_generation_prompt, **template_kwargs
        )
        return text, images, videos

    def apply_chat_template(self, messages: Sequence[dict[str, Any]], *, add_generation_prompt: bool = True,
                            tokenize: bool = True, **template_kwargs: Any) -> MultimodalInputs | str:
        """Render `messages` with the checkpoint's chat template and (by default) process them."""
        text, images, videos = self.render_chat(
            messages, add_generation_prompt=add_generation_prompt, **template_kwargs
        )
        if not tokenize:
            return text
        timestamps, fps = [], []
        for v in videos:
            timestamps.append(v.get("timestamps"))
            fps.append(v.get("fps"))
        return self(
            text,
            images=images,
            videos=[v["video"] for v in videos],
            video_timestamps=timestamps if videos else None,
            video_fps=fps if videos else None,
        )

    def decode(self, token_ids: Sequence[int] | torch.Tensor, *, skip_special_tokens: bool = True) -> str:
        if isinstance(token_ids, torch.Tensor):
            token_ids = token_ids.tolist()
        return self.tokenizer.decode(token_ids, skip_special_tokens=skip_special_tokens)


def _part_kind(part: Any) -> str:
    if isinstance(part, str):
        raise ValueError("content parts must be dicts like {'type': 'text', 'text': ...}, got a bare string")
    if not isinstance(part, dict):
        raise ValueError(f"unsupported content part {part!r:.80}")
    kind = part.get("type")
    if kind in ("image", "image_url") or "image" in part or "image_url" in part:
        return "image"
    if kind == "video" or "video" in part:
        return "video"
    if "text" in part:
        return "text"
    raise ValueError(f"unsupported content part type {kind!r}")


def _part_image(part: dict[str, Any]) -> ImageLike:
    if "image" in part:
        return part["image"]
    url = part["image_url"]
    url = url.get("url") if isinstance(url, dict) else url
    if isinstance(url, str) and url.startswith("data:image/"):
        from .data_url import from_data_url

        return from_data_url(url)
    if isinstance(url, str) and url.startswith("file://"):
        return url[len("file://"):]
    if isinstance(url, str) and "://" not in url:
        return url
    raise ValueError(f"image_url must be a data URL or a local path, got {str(url)[:60]!r}")


__all__ = [
    "MultimodalInputs",
    "PixelConfig",
    "Processor",
    "QWEN35_IMAGE",
    "QWEN35_VIDEO",
    "frame_group_timestamps",
    "load_rgb",
    "patchify",
    "save_processor_config",
    "smart_resize",
    "smart_resize_video",
]
