"""Our Qwen3.5 processor against transformers' Qwen3VLProcessor (the one AutoProcessor
builds for Qwen3.5 checkpoints): pixel tensors, grids and token ids must be equal.

torchvision may be missing (it is on the CPU build machines), and transformers'
video processor calls exactly three torchvision ops. When torchvision is absent
those three are replaced, for the duration of one test, by what torchvision 0.28
does on CPU (read from its source: uint8 bicubic/antialias goes straight to
torch's `interpolate`, `normalize` is `(x - mean) / std` per channel, RGB input
is left as is); everything else - sizes, frame padding, patch layout, grids,
timestamps, placeholder text, tokenization - is transformers' own code.

That stand-in resize and the processor's are the same torch call (so is torchvision's own, for uint8
bicubic with antialias on CPU), so a comparison with them cannot find a wrong resampler: the
resize itself is checked against antialiased bicubic computed from its definition in float64
(`test_video_resize_equals_an_independent_antialiased_bicubic`).
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from unittest import mock

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from tiny_checkpoints import build_tokenizer
from vlagent.model.processor import (
    IMAGE_TOKEN,
    Processor,
    frame_group_timestamps,
    save_processor_config,
    smart_resize,
)

import transformers  # noqa: E402,F401  (the reference: a missing or broken install fails, never skips)
HAVE_TORCHVISION = importlib.util.find_spec("torchvision") is not None


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("qwen35_processor")
    build_tokenizer(d)
    save_processor_config(d)
    return d


def _hf_processor(folder: Path, **image_overrides):
    if HAVE_TORCHVISION and not image_overrides:
        from transformers import AutoProcessor

        return AutoProcessor.from_pretrained(str(folder))
    from transformers import AutoTokenizer, Qwen3VLProcessor
    from transformers.processing_utils import ProcessorMixin
    if HAVE_TORCHVISION:  # the backend AutoProcessor picks, so ours uses image_backend="torch"
        from transformers.models.qwen2_vl.image_processing_qwen2_vl import Qwen2VLImageProcessor as ImageProcessor
    else:
        from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import (
            Qwen2VLImageProcessorPil as ImageProcessor,
        )
    from transformers.models.qwen3_vl.video_processing_qwen3_vl import Qwen3VLVideoProcessor

    image_cfg = json.loads((folder / "preprocessor_config.json").read_text())
    image_cfg["size"].update(image_overrides)
    tok = AutoTokenizer.from_pretrained(str(folder))
    video_cfg = json.loads((folder / "video_preprocessor_config.json").read_text())
    # Without torchvision, transformers' class check cannot even look the video processor up.
    with mock.patch.object(ProcessorMixin, "check_argument_for_proper_class", lambda self, name, arg: None):
        return Qwen3VLProcessor(
            image_processor=ImageProcessor(**image_cfg),
            tokenizer=tok,
            video_processor=Qwen3VLVideoProcessor(**video_cfg),
            chat_template=tok.chat_template,
        )


@pytest.fixture
def torchvision_ops(monkeypatch):
    """Stand in for the three torchvision calls of transformers' video processor (see module doc)."""
    if HAVE_TORCHVISION:
        return
    from transformers import image_processing_backends as backends
    from transformers import video_processing_utils as vpu

    def resize(self, image, size, resample=None, antialias=True, **kwargs):
        assert int(resample) == 3 and antialias, "Qwen3.5 videos use antialiased bicubic"
        *lead, c, h, w = image.shape
        if (h, w) == (size.height, size.width):
            return image
        flat = image.reshape(-1, c, h, w)
        out = F.interpolate(flat, size=(size.height, size.width), mode="bicubic", align_corners=False, antialias=True)
        return out.reshape(*lead, c, size.height, size.width)

    def normalize(self, image, mean, std, inplace=False, **kwargs):
        mean = torch.as_tensor(mean, dtype=image.dtype).view(-1, 1, 1)
        std = torch.as_tensor(std, dtype=image.dtype).view(-1, 1, 1)
        return image.sub(mean).div_(std)

    def convert_to_rgb(self, video, input_data_format=None):
        assert video.shape[-3] == 3
        return video

    monkeypatch.setattr(backends.TorchvisionBackend, "resize", resize)
    monkeypatch.setattr(backends.TorchvisionBackend, "normalize", normalize)
    monkeypatch.setattr(vpu.BaseVideoProcessor, "convert_to_rgb", convert_to_rgb)


def _ours(folder: Path, **kw) -> Processor:
    return Processor.from_pretrained(folder, image_backend="torch" if HAVE_TORCHVISION else "pil", **kw)


def _smooth_image(width: int, height: int, seed: int, mode: str = "RGB") -> Image.Image:
    """Gradients plus noise: resizing has real work to do, values span 0..255."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width]
    base = np.stack([x * 255 / width, y * 255 / height, (x + y) * 127 / (width + height)], axis=-1)
    arr = np.clip(base + rng.normal(0, 30, base.shape), 0, 255).astype(np.uint8)
    if mode == "RGBA":
        alpha = rng.integers(0, 256, (height, width, 1), dtype=np.uint8)
        return Image.fromarray(np.concatenate([arr, alpha], axis=-1), "RGBA")
    return Image.fromarray(arr)


def _assert_same(ours: dict, theirs) -> None:
    keys = [k for k in ("input_ids", "attention_mask", "pixel_values", "image_grid_thw",
                        "pixel_values_videos", "video_grid_thw") if k in theirs]
    assert sorted(keys) == sorted(ours.keys())
    for key in keys:
        a, b = ours[key], torch.as_tensor(theirs[key])
        assert a.shape == b.shape, (key, a.shape, b.shape)
        assert a.dtype == b.dtype or key == "attention_mask", (key, a.dtype, b.dtype)
        assert torch.equal(a, b.to(a.dtype)), (key, (a.double() - b.double()).abs().max())


def _messages(*parts) -> list[dict]:
    return [{"role": "user", "content": list(parts)}]


def test_odd_portrait_image_equals_transformers(folder):
    image = _smooth_image(203, 517, seed=0)  # neither side a multiple of 32
    messages = _messages({"type": "image", "image": image}, {"type": "text", "text": "What is on the screen?"})
    hf = _hf_processor(folder)
    text = hf.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    ours = _ours(folder)
    assert ours.apply_chat_template(messages, tokenize=False) == text
    got = ours.apply_chat_template(messages)
    ref = hf(text=[text], images=[image], return_tensors="pt")
    _assert_same(got, ref)
    assert got["image_grid_thw"].tolist() == [[1, 32, 12]]
    assert (got["input_ids"] == ours.image_token_id).sum().item() == 32 * 12 // 4


def test_two_images_equal_transformers_and_respect_max_pixels(folder):
    images = [_smooth_image(640, 360, seed=1, mode="RGBA"), _smooth_image(150, 90, seed=2)]  # 2nd is upscaled
    messages = _messages(
        {"type": "text", "text": "Compare"}, {"type": "image", "image": images[0]},
        {"type": "text", "text": "and"}, {"type": "image", "image": images[1]},
    )
    for cap in (None, 128 * 32 * 32):
        hf = _hf_processor(folder, **({"longest_edge": cap} if cap else {}))
        text = hf.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        ours = _ours(folder, **({"max_pixels": cap} if cap else {}))
        got = ours.apply_chat_template(messages)
        _assert_same(got, hf(text=[text], images=images, return_tensors="pt"))
    grids = got["image_grid_thw"]
    assert (grids.prod(-1) * 16 * 16).max().item() <= 128 * 32 * 32  # the cap bit


def test_video_with_timestamps_equals_transformers(folder, torchvision_ops):
    from transformers.video_utils import VideoMetadata

    fps, indices = 6.0, [0, 3, 6, 9, 12, 15, 18]  # 7 frames: the last is repeated to pad
    frames = np.stack([np.asarray(_smooth_image(130, 90, seed=10 + i)) for i in range(len(indices))])
    seconds = [i / fps for i in indices]
    messages = _messages(
        {"type": "video", "video": list(frames), "timestamps": seconds},
        {"type": "text", "text": "What happens?"},
    )
    hf = _hf_processor(folder)
    text = hf.apply_chat_template(_messages({"type": "video"}, {"type": "text", "text": "What happens?"}),
                                  tokenize=False, add_generation_prompt=True)
    meta = VideoMetadata(total_num_frames=19, fps=fps, frames_indices=indices)
    ref = hf(text=[text], videos=[frames], video_metadata=[meta], do_sample_frames=False, return_tensors="pt")
    got = _ours(folder).apply_chat_template(messages)
    _assert_same(got, ref)
    t, h, w = got["video_grid_thw"][0].tolist()
    assert t == 4 and (h, w) == (6, 8)
    decoded = _ours(folder).decode(got["input_ids"][0], skip_special_tokens=False)
    for s in frame_group_timestamps(seconds):
        assert f"<{s:.1f} seconds><|vision_start|>" in decoded
    assert "<0.2 seconds>" in decoded and "<3.0 seconds>" in decoded


def _aa_bicubic_weights(in_size: int, out_size: int) -> np.ndarray:
    """[out, in] weights of antialiased bicubic resampling, written out from its definition: Keys'
    cubic with a = -0.5, stretched by the scale when shrinking (so every input pixel counts),
    centred on pixel centres, cut at the image edge and normalized to sum 1."""
    def cubic(x: np.ndarray) -> np.ndarray:
        a, x = -0.5, np.abs(x)
        return np.where(x < 1, ((a + 2) * x - (a + 3)) * x * x + 1,
                        np.where(x < 2, (((x - 5) * x + 8) * x - 4) * a, 0.0))

    scale = in_size / out_size
    stretch = max(scale, 1.0)
    support = 2.0 * stretch
    weights = np.zeros((out_size, in_size))
    for i in range(out_size):
        centre = (i + 0.5) * scale
        lo, hi = max(int(centre - support + 0.5), 0), min(int(centre + support + 0.5), in_size)
        w = cubic((np.arange(lo, hi) - centre + 0.5) / stretch)
        weights[i, lo:hi] = w / w.sum()
    return weights


def _resize_reference(frames: np.ndarray, height: int, width: int) -> np.ndarray:
    """uint8 [N, H, W, C] -> uint8 [N, height, width, C]: rows first, then columns, each pass
    rounded and clipped to uint8 (how uint8 resamplers work: Pillow, torch's uint8 kernel)."""
    x = frames.astype(np.float64)
    x = np.clip(np.round(np.einsum("ow,nhwc->nhoc", _aa_bicubic_weights(x.shape[2], width), x)), 0, 255)
    x = np.clip(np.round(np.einsum("oh,nhwc->nowc", _aa_bicubic_weights(x.shape[1], height), x)), 0, 255)
    return x.astype(np.uint8)


@pytest.mark.parametrize("clip, pixels", [
    ((4, 517, 203), dict(max_pixels=4 * 128 * 320)),  # shrunk, by a different factor per side
    ((3, 33, 47), dict(min_pixels=4 * 160 * 224)),  # enlarged; an odd frame count (last frame repeated)
], ids=["shrink", "enlarge"])
def test_video_resize_equals_an_independent_antialiased_bicubic(folder, clip, pixels):
    """The video path's resize against antialiased bicubic computed here from its definition in
    float64 (not the interpolation call the processor makes, nor torchvision, which only calls it):
    the processor's patches equal those of the reference frames but for rare rounding differences of
    a level or two (the uint8 kernel's fixed-point weights and sums vs float64 here)."""
    from dataclasses import replace

    from vlagent.model.processor import _normalize_torch, patchify

    n, h, w = clip
    frames = np.stack([np.asarray(_smooth_image(w, h, seed=20 + i)) for i in range(n)])
    ours = _ours(folder)
    ours = Processor(ours.tokenizer, ours.image_config, replace(ours.video_config, **pixels), image_backend="pil")
    got = ours("<|video_pad|>", videos=[list(frames)], video_timestamps=[[i / 2 for i in range(n)]])
    _, gh, gw = got["video_grid_thw"][0].tolist()
    height, width = gh * 16, gw * 16
    shrink = "max_pixels" in pixels
    assert (height < h and width < w) if shrink else (height > h and width > w)
    assert abs(height / h - width / w) > 0.01  # the two sides are scaled differently

    resized = torch.from_numpy(_resize_reference(frames, height, width)).permute(0, 3, 1, 2)
    pixels_ref = _normalize_torch(resized, ours.video_config)
    pixels_ref = torch.cat([pixels_ref, pixels_ref[-1:].expand(-n % 2, -1, -1, -1)])
    expected, grid = patchify(pixels_ref, ours.video_config)
    assert list(grid)[1:] == [gh, gw]
    one_level = 1 / 255 / min(ours.video_config.image_std)
    diff = (got["pixel_values_videos"] - expected).abs()
    assert diff.max() <= 2 * one_level * 1.001, f"off by {diff.max() / one_level:.2f} levels"
    assert (diff == 0).float().mean() >= 0.99


def test_batch_left_padding_and_text_only(folder):
    ours = _ours(folder)
    out = ours(["short", "a much longer prompt with more words"])
    mask = out["attention_mask"]
    assert mask[0, 0] == 0 and mask[0, -1] == 1 and mask[1].all()
    assert set(out) == {"input_ids", "attention_mask"}


def test_image_token_cap_shrinks_all_images(folder):
    images = [_smooth_image(1280, 720, seed=3), _smooth_image(720, 1280, seed=4)]
    ours = _ours(folder, max_image_tokens=300)
    out = ours(f"{IMAGE_TOKEN} and {IMAGE_TOKEN}", images=images)
    tokens = (out["image_grid_thw"].prod(-1) // 4).tolist()
    assert sum(tokens) <= 300 and min(tokens) >= 100
    assert (out["input_ids"] == ours.image_token_id).sum().item() == sum(tokens)


def test_clear_errors(folder):
    ours = _ours(folder)
    with pytest.raises(ValueError, match="1 <\\|image_pad\\|> placeholders but 0 images"):
        ours(f"look {IMAGE_TOKEN}")
    with pytest.raises(ValueError, match="timestamps"):
        ours("<|video_pad|>", videos=[[np.zeros((64, 64, 3), np.uint8)] * 2])
    with pytest.raises(ValueError, match="decoded frames"):
        ours("<|video_pad|>", videos=["clip.mp4"], video_fps=2.0)
    with pytest.raises(ValueError, match="HxWx3"):
        ours(IMAGE_TOKEN, images=[np.zeros((4, 64, 64), np.uint8)])
    with pytest.raises(FileNotFoundError):
        ours(IMAGE_TOKEN, images=["/nonexistent/screen.png"])
    with pytest.raises(ValueError, match="aspect ratio"):
        smart_resize(10, 4000, min_pixels=1, max_pixels=10**8)


def test_image_from_path_and_data_url(folder, tmp_path):
    from vlagent.images import to_data_url

    image = _smooth_image(300, 200, seed=5)
    image.save(tmp_path / "shot.png")
    ours = _ours(folder)
    a = ours.apply_chat_template(_messages({"type": "image", "image": str(tmp_path / "shot.png")}))
    b = ours.apply_chat_template(_messages({"type": "image_url", "image_url": {"url": to_data_url(image)}}))
    c = ours.apply_chat_template(_messages({"type": "image", "image": image}))
    assert torch.equal(a["pixel_values"], c["pixel_values"]) and torch.equal(b["pixel_values"], c["pixel_values"])
    assert torch.equal(a["input_ids"], b["input_ids"])


def test_torch_image_backend_equals_the_video_path(folder):
    """image_backend="torch" follows transformers' torchvision image processor, whose resize and
    fused normalization are the video processor's (checked above): a still image must equal a
    two-frame clip of itself when both get the same size."""
    from dataclasses import replace

    ours = _ours(folder)
    ours = Processor(ours.tokenizer, replace(ours.image_config, min_pixels=4096), ours.video_config,
                     image_backend="torch")
    image = _smooth_image(203, 117, seed=6)
    still = ours(IMAGE_TOKEN, images=[image])
    clip = ours("<|video_pad|>", videos=[[image, image]], video_timestamps=[[0.0, 0.5]])
    assert still["image_grid_thw"].tolist() == clip["video_grid_thw"].tolist() == [[1, 8, 12]]
    assert torch.equal(still["pixel_values"], clip["pixel_values_videos"])
    pil = Processor(ours.tokenizer, ours.image_config, ours.video_config, image_backend="pil")(IMAGE_TOKEN, images=[image])
    assert not torch.equal(pil["pixel_values"], still["pixel_values"])  # the two resamplers differ
