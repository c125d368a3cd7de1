"""Theme icons found by their look (vlagent.grounding.icon_finder).

Toolbars are composed here from the installed Adwaita theme's own files (setup.sh installs
adwaita-icon-theme) the way GTK draws them: 24-px colour icons scaled to 16 px, a disabled icon faded
into the background, symbolic icons in the theme's text colour, on light and dark bars beside text. The
last test harvests mousepad's real toolbar under Xvfb and grounds every icon of it with the shipped
grounder.
"""
from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image, ImageDraw, ImageFont

from vlagent.grounding.icon_finder import find_icons, icon_names_for, theme_library
from vlagent.model.grounder import TextLine

THEME = Path("/usr/share/icons/Adwaita")


def _need_theme() -> None:
    if theme_library() is None:
        pytest.skip("no Adwaita icon theme installed (apt-get install adwaita-icon-theme)")


def _legacy(name: str, side: int = 16) -> Image.Image:
    with Image.open(THEME / "24x24" / "legacy" / f"{name}.png") as im:
        return im.convert("RGBA").resize((side, side), Image.LANCZOS)


def _symbolic(name: str, colour: tuple[int, int, int], side: int = 16) -> Image.Image:
    path = next((THEME / f"{side}x{side}").glob(f"*/{name}-symbolic.symbolic.png"))
    with Image.open(path) as im:
        alpha = im.convert("RGBA").getchannel("A")
    icon = Image.new("RGBA", (side, side), colour + (0,))
    icon.putalpha(alpha)
    return icon


def _faded(icon: Image.Image, opacity: float = 0.5) -> Image.Image:
    """How GTK draws an insensitive icon: the same picture, half transparent."""
    faded = icon.copy()
    faded.putalpha(icon.getchannel("A").point(lambda a: round(a * opacity)))
    return faded


TOOLBAR = ("document-new", "document-open", "document-save", "document-save-as", "edit-undo",
           "edit-cut", "edit-paste", "edit-find", "edit-find-replace", "view-fullscreen")


def toolbar_screen(dark: bool, disabled: tuple[str, ...] = ()) -> tuple[Image.Image, list[TextLine], dict]:
    """A 640x200 window: a toolbar of TOOLBAR's colour icons at 16 px, 12 px apart, a row of symbolic
    icons, and a line of text below. Returns the image, its text lines and each icon's pixel box."""
    background = (53, 53, 53) if dark else (246, 245, 244)
    ink = (238, 238, 236) if dark else (46, 52, 54)
    image = Image.new("RGB", (640, 200), background)
    boxes = {}
    for i, name in enumerate(TOOLBAR):
        icon = _legacy(name)
        icon = _faded(icon) if name in disabled else icon
        x, y = 20 + i * 28, 14
        image.paste(icon, (x, y), icon)
        boxes[name] = (x, y, x + 16, y + 16)
    for i, name in enumerate(("list-add", "window-close", "open-menu")):
        icon = _symbolic(name, ink)
        x, y = 20 + i * 28, 80
        image.paste(icon, (x, y), icon)
        boxes[f"{name}-symbolic"] = (x, y, x + 16, y + 16)
    draw = ImageDraw.Draw(image)
    draw.text((20, 140), "Untitled 1 - Mousepad", fill=ink)
    lines = [TextLine("Untitled 1 - Mousepad", (20 / 640, 138 / 200, 160 / 640, 152 / 200))]
    return image, lines, boxes


def _inside(point: tuple[float, float], box: tuple[int, int, int, int], size: tuple[int, int]) -> bool:
    x, y = point[0] * size[0], point[1] * size[1]
    return box[0] - 1 <= x <= box[2] + 1 and box[1] - 1 <= y <= box[3] + 1


def test_instructions_map_to_freedesktop_icon_names() -> None:
    assert icon_names_for("the Save As icon in the toolbar") == ("document-save-as",)
    assert icon_names_for("click the Save icon") == ("document-save",)
    assert icon_names_for("the Find and Replace button on the toolbar") == ("edit-find-replace",)
    assert icon_names_for("the toolbar's Go to icon") == ("go-jump",)
    assert icon_names_for("the icon for Menu") == ("open-menu",)  # "menu" alone is a role word elsewhere
    assert icon_names_for("the Zoom In icon") == ("zoom-in",)
    # a page's short forms ("Prev | Up | Next") are the words icons are called by
    assert icon_names_for("the 'Prev' icon") == icon_names_for("the Previous icon") == ("go-previous",)
    assert icon_names_for("the Prefs icon") == icon_names_for("the Preferences icon") != ()
    # a name of two words is taken whole only where the query lost control words, not verbs
    assert icon_names_for("Go to Inbox") == () and icon_names_for("select all rows in the table") == ()
    assert "edit-find" in icon_names_for("the Search button on the toolbar")
    # a position is not an icon's name; a made-up name is no icon
    assert icon_names_for("the first icon in the toolbar") == ()
    assert icon_names_for("the Purple Elephant button") == ()
    # without "icon" or "toolbar", a word naming the target's kind or the action names no icon
    assert icon_names_for("the link to 5. Caveats") == () and icon_names_for("open Django administration") == ()
    assert icon_names_for("the '4.2.1. Illegal read' link") == ()


@pytest.mark.parametrize("dark", [False, True], ids=["light", "dark"])
def test_every_toolbar_icon_is_found_where_it_is(dark: bool) -> None:
    _need_theme()
    image, lines, boxes = toolbar_screen(dark, disabled=("edit-undo", "edit-paste"))
    phrasings = {"document-new": "the New icon", "document-open": "click the Open icon",
                 "document-save": "the toolbar's Save icon", "document-save-as": "the Save As icon in the toolbar",
                 "edit-undo": "the Undo button on the toolbar", "edit-cut": "the Cut icon",
                 "edit-paste": "the icon for Paste", "edit-find": "the Find icon",
                 "edit-find-replace": "click the Find and Replace icon", "view-fullscreen": "the Fullscreen icon",
                 "list-add-symbolic": "the Add item icon", "window-close-symbolic": "the Close icon",
                 "open-menu-symbolic": "the icon for Menu"}  # fmt: skip
    for key, instruction in phrasings.items():
        found = find_icons(image, instruction, lines, unit=14)
        assert len(found) == 1, (instruction, found)
        assert _inside(found[0].point, boxes[key], image.size), (instruction, found, boxes[key])
        assert found[0].score >= 0.6


def test_an_icon_not_on_the_screen_is_not_found() -> None:
    _need_theme()
    image, lines, _ = toolbar_screen(dark=False)
    for instruction in ("the Print icon", "the Zoom In icon", "the Bold button on the toolbar", "the Refresh icon"):
        assert find_icons(image, instruction, lines, unit=14) == [], instruction
    # blank: no candidates at all
    blank = Image.new("RGB", (300, 100), (255, 255, 255))
    assert find_icons(blank, "the Save icon", [], unit=14) == []


def test_an_icon_shown_twice_is_found_twice() -> None:
    _need_theme()
    image, lines, boxes = toolbar_screen(dark=False)
    icon = _legacy("document-save")
    image.paste(icon, (400, 80), icon)
    found = find_icons(image, "the Save icon", lines, unit=14)
    assert len(found) == 2
    assert {_inside(m.point, boxes["document-save"], image.size) for m in found} == {True, False}


def test_icons_inside_text_are_not_candidates() -> None:
    """A blob whose centre lies in a text segment of two characters or more is text, not an icon."""
    _need_theme()
    image, _, boxes = toolbar_screen(dark=False)
    x0, y0, x1, y1 = boxes["document-save"]
    covering = [TextLine("Save file", ((x0 - 2) / 640, (y0 - 2) / 200, (x1 + 40) / 640, (y1 + 2) / 200))]
    assert find_icons(image, "the Save icon", covering, unit=14) == []
    one_character = [TextLine("口", covering[0].box)]  # OCR reading an icon as one character
    assert len(find_icons(image, "the Save icon", one_character, unit=14)) == 1


def test_a_row_of_icons_ocr_read_as_letters_is_no_text() -> None:
    """OCR reads a toolbar as one line of letters (">6I三K"): its icons, apart with nothing drawn between
    them, are icons still; words far apart that OCR read as words ("View Insert") and a large title whose
    letters are blobs ("Create account") stay text."""
    from vlagent.grounding.icon_finder import icon_boxes, text_boxes
    from vlagent.grounding.synth_icons import draw_icon

    image = Image.new("RGB", (640, 200), (246, 245, 244))
    draw = ImageDraw.Draw(image)
    icons = [(20 + i * 40, 20, 40 + i * 40, 40) for i in range(5)]
    for box, name in zip(icons, ("close", "pause", "copy", "menu", "search")):
        draw_icon(draw, name, box, (46, 52, 54))
    font = ImageFont.truetype("DejaVuSans.ttf", 14)
    draw.text((20, 100), "View", font=font, fill=(46, 52, 54))
    draw.text((70, 100), "Insert", font=font, fill=(46, 52, 54))
    big = ImageFont.truetype("DejaVuSans-Bold.ttf", 34)
    draw.text((300, 90), "Create account", font=big, fill=(46, 52, 54))
    title = draw.textbbox((300, 90), "Create account", font=big)
    lines = [TextLine(">6I三K", (18 / 640, 18 / 200, 222 / 640, 42 / 200)),
             TextLine("View Insert", (18 / 640, 96 / 200, 122 / 640, 120 / 200)),
             TextLine("Create acco unt", (title[0] / 640, title[1] / 200, title[2] / 640, title[3] / 200))]
    assert [text for _, text in text_boxes(image, lines, unit=20)] == ["View Insert", "Create acco unt"]
    centres = [((b[0] + b[2]) / 2, (b[1] + b[3]) / 2) for b in icon_boxes(image, lines, unit=20)]
    for x0, y0, x1, y1 in icons:
        assert any(x0 <= x <= x1 and y0 <= y <= y1 for x, y in centres), (x0, centres)
    assert all(y < 60 for _, y in centres)  # no word, no letter of the title


def test_no_theme_finds_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    from vlagent.grounding import icon_finder

    monkeypatch.setattr(icon_finder, "theme_library", lambda theme=None: None)
    image = Image.new("RGB", (200, 60), (240, 240, 240))
    ImageDraw.Draw(image).rectangle((20, 20, 36, 36), outline=(30, 30, 30), width=2)  # an icon-sized blob
    assert icon_finder.icon_boxes(image, [], unit=14)
    assert icon_finder.find_icons(image, "the Save icon", [], unit=14) == []


@pytest.mark.display
def test_the_default_grounder_finds_mousepads_toolbar_icons(tmp_path: Path) -> None:
    """The real thing: mousepad's toolbar under Xvfb (light and dark), its icon buttons' names and boxes
    from AT-SPI, grounded by the shipped grounder, and again without the theme icons."""
    _need_theme()
    from test_grounding_harvest import _need_gtk

    _need_gtk("mousepad", "mousepad")
    from vlagent.grounding.dataset import read_dataset
    from vlagent.grounding.grounders.head import DEFAULT_FOLDER, HeadGrounder
    from vlagent.grounding.harvest import harvest

    records = [r for theme in ("light", "dark")  # count=2: the window as it opens, then with its toolbar
               for r in read_dataset(harvest("gtk", tmp_path / theme, apps="mousepad", themes=theme, count=2))
               if r.element == "icon"]
    assert len(records) >= 12, [r.instruction for r in records]
    with_icons, without = HeadGrounder(DEFAULT_FOLDER), HeadGrounder(DEFAULT_FOLDER, icons=False)
    hits = {True: 0, False: 0}
    for r in records:
        with Image.open(r.image_path) as im:
            image = im.convert("RGB")
        for grounder, key in ((with_icons, True), (without, False)):
            result = grounder.ground(image, r.instruction)
            x0, y0, x1, y1 = r.box
            hits[key] += bool(result.found and x0 <= result.point[0] <= x1 and y0 <= result.point[1] <= y1)
    assert hits[True] >= 0.8 * len(records), (hits, len(records))
    assert hits[True] >= hits[False] + 0.4 * len(records), hits
