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

import numpy as np
from PIL import Image

from vlagent.actions import Action
from vlagent.agent import Agent, RunResult
from vlagent.environments.base import Observation
from vlagent.loop_guard import CHANGE_TOLERANCE, changed_share, screen_print
from vlagent.policy.base import Decision, HistoryItem, StopRun
from vlagent.policy.scripted import ScriptedPolicy, recorded_steps
from vlagent.recorder import load_trajectory, screenshot_path

# Percent of the screen (or of the area around a point a step acts on) that may differ from the recording.
# The same screen differs by 0-0.2 % (a blinking cursor, a clock); text typed next to the point by ~4 %; the
# practice app with its columns swapped or its rows flipped by 5 % of the screen and 6-30 % around its controls.
DEFAULT_MAX_SCREEN_DIFF = 4.0
# A checkbox ticked since the recording changes 0.6 % around the click (an 8x8 tick in a 1280x720 screen):
# too little for the thumbnails, so the full-size pixels near each point are compared too. A changed pixel
# counts where a neighbour across and one up or down changed too (a blinking 1-pixel text cursor, a dotted
# focus ring are lines one pixel thick), after the best alignment within +-POINT_SHIFT pixels (a window a
# pixel or two off is the same screen); SOLID_CHANGE such pixels within POINT_RADIUS pixels (of a
# 1280-pixel-wide screen: wider screens, wider) stop the replay.
POINT_RADIUS = 64
POINT_SHIFT = 2
SOLID_CHANGE = 16
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
    solid: int = 0  # changed pixels of strokes thicker than one pixel near a point, at full size (SOLID_CHANGE)
    solid_where: str = ""  # "near the click at (0.03, 0.05)"

    def exceeds(self, max_percent: float) -> bool:
        """Beyond `max_percent`, or a solid change near a point (its limit grows with a larger max_percent)."""
        return self.percent > max_percent or self.solid >= solid_limit(max_percent)

    def describe(self, max_percent: float | None = None) -> str:
        sizes = "" if self.recorded_size == self.live_size else (
            f"; the screen is {self.live_size[0]}x{self.live_size[1]}, "
            f"the recording's {self.recorded_size[0]}x{self.recorded_size[1]}")
        text = f"{self.percent:.1f} % {self.where} changed"
        if max_percent is not None:
            text += f" (limit {max_percent:g} %)"
        if self.solid and (max_percent is None or self.solid >= solid_limit(max_percent)):
            text += f"; {self.solid} pixels {self.solid_where} changed"
            if max_percent is not None:
                text += f" (limit {solid_limit(max_percent):g})"
        return text + sizes


def solid_limit(max_percent: float) -> float:
    """The changed blocks near a point that stop a replay allowed `max_percent`: none at 100 (anything goes)."""
    return float("inf") if max_percent >= 100 else round(SOLID_CHANGE * max(1.0, max_percent / DEFAULT_MAX_SCREEN_DIFF))


def solid_change(recorded: Image.Image, live: Image.Image, point: tuple[float, float]) -> int:
    """Changed pixels of strokes thicker than one pixel within POINT_RADIUS of `point` (normalized), at the alignment of the two
    screenshots within +-POINT_SHIFT pixels that changes fewest; 0 where their sizes differ."""
    if recorded.size != live.size:
        return 0
    width, height = recorded.size
    r, s = round(POINT_RADIUS * max(1.0, width / 1280)), POINT_SHIFT
    x, y = int(point[0] * width), int(point[1] * height)
    x0, x1, y0, y1 = max(x - r, s), min(x + r + 1, width - s), max(y - r, s), min(y + r + 1, height - s)
    if x1 - x0 < 2 or y1 - y0 < 2:
        return 0
    a = np.asarray(recorded.crop((x0, y0, x1, y1)).convert("L"), np.int16)
    b = np.asarray(live.crop((x0 - s, y0 - s, x1 + s, y1 + s)).convert("L"), np.int16)
    fewest = a.size
    for dy in range(2 * s + 1):
        for dx in range(2 * s + 1):
            changed = np.pad(np.abs(a - b[dy:dy + a.shape[0], dx:dx + a.shape[1]]) > CHANGE_TOLERANCE, 1)
            across = changed[1:-1, :-2] | changed[1:-1, 2:]  # a changed neighbour left or right
            down = changed[:-2, 1:-1] | changed[2:, 1:-1]  # and one above or below: no 1-pixel line
            fewest = min(fewest, int((changed[1:-1, 1:-1] & across & down).sum()))
            if fewest == 0:
                return 0
    return fewest


def screen_difference(recorded: Image.Image, live: Image.Image, actions: Sequence[Action] = ()) -> ScreenDifference:
    """The difference between two screenshots, as a replay judges it before executing `actions`."""
    a, b = screen_print(recorded), screen_print(live)
    worst = ScreenDifference(changed_share(a, b), "of the screen", recorded.size, live.size)
    for action in actions:
        for point in (action.point, action.end):
            if point is None:
                continue
            name = f"the {action.kind.replace('_', ' ')} at ({point[0]:.2f}, {point[1]:.2f})"
            share = changed_share(a, b, around=point)
            if share > worst.percent:
                worst.percent, worst.where = share, f"around {name}"
            solid = solid_change(recorded, live, point)
            if solid > worst.solid:
                worst.solid, worst.solid_where = solid, f"near {name}"
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
        while diff.exceeds(self.max_screen_diff) and time.monotonic() < deadline:
            time.sleep(_POLL)  # an app may still be redrawing after the previous step
            live = self.env.observe().image
            diff = screen_difference(recorded, live, actions)
        self.differences.append(diff)
        if not diff.exceeds(self.max_screen_diff):
            return f"{step} ({shot}): the screen matches the recording ({diff.describe(self.max_screen_diff)})"
        return self._differs(step, f"the screen differs from the recording ({shot}): "
                                   f"{diff.describe(self.max_screen_diff)}", diff)

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


__all__ = ["DEFAULT_MAX_SCREEN_DIFF", "ReplayPolicy", "ScreenDifference", "replay", "screen_difference", "solid_change"]
