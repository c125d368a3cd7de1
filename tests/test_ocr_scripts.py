"""Lines in a script the bundled OCR cannot read, read again by tesseract (vlagent.grounding.ocr_scripts).

A Russian settings screen is drawn here with PIL (DejaVu has Cyrillic), light and dark; rapidocr reads its
labels as Latin look-alikes, tesseract (setup.sh installs it with its Russian model) reads them as written,
and the shipped grounder then finds "Тёмная тема" by its text."""
from __future__ import annotations

import pytest
from PIL import Image, ImageDraw, ImageFont

from vlagent.grounding.ocr_scripts import installed_languages, lines_for, script_language

LABELS = ("Параметры", "Запомнить меня", "Тёмная тема", "Автосохранение", "Включить уведомления")
FONT = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"


def _need_tesseract() -> None:
    if "rus" not in installed_languages():
        pytest.skip("tesseract with its Russian model is not installed (apt-get install tesseract-ocr-rus)")


def russian_screen(dark: bool) -> tuple[Image.Image, dict[str, tuple[int, int, int, int]]]:
    background, ink = ((40, 40, 44), (230, 230, 230)) if dark else ((246, 245, 244), (30, 30, 30))
    image = Image.new("RGB", (640, 400), background)
    draw = ImageDraw.Draw(image)
    font = ImageFont.truetype(FONT, 18)
    boxes = {}
    for i, label in enumerate(LABELS):
        x, y = 40, 30 + i * 60
        draw.text((x, y), label, fill=ink, font=font)
        boxes[label] = draw.textbbox((x, y), label, font=font)
    return image, boxes


def test_scripts_map_to_tesseract_languages() -> None:
    assert script_language("untick Тёмная тема") == "rus"
    assert script_language("the Ρυθμίσεις button") == "ell"
    assert script_language("click Save") is None
    assert script_language("the 设置 button") is None  # rapidocr reads Chinese itself
    assert script_language("the Zurück button") is None
    assert script_language("click the π key") is None  # one Greek letter in an English instruction


def test_what_is_typed_does_not_set_the_script_of_the_screen(monkeypatch: pytest.MonkeyPatch) -> None:
    """"type Москва into the field under 电话": the screen is read for 电话, not again in Russian."""
    from vlagent.grounding import ocr_scripts
    from vlagent.model.grounder import TextLine

    monkeypatch.setattr(ocr_scripts, "installed_languages", lambda: frozenset({"rus", "eng"}))
    monkeypatch.setattr(ocr_scripts, "reread", lambda *args: pytest.fail("read again in Russian"))
    image, _ = russian_screen(dark=False)
    lines = [TextLine("电话", (0.06, 0.22, 0.1, 0.28))]
    assert ocr_scripts.lines_for(image, "type Москва into the field under 电话", lines) == lines
    monkeypatch.setattr(ocr_scripts, "reread", lambda image, lines, language: [TextLine(language, lines[0].box)])
    assert ocr_scripts.lines_for(image, "type 42 into the Телефон field", lines)[0].text == "rus"


def test_lines_are_not_touched_for_scripts_rapidocr_reads() -> None:
    from vlagent.model.grounder import TextLine

    image, _ = russian_screen(dark=False)
    lines = [TextLine("3anOMHNTb MeHA", (0.06, 0.22, 0.3, 0.28))]
    assert lines_for(image, "click Save", lines) == lines


@pytest.mark.parametrize("dark", [False, True], ids=["light", "dark"])
def test_russian_labels_are_read_again_and_found(dark: bool) -> None:
    _need_tesseract()
    pytest.importorskip("rapidocr_onnxruntime")
    from vlagent.grounding.grounders.head import DEFAULT_FOLDER, HeadGrounder, screen_text

    image, boxes = russian_screen(dark)
    rapid = screen_text(image)
    assert not any("Тёмная" in line.text for line in rapid)  # what this module is for
    lines = lines_for(image, "untick Тёмная тема", rapid)
    read = " | ".join(line.text for line in lines)
    assert sum(label in read for label in LABELS) >= 4, read
    grounder = HeadGrounder(DEFAULT_FOLDER)
    for label in ("Тёмная тема", "Автосохранение"):
        result = grounder.ground(image, f"click {label}")
        x0, y0, x1, y1 = boxes[label]
        assert result.found, label
        x, y = result.point[0] * image.width, result.point[1] * image.height
        assert x0 - 2 <= x <= x1 + 2 and y0 - 2 <= y <= y1 + 2, (label, result.point)


def test_buttons_captions_are_read_whatever_their_colours() -> None:
    """White on a green lighter than mid-grey, white on dark red, dark on a light button whose cut reaches
    past its edges into a dark page: each caption is read (the letters' side of the background decides
    the inversion; what touches the cut's edges is no letter)."""
    _need_tesseract()
    from vlagent.grounding.ocr_scripts import reread
    from vlagent.model.grounder import TextLine

    buttons = (("Закрыть", (87, 176, 37), (255, 255, 255), (239, 239, 239)),
               ("Войти", (178, 34, 52), (255, 255, 255), (242, 242, 242)),
               ("Назад", (250, 250, 250), (20, 20, 20), (30, 30, 34)))
    image = Image.new("RGB", (640, 300), (239, 239, 239))
    draw = ImageDraw.Draw(image)
    font = ImageFont.truetype(FONT, 16)
    lines = []
    for i, (caption, fill, ink, page) in enumerate(buttons):
        y = 30 + 90 * i
        draw.rectangle((0, y - 20, 640, y + 60), fill=page)
        x0, y0, x1, y1 = draw.textbbox((300, y + 20), caption, font=font, anchor="mm")
        draw.rounded_rectangle((x0 - 14, y0 - 9, x1 + 14, y1 + 9), radius=4, fill=fill)
        draw.text((300, y + 20), caption, font=font, fill=ink, anchor="mm")
        lines.append(TextLine("?", ((x0 - 2) / 640, (y0 - 2) / 300, (x1 + 2) / 640, (y1 + 2) / 300)))
    read = [line.text for line in reread(image, lines, "rus")]
    assert [caption in text for (caption, *_), text in zip(buttons, read)] == [True] * 3, read


def test_faint_text_keeps_its_side_and_a_descender_at_the_cut_stays() -> None:
    """Grey on dark grey (a disabled label) has no pixel far from the background: the background's shade
    decides, so it is inverted; a letter touching the cut's bottom is no frame (only shapes at its ends
    are)."""
    import numpy as np

    from vlagent.grounding.ocr_scripts import _light_on_dark, _without_frame

    faint = np.full((20, 60), 40, dtype=np.uint8)
    faint[6:14, 20:40] = 70
    assert _light_on_dark(Image.fromarray(faint))
    crop = np.full((20, 60), 255, dtype=np.uint8)
    crop[:, :4] = 0  # the page beyond a button's end
    crop[8:20, 30:33] = 0  # a descender reaching the cut's bottom
    cleaned = np.asarray(_without_frame(Image.fromarray(crop)))
    assert (cleaned[:, :4] == 255).all() and (cleaned[8:20, 30:33] == 0).all()


def test_without_tesseract_lines_stay_as_read(monkeypatch: pytest.MonkeyPatch) -> None:
    from vlagent.grounding import ocr_scripts
    from vlagent.model.grounder import TextLine

    monkeypatch.setattr(ocr_scripts, "installed_languages", lambda: frozenset())
    image, _ = russian_screen(dark=False)
    lines = [TextLine("TeMHaA TeMa", (0.06, 0.37, 0.25, 0.42))]
    assert ocr_scripts.lines_for(image, "untick Тёмная тема", lines) == lines


def test_rereading_puts_words_back_on_their_lines_and_caches_per_lines(monkeypatch: pytest.MonkeyPatch) -> None:
    """tesseract's words go back to the line whose place in the strip they came from; a line it reads
    nothing on keeps its text; another set of lines on the same screen is read again, not served from
    the first one's cache."""
    from vlagent.grounding import ocr_scripts
    from vlagent.model.grounder import TextLine

    calls = []

    def fake_words(strip, language):
        calls.append(strip.height)
        # one word in the first line's band of the strip, none in the second's
        return [(ocr_scripts.GAP, ocr_scripts.GAP, ocr_scripts.GAP + 10, "Параметры")]

    monkeypatch.setattr(ocr_scripts, "installed_languages", lambda: frozenset({"rus", "eng"}))
    monkeypatch.setattr(ocr_scripts, "_tesseract_words", fake_words)
    image, _ = russian_screen(dark=False)
    first = [TextLine("apaMeTpbl", (0.06, 0.08, 0.24, 0.13)), TextLine("ABTocoxpaHeHNe", (0.06, 0.53, 0.31, 0.58))]
    read = ocr_scripts.lines_for(image, "click Параметры", first)
    assert [line.text for line in read] == ["Параметры", "ABTocoxpaHeHNe"]
    assert ocr_scripts.lines_for(image, "click Параметры", first) == read and len(calls) == 1  # cached
    ocr_scripts.lines_for(image, "click Параметры", first[:1])
    assert len(calls) == 2
    assert ocr_scripts.reread(image, [], "rus") == []
