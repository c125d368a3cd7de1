"""What the harvesters of real screens share: targets, splits, records.

A harvester (GTK over AT-SPI, web pages through chromium, the practice
environments) captures a screenshot and a list of `ScreenTarget`s — an
element's name, kind and box in the screenshot's pixels. `screen_records`
turns one screen into `GroundingRecord`s: it drops targets whose name is not
unique on that screen (an instruction could not say which one is meant),
normalizes boxes to the project's [0, 1] convention, writes instructions
from name and role, and stamps the split.

Splits go by application or site, never by screen: the sources in
`TEST_SOURCES` appear only in `test` (nothing is ever trained on them), so
the test score measures how well a grounder generalizes to software it has
not seen; `VAL_SOURCES` likewise for validation.
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Sequence

from PIL import Image

from vlagent.grounding.dataset import ELEMENTS, GroundingRecord
from vlagent.grounding.phrasing import clean_name, instruction_for

# Applications and sites held out entirely. Keep at least one desktop app and
# one web site in each, so the test score covers both platforms.
TEST_SOURCES = frozenset({
    "gtk:gucharmap", "gtk:mousepad",
    "web:django-admin", "web:doc-valgrind",
    "practice:android", "practice:desktop-held-out",
})  # fmt: skip
VAL_SOURCES = frozenset({"gtk:file-chooser", "web:doc-libxslt"})

MIN_BOX_PIXELS = 4  # narrower or lower boxes are slivers, not clickable targets
MAX_NAME_CHARS = 60  # longer "names" are paragraphs (link text of a whole sentence)


class ScreenBudget:
    """How many screens a harvest may still capture (`--count`); unlimited when None."""

    def __init__(self, count: Any = None) -> None:
        self.left = None if count is None else int(count)
        if self.left is not None and self.left < 1:
            raise ValueError(f"count must be at least 1 screen, got {count!r}")

    @property
    def exhausted(self) -> bool:
        return self.left is not None and self.left <= 0

    def take(self) -> bool:
        """Claim one screen; False when none are left."""
        if self.exhausted:
            return False
        if self.left is not None:
            self.left -= 1
        return True


def split_for(source: str) -> str:
    """The split of every record of one application or site."""
    if source in TEST_SOURCES:
        return "test"
    if source in VAL_SOURCES:
        return "val"
    return "train"


@dataclass
class ScreenTarget:
    """One element of a captured screen, in the screenshot's pixels (x0, y0, x1, y1)."""

    name: str
    element: str
    box: tuple[float, float, float, float]
    role_word: str | None = None  # the word instructions use ("drop-down", "menu item"); None: the kind's default
    in_toolbar: bool = False
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.element not in ELEMENTS:
            raise ValueError(f"unknown element kind {self.element!r} for {self.name!r} (one of: {', '.join(ELEMENTS)})")


def normalize_box(box: Sequence[float], size: tuple[int, int]) -> tuple[float, float, float, float] | None:
    """A pixel box (x0, y0, x1, y1) as fractions of an image of `size`, clipped
    to the image; None when less than MIN_BOX_PIXELS remain in either direction."""
    width, height = size
    x0, y0 = max(0.0, float(box[0])), max(0.0, float(box[1]))
    x1, y1 = min(float(width), float(box[2])), min(float(height), float(box[3]))
    if x1 - x0 < MIN_BOX_PIXELS or y1 - y0 < MIN_BOX_PIXELS:
        return None
    return (x0 / width, y0 / height, x1 / width, y1 / height)


def unique_targets(targets: Iterable[ScreenTarget]) -> list[ScreenTarget]:
    """Targets with a usable name that no other target on the screen shares.

    Two "OK" buttons, or a "Bold" menu item and a "Bold" toolbar button, make
    "click Bold" ambiguous: all of them are dropped rather than guessing.
    """
    kept = [t for t in targets if usable_name(clean_name(t.name), t.element)]
    counts: dict[str, int] = {}
    for t in kept:
        key = clean_name(t.name).casefold()
        counts[key] = counts.get(key, 0) + 1
    return [t for t in kept if counts[clean_name(t.name).casefold()] == 1]


# Buttons labelled only with symbols (a calculator's "+", "=", "+/-") are fine targets.
_SYMBOL_CHARS = frozenset("+-*/=%().,<>^!")


def usable_name(name: str, element: str = "button") -> bool:
    """A name an instruction can quote: short, and words — or, for a button,
    calculator symbols (a link or list row named "-" shows nothing to find)."""
    if not name or len(name) > MAX_NAME_CHARS:
        return False
    return any(ch.isalnum() for ch in name) or (element == "button" and set(name) <= _SYMBOL_CHARS)


def screen_seed(source: str, screen_id: str) -> int:
    """A stable seed per screen (Python's hash() changes between runs)."""
    return int.from_bytes(hashlib.sha256(f"{source}/{screen_id}".encode()).digest()[:8], "little")


def save_screenshot(image: Image.Image, out_dir: Path, relative: str) -> str:
    """Write `image` as PNG at out_dir/relative (folders made); returns `relative`."""
    path = Path(out_dir) / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    image.convert("RGB").save(path, optimize=False, compress_level=6)
    return relative


def screen_records(
    image_rel: str,
    size: tuple[int, int],
    targets: Iterable[ScreenTarget],
    source: str,
    platform: str,
    screen_id: str,
    split: str | None = None,
    meta: dict[str, Any] | None = None,
) -> list[GroundingRecord]:
    """The records of one screen: unique, non-empty targets with instructions.

    `meta` (screen-level facts: page URL, window title, theme) is copied into
    each record's meta beside the target's own.
    """
    rng = random.Random(screen_seed(source, screen_id))
    split = split or split_for(source)
    records = []
    for t in unique_targets(targets):
        box = normalize_box(t.box, size)
        if box is None:
            continue
        name = clean_name(t.name)
        records.append(
            GroundingRecord(
                image=image_rel,
                instruction=instruction_for(name, t.element, rng, t.role_word, t.in_toolbar),
                box=box,
                platform=platform,
                element=t.element,
                source=source,
                split=split,
                meta={"screen": screen_id, "name": name, **(meta or {}), **t.meta},
            )
        )
    return records


__all__ = [
    "MAX_NAME_CHARS", "MIN_BOX_PIXELS", "TEST_SOURCES", "VAL_SOURCES", "ScreenBudget", "ScreenTarget", "normalize_box",
    "save_screenshot", "screen_records", "screen_seed", "split_for", "unique_targets", "usable_name",
]  # fmt: skip
