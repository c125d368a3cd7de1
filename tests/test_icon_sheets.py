"""Icon sheets (vlagent.grounding.icon_sheets): icons in the styles real pages draw, for the recognizer.

The drawings and styles are checked on their pixels; the examples on their labels; the shipped recognizer
on sheets of a seed it never trained on (the sheets it trained on are seed 0).
"""
from __future__ import annotations

import random

import numpy as np
import pytest

from vlagent.grounding.icon_recognizer import NONE
from vlagent.grounding.icon_sheets import (ALTERNATES, EXTRA_MEANINGS, MIRRORED, SHEET_ICONS, draw_sheet, icon_mask,
                                           sheet_examples, sheet_icon_names)
from vlagent.grounding.icon_training import vocabulary


@pytest.mark.parametrize("name", sheet_icon_names())
def test_every_icon_draws_in_every_style(name):
    for style in ("plain", "outline"):
        mask = np.asarray(icon_mask(name, 24, style))
        assert mask.shape == (24, 24) and (mask > 128).sum() >= 6, (name, style)


def test_the_outline_style_draws_a_shape_hollow():
    arrow = ALTERNATES["go-next"][0]
    assert arrow is not None
    solid = np.asarray(icon_mask("go-next", 30, "plain", variant=1)) > 128
    hollow = np.asarray(icon_mask("go-next", 30, "outline", variant=1)) > 128
    assert solid[15, 10] and not hollow[15, 10]  # the block arrow's shaft: filled, then empty inside
    assert hollow.sum() < solid.sum()
    assert (hollow & ~np.asarray(icon_mask("go-next", 30, "plain", variant=0)).astype(bool)).any()


def test_a_mirrored_icon_is_the_other_way_round():
    assert "theme-auto" in MIRRORED
    left = np.asarray(icon_mask("theme-auto", 24, "plain"))
    right = np.asarray(icon_mask("theme-auto", 24, "plain", mirror=True))
    assert (left[:, :12] > 128).sum() > 2 * (left[:, 12:] > 128).sum()  # the left half filled
    assert np.array_equal(right, left[:, ::-1])


def test_a_sheet_draws_its_icons_where_it_says():
    image, unit, icons, texts = draw_sheet(random.Random(1), ["theme-auto", "sidebar-collapse", "heart"])
    assert 13 <= unit <= 26 and image.size[1] == 4 * unit and icons
    rgb = np.asarray(image).astype(int)
    background = np.median(rgb[0], axis=0)
    for name, (x0, y0, x1, y1) in icons:
        assert np.abs(rgb[y0:y1, x0:x1] - background).max() > 40, name  # ink inside each icon's box


def test_examples_are_labelled_with_known_icons_and_none():
    pictures, shapes, labels = sheet_examples(seed=3, sheets=40)
    assert len(pictures) == len(shapes) == len(labels) > 150
    assert NONE in labels and set(labels) <= {NONE, *sheet_icon_names()}
    assert set(SHEET_ICONS) & set(labels)  # the web icons the screens never show are there
    assert pictures.dtype == np.float32 and 0 <= pictures.min() and pictures.max() <= 1


def test_the_recognizers_vocabulary_has_the_sheets_words():
    words = vocabulary(["theme-auto", "sidebar-collapse", "menu", "heart"])
    assert "toggle theme" in words["theme-auto"] and "toggle navigation" in words["sidebar-collapse"]
    assert set(EXTRA_MEANINGS["menu"]) <= set(words["menu"]) and "hamburger menu" in words["menu"]
    assert words["heart"] == ("like", "heart")


def test_the_shipped_recognizer_names_icons_in_the_sheets_styles():
    """Sheets of a seed never trained on: each drawn icon's best blob is named as the icon (top 1), for most
    icons, in every style."""
    from pathlib import Path

    import vlagent
    from vlagent.grounding.icon_finder import screen_blobs
    from vlagent.grounding.icon_recognizer import load_recognizer

    recognizer = load_recognizer(str(Path(vlagent.__file__).parent / "grounding/default_grounder/icons.safetensors"))
    assert recognizer is not None
    rng = random.Random(9090)
    names = sheet_icon_names()
    named = total = 0
    for _ in range(25):
        image, unit, icons, _ = draw_sheet(rng, rng.sample(names, 8))
        boxes = screen_blobs(image, unit)
        probabilities = recognizer.probabilities(image, boxes, unit)
        for name, (x0, y0, x1, y1) in icons:
            inside = [i for i, b in enumerate(boxes) if x0 <= (b[0] + b[2]) / 2 <= x1 and y0 <= (b[1] + b[3]) / 2 <= y1]
            if name not in recognizer.classes or not inside:
                continue
            total += 1
            best = max(inside, key=lambda i: probabilities[i, 1:].max())
            named += recognizer.classes[int(np.argmax(probabilities[best]))] == name
    assert total >= 100
    assert named >= 0.8 * total, f"{named}/{total} named"
