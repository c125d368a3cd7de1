"""Replay that does not click blind: before each step the live screen is compared with the recorded one, and a
screen that differs beyond `max_screen_diff` stops the replay (status "screen_changed", exit 6) or, with
`--confirm`, asks. In memory first, then on Xvfb with the practice app: the same screen replays, the app with
its columns swapped stops the replay before anything is clicked."""
from __future__ import annotations

import contextlib
import json
import time
from pathlib import Path

import pytest
from PIL import Image, ImageDraw

from display_fixtures import x_display  # noqa: F401
from vlagent.actions import Action
from vlagent.agent import Agent
from vlagent.environments.base import BaseEnvironment, Observation
from vlagent.policy.scripted import ScriptedPolicy
from vlagent.recorder import load_trajectory
from vlagent.replay import DEFAULT_MAX_SCREEN_DIFF, ReplayPolicy, replay, screen_difference


class Screen(BaseEnvironment):
    """A 320x200 screen with a Save button; `layout="moved"` puts the button elsewhere."""

    name = "screen"

    def __init__(self, layout: str = "standard", settle_after: int | None = None) -> None:
        self.layout, self.settle_after = layout, settle_after
        self.executed: list[Action] = []
        self.observations = 0

    def observe(self) -> Observation:
        self.observations += 1
        if self.settle_after is not None and self.observations > self.settle_after:
            self.layout = "standard"  # an app that was still redrawing
        return Observation(image=draw(self.layout, len(self.executed)), screen_size=(320, 200))

    def execute(self, action: Action) -> None:
        self.executed.append(action)


def draw(layout: str, count: int = 0) -> Image.Image:
    img = Image.new("RGB", (320, 200), (240, 242, 246))
    d = ImageDraw.Draw(img)
    x = 200 if layout == "moved" else 40
    d.rectangle((x, 80, x + 80, 110), fill=(50, 90, 200))
    d.text((x + 20, 90), "Save", fill="white")
    d.text((10, 180), f"{count} actions", fill=(30, 30, 30))
    return img


SAVE = Action("click", point=(80 / 320, 95 / 200))


def _record(tmp_path: Path, actions=None) -> Path:
    policy = ScriptedPolicy(actions or [SAVE, Action("type", text="hi"), Action("done")])
    result = Agent(policy, Screen(), run_dir=tmp_path / "original").run("save it")
    assert result.status == "done"
    return result.run_dir


# -- the measure ----------------------------------------------------------------


def test_screen_difference_sees_the_screen_and_the_area_around_the_point():
    same = screen_difference(draw("standard"), draw("standard"), [SAVE])
    assert same.percent == 0.0
    moved = screen_difference(draw("standard"), draw("moved"), [SAVE])
    whole = screen_difference(draw("standard"), draw("moved"))
    assert moved.percent > whole.percent > DEFAULT_MAX_SCREEN_DIFF
    assert moved.where == "around the click at (0.25, 0.47)" and whole.where == "of the screen"
    # A different counter far from the click is a small change of the screen, none around the click.
    counter = screen_difference(draw("standard", 0), draw("standard", 7), [SAVE])
    assert counter.percent < DEFAULT_MAX_SCREEN_DIFF and counter.where == "of the screen"
    bigger = screen_difference(draw("standard"), draw("standard").resize((640, 400)))
    assert bigger.percent < DEFAULT_MAX_SCREEN_DIFF and "the screen is 640x400, the recording's 320x200" in bigger.describe()


def test_a_small_change_under_the_point_is_seen_and_a_cursor_or_a_shifted_window_are_not():
    """A checkbox ticked since the recording changes an 8x8 square: too little for the thumbnails (under 1 %
    around the click), enough for the full-size pixels. A blinking 1-pixel text cursor and the same screen
    a pixel or two off are no change."""
    def form(ticked: bool = False, cursor: bool = False, offset: tuple[int, int] = (0, 0)) -> Image.Image:
        img = Image.new("RGB", (1280, 720), (217, 217, 217))
        d = ImageDraw.Draw(img)
        x, y = 100 + offset[0], 100 + offset[1]
        d.rectangle((x, y, x + 12, y + 12), outline=(60, 60, 60), fill="white")
        if ticked:
            d.rectangle((x + 3, y + 3, x + 10, y + 10), fill=(20, 20, 20))
        d.text((x + 20, y), "Remember me", fill="black")
        d.rectangle((x, y + 30, x + 200, y + 52), outline=(120, 120, 120), fill="white")
        if cursor:
            d.line((x + 4, y + 34, x + 4, y + 48), fill="black")
        return img

    box = Action("click", point=(106 / 1280, 106 / 720))
    ticked = screen_difference(form(), form(ticked=True), [box])
    assert ticked.percent < 1.0 and ticked.solid >= 16 and ticked.exceeds(DEFAULT_MAX_SCREEN_DIFF)
    assert "pixels near the click at (0.08, 0.15) changed (limit 16)" in ticked.describe(DEFAULT_MAX_SCREEN_DIFF)
    on_label = Action("click", point=(150 / 1280, 106 / 720))  # the label's middle: the box is 44 pixels away
    assert screen_difference(form(), form(ticked=True), [on_label]).exceeds(DEFAULT_MAX_SCREEN_DIFF)
    assert not ticked.exceeds(100.0)  # 100 % allows anything
    field = Action("click", point=(110 / 1280, 140 / 720))
    blink = screen_difference(form(), form(cursor=True), [field])
    assert blink.solid == 0 and not blink.exceeds(DEFAULT_MAX_SCREEN_DIFF)
    for offset in ((1, 0), (2, 1), (-2, -2)):  # (the thumbnails may see a shift: their own limit decides)
        assert screen_difference(form(), form(offset=offset), [box]).solid == 0, offset


# -- in memory ------------------------------------------------------------------


def test_the_same_screen_replays_and_says_so(tmp_path):
    original = _record(tmp_path)
    env = Screen()
    result = replay(original, env, run_dir_out=tmp_path / "again")
    assert result.status == "done" and env.executed == [SAVE, Action("type", text="hi")]
    _, steps, _ = load_trajectory(result.run_dir)
    assert "step 1 of the recording (step-000.png): the screen matches the recording (0.0 %" in steps[0]["thought"]


def test_a_changed_screen_stops_the_replay_before_the_step(tmp_path):
    original = _record(tmp_path)
    env = Screen("moved")
    result = replay(original, env, run_dir_out=tmp_path / "again", screen_wait=0.3)
    assert result.status == "screen_changed" and env.executed == []
    assert env.observations > 1  # it gave the screen time to settle first
    assert result.error.startswith("replay stopped before step 1 of the recording: the screen differs from the "
                                   "recording (step-000.png): ")
    assert "% around the click at (0.25, 0.47) changed (limit 4 %)" in result.error
    assert "Nothing of this step was executed" in result.error
    _, steps, final = load_trajectory(result.run_dir)
    assert final["status"] == "screen_changed" and steps[0]["actions"] == [] and steps[0]["error"] == result.error
    assert "screen_changed" in (result.run_dir / "report.html").read_text()


def test_a_screen_that_settles_is_replayed(tmp_path):
    original = _record(tmp_path)
    env = Screen("moved", settle_after=2)
    result = replay(original, env, run_dir_out=tmp_path / "again")
    assert result.status == "done" and env.executed[0] == SAVE


def test_confirm_asks_and_the_answer_decides(tmp_path):
    original = _record(tmp_path)
    asked: list[str] = []
    env = Screen("moved")
    result = replay(original, env, run_dir_out=tmp_path / "yes", screen_wait=0,
                    on_screen_change=lambda message: asked.append(message) or True)
    assert result.status == "done" and env.executed[0] == SAVE
    assert asked and asked[0].startswith("before step 1 of the recording, the screen differs")
    assert "replayed anyway (confirmed)" in load_trajectory(result.run_dir)[1][0]["thought"]
    env = Screen("moved")
    result = replay(original, env, run_dir_out=tmp_path / "no", screen_wait=0, on_screen_change=lambda m: False)
    assert result.status == "screen_changed" and env.executed == []


def test_comparison_off_a_missing_screenshot_and_a_dry_run(tmp_path):
    original = _record(tmp_path)
    env = Screen("moved")
    assert replay(original, env, run_dir_out=tmp_path / "off", max_screen_diff=None).status == "done"
    assert env.executed[0] == SAVE
    # A dry run compares the first step only: nothing runs, so later screens cannot follow the recording.
    dry = replay(original, Screen(), run_dir_out=tmp_path / "dry", dry_run=True)
    assert dry.status == "done"
    assert "screen not compared (a dry run" in load_trajectory(dry.run_dir)[1][1]["thought"]
    (original / "step-000.png").unlink()
    env = Screen()
    result = replay(original, env, run_dir_out=tmp_path / "missing")
    assert result.status == "screen_changed" and env.executed == []
    assert "the recording has no screenshot of it (step-000.png)" in result.error
    with pytest.raises(ValueError, match="percent of the screen"):
        ReplayPolicy(original, env, max_screen_diff=150)


def test_cli_exit_code_and_flags(tmp_path, monkeypatch, capsys):
    import vlagent.cli as cli

    original = _record(tmp_path)
    envs: list[Screen] = []
    monkeypatch.setattr(cli, "make_env", lambda *a, **k: envs.append(Screen("moved")) or envs[-1])
    code = cli.main(["replay", str(original), "--json"])
    out, err = capsys.readouterr()
    assert code == cli.EXIT_SCREEN_CHANGED == 6 and envs[-1].executed == []
    replayed = json.loads(out)
    assert replayed["status"] == "screen_changed" and "before step 1 of the recording" in replayed["error"]
    assert cli.main(["replay", str(original), "--json", "--max-screen-diff", "off"]) == cli.EXIT_OK
    assert envs[-1].executed[0] == SAVE
    capsys.readouterr()
    assert cli.main(["replay", str(original), "--json", "--max-screen-diff", "100"]) == cli.EXIT_OK
    assert cli.main(["replay", str(original), "--max-screen-diff", "150"]) == cli.EXIT_USAGE
    assert "percent from 0 to 100" in capsys.readouterr().err
    # The documented default is the one replay uses; exit 6 is documented.
    help_text = cli.build_parser()._subparsers._group_actions[0].choices["replay"].format_help()
    assert f"(default {DEFAULT_MAX_SCREEN_DIFF:g})" in " ".join(help_text.split())
    assert "6    replay stopped" in help_text


# -- for real: the practice app on Xvfb ----------------------------------------------------------

GEOMETRY = "800x560+160+60"


@contextlib.contextmanager
def _practice_app(display, state_file: Path, *extra: str):
    from vlagent.environments.practice import desktop_app

    proc = desktop_app.launch(state_file, display.name, geometry=GEOMETRY, env=display.env, extra_args=extra)
    try:
        yield desktop_app.read_state(state_file)
    finally:
        proc.terminate()
        proc.wait(timeout=5)


def _center(box: list[int]) -> tuple[float, float]:
    return ((box[0] + box[2]) / 2 / 1280, (box[1] + box[3]) / 2 / 720)


def _untouched(state: dict) -> bool:
    return (state["clicks"] == [] and state["checkbox"] is False and state["text"] == ""
            and state["pad"]["count"] == 0 and state["list_selected"] is None and state["drag"]["drops"] == 0)


@pytest.mark.display
def test_replay_on_the_practice_app(x_display, tmp_path, monkeypatch, capsys):
    from vlagent.cli import EXIT_OK, EXIT_SCREEN_CHANGED, main
    from vlagent.environments.desktop import DesktopEnv
    from vlagent.environments.practice import desktop_app

    state_file = tmp_path / "state.json"
    # Record: click Save, tick Remember me, type into the Name field.
    with _practice_app(x_display, state_file) as state:
        boxes = state["boxes"]
        script = [Action("click", point=_center(boxes["button_save"])),
                  Action("click", point=_center(boxes["checkbox"])),
                  [Action("click", point=_center(boxes["entry"])), Action("type", text="hello")],
                  Action("done")]
        with DesktopEnv(display=x_display.name) as env:
            recorded = Agent(ScriptedPolicy(script), env, run_dir=tmp_path / "original").run("fill the form")
        assert recorded.status == "done"
        desktop_app.wait_for_state(state_file, lambda s: s["text"] == "hello", what="the recorded run's typing")

    monkeypatch.setenv("DISPLAY", x_display.name)
    capsys.readouterr()  # what the recording printed (python-xlib's warnings) is not the CLI's output
    # The same app, fresh: the replay proceeds and does it all again.
    with _practice_app(x_display, state_file):
        code = main(["replay", str(recorded.run_dir), "--json"])
        out, err = capsys.readouterr()
        assert code == EXIT_OK, err
        again = json.loads(out)
        assert again["status"] == "done", again
        final = desktop_app.wait_for_state(state_file, lambda s: s["text"] == "hello", what="the replay's typing")
        assert final["clicks"] == ["save"] and final["checkbox"] is True
        thoughts = [s["thought"] for s in load_trajectory(again["run_dir"])[1][:3]]
        assert all("the screen matches the recording" in t for t in thoughts), thoughts

    # The app with its columns swapped: the replay stops before its first click, and says why.
    with _practice_app(x_display, state_file, "--layout", "swapped"):
        code = main(["replay", str(recorded.run_dir), "--json"])
        out, err = capsys.readouterr()
        assert code == EXIT_SCREEN_CHANGED, err
        stopped = json.loads(out)
        assert stopped["status"] == "screen_changed" and stopped["steps"] == 1
        assert "before step 1 of the recording: the screen differs from the recording (step-000.png)" in stopped["error"]
        assert "around the click at" in stopped["error"] or "of the screen" in stopped["error"]
        time.sleep(0.5)  # anything sent would have reached the app by now
        assert _untouched(desktop_app.read_state(state_file)), desktop_app.read_state(state_file)

    # Remember me already ticked: Save is clicked (its surroundings match), then the replay stops before the
    # click that would untick the box. The thumbnails saw 0.6 % change there; the pixels see the tick.
    with _practice_app(x_display, state_file) as state:
        with DesktopEnv(display=x_display.name) as env:
            env.execute(Action("click", point=_center(state["boxes"]["checkbox"])))
        desktop_app.wait_for_state(state_file, lambda s: s["checkbox"] is True, what="the box ticked beforehand")
        code = main(["replay", str(recorded.run_dir), "--json"])
        out, err = capsys.readouterr()
        assert code == EXIT_SCREEN_CHANGED, err
        stopped = json.loads(out)
        assert "before step 2 of the recording: the screen differs from the recording (step-001.png)" in stopped["error"]
        assert "pixels near the click at" in stopped["error"], stopped["error"]
        time.sleep(0.5)
        final = desktop_app.read_state(state_file)
        assert final["checkbox"] is True and final["clicks"] == ["save"], final


def test_an_unreadable_recorded_action_is_named_by_the_reports_step_number(tmp_path):
    """Step records count from 0 (step-000.png); people read them as the report's "Step 1"."""
    from vlagent.policy.scripted import recorded_steps

    lines = [{"type": "run", "task": "t"},
             {"type": "step", "index": 0, "actions": [{"kind": "click", "point": [0.5, 0.5]}],
              "outcomes": [{"status": "executed"}]},
             {"type": "step", "index": 1, "actions": [{"kind": "teleport"}], "outcomes": [{"status": "executed"}]}]
    (tmp_path / "trajectory.jsonl").write_text("".join(json.dumps(r) + "\n" for r in lines), encoding="utf-8")
    with pytest.raises(ValueError, match=r"^step 2 of .*a carried-out action cannot be read"):
        recorded_steps(tmp_path)
