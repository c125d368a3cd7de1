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


# ------------------------------------------------------------------ what OCR makes of small bars and rows


def _canvas(width: int = 1280, height: int = 720):
    from vlagent.grounding.synth_canvas import Canvas, Theme

    rng = random.Random(7)
    return Canvas((width, height), 1.0, Theme.random(rng, dark=False), "sans", "en", rng)


def _line(canvas, text: str, box) -> TextLine:
    x0, y0, x1, y1 = box
    return TextLine(text, (x0 / canvas.w, y0 / canvas.h, x1 / canvas.w, y1 / canvas.h))


def _centre_in(box, pixels) -> bool:
    x, y = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    return pixels[0] <= x <= pixels[2] and pixels[1] <= y <= pixels[3]


def _norm(canvas, box):
    return box[0] / canvas.w, box[1] / canvas.h, box[2] / canvas.w, box[3] / canvas.h


def test_a_menu_bar_read_as_one_line_is_counted_by_the_gaps_between_its_menus() -> None:
    """OCR reads a small menu bar as one line ("Ver Insertar Archivo Ayuda"): its menus lie further apart
    than the words of a text, so the third menu is still the third word's place."""
    c = _canvas()
    x, inks = 8, []
    for label in ("Ver", "Insertar", "Archivo", "Ayuda"):
        inks.append(c.text((x, 40), label, 13))
        x = inks[-1][2] + 14  # a menu's padding: 0.7 text heights, a space is 0.2
    bar = _line(c, "Ver Insertar Archivo Ayuda", (inks[0][0] - 1, 36, inks[-1][2] + 1, 58))
    body = [_line(c, t, c.text((20, y), t, 13)) for t, y in (("Documents", 200), ("Pictures", 240))]
    box, named = find_place(c.img, "the third menu in the menu bar", [bar] + body)
    assert named and box is not None and _centre_in(box, _norm(c, inks[2]))
    # words a space apart are one label: a sentence along the top is no menu bar
    c2 = _canvas()
    sentence = c2.text((8, 40), "Welcome back to your account", 13)
    lines = [_line(c2, "Welcome back to your account", sentence)] + body
    assert find_place(c2.img, "the third menu in the menu bar", lines) == (None, True)


def test_a_toolbar_read_as_letters_is_still_a_row_of_icons() -> None:
    """OCR reads a toolbar's icons as one line of letters (">6I三K"); the icons stay icons, and an icon
    drawn in two pieces (pause's two bars, upload's arrow and tray) counts once."""
    c = _canvas()
    icons = ("close", "pause", "upload", "copy", "menu", "search")
    boxes = [c.icon_button(6 + 40 * i, 90, name).box for i, name in enumerate(icons)]
    garbage = _line(c, ">6I三K", (boxes[1][0] + 4, 94, boxes[-1][2] - 4, 122))
    title = _line(c, "Documents", c.text((20, 200), "Documents", 13))
    for index, name in enumerate(("first", "second", "third", "fourth", "fifth", "sixth")):
        box, named = find_place(c.img, f"the {name} toolbar button", [garbage, title])
        assert named and box is not None and _centre_in(box, _norm(c, boxes[index])), (name, box)


def test_a_radio_buttons_ring_and_dot_are_one_option_and_a_lone_option_is_the_first() -> None:
    c = _canvas()
    lines, rings = [], []
    for i, label in enumerate(("Grand", "Petit", "Privé")):
        y = 300 + 40 * i
        ring = (100, y, 120, y + 20)
        c.draw.ellipse(ring, outline=(90, 90, 90), width=2)
        c.draw.ellipse((103, y + 3, 117, y + 17), outline=(40, 160, 60), width=2)  # the selected look's inner ring
        rings.append(ring)
        lines.append(_line(c, label, c.text((130, y + 2), label, 14)))
    box, named = find_place(c.img, "the third option", lines)
    assert named and box is not None and _centre_in(box, _norm(c, rings[2]))
    lone = _canvas()
    lone.draw.ellipse((100, 300, 120, 320), outline=(90, 90, 90), width=2)
    only = [_line(lone, "Public", lone.text((130, 302), "Public", 14))]
    box, _ = find_place(lone.img, "the first option", only)
    assert box is not None and _centre_in(box, _norm(lone, (100, 300, 120, 320)))
    assert find_place(lone.img, "the second option", only) == (None, True)


def test_the_list_is_the_pages_content_not_the_column_of_links_down_its_right_edge() -> None:
    c = _canvas()
    rows = [_line(c, t, c.text((90, 180 + 45 * i), t, 13)) for i, t in enumerate(("Spam", "Archive", "Projects"))]
    links = [_line(c, t, c.text((1020, 90 + 30 * i), t, 13))
             for i, t in enumerate(("Links", "Status", "Privacy policy", "Read the guide", "Support"))]
    box, named = find_place(c.img, "the second row", links + rows)
    assert named and box == rows[1].box


def test_the_page_title_is_the_largest_text_not_the_sites_name_in_its_nav_bar() -> None:
    c = _canvas()
    nav = [_line(c, "Nimbus", c.text((18, 14), "Nimbus", 20, bold=True))]
    nav += [_line(c, t, c.text((124 + 100 * i, 20), t, 13)) for i, t in enumerate(("Community", "About", "Status"))]
    ink = c.text((1200, 20), "Close", 14)
    close = (ink[0], ink[1] - 8, ink[2], ink[3] + 8)  # OCR's box of a button's caption may reach its edges
    heading = _line(c, "Edit profile", c.text((40, 90), "Edit profile", 26, bold=True))
    lines = nav + [_line(c, "Close", close), heading, _line(c, "Postal code", c.text((40, 170), "Postal code", 12))]
    box, named = find_place(c.img, "the page title", lines)
    assert named and box == heading.box


def test_a_tab_is_counted_in_a_row_with_as_many_tabs() -> None:
    """An open menu's item and a toolbar read as text make a row of two under the menu bar, which looks
    like two tabs: "the second tab" is counted there (the first row with two), "the fifth tab" in the first
    row that has five."""
    from PIL import Image

    width, height = 1280, 720
    image = Image.new("RGB", (width, height), "white")

    def line(text: str, x0: float, x1: float, y0: float, y1: float) -> TextLine:
        return TextLine(text, (x0 / width, y0 / height, x1 / width, y1 / height))

    menu_bar = [line(t, x, x + 40, 40, 58) for t, x in (("File", 15), ("Edit", 70), ("View", 125), ("Help", 180))]
    two = [line("New", 62, 94, 64, 82), line("Zoom", 123, 200, 64, 82)]
    tabs = [line(t, 200 + 52 * i, 240 + 52 * i, 112, 128) for i, t in enumerate(("Look", "Safe", "More", "Main", "Nets"))]
    box, named = find_place(image, "the fifth tab", menu_bar + two + tabs)
    assert named and box == tabs[4].box
    box, _ = find_place(image, "the second tab", menu_bar + two + tabs)
    assert box == two[1].box  # two tabs are tabs too: the first row with enough


def test_a_large_headings_spaces_do_not_cut_it_into_a_menu_bar() -> None:
    """The gap that cuts a line into labels is measured in its own height: a 30-px heading's spaces are
    wider than half the screen's text height, but it stays one title and no menu bar."""
    c = _canvas()
    heading = _line(c, "Edit your profile", c.text((20, 20), "Edit your profile", 30, bold=True))
    body = [_line(c, t, c.text((20, 90 + 30 * i), t, 12)) for i, t in enumerate(("Name", "Email", "Phone", "City"))]
    assert find_place(c.img, "the first menu in the menu bar", [heading] + body) == (None, True)
    box, _ = find_place(c.img, "the page title", [heading] + body)
    assert box == heading.box


def test_a_lists_heading_is_not_its_first_row() -> None:
    """The practice app's "LIST (50 ITEMS)" sits 1.3 row steps above "Item 01": within a third of a step
    of the rows' spacing, but a heading is never closer to its list than a row, only further."""
    c = _canvas()
    lines = [_line(c, "LIST (50 ITEMS)", (658, 388, 767, 405))]
    lines += [_line(c, f"Item {i + 1:02d}", (657, 410 + 18 * i, 710, 430 + 18 * i)) for i in range(12)]
    for instruction, row in (("the third item in the list", 3), ("the first item in the list", 1)):
        box, named = find_place(c.img, instruction, lines)
        assert named and box == lines[row].box, (instruction, box)
