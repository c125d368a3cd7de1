"""Re-execute a recorded run, without clicking blind.

The recorded actions are played back by a `ReplayPolicy` through the same
`Agent`, so the replay is itself recorded (new run folder, new report) and
goes through the same safety gate. Secrets were recorded as `{{name}}`
placeholders; pass `secrets` to substitute them again.

Before each step that acts, the live screenshot is compared with the one the
recording took before that step (160x160 grey thumbnails, as the loop guard
compares screens: `loop_guard.changed_share`). The difference is the percent
of thumbnail pixels that changed by more than a few dozen grey levels, over
the whole screen and within the area around each point the step acts on; the
larger of the two is compared with `max_screen_diff` (percent). A screen that
differs more (after `screen_wait` seconds for it to settle) stops the replay
before anything of that step runs: status "screen_changed", a message naming
the step and the difference; or, with `on_screen_change`, asks whether to
replay the step anyway.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

from PIL import Image

from vlagent.actions import Action
from vlagent.agent import Agent, RunResult
from vlagent.environments.base import Observation
from vlagent.loop_guard import changed_share, screen_print
from vlagent.policy.base import Decision, HistoryItem, StopRun
from vlagent.policy.scripted import ScriptedPolicy, recorded_steps
from vlagent.recorder import load_trajectory, screenshot_path

# Percent of the screen (or of the area around a point a step acts on) that may differ from the recording.
# The same screen differs by 0-0.2 % (a blinking cursor, a clock); text typed next to the point by ~4 %; the
# practice app with its columns swapped or its rows flipped by 5 % of the screen and 6-30 % around its controls.
DEFAULT_MAX_SCREEN_DIFF = 4.0
SCREEN_WAIT = 2.0  # seconds a differing screen is given to settle (an app still redrawing) before the replay stops
_POLL = 0.25
_NOT_ACTING = frozenset({"done", "answer", "wait"})


@dataclass
class ScreenDifference:
    """How far the live screen is from the recorded one before a step."""

    percent: float  # the larger of the whole screen's and the areas' around the step's points
    where: str  # "of the screen" or "around the click at (0.41, 0.22)"
    recorded_size: tuple[int, int]
    live_size: tuple[int, int]

    def describe(self) -> str:
        sizes = "" if self.recorded_size == self.live_size else (
            f"; the screen is {self.live_size[0]}x{self.live_size[1]}, "
            f"the recording's {self.recorded_size[0]}x{self.recorded_size[1]}")
        return f"{self.percent:.1f} % {self.where} changed{sizes}"


def screen_difference(recorded: Image.Image, live: Image.Image, actions: Sequence[Action] = ()) -> ScreenDifference:
    """The difference between two screenshots, as a replay judges it before executing `actions`."""
    a, b = screen_print(recorded), screen_print(live)
    worst = ScreenDifference(changed_share(a, b), "of the screen", recorded.size, live.size)
    for action in actions:
        for point in (action.point, action.end):
            if point is None:
                continue
            share = changed_share(a, b, around=point)
            if share > worst.percent:
                where = f"around the {action.kind.replace('_', ' ')} at ({point[0]:.2f}, {point[1]:.2f})"
                worst = ScreenDifference(share, where, recorded.size, live.size)
    return worst


class ReplayPolicy(ScriptedPolicy):
    """The actions of a recorded run, each step played only on a screen that still looks like the recording.

    `env` is observed again while a differing screen settles. `max_screen_diff` None turns the comparison
    off. `on_screen_change(message) -> bool` is asked instead of stopping (True: replay the step anyway).
    In a dry run only the first acting step is compared: nothing runs, so the screen cannot follow.
    """

    def __init__(self, run_dir: str | os.PathLike, env: Any, *, max_screen_diff: float | None = DEFAULT_MAX_SCREEN_DIFF,
                 on_screen_change: Callable[[str], bool] | None = None, screen_wait: float = SCREEN_WAIT,
                 dry_run: bool = False) -> None:
        if max_screen_diff is not None and not 0.0 <= max_screen_diff <= 100.0:
            raise ValueError(f"max_screen_diff is a percent of the screen, from 0 to 100 (or None: no comparison); "
                             f"got {max_screen_diff!r}")
        self.run_dir = Path(run_dir)
        self.recorded = recorded_steps(self.run_dir)
        super().__init__([actions for _, actions in self.recorded])
        self.name = f"replay of {self.run_dir.name}"
        self.env, self.max_screen_diff, self.on_screen_change = env, max_screen_diff, on_screen_change
        self.screen_wait, self.dry_run = screen_wait, dry_run
        self.compared = 0  # acting steps compared so far
        self.differences: list[ScreenDifference | None] = []  # per replayed step (None: not compared)

    def decide(self, task: str, observation: Observation, history: Sequence[HistoryItem]) -> Decision:
        note = self._check(observation) if self.position < len(self.steps) else None
        decision = super().decide(task, observation, history)
        if note:
            decision.thought = note
        return decision

    def _check(self, observation: Observation) -> str | None:
        record, actions = self.recorded[self.position]
        # Counted from 1, as the report's headings are ("Step 1" shows step-000.png).
        index = record.get("index", self.position)
        step = f"step {index + 1 if isinstance(index, int) else index} of the recording"
        if self.max_screen_diff is None or all(a.kind in _NOT_ACTING for a in actions):
            self.differences.append(None)
            return None
        if self.dry_run and self.compared:
            self.differences.append(None)
            return f"{step}: screen not compared (a dry run executes nothing, so the screen cannot follow the recording)"
        self.compared += 1
        shot = record.get("screenshot")
        path = screenshot_path(self.run_dir, shot)
        if path is None or not path.is_file():
            return self._differs(step, f"the recording has no screenshot of it ({shot or 'none recorded'}) to compare "
                                       "the screen with", None)
        try:
            with Image.open(path) as image:
                recorded = image.convert("RGB")
        except (OSError, ValueError) as e:  # cut short, not an image
            return self._differs(step, f"the recording's screenshot of it ({shot}) cannot be read ({e}) to compare "
                                       "the screen with", None)
        live = observation.image
        diff = screen_difference(recorded, live, actions)
        deadline = time.monotonic() + self.screen_wait
        while diff.percent > self.max_screen_diff and time.monotonic() < deadline:
            time.sleep(_POLL)  # an app may still be redrawing after the previous step
            live = self.env.observe().image
            diff = screen_difference(recorded, live, actions)
        self.differences.append(diff)
        if diff.percent <= self.max_screen_diff:
            return f"{step} ({shot}): the screen matches the recording ({diff.describe()}, limit {self.max_screen_diff:g} %)"
        return self._differs(step, f"the screen differs from the recording ({shot}): {diff.describe()} "
                                   f"(limit {self.max_screen_diff:g} %)", diff)

    def _differs(self, step: str, what: str, diff: ScreenDifference | None) -> str:
        if diff is None:
            self.differences.append(None)
        if self.on_screen_change is not None and self.on_screen_change(f"before {step}, {what}."):
            return f"{step}: {what}; replayed anyway (confirmed)"
        raise StopRun("screen_changed", (
            f"replay stopped before {step}: {what}. Nothing of this step was executed. Bring the screen to the "
            "recorded state and replay again, allow a larger difference (--max-screen-diff), or decide step by "
            "step (--confirm)."))


def replay(
    run_dir: str | os.PathLike,
    env: Any,
    *,
    dry_run: bool = False,
    run_dir_out: str | os.PathLike | None = None,
    secrets: Any = None,
    max_screen_diff: float | None = DEFAULT_MAX_SCREEN_DIFF,
    on_screen_change: Callable[[str], bool] | None = None,
    screen_wait: float = SCREEN_WAIT,
    **agent_options: Any,
) -> RunResult:
    """Play the actions of `run_dir` again on `env`; returns the new run's result.

    Each acting step runs only if the screen still looks like the recording (see the module's notes;
    `max_screen_diff` percent, None: no comparison); otherwise the run ends with status "screen_changed",
    or `on_screen_change(message)` decides. `run_dir_out` is the new run folder (default
    ``runs/<stamp>-replay-<task>`` next to the original). `agent_options` go to `Agent` (confirm, asker,
    max_seconds, on_step...).
    """
    run_dir = Path(run_dir)
    header, _, _ = load_trajectory(run_dir)
    task = header.get("task")
    task = task if isinstance(task, str) and task.strip() else run_dir.name
    policy = ReplayPolicy(run_dir, env, max_screen_diff=max_screen_diff, on_screen_change=on_screen_change,
                          screen_wait=screen_wait, dry_run=dry_run)
    agent_options.setdefault("max_steps", len(policy.steps) + 1)  # +1: the closing done
    agent_options.setdefault("runs_root", run_dir.parent)
    if run_dir_out is None:
        from vlagent.recorder import default_run_dir

        run_dir_out = default_run_dir(f"replay {task}", agent_options["runs_root"])
    agent = Agent(policy, env, dry_run=dry_run, secrets=secrets, run_dir=run_dir_out, **agent_options)
    return agent.run(task)


__all__ = ["DEFAULT_MAX_SCREEN_DIFF", "ReplayPolicy", "ScreenDifference", "replay", "screen_difference"]
