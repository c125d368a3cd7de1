"""Stuck agents: the same action on an unchanged screen is named, told to the model once, then ends the run."""
from __future__ import annotations

import json

import pytest
from PIL import Image, ImageDraw

from vlagent.actions import Action
from vlagent.agent import Agent
from vlagent.environments.base import BaseEnvironment, Observation
from vlagent.loop_guard import LoopGuard, same_screen, screen_print
from vlagent.policy.scripted import ScriptedPolicy
from vlagent.recorder import load_trajectory

A = Action("click", point=(0.40, 0.22))
A_NEAR = Action("click", point=(0.405, 0.224))
B = Action("click", point=(0.70, 0.60))


def screen(text: str = "Settings", cursor: bool = False, size=(640, 360)) -> Image.Image:
    img = Image.new("RGB", size, (240, 240, 245))
    d = ImageDraw.Draw(img)
    d.rectangle((40, 40, 240, 90), fill=(30, 80, 200))
    d.text((60, 55), text, fill="white")
    if cursor:
        d.line((400, 200, 400, 214), fill=(0, 0, 0), width=1)
    return img


def test_screen_prints_see_a_changed_digit_and_ignore_noise():
    assert same_screen(screen_print(screen()), screen_print(screen()))
    noisy = screen().point(lambda v: min(255, v + 3))  # re-encoding noise, a slight gamma shift
    assert same_screen(screen_print(screen()), screen_print(noisy))
    assert not same_screen(screen_print(screen("count 1")), screen_print(screen("count 2")))


def test_repeat_on_an_unchanged_screen_is_named():
    guard = LoopGuard(repeat=3)
    assert guard.check(screen(), [A]) is None
    assert guard.check(screen(), [A_NEAR]) is None
    verdict = guard.check(screen(), [A])
    assert verdict and "last 3 clicks at (0.40, 0.22) changed nothing" in verdict


def test_a_changing_screen_or_a_wait_is_no_loop():
    guard = LoopGuard(repeat=3)
    for i in range(5):
        assert guard.check(screen(f"count {i}"), [A]) is None  # a counter going up: the click works
    guard = LoopGuard(repeat=3)
    guard.check(screen(), [A])
    guard.check(screen(), [A])
    assert guard.check(screen(), [Action("wait", seconds=1)]) is None
    assert guard.check(screen(), [A]) is None


def test_an_alternating_pair_is_named():
    guard = LoopGuard(repeat=3)
    verdicts = [guard.check(screen(), [x]) for x in (A, B, A, B)]
    assert verdicts[:3] == [None, None, None] and "alternated" in verdicts[3]
    with pytest.raises(ValueError):
        LoopGuard(repeat=1)


class StillEnv(BaseEnvironment):
    """A screen that never changes, whatever is clicked (or, with `changes`, shows a click counter)."""

    name = "still"

    def __init__(self, changes: bool = False):
        self.clicks, self.changes = 0, changes

    def observe(self) -> Observation:
        return Observation(image=screen(f"clicks {self.clicks}" if self.changes else "Settings"), screen_size=(640, 360))

    def execute(self, action: Action) -> None:
        self.clicks += 1


def test_the_model_is_told_once_then_the_run_ends_stuck(tmp_path):
    env = StillEnv()
    policy = ScriptedPolicy([A] * 10)
    result = Agent(policy, env, run_dir=tmp_path / "run", max_steps=10).run("open the settings")
    assert result.status == "stuck" and result.success is False and result.steps == 4 and env.clicks == 4
    assert "changed nothing" in result.error
    warned = [h.error for h in policy.seen_histories[3] if h.error]
    assert warned and "changed nothing" in warned[-1] and "try something different" in warned[-1]
    _, steps, outcome = load_trajectory(tmp_path / "run")
    assert outcome["status"] == "stuck" and "changed nothing" in (steps[2]["error"] or "")
    assert "stuck" in (tmp_path / "run" / "report.html").read_text()


def test_clicks_that_change_the_screen_run_on_and_detection_can_be_off(tmp_path):
    result = Agent(ScriptedPolicy([A] * 6), StillEnv(changes=True), run_dir=tmp_path / "a", max_steps=6).run("count")
    assert result.status == "max_steps"
    result = Agent(ScriptedPolicy([A] * 6), StillEnv(), run_dir=tmp_path / "b", max_steps=6, loop_repeat=None).run("x")
    assert result.status == "max_steps"
    assert json.loads((tmp_path / "b" / "trajectory.jsonl").read_text().splitlines()[0])["settings"]["loop_repeat"] is None


def test_cli_exit_code_for_a_stuck_run():
    from vlagent.cli import _STATUS_EXIT, EXIT_CODES_HELP, EXIT_STUCK

    assert _STATUS_EXIT["stuck"] == EXIT_STUCK == 5 and "5    stuck" in EXIT_CODES_HELP
