"""The three-dot menu button found by its geometry (vlagent.grounding.dots): drawn here as the generator
draws app bars, at two scales, beside an ellipsis in text that must not count."""
from __future__ import annotations

import random

import pytest

from vlagent.grounding.dots import find_three_dots, names_three_dots
from vlagent.model.grounder import TextLine


@pytest.mark.parametrize("instruction, named", [
    ("the overflow menu button", True), ("the three dots button", True), ("the more options icon", True),
    ("the kebab menu", True), ("click the ⋮ button", True), ("⋯", True), ("the 3 dots", True),
    ("the Options menu", False), ("click More", False), ("the third dot", False), ("the overflowing text", False),
])
def test_instructions_naming_the_three_dots_button(instruction: str, named: bool) -> None:
    assert names_three_dots(instruction) is named


def _app_bar(scale: float, dark: bool):
    from vlagent.grounding.synth_canvas import Canvas, Theme

    rng = random.Random(5)
    c = Canvas((412, 860) if scale == 1 else (824, 1720), scale, Theme.random(rng, dark=dark), "sans", "en", rng)
    more = c.icon_button(c.u(360), c.u(10), "more", size=24, pad=6)
    star = c.icon_button(c.u(318), c.u(10), "star", size=24, pad=6)
    hint = c.text((c.u(16), c.u(120)), "Search...", 14)  # an ellipsis: three dots in a row, in text
    lines = [TextLine("Search...", (hint[0] / c.w, hint[1] / c.h, hint[2] / c.w, hint[3] / c.h))]
    return c, more.box, star.box, lines


@pytest.mark.parametrize("scale", [1, 2])
@pytest.mark.parametrize("dark", [False, True], ids=["light", "dark"])
def test_the_three_dots_are_found_and_an_ellipsis_is_not(scale: float, dark: bool) -> None:
    c, more, _, lines = _app_bar(scale, dark)
    found = find_three_dots(c.img, lines, unit=18 * scale)
    assert len(found) == 1, found
    x, y = (found[0][0] + found[0][2]) / 2 * c.w, (found[0][1] + found[0][3]) / 2 * c.h
    assert more[0] <= x <= more[2] and more[1] <= y <= more[3]
    no_button = c.img.copy()
    no_button.paste(c.theme.bg, tuple(int(v) for v in more))
    assert find_three_dots(no_button, lines, unit=18 * scale) == []


@pytest.mark.parametrize("instruction", ["the overflow menu button", "the three dots button"])
def test_the_shipped_grounder_clicks_the_three_dots(instruction: str) -> None:
    pytest.importorskip("rapidocr_onnxruntime")
    from vlagent.grounding.grounders.head import DEFAULT_FOLDER, HeadGrounder

    if not (DEFAULT_FOLDER / "grounder.safetensors").is_file():
        pytest.skip("no trained grounder ships in this checkout")
    c, more, _, _ = _app_bar(1, dark=False)
    result = HeadGrounder(DEFAULT_FOLDER).ground(c.img, instruction)
    x, y = result.point[0] * c.w, result.point[1] * c.h
    assert result.found and more[0] <= x <= more[2] and more[1] <= y <= more[3], result


def test_dots_a_pixel_off_their_line_or_of_another_size_are_still_one_button() -> None:
    from vlagent.grounding.dots import _triples

    assert len(_triples([(9, 0, 12, 3), (9, 6, 13, 10), (9, 13, 12, 16)])) == 1  # sizes 3, 4, 3; centres 10.5, 11
    assert _triples([(9, 0, 12, 3), (9, 6, 12, 9), (20, 12, 23, 15)]) == []  # the third is off the line
