"""Images inside OpenAI-style `image_url` parts: base64 data URLs -> PIL images.

Torch-free, so the API policies (vlagent.images re-exports it) can use it on the base install, and
the processor can read chat messages written for a server without reaching outside model/.
"""
from __future__ import annotations

import base64
import binascii
import io

from PIL import Image


def from_data_url(url: str) -> Image.Image:
    """Decode a base64 image data URL (the inverse of vlagent.images.to_data_url)."""
    if not isinstance(url, str) or not url.startswith("data:image/"):
        raise ValueError(f"not an image data URL: {str(url)[:40]!r}")
    header, sep, payload = url.partition(",")
    if not sep or not header.endswith(";base64"):
        raise ValueError(f"image data URL is not base64-encoded: {header[:40]!r}")
    try:
        data = base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValueError(f"image data URL has invalid base64: {exc}") from None
    image = Image.open(io.BytesIO(data))
    image.load()
    return image
