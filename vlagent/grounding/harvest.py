"""The harvester registry behind `vlagent grounding-data harvest --source NAME`.

A harvester is a callable::

    harvester(out_dir: Path, **options) -> list[GroundingRecord]

It writes its screenshots under `out_dir` and returns the records, each with
`image` relative to `out_dir` (e.g. "synthetic/000012.png"). It does not
write the JSONL file: `harvest()` validates the records and writes
`out_dir/<name>.jsonl` with `write_dataset`, so every source ends up in the
same checked format. Options come from the command line: `count` (int) and
`seed` (int) when the user gives `--count` / `--seed`, and any
`--option KEY=VALUE` as strings. A harvester raises TypeError for an option it
does not know and `HarvestError` when its source is unavailable (no X server,
no chromium, ...); the command turns both into clear messages.

Entries are `_lazy("module", "function")` so that listing the sources never
imports a harvester's heavy dependencies.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any, Callable

from vlagent.grounding.dataset import DatasetError, GroundingRecord, write_dataset

Harvester = Callable[..., list[GroundingRecord]]


class HarvestError(RuntimeError):
    """A source that cannot be harvested here (missing program, display, package...)."""


def _lazy(module: str, function: str) -> Harvester:
    """A harvester that imports `module.function` on first call."""

    def call(out_dir: Path, **options: Any) -> list[GroundingRecord]:
        return getattr(importlib.import_module(module), function)(out_dir, **options)

    call.__name__ = f"{module}.{function}"
    call.__qualname__ = call.__name__
    return call


# name -> harvester. Other sources add one line each here.
HARVESTERS: dict[str, Harvester] = {
    "synthetic": _lazy("vlagent.grounding.synthetic", "harvest_synthetic"),
    "gtk": _lazy("vlagent.grounding.harvest_gtk", "harvest_gtk"),
    "web": _lazy("vlagent.grounding.harvest_web", "harvest_web"),
    "practice": _lazy("vlagent.grounding.harvest_practice", "harvest_practice"),
    "android": _lazy("vlagent.grounding.harvest_adb", "harvest_android"),
}


def harvest(source: str, out_dir: str | Path, **options: Any) -> Path:
    """Run the harvester `source` into `out_dir`; returns the JSONL file written.

    Raises KeyError for an unknown source, DatasetError when the harvester
    returned no records or an invalid one.
    """
    if source not in HARVESTERS:
        raise KeyError(f"unknown harvest source {source!r} (one of: {', '.join(sorted(HARVESTERS))})")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    records = HARVESTERS[source](out, **options)
    target = out / f"{source}.jsonl"
    if not records:
        raise DatasetError(f"harvester {source!r} produced no records", target)
    write_dataset(target, records)
    return target


__all__ = ["HARVESTERS", "HarvestError", "Harvester", "harvest"]
