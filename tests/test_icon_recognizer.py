"""The learned icon recognizer (vlagent.grounding.icon_recognizer) and its training (icon_training).

The shipped recognizer is checked on synthetic screens of a set it never trained on (another seed), and
through the shipped grounder on a generated phone screen; training runs end to end on a few screens.
"""
from __future__ import annotations

import random

import numpy as np
import pytest
from PIL import Image, ImageDraw

from vlagent.grounding.controls import text_height
from vlagent.grounding.icon_recognizer import (NONE, SIDE, IconRecognizer, blob_picture, blob_shape,
                                               load_recognizer)
from vlagent.grounding.icon_training import synthetic_examples, train_recognizer
from vlagent.grounding.synth_icons import ICONS, draw_icon
from vlagent.grounding.synthetic import _text_lines, harvest_synthetic, make_screen, screen_split

SHIPPED = "vlagent/grounding/default_grounder/icons.safetensors"


@pytest.fixture(scope="module")
def shipped() -> IconRecognizer:
    from pathlib import Path

    import vlagent

    recognizer = load_recognizer(str(Path(vlagent.__file__).parent / "grounding/default_grounder/icons.safetensors"))
    assert recognizer is not None, f"{SHIPPED} is missing: `vlagent train-icons` writes it (docs/grounding.md)"
    return recognizer


def _drawn(name: str, ink: tuple[int, int, int], paper: tuple[int, int, int], side: int = 24) -> tuple[np.ndarray, tuple]:
    image = Image.new("RGB", (60, 60), paper)
    draw_icon(ImageDraw.Draw(image), name, (18, 18, 18 + side, 18 + side), ink)
    rgb = np.asarray(image)
    ys, xs = np.nonzero(np.abs(rgb.astype(int) - paper).max(axis=2) > 16)
    return rgb, (int(xs.min()) - 1, int(ys.min()) - 1, int(xs.max()) + 2, int(ys.max()) + 2)


def test_a_blob_looks_the_same_in_any_colours():
    dark_on_light = blob_picture(*_drawn("heart", (30, 30, 30), (250, 250, 250)))
    light_on_dark = blob_picture(*_drawn("heart", (240, 240, 240), (20, 24, 30)))
    blue_on_white = blob_picture(*_drawn("heart", (25, 100, 220), (255, 255, 255)))
    gear = blob_picture(*_drawn("gear", (30, 30, 30), (250, 250, 250)))
    assert dark_on_light.shape == (SIDE, SIDE) and 0 <= dark_on_light.min() and dark_on_light.max() <= 1
    assert np.abs(dark_on_light - light_on_dark).mean() < 0.03
    assert np.abs(dark_on_light - blue_on_white).mean() < 0.03
    assert np.abs(dark_on_light - gear).mean() > 0.1  # another icon is another picture


def test_a_wide_blob_keeps_its_aspect():
    rgb = np.full((20, 60, 3), 255, dtype=np.uint8)
    rgb[8:12, 2:58] = 0  # a bar four times wider than tall
    picture = blob_picture(rgb, (0, 0, 60, 20))
    assert picture[:6].max() < 0.05 and picture[-6:].max() < 0.05  # padded above and below
    assert picture[SIDE // 2].mean() > 0.5
    size, aspect = blob_shape((0, 0, 60, 20), unit=20.0)
    assert size == pytest.approx(np.log(3.0)) and aspect == pytest.approx(np.log(3.0))


def test_screen_split_is_the_harvests(tmp_path):
    records = harvest_synthetic(tmp_path, count=12, seed=5)
    by_screen = {r.meta["screen"]: r.split for r in records}
    assert by_screen == {i: screen_split(5, i) for i in by_screen}


def test_training_runs_end_to_end_and_round_trips(tmp_path):
    pictures, shapes, labels = synthetic_examples(3, 30)
    assert len(labels) == len(pictures) == len(shapes) > 50
    assert {NONE} < set(labels) and set(labels) <= {NONE, *ICONS}
    lines: list[str] = []
    recognizer = train_recognizer(pictures, shapes, labels, epochs=3, seed=0, log=lines.append)
    assert len(lines) == 3 and "held-out accuracy" in lines[-1]
    losses = [float(line.split("loss ")[1].split(",")[0]) for line in lines]
    assert losses[-1] < losses[0]
    path = tmp_path / "icons.safetensors"
    recognizer.save(path)
    again = IconRecognizer.load(path)
    assert again.classes == recognizer.classes and again.meanings == recognizer.meanings
    screen = make_screen(3, 0)
    boxes = [(10, 10, 30, 30), (40, 12, 52, 40)]
    assert np.allclose(again.probabilities(screen.image, boxes, 16.0), recognizer.probabilities(screen.image, boxes, 16.0))


def test_a_file_that_is_not_a_recognizer_is_refused(tmp_path):
    from safetensors.torch import save_file
    import torch

    path = tmp_path / "other.safetensors"
    save_file({"w": torch.zeros(2)}, str(path))
    with pytest.raises(ValueError, match="not an icon recognizer"):
        IconRecognizer.load(path)
    assert load_recognizer(str(tmp_path / "absent.safetensors")) is None


def test_instruction_words_pick_the_classes(shipped):
    def names(instruction: str) -> set[str]:
        return {shipped.classes[i] for i in shipped.named_classes(instruction)}

    assert "gear" in names("the settings icon")
    assert names("click the heart icon") == {"heart"}
    assert "calendar" in names("the date picker icon in the bottom bar")
    assert names("the Zorblax icon") == set()
    assert names("the third icon in the toolbar") == set()  # a place, not a name
    # a name of two words the query cuts ("toggle" is a switch's word): the page's own name for the icon
    assert names("the Toggle navigation button") >= {"sidebar-collapse", "sidebar-expand"}
    assert names("open Toggle sorting") == {"sort-up", "sort-down"}
    assert names("open the sorting options") == set()  # one word alone, without "icon", names none


def _icon_targets(seed: int, count: int):
    """(screen, element, meaning) for icons of the generator's own drawing on screens of set `seed`, each
    named by a meaning no other element of its screen answers to."""
    rng = random.Random(seed)
    for index in range(count):
        screen = make_screen(seed, index)
        for element in screen.elements:
            if not element.icon or "-" in element.icon:  # theme icons: icon_finder's job
                continue
            taken = {m.casefold() for e in screen.elements if e is not element and e.icon for m in ICONS[e.icon][1]}
            taken |= {e.label.casefold() for e in screen.elements if e.label}
            free = [m for m in ICONS[element.icon][1] if m.casefold() not in taken]
            if free:
                yield screen, element, rng.choice(free)


def test_the_shipped_recognizer_finds_icons_on_screens_it_never_saw(shipped):
    hits = wrong = total = absent_found = absent_total = 0
    for screen, element, meaning in _icon_targets(4242, 60):
        lines = _text_lines(screen)
        unit = text_height(lines, screen.image.size)
        found = shipped.find(screen.image, f"the {meaning} icon", unit)
        total += 1
        w, h = screen.image.size
        x0, y0, x1, y1 = element.box
        if found and x0 <= found[0].point[0] * w <= x1 and y0 <= found[0].point[1] * h <= y1:
            hits += 1
        elif found:
            wrong += 1
        shown = {e.icon for e in screen.elements if e.icon}
        others = [n for n in ("heart", "cart", "mic", "camera", "bell") if n not in shown]
        if others:  # an icon the screen does not show: nothing should be found
            absent_total += 1
            absent_found += bool(shipped.find(screen.image, f"the {ICONS[others[0]][1][0]} icon", unit))
    assert total >= 40
    assert hits >= 0.85 * total, f"{hits}/{total} found in place, {wrong} elsewhere"
    assert absent_found <= 0.1 * absent_total, f"{absent_found}/{absent_total} absent icons found"


def test_the_shipped_grounder_clicks_an_app_icon_by_its_meaning():
    from vlagent.grounding.grounders.head import default_grounder

    grounder = default_grounder()
    assert grounder.recognizer is not None
    screen, element, meaning = next(t for t in _icon_targets(777, 40) if t[0].kind == "mobile")
    result = grounder.ground(screen.image, f"tap the {meaning} icon", platform="android")
    w, h = screen.image.size
    x0, y0, x1, y1 = element.box
    assert result.found and x0 <= result.point[0] * w <= x1 and y0 <= result.point[1] * h <= y1, (meaning, result)
    assert result.raw == "icon"
    assert grounder.ground(screen.image, "tap the Zorblax icon", platform="android").raw != "icon"
