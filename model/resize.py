"""The size an image or a clip has when the model sees it: Qwen's smart resize, in one place.

Qwen3.5 (like Qwen3-VL) cuts pixels into 16×16 patches and merges 2×2 of them into one visual
token, so every side the model sees is a multiple of `factor` = 32 (28 for Qwen2.5-VL-based
models) and the area lies between a minimum and a maximum pixel count. The arithmetic is
transformers' own (`smart_resize` of its Qwen2-VL image processor and of its Qwen3-VL video
processor; tests/test_processor.py compares them over awkward sizes), so a point the model
names in its input pixels maps back to the screenshot exactly as the reference implementation
would map it.

Arguments and results are in transformers' order, (height, width). The module needs nothing
but `math`: the API policies use it on the base install, where torch is absent.
"""

from __future__ import annotations

import math

# Beyond this the grid can no longer follow the image's shape (transformers' limit).
MAX_ASPECT_RATIO = 200


def smart_resize(
    height: int, width: int, *, factor: int = 32, min_pixels: int, max_pixels: int
) -> tuple[int, int]:
    """(height, width) for an image: multiples of `factor`, area within [min_pixels, max_pixels]
    as far as the grid allows, aspect ratio kept as closely as possible."""
    _check_request(height, width, factor, min_pixels, max_pixels)
    check_aspect_ratio(height, width)
    return _fit_grid(height, width, factor, min_pixels, max_pixels, frames=1, grid_frames=1)


def smart_resize_video(
    num_frames: int, height: int, width: int, *, factor: int = 32, temporal_factor: int = 2,
    min_pixels: int, max_pixels: int,
) -> tuple[int, int]:
    """(height, width) for every frame of a clip: like `smart_resize`, but the pixel limits count
    all frames (the frame count rounded to whole temporal patches)."""
    if num_frames < temporal_factor:
        raise ValueError(f"a video needs at least {temporal_factor} frames, got {num_frames}")
    _check_request(height, width, factor, min_pixels, max_pixels)
    if height < factor or width < factor:  # tiny frames are first scaled up to one cell
        scale = max(factor / height, factor / width)
        height, width = int(height * scale), int(width * scale)
    check_aspect_ratio(height, width)
    grid_frames = round(num_frames / temporal_factor) * temporal_factor
    return _fit_grid(height, width, factor, min_pixels, max_pixels, frames=num_frames, grid_frames=grid_frames)


def _fit_grid(
    height: int, width: int, factor: int, min_pixels: int, max_pixels: int, *, frames: int, grid_frames: int
) -> tuple[int, int]:
    """Round both sides to the grid; when the area (times the frames) leaves the limits, scale the
    source so its area meets the limit and round toward the inside (down under the maximum, up
    over the minimum)."""
    h, w = round(height / factor) * factor, round(width / factor) * factor
    if grid_frames * h * w > max_pixels:
        beta = math.sqrt(frames * height * width / max_pixels)
        h = max(factor, math.floor(height / beta / factor) * factor)
        w = max(factor, math.floor(width / beta / factor) * factor)
    elif grid_frames * h * w < min_pixels:
        beta = math.sqrt(min_pixels / (frames * height * width))
        h = math.ceil(height * beta / factor) * factor
        w = math.ceil(width * beta / factor) * factor
    return h, w


def _check_request(height: int, width: int, factor: int, min_pixels: int, max_pixels: int) -> None:
    if height <= 0 or width <= 0:
        raise ValueError(f"image size must be positive, got {width}x{height}")
    if factor <= 0:
        raise ValueError(f"factor must be positive, got {factor}")
    if min_pixels > max_pixels:
        raise ValueError(f"min_pixels ({min_pixels}) is larger than max_pixels ({max_pixels})")
    if max_pixels < factor * factor:
        raise ValueError(f"max_pixels ({max_pixels}) is smaller than one {factor}x{factor} cell")


def check_aspect_ratio(height: int, width: int) -> None:
    """ValueError for an image more than MAX_ASPECT_RATIO times longer one way than the other."""
    if max(height, width) / min(height, width) > MAX_ASPECT_RATIO:
        raise ValueError(f"aspect ratio of {width}x{height} exceeds {MAX_ASPECT_RATIO}:1")


__all__ = ["MAX_ASPECT_RATIO", "check_aspect_ratio", "smart_resize", "smart_resize_video"]
