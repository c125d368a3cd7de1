"""ScreenSpot / ScreenSpot-v2 / ScreenSpot-Pro readers, on small files written in their layouts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image

from vlagent.grounding.dataset import DatasetError
from vlagent.grounding.readers import load_records, read_screenspot, read_screenspot_pro


def _png(path: Path, size: tuple[int, int]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, "white").save(path)


def _screenspot(root: Path, image_dir: str, suffix: str) -> Path:
    _png(root / image_dir / "pc_1.png", (960, 540))
    _png(root / image_dir / "mobile_1.png", (400, 800))
    desktop = [
        # The layout of SeeClick's screenspot_desktop.json: bbox is x, y, w, h in pixels.
        {"img_filename": "pc_1.png", "bbox": [910, 78, 44, 34], "instruction": "close this window",
         "data_type": "icon", "data_source": "windows"},
        {"img_filename": "pc_1.png", "bbox": [0, 500, 96, 40], "instruction": "start menu",
         "data_type": "text", "data_source": "windows"},
    ]  # fmt: skip
    mobile = [
        {"img_filename": "mobile_1.png", "bbox": [100, 700, 200, 80], "instruction": "tap Send",
         "data_type": "text", "data_source": "ios"},
    ]  # fmt: skip
    (root / f"screenspot_desktop{suffix}.json").write_text(json.dumps(desktop))
    (root / f"screenspot_mobile{suffix}.json").write_text(json.dumps(mobile))
    return root


@pytest.mark.parametrize(("image_dir", "suffix", "version"), [
    ("screenspot_imgs", "", "screenspot"),
    ("screenspotv2_image", "_v2", "screenspot-v2"),
])  # fmt: skip
def test_screenspot_bbox_is_xywh_pixels(tmp_path: Path, image_dir: str, suffix: str, version: str) -> None:
    root = _screenspot(tmp_path, image_dir, suffix)
    records = read_screenspot(root / f"screenspot_desktop{suffix}.json")
    close = records[0]
    assert close.box == pytest.approx((910 / 960, 78 / 540, 954 / 960, 112 / 540))
    assert (close.element, close.platform, close.split) == ("icon", "desktop", "test")
    assert close.source == f"{version}:windows"
    assert close.image_path == root / image_dir / "pc_1.png"
    assert records[1].element == "text"

    everything = load_records(root)
    assert len(everything) == 3
    phone = [r for r in everything if r.platform == "android"]
    assert len(phone) == 1 and phone[0].box == pytest.approx((0.25, 0.875, 0.75, 0.975))


def test_screenspot_pro_bbox_is_xyxy_pixels_with_subfolders(tmp_path: Path) -> None:
    _png(tmp_path / "images" / "vscode_macos" / "shot.png", (3840, 2160))
    entries = [
        {"img_filename": "vscode_macos/shot.png", "bbox": [1920, 1080, 2000, 1120], "img_size": [3840, 2160],
         "instruction": "open the Explorer view", "instruction_cn": "打开资源管理器", "id": "vscode_macos_0",
         "application": "vscode", "platform": "macos", "group": "Dev", "ui_type": "icon"},
    ]  # fmt: skip
    (tmp_path / "annotations").mkdir()
    ann = tmp_path / "annotations" / "vscode_macos.json"
    ann.write_text(json.dumps(entries, ensure_ascii=False))
    (r,) = read_screenspot_pro(ann)
    assert r.box == pytest.approx((0.5, 0.5, 2000 / 3840, 1120 / 2160))
    assert (r.platform, r.element, r.source) == ("desktop", "icon", "screenspot-pro:vscode")
    assert r.meta["instruction_cn"] == "打开资源管理器" and r.meta["group"] == "Dev"
    assert load_records(tmp_path)[0].box == r.box
    assert load_records(ann)[0].box == r.box


def test_reader_errors_name_file_and_entry(tmp_path: Path) -> None:
    _png(tmp_path / "screenspot_imgs" / "pc_1.png", (100, 100))
    bad = tmp_path / "screenspot_web.json"
    bad.write_text(json.dumps([
        {"img_filename": "pc_1.png", "bbox": [10, 10, 20, 20], "instruction": "a", "data_type": "text", "data_source": "x"},
        {"img_filename": "pc_1.png", "bbox": [90, 10, 50, 20], "instruction": "b", "data_type": "text", "data_source": "x"},
    ]))  # fmt: skip
    with pytest.raises(DatasetError, match=r"screenspot_web.json: entry 1 \(0-based\): box .* outside \[0, 1\]"):
        read_screenspot(bad)
    bad.write_text(json.dumps([
        {"img_filename": "gone.png", "bbox": [1, 1, 2, 2], "instruction": "a", "data_type": "text", "data_source": "x"},
    ]))  # fmt: skip
    with pytest.raises(DatasetError, match=r"entry 0 \(0-based\): image 'gone.png' not found"):
        read_screenspot(bad)
    bad.write_text("[]")
    with pytest.raises(DatasetError, match="empty dataset is an error"):
        load_records(bad)


def test_one_pixel_overshoot_is_clipped(tmp_path: Path) -> None:
    _png(tmp_path / "screenspot_imgs" / "w.png", (200, 100))
    f = tmp_path / "screenspot_web.json"
    f.write_text(json.dumps([
        {"img_filename": "w.png", "bbox": [150, 50, 51, 51], "instruction": "a", "data_type": "icon", "data_source": "x"},
    ]))  # fmt: skip
    (r,) = read_screenspot(f)
    assert r.box == pytest.approx((0.75, 0.5, 1.0, 1.0))
