"""The grounding record format: one JSONL line per target.

A dataset is a JSONL file whose lines each name a screenshot (a path relative
to the JSONL file's folder), an instruction, and the target's box in the
project's one coordinate convention: normalized [x0, y0, x1, y1] floats of the
screenshot, x right, y down. Example line::

    {"image": "images/000001.png", "instruction": "the Save button",
     "box": [0.41, 0.82, 0.52, 0.88], "action": "click", "platform": "desktop",
     "element": "button", "source": "synthetic:desktop", "split": "train"}

Every reader and writer here validates each record and names the file and the
line of the first bad one, because a silently skipped or mis-scaled box turns
into a wrong accuracy figure nobody can trace. An empty dataset is an error,
never a 0 % score.

Harvesters (synthetic, GTK, web, practice) build `GroundingRecord`s and call
`write_dataset` / `append_dataset`; evaluation and training call
`read_dataset`.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping, Sequence

PLATFORMS = ("desktop", "android", "web")
ELEMENTS = (
    "button", "icon", "link", "field", "checkbox", "radio", "switch",
    "menu", "tab", "list item", "slider", "text",
)  # fmt: skip
ACTIONS = ("click", "double", "right", "type", "scroll", "long-press")
SPLITS = ("train", "val", "test")

# The keys a JSONL line may carry; anything else is a typo we want to hear about.
_REQUIRED_KEYS = ("image", "instruction", "box", "platform", "element", "source", "split")
_OPTIONAL_KEYS = ("action", "text", "ocr", "meta")

Box = tuple[float, float, float, float]


class DatasetError(ValueError):
    """A dataset that cannot be used as it is; the message names file and line."""

    def __init__(self, message: str, path: str | os.PathLike[str] | None = None, line: int | None = None) -> None:
        self.path = None if path is None else str(path)
        self.line = line
        where = ""
        if self.path is not None:
            where = self.path if line is None else f"{self.path}:{line}"
            where += ": "
        super().__init__(where + message)
        self.reason = message


@dataclass(frozen=True)
class OcrLine:
    """One OCR text line cached with a record: its text, normalized box and score."""

    text: str
    box: Box
    score: float = 1.0

    def to_json(self) -> dict[str, Any]:
        return {"text": self.text, "box": [round(v, 6) for v in self.box], "score": round(float(self.score), 4)}

    @classmethod
    def from_json(cls, data: Any) -> "OcrLine":
        if not isinstance(data, Mapping) or "text" not in data or "box" not in data:
            raise ValueError(f"an ocr line must be an object with 'text' and 'box', got {data!r}")
        if not isinstance(data["text"], str):
            raise ValueError(f"ocr line text must be a string, got {data['text']!r}")
        score = data.get("score", 1.0)
        if not isinstance(score, (int, float)) or isinstance(score, bool):
            raise ValueError(f"ocr line score must be a number, got {score!r}")
        return cls(text=data["text"], box=check_box(data["box"]), score=float(score))


@dataclass
class GroundingRecord:
    """One grounding target.

    `image` is the screenshot's path relative to the folder of the JSONL file
    that holds the record (for records from a public-format reader: relative
    to that dataset's image folder). `base_dir` is that folder once the
    record was read or written; it is not serialized. `meta` carries
    source-specific extras (screen id, application, original labels) and is
    written only when not empty.
    """

    image: str
    instruction: str
    box: Box
    platform: str
    element: str
    source: str
    split: str
    action: str = "click"
    text: str | None = None
    ocr: list[OcrLine] | None = None
    meta: dict[str, Any] = field(default_factory=dict)
    base_dir: Path | None = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        self.box = tuple(float(v) for v in self.box)  # type: ignore[assignment]

    @property
    def image_path(self) -> Path:
        """The screenshot's path on disk (needs `base_dir`, set by the readers and writers)."""
        if self.base_dir is None:
            raise DatasetError(f"record for {self.image!r} has no base_dir: read it with read_dataset")
        return self.base_dir / self.image

    @property
    def center(self) -> tuple[float, float]:
        x0, y0, x1, y1 = self.box
        return ((x0 + x1) / 2, (y0 + y1) / 2)

    def contains(self, point: Sequence[float] | None) -> bool:
        """Whether a normalized (x, y) point lies inside the target box (edges count)."""
        if point is None:
            return False
        x, y = float(point[0]), float(point[1])
        x0, y0, x1, y1 = self.box
        return x0 <= x <= x1 and y0 <= y <= y1

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "image": self.image,
            "instruction": self.instruction,
            "box": [round(v, 6) for v in self.box],
            "action": self.action,
        }
        if self.text is not None:
            out["text"] = self.text
        out.update(platform=self.platform, element=self.element, source=self.source, split=self.split)
        if self.ocr is not None:
            out["ocr"] = [line.to_json() for line in self.ocr]
        if self.meta:
            out["meta"] = self.meta
        return out

    @classmethod
    def from_json(cls, data: Any, base_dir: Path | None = None) -> "GroundingRecord":
        """Build and validate a record from one parsed JSONL line (raises ValueError)."""
        if not isinstance(data, Mapping):
            raise ValueError(f"a record must be a JSON object, got {type(data).__name__}")
        missing = [k for k in _REQUIRED_KEYS if k not in data]
        if missing:
            raise ValueError(f"missing field(s) {', '.join(missing)}")
        unknown = sorted(set(data) - set(_REQUIRED_KEYS) - set(_OPTIONAL_KEYS))
        if unknown:
            raise ValueError(f"unknown field(s) {', '.join(unknown)}")
        ocr_raw = data.get("ocr")
        if ocr_raw is not None and not isinstance(ocr_raw, list):
            raise ValueError(f"'ocr' must be a list of lines, got {type(ocr_raw).__name__}")
        meta = data.get("meta") or {}
        if not isinstance(meta, Mapping):
            raise ValueError(f"'meta' must be an object, got {type(meta).__name__}")
        record = cls(
            image=data["image"],
            instruction=data["instruction"],
            box=check_box(data["box"]),
            platform=data["platform"],
            element=data["element"],
            source=data["source"],
            split=data["split"],
            action=data.get("action", "click"),
            text=data.get("text"),
            ocr=None if ocr_raw is None else [OcrLine.from_json(line) for line in ocr_raw],
            meta=dict(meta),
            base_dir=base_dir,
        )
        validate_record(record, check_image=False)
        return record


def check_box(box: Any) -> Box:
    """A normalized [x0, y0, x1, y1] box with 0 <= x0 < x1 <= 1 and 0 <= y0 < y1 <= 1, or ValueError."""
    if not isinstance(box, (list, tuple)) or len(box) != 4:
        raise ValueError(f"box must be [x0, y0, x1, y1], got {box!r}")
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in box):
        raise ValueError(f"box values must be numbers, got {box!r}")
    x0, y0, x1, y1 = (float(v) for v in box)
    if not all(math.isfinite(v) for v in (x0, y0, x1, y1)):
        raise ValueError(f"box values must be finite, got {list(box)!r}")
    if min(x0, y0, x1, y1) < 0.0 or max(x0, y0, x1, y1) > 1.0:
        raise ValueError(
            f"box {list(box)!r} is outside [0, 1]: boxes are normalized fractions of the screenshot, not pixels"
        )
    if not (x0 < x1 and y0 < y1):
        raise ValueError(f"box {list(box)!r} is empty (needs x0 < x1 and y0 < y1)")
    return (x0, y0, x1, y1)


def _check_choice(name: str, value: Any, allowed: Sequence[str]) -> None:
    if value not in allowed:
        raise ValueError(f"unknown {name} {value!r} (one of: {', '.join(allowed)})")


def validate_record(record: GroundingRecord, check_image: bool = True) -> None:
    """Raise ValueError naming the first problem of `record`.

    With `check_image`, the screenshot must exist under `record.base_dir`.
    """
    if not isinstance(record.image, str) or not record.image:
        raise ValueError(f"image must be a non-empty relative path, got {record.image!r}")
    if os.path.isabs(record.image):
        raise ValueError(f"image must be relative to the dataset file, got the absolute path {record.image!r}")
    if not isinstance(record.instruction, str) or not record.instruction.strip():
        raise ValueError(f"instruction must be a non-empty string, got {record.instruction!r}")
    check_box(list(record.box))
    _check_choice("platform", record.platform, PLATFORMS)
    _check_choice("element", record.element, ELEMENTS)
    _check_choice("action", record.action, ACTIONS)
    _check_choice("split", record.split, SPLITS)
    if not isinstance(record.source, str) or not record.source.strip():
        raise ValueError(f"source must be a non-empty string such as 'gtk:galculator', got {record.source!r}")
    if record.text is not None and not isinstance(record.text, str):
        raise ValueError(f"text must be a string, got {record.text!r}")
    if check_image:
        path = record.image_path
        if not path.is_file():
            raise ValueError(f"image {record.image!r} not found (looked for {path})")


# --------------------------------------------------------------------------- writing


def _dump_lines(path: Path, records: Iterable[GroundingRecord], mode: str) -> int:
    path = Path(path)
    base = path.parent
    lines = []
    for i, record in enumerate(records, 1):
        record.base_dir = base
        try:
            validate_record(record)
        except ValueError as exc:
            raise DatasetError(f"record {i} to write is invalid: {exc}", path) from None
        lines.append(json.dumps(record.to_json(), ensure_ascii=False))
    if not lines and mode == "w":
        raise DatasetError("no records to write: an empty dataset is an error", path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, mode, encoding="utf-8") as f:
        for line in lines:
            f.write(line + "\n")
    return len(lines)


def write_dataset(path: str | os.PathLike[str], records: Iterable[GroundingRecord]) -> int:
    """Write `records` to the JSONL file `path` (replacing it); returns how many.

    Every record is validated first, its image resolved against the file's
    folder, so a dataset on disk is always readable.
    """
    return _dump_lines(Path(path), records, "w")


def append_dataset(path: str | os.PathLike[str], records: Iterable[GroundingRecord]) -> int:
    """Append `records` to the JSONL file `path` (created if missing); returns how many."""
    return _dump_lines(Path(path), records, "a")


# --------------------------------------------------------------------------- reading


def iter_dataset(path: str | os.PathLike[str], check_images: bool = True) -> Iterator[GroundingRecord]:
    """Yield the records of one JSONL file, validated; blank lines are skipped.

    Raises DatasetError naming the file and line of the first bad record.
    """
    path = Path(path)
    if not path.is_file():
        raise DatasetError("dataset file not found", path)
    base = path.parent
    with open(path, encoding="utf-8") as f:
        for number, raw in enumerate(f, 1):
            if not raw.strip():
                continue
            try:
                data = json.loads(raw)
            except json.JSONDecodeError as exc:
                raise DatasetError(f"not valid JSON ({exc.msg} at column {exc.colno})", path, number) from None
            try:
                record = GroundingRecord.from_json(data, base_dir=base)
                if check_images:
                    validate_record(record, check_image=True)
            except ValueError as exc:
                raise DatasetError(str(exc), path, number) from None
            yield record


def dataset_files(path: str | os.PathLike[str]) -> list[Path]:
    """The JSONL files of a dataset: the file itself, or every *.jsonl in a folder (sorted)."""
    path = Path(path)
    if path.is_dir():
        files = sorted(path.glob("*.jsonl"))
        if not files:
            raise DatasetError("folder holds no *.jsonl dataset file", path)
        return files
    if not path.exists():
        raise DatasetError("dataset not found", path)
    return [path]


def read_dataset(path: str | os.PathLike[str], check_images: bool = True) -> list[GroundingRecord]:
    """All records of a JSONL file (or of every *.jsonl file in a folder).

    An empty dataset raises DatasetError: a score over zero targets means
    nothing, and usually a harvest that wrote nothing.
    """
    records: list[GroundingRecord] = []
    for file in dataset_files(path):
        records.extend(iter_dataset(file, check_images=check_images))
    if not records:
        raise DatasetError("dataset holds no records: an empty dataset is an error, not a 0 % score", path)
    return records


def summarize(records: Sequence[GroundingRecord]) -> dict[str, dict[str, int]]:
    """Counts of records by source, split, platform and element (for docs and harvest logs)."""
    out: dict[str, dict[str, int]] = {"source": {}, "split": {}, "platform": {}, "element": {}}
    for r in records:
        for key in out:
            value = getattr(r, key)
            out[key][value] = out[key].get(value, 0) + 1
    return {k: dict(sorted(v.items())) for k, v in out.items()}


__all__ = [
    "ACTIONS", "ELEMENTS", "PLATFORMS", "SPLITS", "Box", "DatasetError", "GroundingRecord", "OcrLine",
    "append_dataset", "check_box", "dataset_files", "iter_dataset", "read_dataset", "summarize",
    "validate_record", "write_dataset",
]  # fmt: skip
