"""Readers for the public grounding benchmarks users already have on disk.

Each reader returns `GroundingRecord`s (split "test", `base_dir` = the
benchmark's image folder) so the eval command scores them like our own data.

ScreenSpot (SeeClick) and ScreenSpot-v2 (OS-Atlas): one JSON list per
platform, `screenspot_{desktop,mobile,web}.json` (v2:
`screenspot_{desktop,mobile,web}_v2.json`), images in `screenspot_imgs/`
(v2: `screenspotv2_image/`). Each entry::

    {"img_filename": "pc_xxx.png", "bbox": [x, y, w, h],   # pixels
     "instruction": "close this window", "data_type": "icon" | "text",
     "data_source": "windows" | "macos" | "ios" | "android" | "gitlab" | ...}

ScreenSpot-Pro: one JSON list per application and OS under `annotations/`,
images under `images/` (img_filename may hold a sub-folder)::

    {"img_filename": "vscode_macos/xxx.png", "bbox": [x0, y0, x1, y1],  # pixels
     "img_size": [w, h], "instruction": "...", "instruction_cn": "...",
     "id": "...", "application": "vscode", "platform": "macos",
     "group": "Dev", "ui_type": "text" | "icon"}

Public annotations sometimes overshoot the image by a pixel or two; boxes
within `EDGE_TOLERANCE_PX` of the edge are clipped, anything further is an
error naming the file and entry.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Callable, Sequence

from PIL import Image

from vlagent.grounding.dataset import DatasetError, GroundingRecord, check_box, read_dataset, validate_record

EDGE_TOLERANCE_PX = 2.0

# ScreenSpot's data_type: "text" targets are elements identified by their visible
# text, "icon" targets by their pictogram/shape. Both map onto our element kinds.
_UI_TYPE_TO_ELEMENT = {"text": "text", "icon": "icon"}
# The record format knows desktop | android | web; ScreenSpot's "mobile" mixes iOS
# and Android screens, which we file under the one mobile platform we have.
_SCREENSPOT_PLATFORM = {"desktop": "desktop", "mobile": "android", "web": "web"}
_SCREENSPOT_IMAGE_DIRS = ("screenspot_imgs", "screenspotv2_image", "images", "imgs")


def _load_json_list(path: Path) -> list[Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DatasetError("file not found", path) from None
    except json.JSONDecodeError as exc:
        raise DatasetError(f"not valid JSON ({exc.msg})", path, exc.lineno) from None
    if not isinstance(data, list):
        raise DatasetError(f"expected a JSON list of entries, got {type(data).__name__}", path)
    return data


def _image_size(path: Path) -> tuple[int, int]:
    with Image.open(path) as im:  # reads the header only
        return im.size


def _normalize_xyxy(box: Sequence[float], width: float, height: float) -> tuple[float, float, float, float]:
    x0, y0, x1, y1 = (float(v) for v in box)
    tol = EDGE_TOLERANCE_PX

    def clip(v: float, hi: float) -> float:
        if -tol <= v < 0:
            return 0.0
        if hi < v <= hi + tol:
            return hi
        return v

    x0, x1 = clip(x0, width), clip(x1, width)
    y0, y1 = clip(y0, height), clip(y1, height)
    return check_box([x0 / width, y0 / height, x1 / width, y1 / height])


def _entry_error(path: Path, index: int, message: str) -> DatasetError:
    # JSON-list datasets have no useful line numbers; name the entry instead.
    return DatasetError(f"entry {index} (0-based): {message}", path)


def _require(entry: Any, keys: Sequence[str]) -> None:
    if not isinstance(entry, dict):
        raise ValueError(f"expected an object, got {type(entry).__name__}")
    missing = [k for k in keys if k not in entry]
    if missing:
        raise ValueError(f"missing field(s) {', '.join(missing)}")


def _find_image_dir(json_path: Path, candidates: Sequence[str]) -> Path:
    for folder in (json_path.parent, json_path.parent.parent):
        for name in candidates:
            if (folder / name).is_dir():
                return folder / name
    return json_path.parent


def read_screenspot(
    json_path: str | os.PathLike[str], images_dir: str | os.PathLike[str] | None = None
) -> list[GroundingRecord]:
    """Records of one ScreenSpot or ScreenSpot-v2 JSON file (bbox: x, y, w, h pixels)."""
    path = Path(json_path)
    entries = _load_json_list(path)
    image_dir = Path(images_dir) if images_dir is not None else _find_image_dir(path, _SCREENSPOT_IMAGE_DIRS)
    stem = path.stem.lower()
    version = "screenspot-v2" if stem.endswith("_v2") or "v2" in image_dir.name.lower() else "screenspot"
    platform_key = next((k for k in _SCREENSPOT_PLATFORM if k in stem), None)
    records = []
    for i, entry in enumerate(entries):
        try:
            _require(entry, ("img_filename", "bbox", "instruction", "data_type", "data_source"))
            bbox = entry["bbox"]
            if not isinstance(bbox, list) or len(bbox) != 4:
                raise ValueError(f"bbox must be [x, y, w, h] in pixels, got {bbox!r}")
            image_file = image_dir / entry["img_filename"]
            if not image_file.is_file():
                raise ValueError(f"image {entry['img_filename']!r} not found in {image_dir}")
            width, height = _image_size(image_file)
            x, y, w, h = (float(v) for v in bbox)
            box = _normalize_xyxy((x, y, x + w, y + h), width, height)
            element = _UI_TYPE_TO_ELEMENT.get(entry["data_type"])
            if element is None:
                raise ValueError(f"unknown data_type {entry['data_type']!r} (text or icon)")
            platform = _SCREENSPOT_PLATFORM.get(platform_key or "", None) or _platform_from_source(entry["data_source"])
            record = GroundingRecord(
                image=entry["img_filename"],
                instruction=entry["instruction"],
                box=box,
                platform=platform,
                element=element,
                source=f"{version}:{entry['data_source']}",
                split="test",
                meta={"data_type": entry["data_type"], "data_source": entry["data_source"]},
                base_dir=image_dir,
            )
            validate_record(record)
        except ValueError as exc:
            raise _entry_error(path, i, str(exc)) from None
        records.append(record)
    return records


def _platform_from_source(data_source: str) -> str:
    source = str(data_source).lower()
    if source in ("ios", "android"):
        return "android"
    if source in ("windows", "macos", "linux"):
        return "desktop"
    return "web"


def read_screenspot_pro(
    json_path: str | os.PathLike[str], images_dir: str | os.PathLike[str] | None = None
) -> list[GroundingRecord]:
    """Records of one ScreenSpot-Pro annotation file (bbox: x0, y0, x1, y1 pixels; img_size given)."""
    path = Path(json_path)
    entries = _load_json_list(path)
    image_dir = Path(images_dir) if images_dir is not None else _find_image_dir(path, ("images",))
    records = []
    for i, entry in enumerate(entries):
        try:
            _require(entry, ("img_filename", "bbox", "instruction", "ui_type", "platform", "application"))
            bbox = entry["bbox"]
            if not isinstance(bbox, list) or len(bbox) != 4:
                raise ValueError(f"bbox must be [x0, y0, x1, y1] in pixels, got {bbox!r}")
            image_file = image_dir / entry["img_filename"]
            if not image_file.is_file():
                raise ValueError(f"image {entry['img_filename']!r} not found in {image_dir}")
            size = entry.get("img_size")
            if isinstance(size, list) and len(size) == 2:
                width, height = float(size[0]), float(size[1])
            else:
                width, height = _image_size(image_file)
            element = _UI_TYPE_TO_ELEMENT.get(entry["ui_type"])
            if element is None:
                raise ValueError(f"unknown ui_type {entry['ui_type']!r} (text or icon)")
            meta = {k: entry[k] for k in ("id", "group", "instruction_cn", "platform", "application") if k in entry}
            record = GroundingRecord(
                image=entry["img_filename"],
                instruction=entry["instruction"],
                box=_normalize_xyxy(bbox, width, height),
                platform="desktop",  # every ScreenSpot-Pro screen is a desktop application
                element=element,
                source=f"screenspot-pro:{entry['application']}",
                split="test",
                meta=meta,
                base_dir=image_dir,
            )
            validate_record(record)
        except ValueError as exc:
            raise _entry_error(path, i, str(exc)) from None
        records.append(record)
    return records


# --------------------------------------------------------------------------- any format


def _json_kind(path: Path) -> Callable[..., list[GroundingRecord]]:
    entries = _load_json_list(path)
    first = next((e for e in entries if isinstance(e, dict)), None)
    if first is None:
        raise DatasetError("no entries: an empty dataset is an error, not a 0 % score", path)
    if "ui_type" in first or "img_size" in first:
        return read_screenspot_pro
    if "data_type" in first:
        return read_screenspot
    raise DatasetError(
        "unrecognised JSON layout: expected ScreenSpot (data_type) or ScreenSpot-Pro (ui_type) entries", path
    )


def load_records(path: str | os.PathLike[str]) -> list[GroundingRecord]:
    """Records from any supported dataset path.

    - a `.jsonl` file, or a folder holding `.jsonl` files: our record format;
    - a ScreenSpot / ScreenSpot-v2 / ScreenSpot-Pro `.json` file;
    - a ScreenSpot folder (its `screenspot_*.json`) or a ScreenSpot-Pro folder
      (its `annotations/*.json`).
    An empty result is a DatasetError.
    """
    path = Path(path)
    if not path.exists():
        raise DatasetError("dataset not found", path)
    if path.is_file():
        records = _json_kind(path)(path) if path.suffix.lower() == ".json" else read_dataset(path)
    elif any(path.glob("*.jsonl")):
        records = read_dataset(path)
    elif (path / "annotations").is_dir():
        records = [r for f in sorted((path / "annotations").glob("*.json")) for r in read_screenspot_pro(f)]
    elif any(path.glob("screenspot_*.json")):
        records = [r for f in sorted(path.glob("screenspot_*.json")) for r in read_screenspot(f)]
    else:
        raise DatasetError("folder holds no *.jsonl, screenspot_*.json or annotations/*.json", path)
    if not records:
        raise DatasetError("dataset holds no records: an empty dataset is an error, not a 0 % score", path)
    return records


__all__ = ["EDGE_TOLERANCE_PX", "load_records", "read_screenspot", "read_screenspot_pro"]
