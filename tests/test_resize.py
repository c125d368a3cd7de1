"""The one image-size rule (vlagent.model.resize) against transformers' own functions.

The API policies (vlagent.images), the processor and the video planner all size images
through it; a second copy once disagreed with it (3000×15 at min_pixels 65,536 became
3008×32 there, 3648×32 here and in transformers).
"""

from __future__ import annotations

import itertools
import subprocess
import sys

import pytest
from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import smart_resize as hf_image_resize
from transformers.models.qwen3_vl.video_processing_qwen3_vl import smart_resize as hf_video_resize

from vlagent import images
from vlagent.model import processor, resize
from vlagent.video import plan

# Awkward sides: below one cell, just off a multiple, primes, thin strips, large screens.
SIDES = (1, 7, 15, 16, 17, 31, 33, 47, 63, 97, 127, 200, 255, 257, 719, 720, 1081, 1366, 2400, 3000, 4095)
LIMITS = (  # (factor, min_pixels, max_pixels)
    (32, 65_536, 16_777_216),  # Qwen3.5 image defaults
    (32, 256 * 256, 1280 * 32 * 32),  # the policies' defaults
    (28, 56 * 56, 14 * 14 * 4 * 1280),  # Qwen2.5-VL
    (32, 4096, 320 * 320),
    (32, 1024, 1024),
)


def _within_aspect_limit(h: int, w: int) -> bool:
    return max(h, w) / min(h, w) <= resize.MAX_ASPECT_RATIO


@pytest.mark.parametrize("factor,min_pixels,max_pixels", LIMITS)
def test_image_size_equals_transformers(factor, min_pixels, max_pixels):
    pairs = [(h, w) for h, w in itertools.product(SIDES, SIDES) if _within_aspect_limit(h, w)]
    assert len(pairs) > 300
    for h, w in pairs:
        expected = hf_image_resize(h, w, factor=factor, min_pixels=min_pixels, max_pixels=max_pixels)
        got = resize.smart_resize(h, w, factor=factor, min_pixels=min_pixels, max_pixels=max_pixels)
        assert got == expected, (h, w)
        # the policies' spelling: PIL's (width, height) order, same numbers
        assert images.smart_resize(w, h, factor=factor, min_pixels=min_pixels, max_pixels=max_pixels) == got[::-1]


@pytest.mark.parametrize("num_frames", [2, 3, 4, 7, 16, 33, 768])
def test_video_size_equals_transformers(num_frames):
    for h, w in itertools.product(SIDES, SIDES):
        scale = max(32 / h, 32 / w, 1)  # tiny frames are scaled up to one cell before the aspect check
        if not _within_aspect_limit(int(h * scale), int(w * scale)):
            continue
        for min_pixels, max_pixels in ((4096, 25_165_824), (128 * 32 * 32, 768 * 32 * 32 * 4)):
            expected = hf_video_resize(num_frames, h, w, factor=32, min_pixels=min_pixels, max_pixels=max_pixels)
            got = resize.smart_resize_video(num_frames, h, w, factor=32, min_pixels=min_pixels, max_pixels=max_pixels)
            assert got == expected, (num_frames, h, w, min_pixels, max_pixels)


def test_every_caller_uses_the_one_rule():
    assert processor.smart_resize is resize.smart_resize
    assert processor.smart_resize_video is resize.smart_resize_video
    # the case two copies once disagreed on
    assert images.smart_resize(3000, 15, min_pixels=65_536) == (3648, 32)
    assert resize.smart_resize(15, 3000, min_pixels=65_536, max_pixels=1280 * 32 * 32) == (32, 3648)
    width, height = plan.plan_resolution(3000, 15, 8, min_pixels=65_536)
    assert (height, width) == hf_image_resize(15, 3000, factor=32, min_pixels=65_536, max_pixels=768 * 32 * 32)


@pytest.mark.parametrize("call,message", [
    (lambda: resize.smart_resize(0, 10, min_pixels=1, max_pixels=10**6), "positive"),
    (lambda: resize.smart_resize(10, 10, factor=0, min_pixels=1, max_pixels=10**6), "factor"),
    (lambda: resize.smart_resize(10, 10, min_pixels=10**6, max_pixels=10**5), "larger than max_pixels"),
    (lambda: resize.smart_resize(10, 10, min_pixels=1, max_pixels=100), "one 32x32 cell"),
    (lambda: resize.smart_resize(10, 2001, min_pixels=1, max_pixels=10**8), "aspect ratio"),
    (lambda: resize.smart_resize_video(1, 64, 64, min_pixels=1, max_pixels=10**8), "at least 2 frames"),
])
def test_bad_requests_are_named(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_the_rule_imports_without_torch():
    # The API policies size screenshots on the base install, which has no torch.
    script = (
        "import importlib.abc, sys\n"
        "class Block(importlib.abc.MetaPathFinder):\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] in ('torch', 'transformers', 'numpy'):\n"
        "            raise ImportError(name)\n"
        "sys.meta_path.insert(0, Block())\n"
        "from vlagent.images import smart_resize\n"
        "assert smart_resize(1920, 1080) == (1504, 832)\n"
        "try:\n"
        "    from vlagent.model import load_model\n"
        "except ImportError as e:\n"
        "    assert 'torch' in str(e), e\n"
        "else:\n"
        "    raise AssertionError('the engine imported without torch')\n"
        "print('ok')\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stdout + done.stderr
