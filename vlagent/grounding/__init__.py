"""Grounding: where on the screen is the element an instruction means?

- `dataset`: the record format (JSONL, normalized boxes), its readers and writers.
- `readers`: ScreenSpot / ScreenSpot-v2 / ScreenSpot-Pro files as records.
- `synthetic`: Pillow-drawn screens with known element boxes.
- `harvest`: the `HARVESTERS` registry behind `vlagent grounding-data harvest`.
- `grounders`: the `Grounder` protocol and the baselines (OCR match, centre,
  API model, local checkpoint).
- `evaluate` / `cli`: `vlagent eval-grounding`.

Only the record format is imported eagerly; everything else pulls optional
dependencies (rapidocr, torch, openai) and is imported where used.
"""

from vlagent.grounding.dataset import (
    ACTIONS,
    ELEMENTS,
    PLATFORMS,
    SPLITS,
    DatasetError,
    GroundingRecord,
    OcrLine,
    append_dataset,
    read_dataset,
    write_dataset,
)

__all__ = [
    "ACTIONS", "ELEMENTS", "PLATFORMS", "SPLITS", "DatasetError", "GroundingRecord", "OcrLine",
    "append_dataset", "read_dataset", "write_dataset",
]  # fmt: skip
