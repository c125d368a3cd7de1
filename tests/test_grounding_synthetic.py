"""The synthetic screen generator: deterministic, boxes inside the image and on drawn pixels,
varied, and the box of a labelled button holds that label according to OCR."""

from __future__ import annotations

import difflib
import random
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from vlagent.grounding.dataset import ELEMENTS, read_dataset
from vlagent.grounding.harvest import HARVESTERS, harvest
from vlagent.grounding.synthetic import STYLES, make_screen, write_instructions


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return harvest("synthetic", tmp_path_factory.mktemp("synth"), count=40, seed=11)


def test_same_seed_same_screen_other_seed_other_screen() -> None:
    a, b = make_screen(5, 3), make_screen(5, 3)
    assert a.image.tobytes() == b.image.tobytes()
    assert [(e.kind, e.box, e.label) for e in a.elements] == [(e.kind, e.box, e.label) for e in b.elements]
    ta = write_instructions(a, random.Random(1), 5)
    tb = write_instructions(b, random.Random(1), 5)
    assert [t.instruction for t in ta] == [t.instruction for t in tb]
    assert make_screen(6, 3).image.tobytes() != a.image.tobytes()


def test_harvest_is_deterministic(tmp_path: Path, dataset: Path) -> None:
    again = harvest("synthetic", tmp_path, count=3, seed=11)
    first = read_dataset(dataset)
    second = read_dataset(again)
    assert [r.to_json() for r in second] == [r.to_json() for r in first if r.meta["screen"] < 3]
    assert (tmp_path / second[0].image).read_bytes() == (dataset.parent / second[0].image).read_bytes()


def test_boxes_lie_inside_the_image_on_drawn_pixels(dataset: Path) -> None:
    records = read_dataset(dataset)
    assert len(records) >= 120
    images: dict[Path, np.ndarray] = {}
    for r in records:
        x0, y0, x1, y1 = r.box
        assert 0 <= x0 < x1 <= 1 and 0 <= y0 < y1 <= 1
        if r.image_path not in images:
            images[r.image_path] = np.asarray(Image.open(r.image_path).convert("L"), dtype=np.int16)
        arr = images[r.image_path]
        h, w = arr.shape
        crop = arr[int(y0 * h) : max(int(y1 * h), int(y0 * h) + 1), int(x0 * w) : max(int(x1 * w), int(x0 * w) + 1)]
        # Something is drawn in every target box: it is not one flat colour.
        assert crop.max() - crop.min() > 20, f"{r.instruction!r} points at a blank area {r.box} of {r.image}"


def test_variety(dataset: Path) -> None:
    records = read_dataset(dataset)
    assert {r.platform for r in records} == {"desktop", "android", "web"}
    assert {r.source for r in records} == {"synthetic:desktop", "synthetic:dialog", "synthetic:mobile", "synthetic:web"}
    assert {r.meta["style"] for r in records} == set(STYLES)
    assert len({r.element for r in records}) >= 10 and {r.element for r in records} <= set(ELEMENTS)
    assert {r.meta["dark"] for r in records} == {True, False}
    assert {r.meta["scale"] for r in records} >= {1.0, 1.5}
    assert len({r.meta["lang"] for r in records}) >= 4
    assert any(ord(ch) > 0x2E80 for r in records for ch in r.instruction)  # CJK labels
    assert any("\u0400" <= ch <= "\u04ff" for r in records for ch in r.instruction)  # Cyrillic labels
    assert {r.split for r in records} == {"train", "val", "test"}
    assert any(r.action == "type" and r.text for r in records)
    assert len({r.image for r in records}) == 40
    # Instructions name each target once: no two targets of one screen share an instruction.
    seen = {(r.image, r.instruction) for r in records}
    assert len(seen) == len(records)


def test_split_and_kind_options(tmp_path: Path) -> None:
    records = HARVESTERS["synthetic"](tmp_path, count="4", seed="2", split="val,test", kinds="mobile")
    assert {r.split for r in records} == {"val", "test"}
    assert {r.source for r in records} == {"synthetic:mobile"}
    with pytest.raises(ValueError, match="split must be"):
        HARVESTERS["synthetic"](tmp_path, count=1, split="dev")
    with pytest.raises(TypeError):
        HARVESTERS["synthetic"](tmp_path, count=1, colour="red")


def _fold(text: str) -> str:
    from vlagent.grounding.grounders.ocr_match import _fold as fold

    return fold(text)


def test_button_boxes_hold_their_label_by_ocr() -> None:
    """On three screens (a dialog, a web page, a desktop window), every button's box holds its label."""
    from vlagent.grounding.ocr import read_page

    checked = set()
    for index, kind in ((0, "dialog"), (2, "web"), (4, "desktop")):
        screen = make_screen(21, index, kind=kind)
        assert screen.lang not in ("ru", "zh")  # Latin labels: OCR reads them reliably
        page = read_page(screen.image)
        w, h = screen.image.size
        for el in [e for e in screen.elements if e.role == "button" and e.label]:
            x0, y0, x1, y1 = el.box
            inside = [
                line.text for line in page.lines
                if x0 <= (line.box[0] + line.box[2]) / 2 * w <= x1 and y0 <= (line.box[1] + line.box[3]) / 2 * h <= y1
            ]  # fmt: skip
            best = max((difflib.SequenceMatcher(None, _fold(el.label), _fold(t)).ratio() for t in inside), default=0)
            assert best >= 0.8, f"{kind} screen {index}: button {el.label!r} at {el.box}: OCR read {inside} inside"
            checked.add((kind, el.label))
    assert len(checked) >= 6 and len({k for k, _ in checked}) == 3


def test_an_icon_is_named_only_by_words_no_other_element_answers_to() -> None:
    from vlagent.grounding.synth_canvas import Element
    from vlagent.grounding.synthetic import _icon_words

    screen = make_screen(0, 0, kind="desktop")
    trash = Element("icon", (0, 0, 10, 10), icon="trash")  # "delete", "trash", "bin"
    delete = Element("button", (20, 0, 60, 10), label="Delete")
    screen.elements[:] = [trash, delete, Element("icon", (70, 0, 80, 10), icon="folder")]
    assert _icon_words(trash, screen) == ("trash", "bin")
    screen.elements.append(Element("icon", (90, 0, 100, 10), icon="trash"))  # the same icon twice: no word
    assert _icon_words(trash, screen) == ()


from vlagent.grounding import synth_theme_icons as theme  # noqa: E402


@pytest.mark.skipif(not theme.available_theme_icons(), reason="the Adwaita icon theme is not installed")
def test_desktop_toolbars_draw_the_themes_own_icons() -> None:
    mask = theme.theme_icon_mask("edit-find-replace", 16)
    assert mask.mode == "L" and mask.size == (16, 16) and 0 < np.asarray(mask).astype(bool).mean() < 0.9
    assert theme.theme_icon_mask("edit-find-replace", 24).size == (24, 24)
    drawn = 0
    for index in range(12):
        screen = make_screen(0, index, kind="desktop")
        for el in screen.elements:
            if el.icon in theme.THEME_ICON_MEANINGS:
                x0, y0, x1, y1 = el.box
                pixels = np.asarray(screen.image.crop((x0, y0, x1, y1)).convert("L")).astype(int)
                assert pixels.max() - pixels.min() > 60  # the icon's shape is on screen, not an empty button
                drawn += 1
    assert drawn >= 5
    with pytest.raises(KeyError, match="no theme icon"):
        theme.theme_icon_mask("no-such-icon", 16)
