"""Keys of an on-screen QWERTY keyboard found by their place in its rows (vlagent.grounding.keyboard)."""
from __future__ import annotations

import pytest
from PIL import Image, ImageDraw

from vlagent.grounding.keyboard import SPACE, find_key, find_keys, key_named
from vlagent.grounding.synthetic import make_screen


@pytest.mark.parametrize("instruction, key", [
    ("the Q key", "q"), ("press i on the keyboard", "i"), ("the key O", "o"), ("tap 'm' on the keyboard", "m"),
    ("type the letter k on the on-screen keyboard", "k"), ("the space bar", SPACE), ("press the space key", SPACE),
    ("the Save button", None), ("press Enter", None), ("the A button", None), ("the key to success", None)])
def test_the_instruction_says_which_key(instruction, key):
    assert key_named(instruction) == key


def _keyboard(width: int = 412, dark: bool = True, rows=("qwertyuiop", "asdfghjkl", "zxcvbnm"), shift: bool = False):
    """A phone screen with a keyboard drawn as Android's: rounded keys barely off the keyboard's colour, a
    letter on each, a space bar below; with `shift`, a shift and a backspace key at the ends of the last
    letter row. Returns the image and each key's box."""
    paper, board, key, ink = ((30, 30, 30), (40, 40, 44), (62, 62, 66), (230, 230, 230)) if dark else \
        ((250, 250, 250), (222, 224, 228), (255, 255, 255), (20, 20, 20))
    image = Image.new("RGB", (width, 860), paper)
    draw = ImageDraw.Draw(image)
    draw.rectangle((0, 600, width, 860), fill=board)
    gap, key_h = 6, 52
    key_w = (width - 11 * gap) / 10
    boxes = {}
    for r, letters in enumerate(rows):
        y = 600 + gap + r * (key_h + gap)
        x = gap + (10 - len(letters)) * (key_w + gap) / 2
        if shift and r == 2:
            draw.rounded_rectangle((gap, y, int(x - gap), y + key_h), radius=5, fill=key)
            draw.rounded_rectangle((int(x + 7 * (key_w + gap)), y, width - gap, y + key_h), radius=5, fill=key)
        for ch in letters:
            box = (int(x), y, int(x + key_w), y + key_h)
            draw.rounded_rectangle(box, radius=5, fill=key)
            draw.text(((box[0] + box[2]) // 2, (box[1] + box[3]) // 2), ch, fill=ink, anchor="mm")
            boxes[ch] = box
            x += key_w + gap
    y = 600 + gap + 3 * (key_h + gap)
    boxes[SPACE] = (int(gap + 2.5 * (key_w + gap)), y, int(gap + 7.5 * (key_w + gap) - gap), y + key_h)
    draw.rounded_rectangle(boxes[SPACE], radius=5, fill=key)
    return image, boxes


@pytest.mark.parametrize("dark, shift", [(True, False), (False, False), (False, True)])
def test_every_key_is_found_by_its_place(dark, shift):
    image, boxes = _keyboard(dark=dark, shift=shift)
    keys = find_keys(image)
    assert set(keys) == set(boxes)
    for name, (x0, y0, x1, y1) in boxes.items():
        kx0, ky0, kx1, ky1 = keys[name]
        assert abs(kx0 - x0) <= 2 and abs(ky0 - y0) <= 2 and abs(kx1 - x1) <= 2 and abs(ky1 - y1) <= 2, name


def test_a_grid_that_is_not_a_keyboard_names_no_keys():
    image, _ = _keyboard(rows=("qwertyuiop", "asdfghjkl", "zxcvbnmzxc", "qwertyuiop"))  # 10, 9, 10, 10 keys
    assert find_keys(image) == {}
    assert find_key(Image.new("RGB", (412, 860), "white"), "the Q key") is None


def test_generated_phone_keyboards_are_read_in_full():
    screens = hits = 0
    for index in range(300):
        screen = make_screen(4242, index)
        keys = [e for e in screen.elements if e.role in ("key", "space bar")]
        if not keys:
            continue
        screens += 1
        w, h = screen.image.size
        for element in keys:
            name = SPACE if element.role == "space bar" else element.label
            box = find_key(screen.image, f"the {name} key" if name != SPACE else "the space bar")
            x0, y0, x1, y1 = element.box
            hits += box is not None and x0 <= (box[0] + box[2]) / 2 * w <= x1 and y0 <= (box[1] + box[3]) / 2 * h <= y1
    assert screens >= 10 and hits == 27 * screens


def test_the_shipped_grounder_presses_the_key():
    from vlagent.grounding.grounders.head import default_grounder

    image, boxes = _keyboard()
    result = default_grounder().ground(image, "press i on the keyboard", platform="android")
    x0, y0, x1, y1 = boxes["i"]
    assert result.found and result.raw == "keyboard key"
    assert x0 <= result.point[0] * 412 <= x1 and y0 <= result.point[1] * 860 <= y1
