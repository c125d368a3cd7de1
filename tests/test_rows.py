"""Targets told apart by their row (vlagent/grounding/rows.py): a table drawn here with its text's boxes
known (no OCR), so each rule is seen alone; a real Tk table is driven by a script in test_scripting.py."""
from __future__ import annotations

import pytest
from PIL import Image, ImageDraw, ImageFont

from vlagent.grounding.rows import anchor_rows, find_on_row, row_instruction
from vlagent.model.grounder import TextLine

FONT = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"


@pytest.mark.parametrize("instruction, target, anchor, strict, column_first", [
    ("the Delete button in the row with alice", "the Delete button", "alice", True, False),
    ("click the checkbox on the row containing 'Invoice 42'", "click the checkbox", "Invoice 42", True, False),
    ("the Edit link in Bob's row", "the Edit link", "Bob", True, False),
    ("the trash icon in the Carol Smith row", "the trash icon", "Carol Smith", True, False),
    ("the switch on the same line as Wi-Fi", "the switch", "Wi-Fi", True, False),
    ("the checkbox next to linus", "the checkbox", "linus", False, False),
    ("the Add link beside Groups", "the Add link", "Groups", False, False),
    ("the field to the right of Name", "the field", "Name", False, False),
    ("the switch for Bluetooth", "the switch", "Bluetooth", False, False),
    ("the email address of marie", "the email address", "marie", False, True),
    ("Marie's phone number", "phone number", "Marie", False, True),
])
def test_an_instruction_names_a_target_on_the_row_of_an_anchor(instruction, target, anchor, strict, column_first):
    row = row_instruction(instruction)
    assert (row.target, row.anchor, row.strict, row.column_first) == (target, anchor, strict, column_first)
    assert row.side == ("right" if "right of" in instruction else None)


@pytest.mark.parametrize("instruction", [
    "the Save button", "click the 'Save for Web' button", "the 'Select this object for an action - bob' checkbox",
    "the top of the page", "scroll to the end of the list", "the Delete button in the row with",
    "the checkbox in the first row", "the checkbox in the last row", "the Edit button at the end of the row",
    "the checkbox at the start of the line", "the text in the status line", "the checkbox in the header row",
])
def test_an_instruction_naming_no_row(instruction):
    assert row_instruction(instruction) is None


HEADINGS = [("Paid", 30), ("Customer", 90), ("Email", 250), ("Total", 460), ("Status", 540)]
PEOPLE = [("Ada Lovelace", "ada@example.org", "18.00", True), ("Alan Turing", "alan@example.org", "42.50", False),
          ("Grace Hopper", "grace@example.org", "7.25", False), ("Linus Pauling", "linus@example.org", "99.90", True)]
ROW_PITCH = 40
TOP = 60  # the first row's text top


def _table() -> tuple[Image.Image, list[TextLine]]:
    """A table of 4 customers: a checkbox, name, email, total, a status dot (ink, no text) for the paid
    ones, an Edit button; every text's box is where it is drawn."""
    image = Image.new("RGB", (720, 320), (250, 250, 250))
    draw = ImageDraw.Draw(image)
    font = ImageFont.truetype(FONT, 14)
    w, h = image.size
    lines: list[TextLine] = []

    def text(x: int, y: int, words: str) -> None:
        draw.text((x, y), words, fill=(20, 20, 20), font=font)
        x0, y0, x1, y1 = draw.textbbox((x, y), words, font=font)
        lines.append(TextLine(words, (x0 / w, y0 / h, x1 / w, y1 / h)))

    for heading, x in HEADINGS:
        text(x, 20, heading)
    for i, (name, email, total, paid) in enumerate(PEOPLE):
        y = TOP + i * ROW_PITCH
        draw.rectangle((30, y + 1, 43, y + 14), fill=(255, 255, 255), outline=(90, 90, 90))  # a checkbox
        text(90, y, name)
        text(250, y, email)
        text(460, y, total)
        if paid:
            draw.ellipse((545, y + 1, 559, y + 15), fill=(30, 150, 60))
        draw.rectangle((610, y - 7, 680, y + 22), fill=(230, 230, 230), outline=(120, 120, 120))
        text(628, y, "Edit")
    return image, lines


def _px(box, image: Image.Image) -> tuple[int, int]:
    return round((box[0] + box[2]) / 2 * image.width), round((box[1] + box[3]) / 2 * image.height)


def _row_of(y: int) -> int:
    return (y - TOP) // ROW_PITCH


COLUMNS = {"checkbox": (30, 44), "email": (250, 400), "total": (460, 510), "status": (545, 560), "edit": (610, 680)}


@pytest.mark.parametrize("instruction, column, person", [
    ("the checkbox in the row with Grace Hopper", "checkbox", 2),
    ("the checkbox next to linus@example.org", "checkbox", 3),  # not the status dot, nearer
    ("the Edit button in Alan Turing's row", "edit", 1),
    ("the Edit button for ada@example.org", "edit", 0),
    ("the total of Grace Hopper", "total", 2),
    ("the email of Linus Pauling", "email", 3),
    ("the status of Ada Lovelace", "status", 0),  # no text there: the dot is found as ink
    ("the checkbox in the row with Alan", "checkbox", 1),  # the anchor a part of a cell's text
    ("the Edit button on the row of the customer Grace Hopper", "edit", 2),  # "the customer" is not written
])
def test_the_target_is_found_on_the_anchors_row(instruction, column, person):
    image, lines = _table()
    answer = find_on_row(image, row_instruction(instruction), lines)
    assert answer is not None and answer.box is not None, instruction
    x, y = _px(answer.box, image)
    assert COLUMNS[column][0] <= x <= COLUMNS[column][1] and _row_of(y) == person, (instruction, (x, y), answer.how)


def test_an_anchor_written_across_cells_is_one_row():
    """"Grace 7.25" names a row by two of its cells."""
    image, lines = _table()
    rows = anchor_rows("Grace 7.25", lines)
    assert [_row_of(_px(box, image)[1]) for box in rows] == [2]


def test_a_strict_row_says_why_nothing_is_found():
    image, lines = _table()
    missing = find_on_row(image, row_instruction("the Edit button in the row with Zed"), lines)
    assert missing.box is None and missing.how == "'Zed' is not written on this screen"
    nothing = find_on_row(image, row_instruction("the Delete button in the row with Alan Turing"), lines)
    assert nothing.box is None and nothing.how == "no Delete button on the row of 'Alan Turing'"
    # "example.org" is on every row, and each row has its Edit button: which one is meant is not said
    several = find_on_row(image, row_instruction("the Edit button in the row with example.org"), lines)
    assert several.box is None and "written on 4 rows" in several.how


def test_a_loose_relation_unsettled_by_the_row_leaves_the_answer_to_others():
    """"the Delete button next to Alan Turing": there is none on its row, but "next to" may mean
    something else (a label's toggle, a field under it): the caller goes on."""
    image, lines = _table()
    assert find_on_row(image, row_instruction("the Delete button next to Alan Turing"), lines) is None
    assert find_on_row(image, row_instruction("the checkbox next to Zed"), lines) is None


def test_an_icon_on_the_row_is_looked_for_on_the_row_alone():
    """What no rule of the row finds (an icon) is asked of the caller's own grounding on a copy of the
    screen showing the row only: the copy it gets has every other row painted over."""
    image, lines = _table()
    seen = []

    def look(masked: Image.Image, target: str, kept: list) -> tuple | None:
        seen.append((masked, target, kept))
        # the one green dot left on the copy
        dots = [(x, y) for x in range(540, 565) for y in range(masked.height) if masked.getpixel((x, y)) == (30, 150, 60)]
        if not dots:
            return None
        xs, ys = zip(*dots)
        return min(xs) / image.width, min(ys) / image.height, max(xs) / image.width, max(ys) / image.height

    answer = find_on_row(image, row_instruction("the green dot in the row with Linus Pauling"), lines, look=look)
    x, y = _px(answer.box, image)
    assert answer.how == "found on the row alone" and abs(x - 552) <= 3 and _row_of(y) == 3
    masked, target, kept = seen[-1]
    assert target == "the green dot" and {ln.text for ln in kept} == {"Linus Pauling", "linus@example.org", "99.90", "Edit"}
    assert masked.getpixel((552, TOP + 8)) == (250, 250, 250)  # Ada's dot is painted over
    assert find_on_row(image, row_instruction("the green dot in the row with Alan Turing"), lines, look=look).box is None


def test_a_tight_lists_cells_are_read_on_the_anchors_line_alone():
    """GTK's file list: OCR's boxes are as tall as its 23-px rows, so the next row's cells reach into the
    anchor's row ("the size of galc.log" read "210 bytes 5 bytes"); and "the Modified time of mp.log" names
    the column headed "Modified"."""
    image = Image.new("RGB", (800, 300), "white")
    w, h = image.size

    def line(text: str, x0: int, y0: int, x1: int, y1: int) -> TextLine:
        return TextLine(text, (x0 / w, y0 / h, x1 / w, y1 / h))

    lines = [line("Name", 10, 5, 60, 26), line("Size", 300, 5, 340, 26), line("Modified", 420, 5, 500, 26)]
    files = [("galc.log", "210 bytes", "18:31"), ("galc.pid", "5 bytes", "18:32"), ("mp.log", "2.0 kB", "18:33")]
    for i, (name, size, when) in enumerate(files):
        y = 30 + 23 * i
        lines += [line(name, 10, y, 80, y + 22), line(size, 300, y, 370, y + 22), line(when, 420, y, 470, y + 22)]

    def cell(instruction: str) -> tuple[int, int]:
        answer = find_on_row(image, row_instruction(instruction), lines)
        assert answer is not None and answer.box is not None, instruction
        return _px(answer.box, image)

    assert cell("the size of galc.pid") == (335, 64)
    assert cell("the size of galc.log") == (335, 41)
    assert cell("the Modified time of mp.log") == (445, 87)
    assert find_on_row(image, row_instruction("the colour of mp.log"), lines) is None  # no such column


def test_a_side_named_is_kept_and_an_empty_cell_borrows_nothing():
    """"the checkbox to the right of Bold" on "[ ] Bold [ ] Italic" is Italic's, not Bold's own on its
    left; in a tight list a row with nothing under a heading does not answer with the next row's cell."""
    image = Image.new("RGB", (600, 200), (250, 250, 250))
    draw = ImageDraw.Draw(image)
    font = ImageFont.truetype(FONT, 14)
    w, h = image.size
    lines = []
    for x, label in ((60, "Bold"), (180, "Italic")):
        draw.rectangle((x - 30, 41, x - 17, 54), fill="white", outline=(90, 90, 90))
        draw.text((x, 40), label, fill=(20, 20, 20), font=font)
        x0, y0, x1, y1 = draw.textbbox((x, 40), label, font=font)
        lines.append(TextLine(label, (x0 / w, y0 / h, x1 / w, y1 / h)))
    right = find_on_row(image, row_instruction("the checkbox to the right of Bold"), lines)
    left = find_on_row(image, row_instruction("the checkbox left of Italic"), lines)
    nearest = find_on_row(image, row_instruction("the checkbox next to Bold"), lines)
    assert 150 <= _px(right.box, image)[0] <= 165  # Italic's: Bold's own lies on its left
    assert 150 <= _px(left.box, image)[0] <= 165 and 30 <= _px(nearest.box, image)[0] <= 45

    def line(text: str, x0: int, y0: int, x1: int, y1: int) -> TextLine:
        return TextLine(text, (x0 / w, y0 / h, x1 / w, y1 / h))

    table = [line("Name", 10, 5, 60, 26), line("Size", 300, 5, 340, 26), line("Type", 420, 5, 470, 26),
             line("galc.log", 10, 30, 80, 52), line("210 bytes", 300, 30, 370, 52), line("Text", 420, 30, 460, 52),
             line("files", 10, 53, 60, 75), line("Folder", 420, 53, 470, 75),  # a folder: no size
             line("mp.log", 10, 76, 70, 98), line("2.0 kB", 300, 76, 350, 98), line("Text", 420, 76, 460, 98)]
    empty = find_on_row(Image.new("RGB", (600, 200), "white"), row_instruction("the size of files"), table)
    top, bottom = empty.box[1] * h, empty.box[3] * h
    assert 53 <= (top + bottom) / 2 <= 75 and top >= 42 and bottom <= 87, empty  # files' own empty cell
