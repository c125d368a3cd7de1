"""Cache each screen's text segments (OCR, then split as the grounder reads them) in its records.

OCR takes most of a second per screenshot on a small CPU; training visits every screen many times,
so `cache_screen_text` runs it once per image and writes the segments into the records' `ocr` field
(the dataset file is rewritten in place, atomically).
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Callable

from PIL import Image

from vlagent.grounding.dataset import OcrLine, dataset_files, iter_dataset, write_dataset


def cache_screen_text(path: str | Path, progress: Callable[[int, int], None] | None = None) -> int:
    """Fill in `ocr` for every record of the dataset at `path` that lacks it; returns the screens read."""
    from vlagent.grounding.grounders.head import screen_text

    read = 0
    for file in dataset_files(path):
        records = list(iter_dataset(file))
        missing = sorted({r.image_path for r in records if r.ocr is None})
        segments: dict[Path, list[OcrLine]] = {}
        for i, image_path in enumerate(missing):
            with Image.open(image_path) as im:
                segments[image_path] = [OcrLine(s.text, s.box) for s in screen_text(im.convert("RGB"))]
            if progress is not None:
                progress(i + 1, len(missing))
        if not missing:
            continue
        for r in records:
            if r.ocr is None:
                r.ocr = segments[r.image_path]
        tmp = file.with_suffix(".jsonl.tmp")
        write_dataset(tmp, records)
        os.replace(tmp, file)
        read += len(missing)
    return read
