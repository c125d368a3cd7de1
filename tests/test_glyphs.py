"""Lone symbols found by their shape (vlagent/grounding/glyphs.py): a keypad drawn here, with the words,
triangles and hyphens a symbol must not be taken for; the real galculator is driven by its symbol keys in
test_scripting.py."""
from __future__ import annotations

import pytest
from PIL import Image, ImageDraw, ImageFont

from vlagent.grounding.glyphs import find_symbols, named_symbols, symbol_texts, written_symbols

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


def test_keys_written_in_several_symbols_are_read_as_written():
    """galculator's "+/-" and "<-" keys: OCR reads them, but no word of "the +/- button" or "the backspace
    key" is a letter or a digit to match."""
    from vlagent.model.grounder import TextLine

    lines = [TextLine("+/-", (0.1, 0.1, 0.2, 0.2)), TextLine("<-", (0.3, 0.1, 0.4, 0.2)), TextLine("+", (0.5, 0.1, 0.6, 0.2))]
    assert symbol_texts("the +/- button") == ("+/-",) and symbol_texts("the Save button") == ()
    assert written_symbols(symbol_texts("the +/- button"), lines) == [(0.1, 0.1, 0.2, 0.2)]
    assert written_symbols(symbol_texts("the plus/minus key"), lines) == [(0.1, 0.1, 0.2, 0.2)]
    assert written_symbols(symbol_texts("press the backspace key"), lines) == [(0.3, 0.1, 0.4, 0.2)]
    assert written_symbols(symbol_texts("the = button"), lines) == []


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


def test_a_label_written_twice_is_the_one_on_a_key():
    """galculator showing 0: "the 0 button" went to the display's "0" (0.51), not to the key. Where a button's
    or key's name is written in several places and one of them sits on a key (edges close it in on all
    four sides), that one is the answer."""
    pytest.importorskip("rapidocr_onnxruntime")
    pytest.importorskip("scipy")
    from vlagent.grounding.controls import text_height
    from vlagent.grounding.glyphs import on_a_key
    from vlagent.grounding.grounders.head import DEFAULT_FOLDER, HeadGrounder, screen_text
    from vlagent.model.grounder import written_places

    image = _keypad()
    draw = ImageDraw.Draw(image)
    draw.rectangle((340, 20, 620, 70), fill=(255, 255, 255), outline=(180, 180, 180))  # the display
    draw.text((600, 45), "0", fill=(0, 0, 0), font=ImageFont.truetype(FONT, 26), anchor="rm")
    lines = screen_text(image)
    unit = text_height(lines, image.size)
    places = written_places("the 0 button", lines)
    assert len(places) == 2 and [on_a_key(image, p, unit) for p in sorted(places)] == [True, False]
    if not (DEFAULT_FOLDER / "grounder.safetensors").is_file():
        pytest.skip("no trained grounder ships in this checkout")
    key = 20 + 0 * 64 + 29, 20 + 3 * 40 + 17  # "0": the first key of the fourth row
    for instruction in ("the 0 button", "the 0 key"):
        result = HeadGrounder(DEFAULT_FOLDER).ground(image, instruction)
        x, y = result.point[0] * image.width, result.point[1] * image.height
        assert result.found and abs(x - key[0]) <= 8 and abs(y - key[1]) <= 8, (instruction, x, y)
