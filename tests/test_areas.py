"""The large area an instruction names (vlagent/grounding/areas.py): an editor's page on drawn screens; the
real mousepad is typed into in test_scripting.py."""
from __future__ import annotations

import pytest
from PIL import Image, ImageDraw, ImageFont

from vlagent.grounding.areas import find_large_area, names_large_area

FONT = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"


@pytest.mark.parametrize("instruction, named", [
    ("the text area", True), ("type into the editor", True), ("click in the document", True),
    ("the main text area", True), ("the drawing canvas", True), ("the document text area", True),
    ("the Editor tab", False), ("the Document menu", False), ("the Canvas button", False),
    ("open the 'Text area' settings", False), ("the Name field", False), ("the Save button", False),
])
def test_an_instruction_names_a_large_area(instruction, named):
    assert names_large_area(instruction) is named


def _window(body: str) -> Image.Image:
    """A window on a dark desktop: a menu bar, then an editor's page (`body` "text" or "empty") or a
    calculator's keys on the window's grey ("keys")."""
    image = Image.new("RGB", (1024, 640), (20, 20, 20))
    draw = ImageDraw.Draw(image)
    font = ImageFont.truetype(FONT, 13)
    draw.rectangle((40, 30, 700, 520), fill=(246, 245, 244))
    for i, name in enumerate(("File", "Edit", "Search", "View", "Document", "Help")):
        draw.text((50 + 70 * i, 38), name, fill=(30, 30, 30), font=font)
    if body == "keys":
        for i in range(20):
            x, y = 60 + (i % 5) * 120, 80 + (i // 5) * 90
            draw.rounded_rectangle((x, y, x + 100, y + 70), radius=4, fill=(237, 237, 237), outline=(150, 150, 150))
            draw.text((x + 50, y + 35), str(i % 10), fill=(30, 30, 30), font=font, anchor="mm")
        return image
    draw.rectangle((41, 60, 699, 519), fill=(255, 255, 255), outline=(200, 200, 200))
    if body == "text":
        for row, text in enumerate(("Dear Ada,", "", "the engine computes the numbers of Bernoulli.", "Yours, Charles")):
            draw.text((46, 66 + 18 * row), text, fill=(0, 0, 0), font=font)
    return image


@pytest.mark.parametrize("body", ["empty", "text"])
def test_an_editors_page_is_the_large_area(body):
    box = find_large_area(_window(body), 16.0)
    assert box is not None
    x0, y0, x1, y1 = (round(box[0] * 1024), round(box[1] * 640), round(box[2] * 1024), round(box[3] * 640))
    assert abs(x0 - 42) <= 3 and abs(y0 - 61) <= 3 and abs(x1 - 699) <= 3 and abs(y1 - 519) <= 3, (x0, y0, x1, y1)


def test_a_window_of_buttons_has_no_large_area():
    assert find_large_area(_window("keys"), 16.0) is None
