"""vlagent.connect(): scripts that address the practice app by description (OCR grounder, Xvfb)."""
from __future__ import annotations

import pytest

import vlagent
from display_fixtures import _skip_without_binaries, combo_app, practice_session
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
