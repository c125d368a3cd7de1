"""Harvesters of real screens: GTK applications over AT-SPI, web pages through
chromium, the practice environments.

Each harvest here is small but real (a real galculator on Xvfb, real chromium
rendering a Debian documentation page and a Django admin login page), and
its boxes are checked against what OCR reads on the saved screenshot: the
box of a labelled button or link must contain that label.
"""

from __future__ import annotations

import random
import shutil
from functools import lru_cache
from pathlib import Path

import pytest

from vlagent.grounding.dataset import read_dataset
from vlagent.grounding.harvest import HARVESTERS, HarvestError, harvest
from vlagent.grounding.harvest_common import (
    TEST_SOURCES,
    ScreenTarget,
    screen_records,
    split_for,
    unique_targets,
)
from vlagent.grounding.phrasing import clean_name, instruction_for

from android_fixtures import adb_server, phone  # noqa: F401  (fixtures)


# --------------------------------------------------------------------------- helpers


@lru_cache(maxsize=1)
def _ocr():
    rapidocr = pytest.importorskip("rapidocr_onnxruntime", reason="rapidocr-onnxruntime is not installed")
    return rapidocr.RapidOCR()


def ocr_lines(image_path: Path) -> list[tuple[str, tuple[float, float, float, float]]]:
    """(text, normalized x0, y0, x1, y1) for each line OCR reads on the image."""
    import numpy as np
    from PIL import Image

    image = Image.open(image_path).convert("RGB")
    width, height = image.size
    result, _ = _ocr()(np.asarray(image))
    lines = []
    for points, text, _score in result or []:
        xs, ys = [p[0] for p in points], [p[1] for p in points]
        lines.append((text, (min(xs) / width, min(ys) / height, max(xs) / width, max(ys) / height)))
    return lines


def label_inside(record, lines, slack: float = 0.01) -> bool:
    """Whether OCR read the record's name (as the whole line or one of its words,
    e.g. "MS v" for a button with a drop-down arrow) with the centre of the
    text inside the record's box."""
    name = record.meta["name"].casefold()
    x0, y0, x1, y1 = record.box
    for text, (a, b, c, d) in lines:
        text = text.casefold()
        if text.replace(" ", "") != name.replace(" ", "") and name not in text.split():
            continue
        cx, cy = (a + c) / 2, (b + d) / 2
        if x0 - slack <= cx <= x1 + slack and y0 - slack <= cy <= y1 + slack:
            return True
    return False


def _alnum(text: str) -> str:
    return "".join(ch for ch in text.casefold() if ch.isalnum())


def reads(name: str, text: str) -> bool:
    """Whether OCR'd `text` says `name`: contains it, or (an OCR slip such as
    "Say h hello") nearly equals it."""
    import difflib

    a, b = _alnum(name), _alnum(text)
    return a in b or difflib.SequenceMatcher(None, a, b).ratio() >= 0.85


def text_in_box(record, margin: int = 3) -> str:
    """What OCR reads inside the record's box alone (cropped with a few pixels
    of margin and enlarged, since links and labels are small)."""
    import numpy as np
    from PIL import Image

    image = Image.open(record.image_path).convert("RGB")
    w, h = image.size
    x0, y0, x1, y1 = record.box
    crop = image.crop((max(0, int(x0 * w) - margin), max(0, int(y0 * h) - margin),
                       min(w, int(x1 * w) + margin), min(h, int(y1 * h) + margin)))  # fmt: skip
    crop = crop.resize((crop.width * 2, crop.height * 2))
    # OCR wants some background around the text.
    canvas = Image.new("RGB", (crop.width + 40, crop.height + 40), crop.getpixel((0, 0)))
    canvas.paste(crop, (20, 20))
    result, _ = _ocr()(np.asarray(canvas))
    return " ".join(text for _points, text, _score in result or [])


def check_common(records, platform: str) -> None:
    assert records, "the harvest wrote no records"
    for r in records:
        assert r.platform == platform
        assert r.image_path.is_file()
        x0, y0, x1, y1 = r.box
        assert 0 <= x0 < x1 <= 1 and 0 <= y0 < y1 <= 1
        assert clean_name(r.meta["name"]).casefold() in r.instruction.casefold(), r.instruction
        assert r.split == split_for(r.source)
    # Names are unique per screen: no instruction can mean two elements.
    seen: set[tuple[str, str]] = set()
    for r in records:
        key = (r.image, r.meta["name"].casefold())
        assert key not in seen, f"{r.meta['name']!r} twice on {r.image}"
        seen.add(key)


# --------------------------------------------------------------------------- pure rules


def test_instructions_name_the_element_in_several_phrasings() -> None:
    rng = random.Random(3)
    made = {instruction_for("Save", "button", rng) for _ in range(40)}
    assert len(made) >= 3 and all("Save" in m for m in made)
    assert instruction_for("Username:", "field", rng).count("Username") == 1
    assert ":" not in instruction_for("Username:", "field", rng)
    toolbar = {instruction_for("Open", "icon", rng, in_toolbar=True) for _ in range(30)}
    assert any("toolbar" in t for t in toolbar)
    with pytest.raises(ValueError, match="empty"):
        instruction_for("  ", "button", rng)
    with pytest.raises(KeyError, match="dropdown"):
        instruction_for("Save", "dropdown", rng)


def test_ambiguous_names_are_dropped_and_boxes_normalized() -> None:
    targets = [
        ScreenTarget("OK", "button", (10, 10, 50, 30)),
        ScreenTarget("ok", "button", (60, 10, 100, 30)),  # same name, other case: both ambiguous
        ScreenTarget("Cancel", "button", (110, 10, 190, 30)),
        ScreenTarget("+", "button", (0, 40, 20, 60)),
        ScreenTarget("   ", "link", (0, 70, 20, 90)),
        ScreenTarget("Edge", "link", (190, 90, 260, 120)),  # half outside the 200x100 image: clipped
    ]
    assert [t.name for t in unique_targets(targets)] == ["Cancel", "+", "Edge"]
    records = screen_records("s.png", (200, 100), targets, "gtk:galculator", "desktop", "s")
    boxes = {r.meta["name"]: r.box for r in records}
    assert boxes["Cancel"] == pytest.approx((0.55, 0.1, 0.95, 0.3))
    assert boxes["Edge"] == pytest.approx((0.95, 0.9, 1.0, 1.0))
    assert {r.split for r in records} == {"train"}
    with pytest.raises(ValueError, match="element kind"):
        ScreenTarget("x", "dropdown", (0, 0, 1, 1))


def test_held_out_sources_are_only_in_test() -> None:
    assert any(s.startswith("gtk:") for s in TEST_SOURCES) and any(s.startswith("web:") for s in TEST_SOURCES)
    assert all(split_for(s) == "test" for s in TEST_SOURCES)
    assert split_for("gtk:galculator") == "train"


def test_atspi_tree_rules() -> None:
    """Off-screen rows, insensitive buttons, half-scrolled cells and what an
    open menu covers are not targets; icon-only buttons are icons; an unnamed
    entry takes the label beside it."""
    from vlagent.grounding.atspi_targets import targets_from_tree, window_box

    def node(path, role, name, box, states=("showing", "visible", "sensitive"), **extra):
        return {"path": list(path), "depth": len(path) - 1, "role": role, "name": name, "box": list(box),
                "states": list(states), "labelled_by": [], **extra}  # fmt: skip

    nodes = [
        node([0], "frame", "App", (0, 0, 400, 300)),
        node([0, 0], "menu bar", "", (0, 0, 400, 25)),
        node([0, 0, 0], "menu", "File", (0, 0, 40, 25)),
        node([0, 0, 0, 0], "menu item", "Quit", (0, 25, 120, 25)),
        node([0, 1], "push button", "Preferences", (150, 30, 36, 34)),  # text cannot fit: an icon
        node([0, 2], "push button", "Apply", (300, 260, 80, 34)),
        node([0, 3], "push button", "Disabled", (200, 260, 80, 34), states=("showing", "visible")),
        node([0, 4], "scroll pane", "", (0, 100, 200, 100)),
        node([0, 4, 0], "table cell", "Inside", (0, 110, 200, 20)),
        node([0, 4, 1], "table cell", "Half", (0, 190, 200, 20)),
        node([0, 4, 2], "table cell", "Gone", (-2147483648, -2147483648, 200, 20)),
        node([0, 4, 3], "table cell", "Malayalam", (0, 140, 40, 20)),  # drawn as "Mal…"
        node([0, 5], "label", "Name", (220, 110, 40, 30)),
        node([0, 6], "text", "", (270, 110, 120, 30), states=("showing", "visible", "sensitive", "editable")),
        node([0, 7], "push button", "Under", (20, 40, 80, 20)),  # below the open File menu
    ]
    crop = window_box(nodes, (800, 600))
    assert crop == (0, 0, 400, 300)
    got = {t.name: t for t in targets_from_tree(nodes, crop, (800, 600))}
    assert set(got) == {"File", "Quit", "Preferences", "Apply", "Inside", "Name", "Malayalam"}
    assert got["Malayalam"].meta.get("truncated") and not got["Inside"].meta.get("truncated")
    assert got["Preferences"].element == "icon" and got["Apply"].element == "button"
    assert got["Name"].element == "field" and got["Name"].box == (270, 110, 390, 140)
    assert got["Quit"].element == "menu" and got["Quit"].role_word == "menu item"


def test_screen_budget_counts_screens() -> None:
    from vlagent.grounding.harvest_common import ScreenBudget

    budget = ScreenBudget(2)
    assert budget.take() and budget.take() and not budget.take() and budget.exhausted
    assert all(ScreenBudget(None).take() for _ in range(100))
    with pytest.raises(ValueError, match="at least 1"):
        ScreenBudget(0)


def test_uiautomator_dump_of_a_real_app_layout() -> None:
    """A dump as a real phone writes it: an icon-only ImageButton, a search EditText
    known by its hint, RecyclerView rows whose words sit in a child TextView,
    a disabled button, and a row that is off the screen."""
    from vlagent.grounding.harvest_adb import uiautomator_targets

    def node(cls, bounds, children="", **attrs):
        a = {"text": "", "content-desc": "", "clickable": "false", "enabled": "true", **attrs}
        attr = " ".join(f'{k}="{v}"' for k, v in a.items())
        return f'<node class="{cls}" bounds="{bounds}" {attr}>{children}</node>'

    row = lambda y, text: node("android.widget.LinearLayout", f"[0,{y}][1080,{y + 150}]",  # noqa: E731
                               node("android.widget.TextView", f"[40,{y + 40}][600,{y + 110}]", text=text),
                               clickable="true")  # fmt: skip
    xml = "<hierarchy rotation='0'>" + node("android.widget.FrameLayout", "[0,0][1080,2400]", "".join([
        node("android.widget.ImageButton", "[0,80][140,220]", **{"content-desc": "Navigate up", "clickable": "true"}),
        node("android.widget.EditText", "[160,80][900,220]", text="typed words", hint="Search settings",
             clickable="true"),
        node("android.widget.Button", "[900,80][1080,220]", text="Done", clickable="true", enabled="false"),
        node("androidx.recyclerview.widget.RecyclerView", "[0,240][1080,2400]",
             row(240, "Network") + row(390, "Display") + row(2500, "Off screen"), scrollable="true"),
    ])) + "</hierarchy>"  # fmt: skip
    got = {t.name: t for t in uiautomator_targets(xml, (1080, 2400))}
    assert got["Navigate up"].element == "icon"
    assert got["Search settings"].element == "field"
    assert got["Network"].element == "list item" and got["Network"].box == (0, 240, 1080, 390)
    assert got["Display"].element == "list item"
    assert "Done" not in got and "Off screen" not in got and "typed words" not in got


# --------------------------------------------------------------------------- GTK over AT-SPI


def _need_gtk(program: str, package: str) -> None:
    from vlagent.grounding.atspi_session import atspi_unavailable

    reason = atspi_unavailable()
    if reason:
        pytest.skip(reason)
    if shutil.which(program) is None:
        pytest.skip(f"{program} is not installed (apt-get install {package})")
    if shutil.which("xdotool") is None:
        pytest.skip("xdotool is not installed (apt-get install xdotool)")


@pytest.mark.display
def test_gtk_harvest_of_galculator(tmp_path: Path) -> None:
    _need_gtk("galculator", "galculator")
    jsonl = harvest("gtk", tmp_path, apps="galculator", themes="light")
    records = read_dataset(jsonl)
    check_common(records, "desktop")
    assert {r.source for r in records} == {"gtk:galculator"}
    by_screen: dict[str, list] = {}
    for r in records:
        by_screen.setdefault(r.meta["screen"], []).append(r)
    main = {r.meta["name"]: r for r in by_screen["galculator-main-light"]}
    assert {"7", "sqrt", "AC", "MS", "File", "Edit"} <= set(main)
    lines = ocr_lines(main["sqrt"].image_path)
    for name in ("sqrt", "AC", "MS", "File", "Edit", "View"):
        assert label_inside(main[name], lines), f"OCR did not read {name!r} inside its box {main[name].box}: {lines}"
    # A menu opened through AT-SPI: its items are targets, inside the popup that the screenshot shows.
    edit = {r.meta["name"]: r for r in by_screen["galculator-menu-edit-light"]}
    lines = ocr_lines(edit["Edit"].image_path)
    items = [r for r in edit.values() if r.meta["role"] == "menu item"]
    assert len(items) >= 3
    assert sum(label_inside(r, lines) for r in items) >= len(items) - 1, [r.meta["name"] for r in items]
    assert all(r.box[1] >= edit["Edit"].box[3] - 0.01 for r in items)  # below the menu bar entry
    # Buttons the popup covers are left out.
    assert "AC" not in edit or edit["AC"].box[1] > max(r.box[3] for r in items)


# --------------------------------------------------------------------------- web through chromium


def _need_web() -> None:
    from vlagent.grounding.harvest_web import web_unavailable

    reason = web_unavailable()
    if reason:
        pytest.skip(reason)


@pytest.mark.slow
def test_web_harvest_of_a_debian_doc_page(tmp_path: Path) -> None:
    _need_web()
    from vlagent.grounding.harvest_web import doc_pages

    if not doc_pages("doc-libffi", 1):
        pytest.skip("libffi's HTML manual is not installed (/usr/share/doc/libffi8/html)")
    records = read_dataset(harvest("web", tmp_path, sites="doc-libffi", pages=1, scrolls=1))
    check_common(records, "web")
    links = [r for r in records if r.element == "link"]
    assert len(links) >= 5
    # OCR reads a line of text ("Previous: Missing Features, Up: libffi") as one
    # piece, so each link's box is cropped and read on its own.
    readable = [r for r in links if 3 <= len(r.meta["name"]) <= 25][:8]
    assert len(readable) >= 4
    read = {r.meta["name"]: text_in_box(r) for r in readable}
    hits = [name for name, text in read.items() if reads(name, text)]
    assert len(hits) >= 0.75 * len(readable), f"OCR inside the link boxes read {read}"
    # A box that is off by a line holds other text: the check can fail.
    shifted = readable[0]
    height = shifted.box[3] - shifted.box[1]
    shifted.box = (shifted.box[0], shifted.box[1] + 1.5 * height, shifted.box[2], shifted.box[3] + 1.5 * height)
    assert not reads(shifted.meta["name"], text_in_box(shifted))


@pytest.mark.slow
def test_web_harvest_of_the_django_admin_login(tmp_path: Path) -> None:
    _need_web()
    from vlagent.grounding.harvest_web import _Browser, _capture_pages, Page
    from vlagent.grounding.web_servers import django_admin_server, django_available

    if django_available():
        pytest.skip(django_available())
    browser = _Browser((1280, 720))
    try:
        with django_admin_server() as admin:
            records = _capture_pages(browser, tmp_path, "django-admin", [Page(admin.base + "admin/login/", "login")],
                                     1, log=lambda _m: None)  # fmt: skip
    finally:
        browser.close()
    for r in records:
        r.base_dir = tmp_path
    check_common(records, "web")
    got = {r.meta["name"]: r for r in records}
    assert got["Username"].element == "field" and got["Password"].element == "field"
    assert got["Log in"].element == "button" and got["Username"].split == "test"
    lines = ocr_lines(got["Log in"].image_path)
    assert label_inside(got["Log in"], lines)
    # The label sits above its field: the field's box is just below the text "Username".
    label = next(b for t, b in lines if t.strip().rstrip(":").casefold() == "username")
    field = got["Username"].box
    assert field[0] - 0.01 <= label[0] and 0 < field[1] - label[3] < 0.08


def test_harvest_sources_are_registered() -> None:
    assert {"gtk", "web", "practice"} <= set(HARVESTERS)


# --------------------------------------------------------------------------- practice environments


@pytest.mark.display
def test_practice_desktop_harvest_matches_the_app_and_its_variants(tmp_path: Path) -> None:
    from vlagent.environments.xserver import binaries_available

    if binaries_available() or shutil.which("xdotool") is None:
        pytest.skip(binaries_available() or "xdotool is not installed")
    records = read_dataset(harvest("practice", tmp_path, targets="desktop"))
    check_common(records, "desktop")
    screens = {r.meta["screen"] for r in records}
    assert {"desktop-light-standard-0", "desktop-dark-swapped-1-menu"} <= screens
    save = {r.meta["screen"]: r for r in records if r.meta["name"] == "Save"}
    # The swapped layout moves the same button to the other column.
    assert save["desktop-light-standard-0"].box[0] < 0.5 < save["desktop-light-swapped-0"].box[0]
    for screen in ("desktop-light-standard-0", "desktop-dark-swapped-0"):
        rec = {r.meta["name"]: r for r in records if r.meta["screen"] == screen}
        for name in ("Save", "Delete", "Drag me"):
            assert reads(name, text_in_box(rec[name])), (screen, name)
    menu = {r.meta["name"]: r for r in records if r.meta["screen"] == "desktop-light-standard-0-menu"}
    assert menu["Say hello"].element == "menu" and reads("Say hello", text_in_box(menu["Say hello"]))


@pytest.mark.display
def test_the_held_out_practice_looks_are_a_test_source_of_their_own(tmp_path: Path) -> None:
    from vlagent.environments.xserver import binaries_available

    if binaries_available() or shutil.which("xdotool") is None:
        pytest.skip(binaries_available() or "xdotool is not installed")
    records = read_dataset(harvest("practice", tmp_path, targets="desktop-held-out", count=2))
    check_common(records, "desktop")
    assert {r.source for r in records} == {"practice:desktop-held-out"} and {r.split for r in records} == {"test"}
    assert {r.meta["theme"] for r in records} == {"sand"} and {r.meta["layout"] for r in records} == {"flipped"}
    rec = {r.meta["name"]: r for r in records if r.meta["screen"] == "desktop-sand-flipped-0"}
    # flipped: the buttons and fields panel sits below the mouse panel, Delete before Save
    assert rec["Delete"].box[0] < rec["Save"].box[0] and rec["Save"].box[1] > 0.5
    with pytest.raises(HarvestError, match="desktop-held-out"):
        harvest("practice", tmp_path, targets="desktop-heldout")


def test_practice_android_harvest_reads_the_phone_state(tmp_path: Path) -> None:
    records = read_dataset(harvest("practice", tmp_path, targets="android"))
    check_common(records, "android")
    assert {r.split for r in records} == {"test"}
    kinds = {r.element for r in records}
    assert {"icon", "switch", "list item"} <= kinds
    wifi = next(r for r in records if r.meta["screen"] == "android-settings-light-port" and r.meta["name"] == "Wi-Fi")
    assert wifi.element == "switch" and reads("Wi-Fi", text_in_box(wifi))
    # Scrolling moved the rows: the scrolled screen starts further down the list.
    first = {s: min((r for r in records if r.meta["screen"] == s and r.element != "text"), key=lambda r: r.box[1])
             for s in ("android-settings-light-port", "android-settings-scrolled-light-port")}  # fmt: skip
    assert first["android-settings-light-port"].meta["name"] != first["android-settings-scrolled-light-port"].meta["name"]
    # A row the list's edge cuts to a sliver (its label, drawn at its middle, not shown) is no target.
    for screen in {r.meta["screen"] for r in records}:
        rows = [r.box[3] - r.box[1] for r in records if r.meta["screen"] == screen and r.element == "list item"]
        assert not rows or min(rows) >= 0.5 * max(rows), screen


def test_android_harvest_over_adb_agrees_with_the_phone_state(tmp_path: Path, phone) -> None:
    """The real adb client and server: screencap + uiautomator dump of the virtual
    phone give the same boxes as the phone's own state (and as the practice harvest)."""
    from vlagent.grounding.harvest_adb import harvest_android

    x, y = phone.point("Settings", kind="icon")
    w, h = phone.state()["size"]
    phone.shell(f"input tap {int(x * w)} {int(y * h)}")
    state = phone.state()
    assert state["app"] == "settings"
    records = harvest_android(tmp_path, serial=phone.serial, adb_port=phone.adb.port, label="virtual",
                              log=lambda _m: None)  # fmt: skip
    for r in records:
        r.base_dir = tmp_path
    check_common(records, "android")
    got = {r.meta["name"]: r for r in records}
    assert got["Wi-Fi"].element == "switch" and got["Network & internet"].element == "list item"
    for el in state["elements"]:
        if el["label"] in got and el["kind"] in ("toggle", "list_item"):
            x1, y1, x2, y2 = el["bounds"]
            assert got[el["label"]].box == pytest.approx((x1 / w, y1 / h, x2 / w, y2 / h), abs=1e-6)
    assert reads("Bluetooth", text_in_box(got["Bluetooth"]))
