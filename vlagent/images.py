"""Screenshot helpers shared by the policies: resize to a model's pixel limits
and encode as data URLs.

Qwen3.5 (like Qwen3-VL) cuts an image into 16×16 patches and merges 2×2 of
them into one visual token, so the model sees images whose sides are
multiples of 32 and whose area lies between a minimum and a maximum pixel
count. `smart_resize` picks that size while keeping the aspect ratio as
close as the grid allows.
"""

from __future__ import annotations

import base64
import io
import struct
import zlib

from PIL import Image

from vlagent.model.data_url import from_data_url  # the inverse of to_data_url
from vlagent.model.resize import smart_resize as _smart_resize_hw

# Patch 16 × spatial merge 2 (Qwen3-VL, Qwen3.5).
QWEN_FACTOR = 32
# Patch 14 × spatial merge 2 (Qwen2.5-VL and models built on it, e.g. UI-TARS-1.5).
QWEN25_FACTOR = 28
# Qwen3.5's processor lower bound (256×256).
DEFAULT_MIN_PIXELS = 256 * 256
# 1280 visual tokens of 32×32 pixels: a 1920×1080 screen becomes 1504×832.
DEFAULT_MAX_PIXELS = 1280 * 32 * 32


def smart_resize(
    width: int,
    height: int,
    *,
    factor: int = QWEN_FACTOR,
    min_pixels: int = DEFAULT_MIN_PIXELS,
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> tuple[int, int]:
    """The (width, height) a model sees for an image of this size.

    Both sides become multiples of `factor`, the area ends up within
    [min_pixels, max_pixels] (as far as the grid allows), and the aspect
    ratio is kept as closely as possible. The rule is the engine's own
    (`vlagent.model.resize.smart_resize`, equal to transformers'); this
    spelling takes and returns PIL's (width, height) order.
    """
    h, w = _smart_resize_hw(height, width, factor=factor, min_pixels=min_pixels, max_pixels=max_pixels)
    return w, h


def resize_for_model(
    image: Image.Image,
    *,
    factor: int = QWEN_FACTOR,
    min_pixels: int = DEFAULT_MIN_PIXELS,
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> Image.Image:
    """`image` resized (bicubic) to `smart_resize`'s size, as RGB."""
    size = smart_resize(*image.size, factor=factor, min_pixels=min_pixels, max_pixels=max_pixels)
    rgb = image if image.mode == "RGB" else image.convert("RGB")
    if rgb.size == size:
        return rgb
    return rgb.resize(size, Image.Resampling.BICUBIC)


# PNG colour types of the modes `encode_png` writes itself (8 bits a sample).
_PNG_COLOR_TYPES = {"L": 0, "RGB": 2, "RGBA": 6}


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def encode_png(image: Image.Image) -> bytes:
    """A lossless PNG of `image`, made for speed.

    Screenshots are flat UI colours: zlib level 1 on unfiltered rows makes
    files as small as Pillow's adaptive row filters do (~80 kB for a
    1920x1080 desktop) in about half the time, and zlib runs without the GIL.
    Modes other than L / RGB / RGBA go through Pillow.
    """
    color_type = _PNG_COLOR_TYPES.get(image.mode)
    if color_type is None or 0 in image.size:
        buffer = io.BytesIO()
        image.save(buffer, format="PNG", compress_level=1)
        return buffer.getvalue()
    width, height = image.size
    raw = image.tobytes()
    stride = len(raw) // height if height else 0
    # Each row starts with its filter type: 0, none.
    rows = b"".join(b"\x00" + raw[y * stride : (y + 1) * stride] for y in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, color_type, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", header)
        + _png_chunk(b"IDAT", zlib.compress(rows, 1))
        + _png_chunk(b"IEND", b"")
    )


def encode_image(image: Image.Image, *, fmt: str = "png", quality: int = 90) -> bytes:
    """PNG (lossless, best for text on screen) or JPEG (smaller) bytes."""
    fmt = fmt.lower()
    buffer = io.BytesIO()
    if fmt == "png":
        return encode_png(image)
    elif fmt in ("jpeg", "jpg"):
        image.convert("RGB").save(buffer, format="JPEG", quality=quality)
    else:
        raise ValueError(f"unsupported image format {fmt!r}; use 'png' or 'jpeg'")
    return buffer.getvalue()


def to_data_url(image: Image.Image, *, fmt: str = "png", quality: int = 90) -> str:
    """`data:image/png;base64,...` (or image/jpeg) for an OpenAI image_url part."""
    mime = "image/png" if fmt.lower() == "png" else "image/jpeg"
    payload = base64.b64encode(encode_image(image, fmt=fmt, quality=quality)).decode("ascii")
    return f"data:{mime};base64,{payload}"


__all__ = [
    "QWEN_FACTOR",
    "QWEN25_FACTOR",
    "DEFAULT_MIN_PIXELS",
    "DEFAULT_MAX_PIXELS",
    "smart_resize",
    "resize_for_model",
    "encode_png",
    "encode_image",
    "to_data_url",
    "from_data_url",
]
