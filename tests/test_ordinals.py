"""Targets named by place (vlagent.grounding.ordinals): "the third option", "the second menu in the menu
bar", "the last item in the list", "close the dialog", counted in the screen's rows and columns.

Checked on freshly generated screens (a seed never trained on): every place phrasing the generator writes
for them, with the strings the generator drew as the screen's text (what a perfect OCR reads)."""
from __future__ import annotations

import random

import pytest

from vlagent.grounding.ordinals import CLOSE, DIALOG_BUTTON, LIST_ROW, MENU, OPTION, TAB, TITLE, TOOLBAR, Place
from vlagent.grounding.ordinals import find_place, parse_place
from vlagent.model.grounder import TextLine


@pytest.mark.parametrize("instruction, place", [
    ("the fifth menu in the menu bar", Place(MENU, 4)),
    ("the second tab", Place(TAB, 1)),
    ("the third option", Place(OPTION, 2)),
    ("the first button at the bottom of the dialog", Place(DIALOG_BUTTON, 0)),
    ("the last button of the dialog", Place(DIALOG_BUTTON, -1)),
    ("the button at the bottom right of the dialog", Place(DIALOG_BUTTON, -1)),
    ("the eighth row", Place(LIST_ROW, 7)),
    ("the last item in the list", Place(LIST_ROW, -1)),
    ("the eighth icon in the toolbar", Place(TOOLBAR, 7)),
    ("the second toolbar button", Place(TOOLBAR, 1)),
    ("the page title", Place(TITLE, 0)),
    ("close the dialog", Place(CLOSE, -1)),
    ("the X at the top right of the window", Place(CLOSE, -1)),
    ("the close button of the dialog", Place(CLOSE, -1)),
])
def test_places_are_read_from_the_instruction(instruction: str, place: Place) -> None:
    assert parse_place(instruction) == place


@pytest.mark.parametrize("instruction", [
    "the First Name field", "click Next", "the Save button", "the button to close the window",
    "the first button", "close the dialog and save", "the title of the song",
    "the Save button in the first row", "click the second menu item", "click Edit in the second row",
])
def test_names_are_not_places(instruction: str) -> None:
    """An ordinal that is part of a name, a button without a group, or a sentence that only starts like a
    place phrasing names no place."""
    assert parse_place(instruction) is None


def _fresh_screens(count: int, seed: int = 4242):
    from vlagent.grounding.synthetic import make_screen, phrasings

    for index in range(count):
        screen = make_screen(seed, index)
        width, height = screen.image.size
        lines = [TextLine(text, (x0 / width, y0 / height, x1 / width, y1 / height))
                 for text, (x0, y0, x1, y1) in screen.texts if x1 > x0 and y1 > y0]
        rng = random.Random(index)
        targets = [t for el in screen.elements for t in phrasings(el, screen, rng) if parse_place(t.instruction)]
        yield screen, lines, targets


def test_places_on_fresh_generated_screens() -> None:
    hits = wrong = total = 0
    for screen, lines, targets in _fresh_screens(40):
        image = screen.image.convert("RGB")
        for target in targets:
            box, named = find_place(image, target.instruction, lines)
            assert named, target.instruction
            total += 1
            if box is None:
                continue
            x, y = (box[0] + box[2]) / 2 * image.width, (box[1] + box[3]) / 2 * image.height
            x0, y0, x1, y1 = target.element.box
            inside = x0 <= x <= x1 and y0 <= y <= y1
            hits += inside
            wrong += not inside
    assert total >= 60, total
    assert hits >= 0.8 * total, f"{hits}/{total} in place, {wrong} elsewhere"
    assert wrong <= 0.1 * total, f"{wrong}/{total} elsewhere"


def test_a_place_past_the_end_of_its_group_is_not_found() -> None:
    for screen, lines, targets in _fresh_screens(40):
        menus = [t for t in targets if t.element.container == "menu bar"]
        if menus:
            image = screen.image.convert("RGB")
            box, named = find_place(image, "the second menu in the menu bar", lines)
            assert named and box is not None
            assert find_place(image, "the twelfth menu in the menu bar", lines) == (None, True)
            assert find_place(image, "the Save button", lines) == (None, False)
            return
    pytest.fail("no generated screen with a menu bar among 40")


def _page_with_a_nav_bar():
    """A web page: a nav bar of short links along the top, a paragraph; no dialog, no window controls, no
    toolbar, no list."""
    from PIL import Image, ImageDraw

    image = Image.new("RGB", (800, 500), (255, 255, 255))
    draw = ImageDraw.Draw(image)
    lines = []
    for i, word in enumerate(("Orbit", "Home", "About", "Contact")):
        x = 20 + i * 90
        draw.text((x, 20), word, fill=(20, 20, 20))
        lines.append(TextLine(word, (x / 800, 18 / 500, (x + 40) / 800, 32 / 500)))
    draw.text((20, 120), "Welcome to the page.", fill=(20, 20, 20))
    lines.append(TextLine("Welcome to the page.", (20 / 800, 118 / 500, 160 / 800, 132 / 500)))
    return image, lines


@pytest.mark.parametrize("instruction", [
    "close the dialog", "the first button at the bottom of the dialog", "the first icon in the toolbar",
    "the second option", "the third row",
])
def test_a_group_the_screen_does_not_have_is_not_made_up(instruction: str) -> None:
    """Without a dialog, window controls, a toolbar, options or a list, a place is left to the model:
    the nav bar is no dialog's buttons, no toolbar, no close button."""
    image, lines = _page_with_a_nav_bar()
    assert find_place(image, instruction, lines) == (None, True)


def test_tabs_are_the_evenly_spaced_run_of_their_row() -> None:
    """A sidebar entry and an open menu's item share the tab row's line, farther apart than the tabs; OCR
    boxes a few pixels too wide do not split the tabs."""
    from PIL import Image

    width, height = 1280, 720
    image = Image.new("RGB", (width, height), "white")

    def line(text: str, x0: float, x1: float, y0: float = 100, y1: float = 118) -> TextLine:
        return TextLine(text, (x0 / width, y0 / height, x1 / width, y1 / height))

    menu_bar = [line(t, x, x + 40, 40, 58) for t, x in (("File", 15), ("Edit", 70), ("View", 125), ("Help", 180))]
    row = [line("Documents", 7, 87), line("Undo", 119, 160),  # the sidebar, an open menu's item
           line("Privacy", 201, 260), line("Music", 281, 333), line("History", 336, 403)]  # "Music" read wide
    box, named = find_place(image, "the third tab", menu_bar + row)
    assert named and box is not None and abs(box[0] * width - 336) < 1
    box, _ = find_place(image, "the first tab", menu_bar + row)
    assert abs(box[0] * width - 201) < 1
