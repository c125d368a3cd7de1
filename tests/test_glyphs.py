"""Lone symbols found by their shape (vlagent/grounding/glyphs.py): a keypad drawn here, with the words,
triangles and hyphens a symbol must not be taken for; the real galculator is driven by its symbol keys in
test_scripting.py."""
from __future__ import annotations

import pytest
from PIL import Image, ImageDraw, ImageFont

from vlagent.grounding.glyphs import find_symbols, named_symbols

FONT = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"


@pytest.mark.parametrize("instruction, symbol", [
    ("the = button", "="), ("click =", "="), ("press '-'", "-"), ("the equals key", "="),
    ("the minus button", "-"), ("click the decimal point", "."), ("the ( button", "("),
    ("the close parenthesis key", ")"), ("press the multiply button", "*"), ("the divide button", "/"),
    ("tap the plus sign", "+"), ("the % key", "%"), ("the 'x' button", None), ("the Save button", None),
    ("the three dot menu", None), ("the point of sale tab", None), ("the = and + buttons", None),
])
def test_an_instruction_names_a_symbol_as_itself_or_by_its_name(instruction, symbol):
    named = named_symbols(instruction)
    assert (symbol in named) if symbol else not named, (instruction, sorted(named))


def _keypad() -> Image.Image:
    """Outlined keys side by side (one blob to the eye of an edge finder), a word key, a drop-down's
    triangle, a three-bar menu and a line of text with a hyphen and an equals sign in it."""
    image = Image.new("RGB", (640, 360), (246, 245, 244))
    draw = ImageDraw.Draw(image)
    font = ImageFont.truetype(FONT, 13)
    keys = ["7", "8", "9", "/", "MOD", "4", "5", "6", "*", "%", "1", "2", "3", "-", "=", "0", ".", "(", ")", "+"]
    for i, label in enumerate(keys):
        x, y = 20 + (i % 5) * 64, 20 + (i // 5) * 40
        draw.rounded_rectangle((x, y, x + 58, y + 33), radius=4, fill=(237, 237, 237), outline=(150, 150, 150))
        draw.text((x + 29, y + 17), label, fill=(40, 40, 40), font=font, anchor="mm")
    draw.polygon([(420, 40), (432, 40), (426, 47)], fill=(40, 40, 40))  # a drop-down's ▾
    for dy in (0, 5, 10):  # a menu button's three bars
        draw.rectangle((480, 90 + dy, 494, 91 + dy), fill=(40, 40, 40))
    draw.text((20, 240), "Send the e-mail when x = 5 and y - 2 is done.", fill=(20, 20, 20), font=font)
    return image


def _found(image: Image.Image, instruction: str) -> list[tuple[int, int]]:
    from vlagent.grounding.controls import text_height
    from vlagent.grounding.grounders.head import screen_text

    lines = screen_text(image)
    matches = find_symbols(image, named_symbols(instruction), lines, text_height(lines, image.size))
    w, h = image.size
    return [(round(m.point[0] * w), round(m.point[1] * h)) for m in matches]


def test_the_keys_of_a_keypad_are_found_and_nothing_else():
    pytest.importorskip("rapidocr_onnxruntime")
    pytest.importorskip("scipy")
    image = _keypad()

    def key(label: str) -> tuple[int, int]:
        i = ["7", "8", "9", "/", "MOD", "4", "5", "6", "*", "%", "1", "2", "3", "-", "=", "0", ".", "(", ")", "+"].index(label)
        return 20 + (i % 5) * 64 + 29, 20 + (i // 5) * 40 + 17

    for instruction, label in [("the = button", "="), ("the minus button", "-"), ("the divide key", "/"),
                               ("the times button", "*"), ("the percent key", "%"), ("the decimal point", "."),
                               ("the ( button", "("), ("press ')'", ")"), ("the plus key", "+")]:
        found = _found(image, instruction)
        # the hyphen of "e-mail", the "=" and "-" of the sentence, the triangle and the bars are not keys
        assert len(found) == 1, (instruction, found)
        (x, y), (kx, ky) = found[0], key(label)
        assert abs(x - kx) <= 6 and abs(y - ky) <= 6, (instruction, found[0], (kx, ky))


def test_a_symbol_that_is_not_there_is_not_found():
    pytest.importorskip("rapidocr_onnxruntime")
    pytest.importorskip("scipy")
    image = Image.new("RGB", (400, 200), (255, 255, 255))
    draw = ImageDraw.Draw(image)
    font = ImageFont.truetype(FONT, 13)
    draw.text((20, 20), "Name: Ada Lovelace-Byron", fill=(0, 0, 0), font=font)
    draw.rounded_rectangle((20, 60, 100, 90), radius=4, outline=(120, 120, 120))
    draw.text((60, 75), "Save", fill=(0, 0, 0), font=font, anchor="mm")
    draw.polygon([(200, 70), (212, 70), (206, 77)], fill=(40, 40, 40))
    for instruction in ("the = button", "the minus button", "the plus key", "the decimal point", "the divide key"):
        assert _found(image, instruction) == [], instruction
