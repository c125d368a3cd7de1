"""Snapping a point onto the field or toggle an instruction names (vlagent/grounding/controls.py)."""
from __future__ import annotations

import pytest
from PIL import Image, ImageDraw, ImageFont

from vlagent.grounding.controls import (FIELD, SLIDER, TOGGLE, control_kind, find_controls, find_sliders,
                                       snap_to_control, text_height)
from vlagent.grounding.grounders.head import snapped
from vlagent.grounding.synthetic import _text_lines, make_screen
from vlagent.model.grounder import TextLine
from vlagent.model.grounding_head import HeadPrediction

W, H = 640, 360


@pytest.mark.parametrize("instruction, kind", [
    ("the Name field", FIELD), ("click in the search box", FIELD), ("the input for Email", FIELD),
    ("the 'Notes' text area", FIELD), ("tick Remember me", TOGGLE), ("the checkbox Wrap long lines", TOGGLE),
    ("the Wi-Fi switch", TOGGLE), ("select the radio button Weekly", TOGGLE), ("toggle Dark mode", TOGGLE),
    ("turn on Send usage statistics", TOGGLE), ("turn off Dark mode", TOGGLE),
    ("the Volume slider", SLIDER), ("the slider under Brightness", SLIDER),
    ("the Save button", None), ("open the File menu", None),
    # a quoted name's words do not say the kind: "Toggle navigation" is a button, the checkbox stays one
    ("press 'Toggle navigation'", None), ("the 'Search box' button", None),
    ("the 'Select all objects on this page' checkbox", TOGGLE), ("tick 'Remember me'", TOGGLE),
    # unquoted, a "Toggle" that starts a name (capitalized inside the sentence, or with a button's word)
    ("the Toggle navigation button", None), ("open Toggle sorting", None), ("Toggle Wi-Fi", TOGGLE),
    ("the toggle for Autosave", TOGGLE), ("check the box next to Toggle sorting", TOGGLE),
    ("toggle dark mode in the Appearance tab", TOGGLE), ("In Settings, Toggle Bluetooth", TOGGLE),
    ("click the toggle button next to Bluetooth", TOGGLE), ("toggle auto-hide the menu bar", TOGGLE),
    # "switch to" another tab or language is the verb; "the switch to ..." is still a switch
    ("switch to the Overview tab", None), ("Switch back to English", None), ("switch over to Advanced", None),
    ("the switch to enable Wi-Fi", TOGGLE), ("switch Wi-Fi on", TOGGLE),
    # a search box named with its hint's words is a field; a box beside a label stays a checkbox
    ("the Search users box", FIELD), ("the box next to Search results", TOGGLE),
    # a drop-down (a select, a combo box) is drawn as a field beside its label; a drop-down menu is a menu
    ("the Language dropdown", FIELD), ("the 'Country' drop-down", FIELD), ("the Font combo box", FIELD),
    ("choose from the Theme drop down list", FIELD), ("the Size select box", FIELD),
    ("open the File drop-down menu", None), ("the 'Drop-down' button", None),
    ("pull down the notification shade", None)])
def test_the_instruction_says_which_kind_of_control_it_names(instruction, kind):
    assert control_kind(instruction) == kind


def _canvas():
    """A white W x H image, its drawer, the text lines written so far, and text(x, y, words): writes words
    in black and records their OCR-like line (a little taller than the letters)."""
    image = Image.new("RGB", (W, H), "white")
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default(size=14)
    lines = []

    def text(x, y, words):
        draw.text((x, y), words, fill="black", font=font)
        x0, y0, x1, y1 = draw.textbbox((x, y), words, font=font)
        lines.append(TextLine(words, (x0 / W, (y0 - 2) / H, x1 / W, (y1 + 2) / H)))

    return image, draw, lines, text


def _form() -> tuple[Image.Image, list[TextLine]]:
    """A small form: 'Name' above a field, a checkbox left of 'Remember me', a ticked one left of 'Open at
    login', a radio button left of 'Weekly', and a field holding its hint text 'Write a note'."""
    image, draw, lines, text = _canvas()

    text(40, 30, "Name")
    draw.rectangle((40, 52, 400, 80), outline=(120, 120, 120))  # the field below its label
    draw.rectangle((40, 110, 53, 123), outline=(90, 90, 90))  # an empty checkbox
    text(62, 108, "Remember me")
    draw.rectangle((40, 150, 53, 163), fill=(30, 100, 220))  # a ticked checkbox: filled, a white tick
    draw.line((43, 157, 46, 160, 51, 152), fill="white", width=2)
    text(62, 148, "Open at login")
    draw.ellipse((40, 190, 53, 203), outline=(90, 90, 90))  # a radio button
    text(62, 188, "Weekly")
    draw.rectangle((40, 240, 600, 330), outline=(120, 120, 120))  # a text area holding its hint
    text(52, 250, "Write a note")
    return image, lines


def _px(point):
    return point[0] * W, point[1] * H


def test_outlines_of_fields_and_toggles_are_found_and_letters_are_not():
    image, lines = _form()
    found = find_controls(image, unit=18)
    kinds = [c.kind for c in found]
    assert kinds.count(FIELD) == 2 and kinds.count(TOGGLE) == 3  # no letter of the labels
    drawn = {FIELD: [(40, 52, 401, 81), (40, 240, 601, 331)],
             TOGGLE: [(40, 110, 54, 124), (40, 150, 54, 164), (40, 190, 54, 204)]}
    for control in found:  # each box within a pixel of a drawn outline
        assert any(max(abs(a - b) for a, b in zip(control.box, box)) <= 1 for box in drawn[control.kind]), control


@pytest.mark.parametrize("instruction, start, inside", [
    ("the Name field", (50, 38), (40, 52, 401, 81)),  # the point on the label -> the field below it
    ("click in the Name field", (300, 300), (40, 52, 401, 81)),  # the label decides over the point
    ("tick Remember me", (90, 115), (40, 110, 54, 124)),  # left of its label
    ("the checkbox Open at login", (120, 155), (40, 150, 54, 164)),  # ticked; not the "O" of "Open"
    ("the radio button Weekly", (80, 195), (40, 190, 54, 204)),
    ("the 'Write a note' field", (600, 20), (40, 240, 601, 331)),  # the field holding its hint
])
def test_a_point_snaps_onto_the_control_beside_the_label(instruction, start, inside):
    image, lines = _form()
    snap = snap_to_control(image, instruction, (start[0] / W, start[1] / H), lines)
    assert snap is not None and snap.by_label, instruction
    x, y = _px(snap.point)
    assert inside[0] <= x <= inside[2] and inside[1] <= y <= inside[3], (instruction, x, y)


def test_without_a_written_label_the_point_snaps_within_its_row_or_not_at_all():
    image, lines = _form()
    snap = snap_to_control(image, "tick Stay signed in", (200 / W, 116 / H), lines)  # no such label
    assert snap is not None and not snap.by_label
    x, y = _px(snap.point)
    assert 40 <= x <= 54 and 110 <= y <= 124  # the checkbox of the point's row
    assert snap_to_control(image, "tick Stay signed in", (300 / W, 225 / H), lines) is None  # nothing on its row
    assert snap_to_control(image, "the Save button", (50 / W, 38 / H), lines) is None  # names no control
    inside = snap_to_control(image, "the Email field", (300 / W, 66 / H), lines)
    assert inside is not None and _px(inside.point) == pytest.approx((300, 66))  # inside a field: it stays


def _prediction(found: bool) -> HeadPrediction:
    return HeadPrediction(point=(0.5, 0.5), confidence=0.2, found=found, box=(0.4, 0.4, 0.6, 0.6), p_none=0.3)


def test_a_refusal_is_taken_back_only_beside_a_written_label():
    image, lines = _form()
    by_label = snap_to_control(image, "the Name field", (0.5, 0.5), lines)
    by_point = snap_to_control(image, "tick Stay signed in", (200 / W, 116 / H), lines)
    assert snapped(_prediction(False), by_label).found and snapped(_prediction(False), by_label).point == by_label.point
    assert not snapped(_prediction(False), by_point).found  # a point alone does not make a refusal an answer
    assert snapped(_prediction(True), by_point).point == by_point.point
    assert snapped(_prediction(True), None) == _prediction(True)


def test_generated_screens_controls_are_found_from_their_labels():
    """On freshly generated screens (every theme, scale, language and layout the generator draws), a point
    on a control's label snaps inside that control."""
    phrasing = {"checkbox": "tick {}", "radio": "the radio button {}", "field": "the {} field",
                "switch": "the {} switch"}
    hits = total = 0
    for index in range(30):
        screen = make_screen(11, index)
        w, h = screen.image.size
        lines = [TextLine(ln.text, tuple(ln.box)) for ln in _text_lines(screen)]
        for element in screen.elements:
            label = next((ln for ln in lines if ln.text == element.near), None)
            if element.kind not in phrasing or label is None:
                continue
            start = ((label.box[0] + label.box[2]) / 2, (label.box[1] + label.box[3]) / 2)
            snap = snap_to_control(screen.image, phrasing[element.kind].format(element.near), start, lines)
            x0, y0, x1, y1 = element.box
            total += 1
            hits += snap is not None and x0 <= snap.point[0] * w <= x1 and y0 <= snap.point[1] * h <= y1
    assert total >= 40
    assert hits >= 0.9 * total, (hits, total)


def test_an_option_selected_by_its_label_is_its_radio_button():
    """"select Weekly": the radio button just left of the label; a label with no toggle beside it (a list
    row) and an instruction that selects nothing give None."""
    from PIL import ImageDraw

    from vlagent.grounding.controls import toggle_of_label
    from vlagent.model.grounder import TextLine

    image = Image.new("RGB", (400, 200), (250, 250, 250))
    draw = ImageDraw.Draw(image)
    draw.ellipse((20, 40, 36, 56), outline=(60, 60, 60), width=2)
    draw.text((44, 42), "Weekly", fill=(20, 20, 20))
    draw.text((44, 122), "Daily", fill=(20, 20, 20))
    weekly, daily = (44 / 400, 40 / 200, 90 / 400, 56 / 200), (44 / 400, 120 / 200, 80 / 400, 136 / 200)
    lines = [TextLine("Weekly", weekly), TextLine("Daily", daily)]
    box = toggle_of_label(image, "select Weekly", weekly, lines)
    assert box is not None and box[0] * 400 <= 28 <= box[2] * 400 and box[1] * 200 <= 48 <= box[3] * 200
    assert toggle_of_label(image, "choose the Weekly option", weekly, lines) == box
    assert toggle_of_label(image, "select Daily", daily, lines) is None
    assert toggle_of_label(image, "click Weekly", weekly, lines) is None
    # OCR read the radio button into the label's line (" Weekly" from x = 20): the toggle starting the line
    read_with_radio = (20 / 400, 40 / 200, 90 / 400, 56 / 200)
    assert toggle_of_label(image, "select Weekly", read_with_radio, [TextLine(" Weekly", read_with_radio)]) == box
    # ... or into the line's box alone ("Weekly" from x = 20): the toggle starts the line, blank after it
    assert toggle_of_label(image, "select Weekly", read_with_radio, [TextLine("Weekly", read_with_radio)]) == box
    # a toggle-sized outline farther left on the row (a toolbar icon) does not start the label's line
    assert toggle_of_label(image, "select Weekly", weekly, [TextLine("Weekly", weekly)]) == box
    far = Image.new("RGB", (400, 200), (250, 250, 250))
    ImageDraw.Draw(far).ellipse((20, 40, 36, 56), outline=(60, 60, 60), width=2)
    ImageDraw.Draw(far).text((104, 42), "Weekly", fill=(20, 20, 20))
    far_label = (104 / 400, 40 / 200, 150 / 400, 56 / 200)
    assert toggle_of_label(far, "select Weekly", far_label, [TextLine(" Weekly", far_label)]) is None


def test_the_first_letter_of_a_label_is_no_radio_button():
    """"Open at login" drawn large: its "O" is a closed toggle-sized outline starting the label's line, but
    the "p" right after it says it is a letter."""
    from PIL import ImageDraw, ImageFont

    from vlagent.grounding.controls import find_controls, toggle_of_label
    from vlagent.model.grounder import TextLine

    font = ImageFont.truetype("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf", 22)
    image = Image.new("RGB", (400, 200), (250, 250, 250))
    draw = ImageDraw.Draw(image)
    x0, y0, x1, y1 = draw.textbbox((20, 40), "Open at login", font=font)
    draw.text((20, 40), "Open at login", font=font, fill=(20, 20, 20))
    label = (x0 / 400, y0 / 200, x1 / 400, y1 / 200)
    lines = [TextLine("Open at login", label)]
    # the "O" (and, since a browser's 13 px checkbox counts, the bowls of small letters) look like toggles
    assert x0 in [c.box[0] for c in find_controls(image, y1 - y0) if c.kind == "toggle"]
    assert toggle_of_label(image, "select Open at login", label, lines) is None
    # a ring at the screen's right edge, OCR's box starting at it: no room to look right of it, no answer
    edge = Image.new("RGB", (400, 200), (250, 250, 250))
    ImageDraw.Draw(edge).ellipse((384, 40, 399, 55), outline=(60, 60, 60), width=2)
    at_edge = (383 / 400, 39 / 200, 1.0, 56 / 200)
    assert toggle_of_label(edge, "select W", at_edge, [TextLine("W", at_edge)]) is None


def test_a_point_on_a_fields_border_moves_inside_it():
    image, lines = _form()
    snap = snap_to_control(image, "the Name field", (400 / W, 66 / H), lines)  # the field's right edge
    x, y = _px(snap.point)
    assert 40 < x < 398 and 54 < y < 78


def _sliders_page(dark: bool) -> tuple[Image.Image, list[TextLine], dict]:
    """Two labelled sliders (label above: a track, its filled part, a round knob), an underlined link with
    descenders and a plain separator line; in a light or a dark theme."""
    paper, ink, track, accent = ((30, 30, 34), (230, 230, 230), (60, 60, 66), (90, 200, 120)) if dark else \
        ((250, 250, 250), (20, 20, 20), (200, 200, 205), (40, 110, 220))
    image = Image.new("RGB", (W, H), paper)
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default(size=14)
    lines, knobs = [], {}
    for label, y, at in (("Volume", 40, 0.3), ("Brightness", 120, 0.85)):
        draw.text((40, y), label, fill=ink, font=font)
        x0, y0, x1, y1 = draw.textbbox((40, y), label, font=font)
        lines.append(TextLine(label, (x0 / W, (y0 - 2) / H, x1 / W, (y1 + 2) / H)))
        cy, kx = y + 34, 40 + int(at * 360)
        draw.rounded_rectangle((40, cy - 2, 400, cy + 2), radius=2, fill=track)
        draw.rounded_rectangle((40, cy - 2, kx, cy + 2), radius=2, fill=accent)
        draw.ellipse((kx - 8, cy - 8, kx + 8, cy + 8), fill=accent)
        knobs[label] = (kx, cy)
    draw.text((40, 220), "Forgotten password? Apply", fill=accent, font=font)  # descenders on the line
    x0, y0, x1, y1 = draw.textbbox((40, 220), "Forgotten password? Apply", font=font)
    draw.line((x0, y1 + 1, x1, y1 + 1), fill=accent, width=2)
    lines.append(TextLine("Forgotten password? Apply", (x0 / W, (y0 - 2) / H, x1 / W, (y1 + 3) / H)))
    draw.line((20, 300, 620, 300), fill=track, width=1)
    return image, lines, knobs


@pytest.mark.parametrize("dark", [False, True])
def test_sliders_are_found_with_their_knobs_and_underlines_are_not(dark):
    image, _, knobs = _sliders_page(dark)
    found = find_sliders(image, unit=16)
    assert len(found) == 2, found
    for control, (kx, cy) in zip(sorted(found, key=lambda c: c.box[1]), knobs.values()):
        assert abs(control.knob[0] - kx) <= 2 and abs(control.knob[1] - cy) <= 2
        assert control.box[0] <= 41 and control.box[2] >= 399


@pytest.mark.parametrize("instruction, label", [("the Brightness slider", "Brightness"),
                                                ("the slider under Volume", "Volume")])
def test_a_point_snaps_onto_the_knob_of_the_slider_under_its_label(instruction, label):
    image, lines, knobs = _sliders_page(dark=False)
    snap = snap_to_control(image, instruction, (0.9, 0.95), lines)  # the model's point far off
    assert snap is not None and snap.by_label
    x, y = _px(snap.point)
    assert abs(x - knobs[label][0]) <= 2 and abs(y - knobs[label][1]) <= 2


def test_generated_screens_sliders_are_all_found_and_nothing_else():
    found_right = wrong = missed = 0
    for index in range(120):
        screen = make_screen(4242, index)
        unit = text_height(_text_lines(screen), screen.image.size)
        sliders = [e.box for e in screen.elements if e.kind == "slider"]
        found = find_sliders(screen.image, unit)
        for control in found:
            kx, ky = control.knob
            inside = any(x0 <= kx <= x1 and y0 <= ky <= y1 for x0, y0, x1, y1 in sliders)
            found_right, wrong = found_right + inside, wrong + (not inside)
        missed += sum(not any(x0 <= c.knob[0] <= x1 and y0 <= c.knob[1] <= y1 for c in found)
                      for x0, y0, x1, y1 in sliders)
    assert found_right >= 15 and wrong == 0 and missed == 0, (found_right, wrong, missed)


def test_a_standing_slider_is_found_too():
    image, _, _ = _sliders_page(dark=False)
    standing = image.transpose(Image.Transpose.TRANSPOSE)  # the page turned: tracks stand, text lies sideways
    found = find_sliders(standing, unit=16)
    assert len(found) == 2
    assert all(c.box[3] - c.box[1] > 300 and c.box[2] - c.box[0] < 30 for c in found)


def _trough(draw: ImageDraw.ImageDraw, box: tuple[int, int, int, int], knob_at: float) -> tuple[float, float]:
    """A Tk-style scale: a sunken trough, a raised knob 2 troughs-thick long inside it; the knob's centre."""
    x0, y0, x1, y1 = box
    draw.rectangle(box, fill=(179, 179, 179), outline=(120, 120, 120))
    length = 2 * (y1 - y0 - 4)
    kx = x0 + 2 + length / 2 + knob_at * (x1 - x0 - 4 - length)
    draw.rectangle((kx - length / 2, y0 + 2, kx + length / 2, y1 - 2), fill=(217, 217, 217), outline=(250, 250, 250))
    draw.line((kx, y0 + 3, kx, y1 - 3), fill=(140, 140, 140))  # the groove across its middle
    return kx, (y0 + y1) / 2


def test_a_knob_sliding_in_a_trough_is_a_slider_and_a_field_with_its_clear_button_is_not():
    """Tk's and ttk's scales draw a trough as thick as their knob: not found before. Its level along the
    track is read back, and slider_point puts a level where slider_level reads it."""
    from vlagent.grounding.controls import slider_level, slider_point

    image = Image.new("RGB", (W, H), (217, 217, 217))
    draw = ImageDraw.Draw(image)
    knobs = [_trough(draw, (100, 60 + 50 * i, 420, 78 + 50 * i), at) for i, at in enumerate((0.0, 0.3, 1.0))]
    draw.rectangle((100, 240, 440, 272), fill="white", outline=(150, 150, 150))  # a field, a clear button at its end
    draw.text((108, 248), "entry text", fill=(30, 30, 30), font=ImageFont.load_default(size=14))
    draw.rectangle((404, 241, 439, 271), fill=(236, 236, 236))
    draw.line((416, 250, 428, 262), fill=(40, 40, 40), width=2)
    found = sorted(find_sliders(image, unit=14), key=lambda c: c.box[1])
    assert len(found) == 3, found
    for control, (kx, ky), at in zip(found, knobs, (0.0, 0.3, 1.0)):
        assert abs(control.knob[0] - kx) <= 2 and abs(control.knob[1] - ky) <= 2
        assert abs(slider_level(control) - at) <= 0.02
        px, py = slider_point(control, slider_level(control))
        assert abs(px - control.knob[0]) <= 0.5 and py == control.knob[1]


def test_a_rows_checkbox_named_by_its_action_and_its_row():
    """Admin tables name each row's checkbox for screen readers: 'Select this object for an action - alan'.
    The row's name is written (once as asked; 'Alan' in another column), the action is not."""
    image = Image.new("RGB", (W, H), "white")
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default(size=14)
    lines, rows = [], {}
    for i, (user, first) in enumerate((("admin", "Ada"), ("alan", "Alan"), ("grace", "Grace"))):
        y = 60 + 40 * i
        draw.rectangle((20, y, 33, y + 13), outline=(90, 90, 90))
        rows[user] = (20, y, 33, y + 13)
        for x, words in ((80, user), (260, first)):
            draw.text((x, y - 1), words, fill="black", font=font)
            x0, y0, x1, y1 = draw.textbbox((x, y - 1), words, font=font)
            lines.append(TextLine(words, (x0 / W, (y0 - 2) / H, x1 / W, (y1 + 2) / H)))
    for instruction in ("tick Select this object for an action - alan",
                        "the 'Select this object for an action - alan' checkbox",
                        "check the Select this object for an action - alan box"):
        snap = snap_to_control(image, instruction, (0.5, 0.9), lines)
        assert snap is not None and snap.by_label, instruction
        x, y = _px(snap.point)
        x0, y0, x1, y1 = rows["alan"]
        assert x0 <= x <= x1 and y0 <= y <= y1, instruction
    # no dash, nothing written: the label is not found, the point alone decides
    snap = snap_to_control(image, "tick Select this object for an action", (0.5, 0.9), lines)
    assert snap is None or not snap.by_label


def _table(rows: int) -> tuple[Image.Image, list[TextLine], tuple[int, int, int, int]]:
    """A table with a checkbox column headed by a checkbox, and a lone checkbox far above it: (image, lines,
    the header checkbox's box)."""
    image = Image.new("RGB", (W, H), "white")
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default(size=14)
    lines = []
    draw.rectangle((22, 10, 35, 23), outline=(90, 90, 90))  # "Remember me", far above the table
    for i, name in enumerate(["USERNAME"] + [f"user{k}" for k in range(rows)]):
        y = 120 + 34 * i
        draw.rectangle((20, y, 33, y + 13), outline=(90, 90, 90))
        draw.text((80, y - 1), name, fill="black", font=font)
        x0, y0, x1, y1 = draw.textbbox((80, y - 1), name, font=font)
        lines.append(TextLine(name, (x0 / W, (y0 - 2) / H, x1 / W, (y1 + 2) / H)))
    return image, lines, (20, 120, 33, 133)


def test_select_all_is_the_checkbox_heading_a_column_of_them():
    image, lines, head = _table(rows=5)
    for instruction in ("the 'Select all objects on this page for an action' checkbox",
                        "check the select-all box", "toggle Select all rows"):
        snap = snap_to_control(image, instruction, (0.9, 0.9), lines)
        assert snap is not None and snap.by_label, instruction
        x, y = _px(snap.point)
        assert head[0] <= x <= head[2] and head[1] <= y <= head[3], instruction
    # two checkboxes are no column; a column is its rows, not a checkbox far above them
    image, lines, _ = _table(rows=1)
    snap = snap_to_control(image, "check the select-all box", (0.9, 0.9), lines)
    assert snap is None or not snap.by_label


def test_a_field_named_nowhere_is_the_one_whose_hint_shares_a_word():
    """"The Filter navigation items field": its name is written nowhere (a screen reader's label), but one
    field's hint ("Start typing to filter...") shares a word with it; so does a heading in an outline
    ("FILTER"), but a hint trails off."""
    image, lines = _form()  # the text area's hint: "Write a note"
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default(size=14)
    draw.rectangle((420, 30, 620, 58), outline=(120, 120, 120))
    draw.text((428, 36), "Start typing to filter...", fill=(140, 140, 140), font=font)
    x0, y0, x1, y1 = draw.textbbox((428, 36), "Start typing to filter...", font=font)
    lines.append(TextLine("Start typing to filter...", (x0 / W, (y0 - 2) / H, x1 / W, (y1 + 2) / H)))
    draw.rectangle((420, 110, 620, 138), outline=(40, 40, 40))  # a button: its caption centred, no hint
    x0, y0, x1, y1 = draw.textbbox((520, 124), "Send message", font=font, anchor="mm")
    draw.text((520, 124), "Send message", fill="black", font=font, anchor="mm")
    lines.append(TextLine("Send message", (x0 / W, (y0 - 2) / H, x1 / W, (y1 + 2) / H)))
    # a heading band "FILTER" (outlined, written from its left) also shares the word; the hint trails off
    draw.rectangle((420, 160, 620, 188), outline=(120, 120, 120))
    draw.text((428, 166), "FILTER", fill="black", font=font)
    x0, y0, x1, y1 = draw.textbbox((428, 166), "FILTER", font=font)
    lines.append(TextLine("FILTER", (x0 / W, (y0 - 2) / H, x1 / W, (y1 + 2) / H)))
    for instruction, field in (("the input for Filter navigation items", (420, 30, 620, 58)),
                               ("the Write a comment field", (40, 240, 600, 330)),
                               ("the Zorblax field", None), ("the Message body field", None)):
        snap = snap_to_control(image, instruction, (0.95, 0.95), lines)
        if field is None:
            assert snap is None or not snap.by_label, instruction
            continue
        assert snap is not None and snap.by_label, instruction
        x, y = _px(snap.point)
        assert field[0] <= x <= field[2] and field[1] <= y <= field[3], instruction


def test_a_field_named_nowhere_is_found_by_what_it_shows():
    """A text editor's toolbar (gucharmap's): a font chooser showing "Sans" and a spin box showing "20",
    neither labelled on screen. "The Font Size spin box" is the field showing a number, "the Font Family
    field" the one showing an installed font's name; with two numbers shown, "the size field" is neither."""
    image = Image.new("RGB", (W, H), "white")
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default(size=14)
    lines = []

    def field(box, value):
        draw.rectangle(box, outline=(120, 120, 120))
        draw.text((box[0] + 8, box[1] + 7), value, fill="black", font=font)
        x0, y0, x1, y1 = draw.textbbox((box[0] + 8, box[1] + 7), value, font=font)
        lines.append(TextLine(value, (x0 / W, (y0 - 2) / H, x1 / W, (y1 + 2) / H)))

    family, size = (20, 20, 220, 48), (330, 20, 450, 48)
    field(family, "Sans")
    field(size, "20")
    for instruction, wanted in (("the 'Font Size' spin box", size), ("the input for Font Size", size),
                                ("click in the Font Family field", family)):
        snap = snap_to_control(image, instruction, (0.5, 0.9), lines)
        assert snap is not None and snap.by_label, instruction
        x, y = _px(snap.point)
        assert wanted[0] <= x <= wanted[2] and wanted[1] <= y <= wanted[3], instruction
    # the model's point already in a field: kept there; a font's colour is no family
    snap = snap_to_control(image, "click in the Font Family field", (390 / W, 34 / H), lines)
    assert snap is not None and not snap.by_label and size[0] <= _px(snap.point)[0] <= size[2]
    snap = snap_to_control(image, "the Font Color field", (0.5, 0.9), lines)
    assert snap is None or not snap.by_label
    field((20, 100, 220, 128), "12")  # a second number: which one is the size is not written anywhere
    snap = snap_to_control(image, "the Font Size field", (0.5, 0.9), lines)
    assert snap is None or not snap.by_label


def test_a_hint_is_written_from_the_left_of_a_field_not_in_a_card_or_on_a_button() -> None:
    """A field's hint starts at its left; a button's caption is centred in its outline; a button's caption
    inside a card (an outline many text heights tall) is no hint either, though it starts at the card's
    left."""
    from vlagent.grounding.controls import FIELD, Control, written_as_hint

    size = (1000, 1000)
    field = Control(FIELD, (100, 100, 500, 130))
    button = Control(FIELD, (600, 100, 700, 130))
    card = Control(FIELD, (10, 300, 400, 430))

    def box(x0, y0, x1, y1):
        return x0 / 1000, y0 / 1000, x1 / 1000, y1 / 1000

    assert written_as_hint([field, button, card], box(108, 106, 180, 124), size)  # "Search..."
    assert not written_as_hint([field, button, card], box(625, 106, 675, 124), size)  # "Sign in"
    assert not written_as_hint([field, button, card], box(34, 400, 69, 418), size)  # "Print" in a card


def test_a_dark_themes_faint_field_outline_is_found():
    """GTK's dark theme draws a field's border 26 grey levels below the window and 18 below the field's
    inside, with antialiased round corners fainter still (gucharmap's real screenshots): its four sides,
    split at the corners at the usual edge contrast, are one outline among fainter edges."""
    scale = 4  # drawn large and shrunk: antialiased corners, as a toolkit draws them
    big = Image.new("L", (480 * scale, 120 * scale), 53)
    ImageDraw.Draw(big).rounded_rectangle((40 * scale, 40 * scale, 400 * scale, 75 * scale), radius=5 * scale,
                                          fill=45, outline=27, width=scale)
    image = big.resize((480, 120), Image.LANCZOS).convert("RGB")
    fields = [c.box for c in find_controls(image, unit=14) if c.kind == FIELD]
    assert len(fields) == 1 and max(abs(a - b) for a, b in zip(fields[0], (40, 40, 401, 76))) <= 2, fields
    light = Image.eval(image, lambda v: 255 - (53 - v) * 3)  # the same drawing at a light theme's contrast
    found = [c.box for c in find_controls(light, unit=14) if c.kind == FIELD]  # found once, not twice
    assert len(found) == 1 and max(abs(a - b) for a, b in zip(found[0], fields[0])) <= 2, found


def test_a_browsers_native_checkbox_is_a_toggle_beside_its_label():
    """Chromium draws an unstyled checkbox 13 px square, grey-bordered, beside 16 px text that OCR boxes 24 px
    tall: a little over half a text height, still a toggle, and the one beside its label."""
    image = Image.new("RGB", (W, H), "white")
    draw = ImageDraw.Draw(image)
    draw.rounded_rectangle((44, 182, 56, 194), radius=2, outline=(118, 118, 118), fill="white")
    font = ImageFont.load_default(size=16)
    draw.text((65, 180), "Keep me signed in", fill="black", font=font)
    label = TextLine("Keep me signed in", (64 / W, 178 / H, 212 / W, 205 / H))
    toggles = [c.box for c in find_controls(image, unit=24) if c.kind == TOGGLE]
    assert len(toggles) == 1 and max(abs(a - b) for a, b in zip(toggles[0], (44, 182, 57, 195))) <= 1, toggles
    snap = snap_to_control(image, "tick Keep me signed in", (150 / W, 190 / H), [label])
    assert snap is not None and 43 <= snap.point[0] * W <= 57 and 181 <= snap.point[1] * H <= 195, snap


def test_a_flat_web_input_is_a_field_and_a_coloured_pill_is_not():
    """A login card's inputs are a #f4f5f7 fill on white with a grey line underneath (no outline at the usual
    contrast); its "Log in" button is a blue pill of a field's size. "the Password field" clicked the pill."""
    image = Image.new("RGB", (W, H), "white")
    draw = ImageDraw.Draw(image)
    draw.rectangle((100, 60, 480, 104), fill=(244, 245, 247))
    draw.line((100, 104, 480, 104), fill=(208, 210, 214), width=2)
    draw.rounded_rectangle((100, 200, 480, 243), radius=21, fill=(36, 120, 255))
    fields = [c.box for c in find_controls(image, unit=23) if c.kind == FIELD]
    assert len(fields) == 1 and abs(fields[0][1] - 60) <= 1 and abs(fields[0][3] - 106) <= 2, fields


def test_select_all_is_not_a_letter_of_the_heading_above_the_table():
    """A page's bold "Users" heading above a table: its "U" is toggle-sized and in the checkboxes' column,
    but much further above the header's checkbox than the rows are apart."""
    image = Image.new("RGB", (W, H), "white")
    draw = ImageDraw.Draw(image)
    font = ImageFont.truetype("/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf", 26)
    draw.text((31, 28), "Users", font=font, fill="black")
    boxes = [(41, 134 + 36 * i, 54, 147 + 36 * i) for i in range(6)]  # the header's checkbox, then 5 rows'
    for box in boxes:
        draw.rectangle(box, outline=(118, 118, 118))
    lines = [TextLine("Users", (27 / W, 28 / H, 110 / W, 58 / H))]
    lines += [TextLine(f"Person {i}", (94 / W, (129 + 36 * i) / H, 190 / W, (152 + 36 * i) / H)) for i in range(1, 6)]
    snap = snap_to_control(image, "the select all checkbox", (40 / W, 42 / H), lines)
    assert snap is not None and 41 <= snap.point[0] * W <= 55 and 133 <= snap.point[1] * H <= 148, snap


def _settings_form() -> tuple[Image.Image, list[TextLine]]:
    """A settings form: "Language" left of a select showing "English" and its arrow, "Theme" left of
    another; a "Search settings" field at the top right of the same row as the page's title."""
    image, draw, lines, text = _canvas()

    text(40, 20, "Settings")
    draw.rectangle((400, 12, 600, 40), outline=(150, 150, 150))  # a search field at the title's row
    text(410, 19, "Search settings")
    for y, label, value in ((100, "Language", "English"), (160, "Theme", "System default")):
        text(40, y, label)
        draw.rectangle((180, y - 7, 420, y + 21), outline=(150, 150, 150), fill=(248, 248, 248))
        text(190, y, value)
        draw.polygon(((398, y + 4), (410, y + 4), (404, y + 11)), fill=(60, 60, 60))  # the arrow
    # a browser's unstyled select sized to its one short option: not much taller than the text, four times
    # as wide as it is tall (a toggle's size, were it square)
    text(40, 220, "Units")
    draw.rectangle((100, 218, 167, 235), outline=(118, 118, 118), fill=(250, 250, 250))
    text(104, 220, "cm")
    draw.polygon(((152, 224), (160, 224), (156, 229)), fill=(20, 20, 20))
    return image, lines


@pytest.mark.parametrize("instruction, inside", [
    ("the Language dropdown", (180, 93, 421, 122)), ("the 'Theme' drop-down", (180, 153, 421, 182)),
    ("click the Language combo box", (180, 93, 421, 122)), ("the Units dropdown", (100, 218, 168, 236)),
    ("choose a language from the Language dropdown list", (180, 93, 421, 122)),
    ("set the Theme drop-down to Dark", (180, 153, 421, 182)),
])
def test_a_drop_down_named_by_its_label_is_the_select_beside_it(instruction, inside):
    """"the Language dropdown" clicked the label: a select is found as the field beside its label."""
    image, lines = _settings_form()
    label = next(ln for ln in lines if ln.text in instruction)
    on_label = ((label.box[0] + label.box[2]) / 2, (label.box[1] + label.box[3]) / 2)  # where the model points
    snap = snap_to_control(image, instruction, on_label, lines)
    assert snap is not None and snap.by_label, instruction
    x, y = _px(snap.point)
    assert inside[0] <= x <= inside[2] and inside[1] <= y <= inside[3], (instruction, x, y)


def test_a_field_touched_by_its_label_above_is_found_alone():
    """"Country" written right on top of its select (no margin): the "y"'s tail touches the outline, so the
    letters and the outline are one edge component; the field is still found, with its own box."""
    image = Image.new("RGB", (W, H), "white")
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default(size=16)
    draw.text((40, 80), "Country", fill="black", font=font)
    bottom = draw.textbbox((40, 80), "Country", font=font)[3]
    draw.rectangle((40, bottom, 280, bottom + 19), outline=(118, 118, 118))
    draw.text((45, bottom + 3), "Germany", fill="black", font=font)
    fields = [c.box for c in find_controls(image, unit=21) if c.kind == FIELD]
    assert len(fields) == 1 and all(abs(a - b) <= 1 for a, b in zip(fields[0], (40, bottom, 281, bottom + 20))), fields


def test_a_panel_around_the_label_is_no_field_holding_it():
    """A window's outline around "Size" and its combo box is field-sized and holds the label: it was taken for
    a field with "Size" as its hint, and "the Size dropdown" clicked the window's far edge."""
    image = Image.new("RGB", (W, H), "white")
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default(size=14)
    draw.rectangle((20, 60, 600, 260), outline=(120, 120, 120), fill=(217, 217, 217))
    draw.text((40, 100), "Size", fill="black", font=font)
    x0, y0, x1, y1 = draw.textbbox((40, 100), "Size", font=font)
    lines = [TextLine("Size", (x0 / W, (y0 - 2) / H, x1 / W, (y1 + 2) / H))]
    draw.rectangle((100, 95, 300, 117), outline=(120, 120, 120), fill="white")
    snap = snap_to_control(image, "the Size dropdown", (560 / W, 240 / H), lines)
    assert snap is not None and snap.by_label
    x, y = _px(snap.point)
    assert 100 <= x <= 301 and 95 <= y <= 118, (x, y)


def _button_drop_downs() -> tuple[Image.Image, list[TextLine]]:
    """Drop-downs drawn as buttons (GTK's GtkComboBox, Qt's QComboBox): a label, then a raised button whose
    outline breaks at its rounded corners (no closed outline), holding the value and a ▾ arrow."""
    image, draw, lines, text = _canvas()
    for y, label, value, x_button in ((100, "Search direction:", "Down", 170), (200, "Replace all in:", "Document", 150)):
        text(30, y, label)
        x0, y0, x1, y1 = x_button, y - 9, x_button + 110, y + 23
        grey = (200, 200, 200)
        draw.line((x0 + 3, y0, x1 - 3, y0), fill=grey)
        draw.line((x0 + 3, y1, x1 - 3, y1), fill=grey)
        draw.line((x0, y0 + 3, x0, y1 - 3), fill=grey)
        draw.line((x1, y0 + 3, x1, y1 - 3), fill=grey)
        text(x0 + 10, y, value)
        draw.polygon(((x1 - 24, y + 4), (x1 - 12, y + 4), (x1 - 18, y + 10)), fill=(40, 40, 40))  # the arrow
    text(420, 100, "Wrap around")
    return image, lines


@pytest.mark.parametrize("instruction, inside", [
    ("the Search direction dropdown", (170, 91, 280, 123)), ("Search direction (drop-down)", (170, 91, 280, 123)),
    ("the Replace all in combo box", (150, 191, 260, 223)),
])
def test_a_drop_down_drawn_as_a_button_is_found_by_its_arrow(instruction, inside):
    """mousepad's "Search direction: [Down ▾]": no outline closes around the button, and "the Search direction
    dropdown" clicked the label. The ▾ on the label's row marks the drop-down."""
    image, lines = _button_drop_downs()
    label = next(ln for ln in lines if ln.text.rstrip(":") in instruction)
    on_label = ((label.box[0] + label.box[2]) / 2, (label.box[1] + label.box[3]) / 2)
    snap = snap_to_control(image, instruction, on_label, lines)
    assert snap is not None and snap.by_label, instruction
    x, y = _px(snap.point)
    assert inside[0] <= x <= inside[2] and inside[1] <= y <= inside[3], (instruction, x, y)
