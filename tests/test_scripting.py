"""vlagent.connect(): scripts that address the practice app by description (OCR grounder, Xvfb)."""
from __future__ import annotations

import pytest

import vlagent
from display_fixtures import (ComboApp, _skip_without_binaries, combo_app, long_list_app, practice_session, running,
                              sliders_app, tooltip_app)
from vlagent.environments.xserver import start_virtual_display
from vlagent.recorder import load_trajectory

pytestmark = pytest.mark.display


@pytest.fixture(scope="module")
def practice(tmp_path_factory):
    _skip_without_binaries()
    with start_virtual_display(1280, 720) as display:
        with practice_session(display, tmp_path_factory.mktemp("practice"), "800x560+160+60") as session:
            yield session


def _bot(practice, tmp_path, **kw):
    from vlagent.environments.desktop import DesktopEnv

    return vlagent.connect("desktop", grounder="ocr", env=DesktopEnv(display=practice.display.name),
                           run_dir=tmp_path / "run", **kw)


def test_a_script_clicks_by_description_and_is_recorded(practice, tmp_path):
    with _bot(practice, tmp_path) as bot:
        found = bot.click("the Open button")
        assert found.confidence > 0.6
        practice.wait(lambda s: s["last_clicked"] == "open", "Open clicked")
        bot.click("click Delete")
        practice.wait(lambda s: s["last_clicked"] == "delete", "Delete clicked")
        assert bot.exists("Remember me") and not bot.exists("the purple elephant button")
        bot.press("ctrl", "s")
        practice.wait(lambda s: s["last_key_combo"] == "ctrl+s", "ctrl+s")
    header, steps, result = load_trajectory(tmp_path / "run")
    kinds = [s["actions"][0]["kind"] for s in steps if s["actions"]]
    assert kinds == ["click", "click", "key"] and result["status"] == "done"
    assert any(s["raw_output"].startswith("exists('the purple elephant button') -> no") and not s["error"]
               for s in steps)
    # numbered as an agent's run is: step 0 looked at step-000.png, and the report calls it Step 1
    assert [s["index"] for s in steps] == list(range(len(steps))) and steps[0]["screenshot"] == "step-000.png"
    assert header["task"] == "script " + __import__("pathlib").Path(__import__("sys").argv[0]).name
    html = (tmp_path / "run" / "report.html").read_text(encoding="utf-8")
    assert html.index('alt="step 0 screenshot"') < html.index("Step 1 ") < html.index('alt="step 1 screenshot"')


def test_target_not_found_clicks_nothing_and_draws_the_candidates(practice, tmp_path):
    before = practice.settle()["clicks"]
    with _bot(practice, tmp_path) as bot:
        with pytest.raises(vlagent.TargetNotFound, match="purple elephant") as info:
            bot.click("the purple elephant button")
        assert info.value.screenshot.exists() and info.value.screenshot.parent == bot.run_dir
        with pytest.raises(vlagent.TargetNotFound, match=r"within 0.6 s \(\d+ looks\)") as waited:
            bot.wait_for("the Upload complete message", timeout=0.6, interval=0.2)
        assert not bot.exists("the purple elephant button")
    assert practice.settle()["clicks"] == before
    # Each call is one step, however often wait_for looked; only the two failures draw their candidates.
    _, steps, _ = load_trajectory(tmp_path / "run")
    assert [s["raw_output"].split(":")[0].split(" ->")[0] for s in steps] == [
        "locate('the purple elephant button')", "wait_for('the Upload complete message')",
        "exists('the purple elephant button')"]
    assert sorted(p.name for p in bot.run_dir.glob("not-found-*.png")) == ["not-found-000.png", "not-found-001.png"]
    assert waited.value.screenshot == bot.run_dir / "not-found-001.png"


def test_dry_run_records_without_executing(practice, tmp_path):
    before = practice.settle()["clicks"]
    with _bot(practice, tmp_path, dry_run=True) as bot:
        bot.click("the Save button")
    assert practice.settle()["clicks"] == before
    _, steps, _ = load_trajectory(tmp_path / "run")
    assert [s["outcomes"][0]["status"] for s in steps if s["outcomes"]] == ["dry_run"]


def test_read_the_screen_and_a_field_click_a_point_and_take_a_screenshot(practice, tmp_path):
    """What a script checks its work with: the screen's text, the text inside one element; and a click at a
    point for what no description names."""
    from vlagent.environments.desktop import DesktopEnv

    with vlagent.connect("desktop", env=DesktopEnv(display=practice.display.name), run_dir=tmp_path / "run") as bot:
        everything = bot.read()
        assert "Save Open Delete" in everything and len(everything.splitlines()) > 5  # a row of buttons, left to right
        bot.type_into("the Name field", "hello 42")
        practice.wait(lambda s: s["text"] == "hello 42", "typed")
        assert bot.read("the Name field") == "hello 42"
        box = practice.state()["boxes"]["checkbox"]
        practice.observe()
        was = practice.state()["checkbox"]
        bot.click_at(*practice.point_of(box))
        practice.wait(lambda s: s["checkbox"] is not was, "the checkbox clicked by its point")
        with pytest.raises(ValueError, match="fractions of the screen"):
            bot.click_at(640, 360)
        image = bot.screenshot(tmp_path / "now.png")
        assert (tmp_path / "now.png").is_file() and image.size == practice.observe().image.size
    _, steps, _ = load_trajectory(tmp_path / "run")
    notes = [s["raw_output"] for s in steps]
    assert notes[0].startswith("read() -> ") and "read('the Name field') -> 'hello 42'" in notes
    assert any(n.startswith("click_at(") for n in notes)


def test_connect_rejects_an_unknown_place():
    with pytest.raises(ValueError, match="desktop"):
        vlagent.connect("mainframe", grounder="center")


def test_the_demo_script_runs(tmp_path):
    import subprocess
    import sys
    from pathlib import Path

    _skip_without_binaries()
    demo = Path(__file__).resolve().parents[1] / "demos" / "describe_dont_point.py"
    proc = subprocess.run([sys.executable, str(demo)], capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "not found, as expected" in proc.stdout and "'open'" in proc.stdout


def test_select_opens_a_drop_down_and_chooses_the_option(tmp_path):
    """bot.select() on Tk combo boxes: the drop-down is found beside its label, its list opens, the option
    is clicked; the app's own state says what was chosen."""
    from vlagent.environments.desktop import DesktopEnv

    _skip_without_binaries()
    with start_virtual_display(1280, 720) as display, combo_app(display, tmp_path / "combo.json") as app:
        with vlagent.connect("desktop", env=DesktopEnv(display=display.name), run_dir=tmp_path / "run") as bot:
            bot.select("the Size dropdown", "Large")
            app.wait(lambda s: s["size"] == "Large", "Large chosen")
            # A busy Tk repaints late: once seen blank where the combo boxes were after the list closed,
            # and the next select() clicked the bare label. A careful script checks the choice on the screen.
            bot.wait_for("'Large'", timeout=10)
            bot.select("the Colour drop-down", "Blue")
            app.wait(lambda s: s["colour"] == "Blue" and s["size"] == "Large", "Blue chosen")
    _, steps, _ = load_trajectory(tmp_path / "run")
    clicks = [s["raw_output"] for s in steps if s["actions"]]
    assert clicks == ["select('the Size dropdown', 'Large'): open", "select('the Size dropdown', 'Large')",
                      "select('the Colour drop-down', 'Blue'): open", "select('the Colour drop-down', 'Blue')"]


def test_select_returns_once_the_list_has_closed_and_the_app_has_repainted(tmp_path):
    """After the option's click, a busy app shows a blank form for a moment before it repaints: select()
    returns only when the screen has held still, so the script's next look sees the choice."""
    import time

    from PIL import Image

    from vlagent.actions import Action
    from vlagent.environments.base import BaseEnvironment, Observation
    from vlagent.grounding.grounders.base import GroundingResult

    class SlowApp(BaseEnvironment):
        name = "slow-app"
        colours = {"closed": (200, 200, 200), "list": (90, 90, 90), "blank": (255, 255, 255), "chosen": (0, 120, 0)}

        def __init__(self) -> None:
            self.clicks: list[float] = []

        def shown(self) -> str:
            if not self.clicks:
                return "closed"
            if len(self.clicks) == 1:
                return "list"
            return "blank" if time.monotonic() - self.clicks[1] < 0.15 else "chosen"

        def observe(self) -> Observation:
            return Observation(image=Image.new("RGB", (160, 100), self.colours[self.shown()]), screen_size=(160, 100))

        def execute(self, action: Action) -> None:
            self.clicks.append(time.monotonic())

    class Everywhere:
        name = "everywhere"

        def ground(self, image, instruction, *, platform=None):
            return GroundingResult(point=(0.5, 0.5), confidence=1.0, box=(0.4, 0.4, 0.6, 0.6))

    env = SlowApp()
    with vlagent.connect("desktop", grounder=Everywhere(), env=env, run_dir=tmp_path / "run") as bot:
        bot.select("the Size dropdown", "Large")
        assert len(env.clicks) == 2 and env.shown() == "chosen"
        assert bot.session.last.image.getpixel((5, 5)) == SlowApp.colours["chosen"]  # not the blank moment


class _MenuApp:
    """A screen whose File menu opens `delay` seconds after the click that opens it (a busy app)."""

    name = "menu-app"

    def __init__(self, delay: float) -> None:
        self.delay, self.opened_at, self.chosen = delay, None, []

    def menu_open(self) -> bool:
        import time

        return self.opened_at is not None and time.monotonic() >= self.opened_at

    def observe(self):
        from PIL import Image

        from vlagent.environments.base import Observation

        colour = (60, 60, 60) if self.menu_open() else (230, 230, 230)
        return Observation(image=Image.new("RGB", (200, 100), colour), screen_size=(200, 100))

    def execute(self, action) -> None:
        import time

        if self.opened_at is None:
            self.opened_at = time.monotonic() + self.delay
        elif action.kind != "move":  # the pointer moved aside chooses nothing
            self.chosen.append(action.point)

    def close(self) -> None:
        pass


class _MenuGrounder:
    """Finds "File" always, "Save As..." only on a screen with the menu drawn (dark)."""

    name = "menu-grounder"

    def ground(self, image, instruction, *, platform=None):
        from vlagent.grounding.grounders.base import GroundingResult

        if "File" in instruction or image.getpixel((5, 5))[0] < 100:
            return GroundingResult(point=(0.5, 0.5), confidence=1.0, box=(0.4, 0.4, 0.6, 0.6))
        return GroundingResult(point=None, confidence=0.1, found=False, error="no such item")


def test_the_next_call_sees_what_an_action_did_or_keeps_looking(tmp_path):
    """click("the File menu"), then click("Save As...") at once: the menu was not drawn yet, and the second
    click raised TargetNotFound. The session now waits for the screen to show an action's effect, and a
    call that acts keeps looking for its target for find_timeout seconds."""
    import time

    app = _MenuApp(delay=0.3)  # within the session's wait for an action's effect
    with vlagent.connect("desktop", grounder=_MenuGrounder(), env=app, run_dir=tmp_path / "settle", find_timeout=0) as bot:
        bot.click("the File menu")
        bot.click("Save As...")
    assert len(app.chosen) == 1

    app = _MenuApp(delay=1.2)  # slower than that: found by looking again
    with vlagent.connect("desktop", grounder=_MenuGrounder(), env=app, run_dir=tmp_path / "look", find_timeout=3) as bot:
        bot.click("the File menu")
        bot.click("Save As...")
    assert len(app.chosen) == 1
    _, steps, _ = load_trajectory(tmp_path / "look")
    assert any(s["raw_output"].startswith("locate('Save As...') ->") and "looks)" in s["raw_output"] for s in steps)

    app = _MenuApp(delay=0.3)  # the same app, with the script doing its own waiting: one look, at once
    with vlagent.connect("desktop", grounder=_MenuGrounder(), env=app, run_dir=tmp_path / "own", find_timeout=0,
                         settle=False) as bot:
        bot.click("the File menu")
        with pytest.raises(vlagent.TargetNotFound):
            bot.click("Save As...")

    app = _MenuApp(delay=5.0)
    with vlagent.connect("desktop", grounder=_MenuGrounder(), env=app, run_dir=tmp_path / "late", find_timeout=1) as bot:
        bot.click("the File menu")
        started = time.monotonic()
        with pytest.raises(vlagent.TargetNotFound, match=r"^'Save As\.\.\.' is not on the screen \(not found within 1 s"):
            bot.click("Save As...")
        assert time.monotonic() - started < 3
    assert app.chosen == []


def test_select_says_at_once_when_the_click_opened_no_list(tmp_path):
    """A drop-down drawn as a button was taken for its label: the click opened nothing, and select() waited
    for the option for its whole timeout, then blamed the option."""
    import time

    import vlagent.overlay  # noqa: F401  (imported before the clock starts: it draws the candidates)
    from vlagent.scripting import as_drop_down

    as_drop_down("the Size dropdown")  # loads the grounder's word rules (torch) before the clock starts too

    app = _MenuApp(delay=60)  # nothing ever changes
    with vlagent.connect("desktop", grounder=_MenuGrounder(), env=app, run_dir=tmp_path / "run") as bot:
        started = time.monotonic()
        with pytest.raises(vlagent.TargetNotFound, match=r"^'the File dropdown' is not on the screen \(clicking it at "
                           r"\(0\.500, 0\.500\) opened no list: the screen did not change in 2 s"):
            bot.select("the File dropdown", "Large")
        assert time.monotonic() - started < 4
    assert app.chosen == []


@pytest.mark.display
def test_select_on_a_gtk_combo_box_drawn_as_a_button(tmp_path):
    """mousepad's Find and Replace dialog (real GTK 3): "Search direction: [Down ▾]" has no field outline,
    and the drop-down was taken for its label. Found by its arrow, opened, "Up" chosen, and read back."""
    from vlagent.environments.desktop import DesktopEnv

    _skip_without_binaries()
    text = tmp_path / "fruit.txt"
    text.write_text("apples and pears\n", encoding="utf-8")
    with start_virtual_display(1280, 720) as display, _mousepad(display, tmp_path, text):
        with vlagent.connect("desktop", env=DesktopEnv(display=display.name), run_dir=tmp_path / "run") as bot:
            bot.wait_for("the Search menu", timeout=30)
            bot.click("the Search menu")
            bot.click("Find and Replace...")
            bot.wait_for("the Replace with field", timeout=10)
            bot.select("the Search direction dropdown", "Up")
            assert bot.read("the Search direction dropdown") == "Up"


def _real_app(display, home, command: list, needs: tuple = ()):
    """A real desktop application on `display` with a fresh HOME (its default settings), skipped where a
    program of `needs` ((program, package) pairs; by default the command's own) is not installed."""
    import shutil
    import subprocess

    for program, package in needs or ((command[0], command[0]),):
        if shutil.which(program) is None:
            pytest.skip(f"{program} is not installed (apt-get install {package})")
    return running(command, {**display.env, "HOME": str(home)}, stderr=subprocess.DEVNULL)


def _mousepad(display, home, file):
    # its dialogs' settings live in GSettings: without a D-Bus session a changed choice springs back
    return _real_app(display, home, ["dbus-run-session", "--", "mousepad", str(file)],
                     (("mousepad", "mousepad"), ("dbus-run-session", "dbus")))


@pytest.mark.display
def test_a_calculator_driven_by_its_symbol_keys(tmp_path):
    """galculator (real GTK 3): OCR reads no "=", "-", "/", "(" or "." on its keys, so a script could
    not press them ("the = button" was not found). Symbols named as themselves or by their names are
    found by their shape (vlagent.grounding.glyphs); each result is read back from the display."""
    from vlagent.environments.desktop import DesktopEnv

    _skip_without_binaries()
    pytest.importorskip("rapidocr_onnxruntime")
    with start_virtual_display(1280, 720) as display, _real_app(display, tmp_path, ["galculator"]):
        with vlagent.connect("desktop", env=DesktopEnv(display=display.name), run_dir=tmp_path / "run") as bot:
            bot.wait_for("the 9 button", timeout=30)

            def keys(*descriptions: str) -> None:
                for description in descriptions:
                    bot.click(description)

            keys("the 1 button", "the 2 button", "the + button", "the 7 button", "the = button")
            bot.wait_for("'19'", timeout=5)
            keys("the times button", "the 2 button", "the equals key")
            bot.wait_for("'38'", timeout=5)
            keys("the divide button", "the 8 button", "press '='")
            bot.wait_for("'4.75'", timeout=5)
            keys("the minus button", "the ( button", "the 1 button", "the decimal point", "the 5 button",
                 "the ) button", "the = button")
            bot.wait_for("'3.25'", timeout=5)
            assert not bot.exists("'4.75'")
            keys("the +/- button")  # read by OCR as written, but no letter or digit of it to match
            bot.wait_for("'-3.25'", timeout=5)


def test_a_tooltip_over_the_target_is_moved_out_of_the_way(tmp_path):
    """After a click the pointer rests on what was clicked, and its tooltip may cover the next target: a
    script clicking "Undo" then "Redo" failed with TargetNotFound. Not found at the second look with the
    pointer resting there, the pointer is moved aside (a recorded step) and the look goes on. Keys pressed
    while the pointer is aside (off the window) went nowhere on an X server without a window manager,
    whose keyboard focus follows the pointer: it is moved back onto the last target first."""
    from vlagent.environments.desktop import DesktopEnv

    _skip_without_binaries()
    with start_virtual_display(1280, 720) as display, tooltip_app(display, tmp_path / "clicked") as app:
        with vlagent.connect("desktop", grounder="ocr", env=DesktopEnv(display=display.name),
                             run_dir=tmp_path / "run") as bot:
            bot.wait_for("the Redo button", timeout=20)
            bot.click("the Undo button")
            assert not bot.exists("the Redo button")  # the tooltip covers it
            bot.click("the Redo button")
            app.wait_for_redo()
            bot.click("the Undo button")
            bot.wait_for("the Redo button")  # moved aside again: off the window, where the keyboard does not go
            bot.press("ctrl", "s")  # so the pointer goes back first (an X server without a window manager)
            app.wait_for("ctrl+s")
    _, steps, _ = load_trajectory(tmp_path / "run")
    moves = [s for s in steps if s["actions"] and s["actions"][0]["kind"] == "move"]
    assert len(moves) == 3 and all("moved aside" in m["raw_output"] for m in moves[:2])
    assert "moved back" in moves[2]["raw_output"]


@pytest.mark.display
def test_typing_into_an_editors_text_area(tmp_path):
    """mousepad (real GTK 3): "the text area" was not found and "click in the document" opened the Document
    menu. The editor's page is the large flat area closed in by edges (vlagent.grounding.areas): typed
    into, saved, and the file on disk holds the text."""
    import time

    from vlagent.environments.desktop import DesktopEnv

    _skip_without_binaries()
    pytest.importorskip("rapidocr_onnxruntime")
    letter = tmp_path / "letter.txt"
    letter.write_text("", encoding="utf-8")
    with start_virtual_display(1280, 720) as display, _mousepad(display, tmp_path, letter):
        with vlagent.connect("desktop", env=DesktopEnv(display=display.name), run_dir=tmp_path / "run") as bot:
            bot.wait_for("the Document menu", timeout=30)
            bot.type_into("the text area", "Dear Ada")
            bot.click("click in the document")
            assert not bot.exists("Word Wrap")  # the Document menu did not open
            bot.press("ctrl", "End")
            bot.type(", the engine works.")
            bot.press("ctrl", "s")
            deadline = time.monotonic() + 10
            while "works" not in letter.read_text(encoding="utf-8") and time.monotonic() < deadline:
                time.sleep(0.2)
        assert letter.read_text(encoding="utf-8").strip() == "Dear Ada, the engine works."


# A list of fruit whose selection extends with ctrl+click and shift+click; it writes the selection to a file.
_FRUIT_LIST_APP = r'''
import json, os, sys, tkinter as tk

state = sys.argv[1]
root = tk.Tk()
root.geometry("320x300+80+80")
fruit = tk.Listbox(root, selectmode="extended", font=("DejaVu Sans", 14), activestyle="none")
for name in ("Apples", "Bananas", "Cherries", "Dates", "Figs", "Grapes"):
    fruit.insert("end", name)
fruit.pack(fill="both", expand=True, padx=20, pady=20)


def save(_event=None):
    with open(state + ".tmp", "w") as f:
        json.dump([fruit.get(i) for i in fruit.curselection()], f)
    os.replace(state + ".tmp", state)


fruit.bind("<<ListboxSelect>>", save)
root.after(300, save)
root.mainloop()
'''


def test_clicks_holding_modifier_keys_extend_a_selection(tmp_path):
    """A file manager's or a list's multiple selection needs ctrl+click and shift+click: a script could
    only click. click(..., modifiers=) holds the keys down during the click (released however it ends),
    and the recording says so."""
    import json
    import sys
    import time

    from vlagent.environments.desktop import DesktopEnv

    _skip_without_binaries()
    state = tmp_path / "selection.json"

    def selection(expected: list, timeout: float = 5.0) -> None:
        deadline = time.monotonic() + timeout
        while (json.loads(state.read_text()) if state.exists() else None) != expected:
            assert time.monotonic() < deadline, f"the list says {state.read_text() if state.exists() else None}"
            time.sleep(0.1)

    with start_virtual_display(1280, 720) as display, \
            running([sys.executable, "-c", _FRUIT_LIST_APP, str(state)], display.env):
        selection([], timeout=20)
        with vlagent.connect("desktop", grounder="ocr", env=DesktopEnv(display=display.name),
                             run_dir=tmp_path / "run") as bot:
            bot.click("Bananas")
            selection(["Bananas"])
            bot.click("Dates", modifiers="ctrl")
            selection(["Bananas", "Dates"])
            bot.click("Grapes", modifiers=("shift",))
            selection(["Bananas", "Dates", "Figs", "Grapes"])
            bot.click("Apples")  # nothing is held any more: a plain click selects one
            selection(["Apples"])
            with pytest.raises(vlagent.ActionFailed, match="holds only modifier keys"):
                bot.click("Cherries", modifiers="a")
    _, steps, _ = load_trajectory(tmp_path / "run")
    held = [s["actions"][0].get("keys") for s in steps if s["actions"]]
    assert held[:4] == [None, ["ctrl"], ["shift"], None]


# Orders in a table: each row has a Paid checkbox, a customer, an email, a total, an Edit button and a
# delete icon (the theme's); what is clicked is written to a state file.
_ORDERS_APP = r'''
import json, os, sys, tkinter as tk

state, icon = sys.argv[1], sys.argv[2]
root = tk.Tk()
root.geometry("760x360+60+60")
font = ("DejaVu Sans", 12)
people = [("Ada Lovelace", "ada@example.org", "18.00"), ("Alan Turing", "alan@example.org", "42.50"),
          ("Grace Hopper", "grace@example.org", "7.25"), ("Linus Pauling", "linus@example.org", "99.90"),
          ("Marie Curie", "marie@example.org", "13.40")]
trash = tk.PhotoImage(file=icon)
paid = {name: tk.BooleanVar(root, value=False) for name, _, _ in people}
log = {"deleted": [], "edited": []}


def save(*_):
    with open(state + ".tmp", "w") as f:
        json.dump({"paid": sorted(n for n, v in paid.items() if v.get()), **log}, f)
    os.replace(state + ".tmp", state)


for col, heading in enumerate(("Paid", "Customer", "Email", "Total")):
    tk.Label(root, text=heading, font=font + ("bold",)).grid(row=0, column=col, padx=8, pady=6, sticky="w")
for r, (name, email, total) in enumerate(people, start=1):
    cells = [tk.Checkbutton(root, variable=paid[name], command=save), tk.Label(root, text=name, font=font),
             tk.Label(root, text=email, font=font), tk.Label(root, text=total, font=font)]

    def delete(name=name, cells=cells):
        log["deleted"].append(name)
        for cell in cells:
            cell.destroy()
        save()

    cells += [tk.Button(root, text="Edit", font=font, command=lambda name=name: (log["edited"].append(name), save())),
              tk.Button(root, image=trash, relief="flat", command=delete)]
    for col, cell in enumerate(cells):
        cell.grid(row=r, column=col, padx=8, pady=4, sticky="w")
root.after(300, save)
root.mainloop()
'''
_DELETE_ICON = "/usr/share/icons/Adwaita/24x24/legacy/edit-delete.png"


@pytest.mark.display
def test_a_tables_rows_are_told_apart_by_what_is_written_on_them(tmp_path):
    """Every row of a table has the same checkbox, Edit button and delete icon: "the checkbox in the row
    with Grace Hopper" went to whichever the model liked (vlagent.grounding.rows). Each action lands on
    the named row, which the app's state file confirms; a cell is read by its column's heading."""
    import json
    import os
    import sys
    import time

    from vlagent.environments.desktop import DesktopEnv

    _skip_without_binaries()
    pytest.importorskip("rapidocr_onnxruntime")
    if not os.path.isfile(_DELETE_ICON):
        pytest.skip("the Adwaita icon theme is not installed (apt-get install adwaita-icon-theme)")
    state = tmp_path / "orders.json"

    def app_says(expected: dict, timeout: float = 5.0) -> None:
        ComboApp(state).wait(lambda now: now == expected, f"the app's state {expected}", timeout)

    with start_virtual_display(1280, 720) as display, \
            running([sys.executable, "-c", _ORDERS_APP, str(state), _DELETE_ICON], display.env):
        app_says({"paid": [], "deleted": [], "edited": []}, timeout=20)
        with vlagent.connect("desktop", env=DesktopEnv(display=display.name), run_dir=tmp_path / "run") as bot:
            bot.wait_for("the Edit button in the row with Ada Lovelace", timeout=20)
            bot.click("the checkbox in the row with Grace Hopper")
            app_says({"paid": ["Grace Hopper"], "deleted": [], "edited": []})
            bot.click("the Edit button in Marie Curie's row")
            app_says({"paid": ["Grace Hopper"], "deleted": [], "edited": ["Marie Curie"]})
            assert bot.read("the total of Alan Turing") == "42.50"
            bot.click("the delete icon in the row with Linus Pauling")
            app_says({"paid": ["Grace Hopper"], "deleted": ["Linus Pauling"], "edited": ["Marie Curie"]})
            assert not bot.exists("the Edit button in the row with Linus Pauling")
            bot.click("the checkbox next to alan@example.org")
            app_says({"paid": ["Alan Turing", "Grace Hopper"], "deleted": ["Linus Pauling"], "edited": ["Marie Curie"]})
            with pytest.raises(vlagent.TargetNotFound, match="'Zed' is not written on this screen"):
                bot.locate("the Edit button in the row with Zed", timeout=0)


@pytest.mark.display
def test_scroll_to_brings_a_target_into_view(tmp_path):
    """A script could scroll, but not "until Order 1063 shows": it had to guess how many times.
    scroll_to() looks, scrolls and looks again, stops at the list's end (a scroll that changes nothing)
    with TargetNotFound saying so, and scrolls back up as asked."""
    from vlagent.environments.desktop import DesktopEnv

    _skip_without_binaries()
    pytest.importorskip("rapidocr_onnxruntime")
    with start_virtual_display(1280, 720) as display, long_list_app(display, tmp_path / "selection.json") as app:
        with vlagent.connect("desktop", env=DesktopEnv(display=display.name), run_dir=tmp_path / "run") as bot:
            bot.wait_for("Order 1001", timeout=20)
            found = bot.scroll_to("Order 1063", within="Order 1005")
            bot.click_at(*found.point)
            app.wait(lambda s: s["selected"] == ["Order 1063"], "Order 1063 selected", timeout=5)
            with pytest.raises(vlagent.TargetNotFound, match=r"scrolled down to the end \(\d+ scrolls; the last one "
                                                             r"changed nothing\)"):
                bot.scroll_to("Order 2000")  # where the pointer rests: on the list, since the click
            assert bot.exists("Order 1080")
            with pytest.raises(vlagent.TargetNotFound, match=r"not found after 1 scroll up"):
                bot.scroll_to("Order 1002", direction="up", max_scrolls=1)
            bot.scroll_to("Order 1002", direction="up")
            bot.click("Order 1002")
            app.wait(lambda s: s["selected"] == ["Order 1002"], "Order 1002 selected", timeout=5)
            with pytest.raises(ValueError, match="direction is one of"):
                bot.scroll_to("Order 1002", direction="sideways")
    _, steps, _ = load_trajectory(tmp_path / "run")
    assert any("scroll_to('Order 1063'): scroll down (1)" in (s.get("raw_output") or "") for s in steps)


@pytest.mark.display
def test_set_slider_drags_a_knob_to_a_level(tmp_path):
    """A script could click a slider's knob but not set it: set_slider() drags the knob to a level of its
    track and reads back where it landed. Tk's scale (a knob in a trough, found since this change) and
    ttk's; the app's own values confirm; a description that is no slider is refused, nothing dragged."""
    from vlagent.environments.desktop import DesktopEnv

    _skip_without_binaries()
    pytest.importorskip("rapidocr_onnxruntime")
    with start_virtual_display(1280, 720) as display, sliders_app(display, tmp_path / "sliders.json") as app:
        with vlagent.connect("desktop", env=DesktopEnv(display=display.name), run_dir=tmp_path / "run") as bot:
            bot.wait_for("Brightness", timeout=20)
            assert abs(bot.set_slider("the Volume slider", 0.7) - 0.7) <= 0.03
            app.wait_near(volume=70, brightness=50)
            assert abs(bot.set_slider("the Brightness slider", 0.25) - 0.25) <= 0.03
            app.wait_near(volume=70, brightness=25)
            assert abs(bot.set_slider("the Volume slider", 0) - 0) <= 0.03
            app.wait_near(volume=0, brightness=25)
            with pytest.raises(vlagent.ActionFailed, match="but no slider"):
                bot.set_slider("the Brightness label", 0.5)
            with pytest.raises(ValueError, match="from 0 to 1"):
                bot.set_slider("the Volume slider", 70)
        app.wait_near(volume=0, brightness=25)


@pytest.mark.display
def test_set_slider_on_a_gtk_scale(tmp_path):
    """zenity's scale dialog (real GTK 3: a thin track, a round knob): the knob set to 0.7 of the track,
    and the dialog, confirmed, prints the value it holds."""
    import shutil
    import subprocess

    from vlagent.environments.desktop import DesktopEnv

    _skip_without_binaries()
    pytest.importorskip("rapidocr_onnxruntime")
    for program, package in (("zenity", "zenity"), ("dbus-run-session", "dbus")):
        if shutil.which(program) is None:
            pytest.skip(f"{program} is not installed (apt-get install {package})")
    command = ["dbus-run-session", "--", "zenity", "--scale", "--text=Volume", "--value=20"]
    with start_virtual_display(1280, 720) as display, \
            running(command, {**display.env, "HOME": str(tmp_path)}, stdout=subprocess.PIPE,
                    stderr=subprocess.DEVNULL, text=True) as dialog:
        with vlagent.connect("desktop", env=DesktopEnv(display=display.name), run_dir=tmp_path / "run") as bot:
            bot.wait_for("the OK button", timeout=30)
            reached = bot.set_slider("the Volume slider", 0.7)
            bot.click("the OK button")
        out, _ = dialog.communicate(timeout=10)
    assert abs(reached - 0.7) <= 0.03
    assert 66 <= int(out.strip().splitlines()[-1]) <= 74, out  # dbus-run-session's own line may come first


@pytest.mark.display
def test_hover_shows_a_tooltip_and_wait_until_gone_sees_it_go(tmp_path):
    """hover() puts the pointer on an element without clicking (Undo's tooltip shows); wait_until_gone()
    polls until a description is off the screen, or raises TimeoutError naming it. Each is one step."""
    from vlagent.environments.desktop import DesktopEnv

    _skip_without_binaries()
    with start_virtual_display(1280, 720) as display, tooltip_app(display, tmp_path / "clicked") as app:
        with vlagent.connect("desktop", grounder="ocr", env=DesktopEnv(display=display.name),
                             run_dir=tmp_path / "run") as bot:
            bot.wait_for("the Redo button", timeout=20)
            assert not bot.exists("Undo the last change")
            bot.hover("the Undo button")
            bot.wait_for("Undo the last change", timeout=5)
            with pytest.raises(TimeoutError, match=r"^'Undo the last change' is still on the screen after 1 s"):
                bot.wait_until_gone("Undo the last change", timeout=1)
            bot.click("the Redo button")  # under the tooltip: the pointer moves aside, the tooltip goes
            assert bot.wait_until_gone("Undo the last change", timeout=5) < 5
        app.wait_for_redo()
    _, steps, _ = load_trajectory(tmp_path / "run")
    assert "hover('the Undo button')" in [s["raw_output"] for s in steps if s["actions"]]
    assert [s["raw_output"].split(" ->")[0].split(":")[0] for s in steps if "wait_until_gone" in s["raw_output"]] == [
        "wait_until_gone('Undo the last change')", "wait_until_gone('Undo the last change')"]
