"""Noticing an agent that is stuck: the same action on a screen that does not change.

Two patterns, each on an unchanged screen (160x160 grey thumbnails within a few grey levels of noise;
a changed word or counter is a change):
- a repeat: the same action (same kind, points within `radius`, same text/keys/direction) `repeat`
  times in a row;
- a cycle: A, B, A, B (two actions alternating).

The agent first tells the model plainly what it sees ("your last 3 clicks at (0.41, 0.22) changed
nothing"), then ends the run with status "stuck" if the loop goes on.

The same thumbnails tell a replay whether the live screen still looks like the recorded one
(`changed_share`: the percent of the screen, or of the area around a point, that changed).
"""
from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import numpy as np
from PIL import Image

from vlagent.actions import Action

THUMB = 160  # screens are compared as 160x160 grey thumbnails (a small digit still shows)
# Grey levels of noise allowed (rendering, compression). Any visible change, even one digit of a counter,
# counts as a change: a repeated click that increments something is not a loop. A blinking text cursor
# therefore counts too; a stuck agent is still caught once three screenshots catch the same cursor phase.
SCREEN_TOLERANCE = 6
IGNORED = frozenset({"wait", "done", "answer"})  # waiting on an unchanged screen is not a loop


def screen_print(image: Image.Image) -> bytes:
    """A 160x160 grey thumbnail: enough to see that a word, a digit or a control changed."""
    return image.convert("L").resize((THUMB, THUMB), Image.Resampling.BOX).tobytes()


def _grey_diff(a: bytes, b: bytes) -> np.ndarray:
    """|a - b| of two screen_print thumbnails, as a THUMB x THUMB array of grey levels."""
    diff = np.abs(np.frombuffer(a, np.uint8).astype(np.int16) - np.frombuffer(b, np.uint8).astype(np.int16))
    return diff.reshape(THUMB, THUMB)


def same_screen(a: bytes, b: bytes, tolerance: int = SCREEN_TOLERANCE) -> bool:
    if len(a) != len(b):
        return False
    return int(_grey_diff(a, b).max(initial=0)) <= tolerance


# For telling a screen that *moved on* from one that merely flickered (replay): a thumbnail pixel counts as
# changed past this many grey levels, so a blinking text cursor or a hover tint barely counts, while moved,
# re-themed or replaced controls do.
CHANGE_TOLERANCE = 32
NEAR = 12  # "around a point": this many thumbnail pixels either way (about 15 % of the screen's width and height)


def changed_share(a: bytes, b: bytes, around: tuple[float, float] | None = None, *,
                  tolerance: int = CHANGE_TOLERANCE, near: int = NEAR) -> float:
    """Percent of two screen_print thumbnails that changed by more than `tolerance` grey levels: of the whole
    screen, or with `around` (a normalized point) of the square of +-`near` thumbnail pixels around it."""
    changed = _grey_diff(a, b) > tolerance
    if around is not None:
        cx, cy = min(int(around[0] * THUMB), THUMB - 1), min(int(around[1] * THUMB), THUMB - 1)
        changed = changed[max(0, cy - near):cy + near + 1, max(0, cx - near):cx + near + 1]
    return 100.0 * float(changed.mean())


HOLD_STILL = 0.25  # seconds a screen must not change to count as drawn (a busy app repaints in pieces)


def wait_until_still(observe: Callable[[], Any], before: bytes, within: float,
                     change_within: float | None = None) -> bool:
    """Wait up to `within` seconds for the screen (`observe()` gives an image) to differ from `before` (a
    screen_print) and then hold still for HOLD_STILL seconds: a list drawn, or closed and its app repainted.
    A screen that has not changed after `change_within` seconds (default: `within`) is not waited for
    further. Returns whether it changed."""
    start = time.monotonic()
    deadline, last, since, changed = start + within, before, start, False
    while True:
        now, at = screen_print(observe()), time.monotonic()
        if not same_screen(last, now):
            last, since = now, at
        changed = changed or changed_share(before, now) > 0
        if changed and at - since >= HOLD_STILL:
            return True
        if at >= deadline or (not changed and change_within is not None and at - start >= change_within):
            return changed
        time.sleep(0.05)


def same_actions(a: Sequence[Action], b: Sequence[Action], radius: float) -> bool:
    if len(a) != len(b) or not a:
        return False
    return all(_same(x, y, radius) for x, y in zip(a, b))


def _same(x: Action, y: Action, radius: float) -> bool:
    if (x.kind, x.text, x.keys, x.direction, x.button) != (y.kind, y.text, y.keys, y.direction, y.button):
        return False
    return _near(x.point, y.point, radius) and _near(x.end, y.end, radius)


def _near(p, q, radius: float) -> bool:
    if p is None or q is None:
        return p is q
    return abs(p[0] - q[0]) <= radius and abs(p[1] - q[1]) <= radius


@dataclass
class _Step:
    screen: bytes
    actions: tuple[Action, ...]


class LoopGuard:
    """Feed it each step's screenshot (before the step's actions) and actions; it names a loop when it
    sees one."""

    def __init__(self, repeat: int = 3, radius: float = 0.02) -> None:
        if repeat < 2:
            raise ValueError(f"a loop needs at least 2 repeats; got {repeat}")
        self.repeat, self.radius = repeat, radius
        self.steps: deque[_Step] = deque(maxlen=max(repeat, 4))

    def check(self, image: Image.Image, actions: Sequence[Action]) -> str | None:
        acting = tuple(a for a in actions if a.kind not in IGNORED)
        if not acting:
            self.steps.clear()  # waiting or finishing breaks a loop
            return None
        self.steps.append(_Step(screen_print(image), acting))
        return self._repeat() or self._cycle()

    def _repeat(self) -> str | None:
        last = list(self.steps)[-self.repeat:]
        if len(last) < self.repeat:
            return None
        first = last[0]
        if all(same_screen(s.screen, first.screen) and same_actions(s.actions, first.actions, self.radius)
               for s in last[1:]):
            return (f"your last {self.repeat} {describe(first.actions)} changed nothing on the screen: "
                    "the same action again will not help")
        return None

    def _cycle(self) -> str | None:
        last = list(self.steps)[-4:]
        if len(last) < 4:
            return None
        a, b, c, d = last
        if not all(same_screen(s.screen, a.screen) for s in (b, c, d)):
            return None
        if same_actions(a.actions, c.actions, self.radius) and same_actions(b.actions, d.actions, self.radius) \
                and not same_actions(a.actions, b.actions, self.radius):
            return (f"you alternated between {describe(a.actions)} and {describe(b.actions)} twice and the screen "
                    "did not change")
        return None


def describe(actions: Sequence[Action]) -> str:
    first = actions[0]
    noun = {"click": "clicks", "double_click": "double-clicks", "right_click": "right-clicks", "type": "typings",
            "key": "key presses", "scroll": "scrolls"}.get(first.kind, f"{first.kind} actions")
    where = f" at ({first.point[0]:.2f}, {first.point[1]:.2f})" if first.point else ""
    return f"{noun}{where}" if len(actions) == 1 else f"{len(actions)}-action steps starting with {first.describe()}"
