"""A policy that plays back a fixed script: tests, demos and replay.

    ScriptedPolicy([
        Action("click", point=(0.4, 0.2)),
        [Action("type", text="{{password}}"), Action("key", keys=("enter",))],
        {"kind": "scroll", "direction": "down"},
        "<raw model output>",                     # parsed with parse_actions
    ])

Each `decide` call consumes one item. An item is an `Action`, a list of
Actions / dicts, a dict (`Action.to_dict` form), a raw model output string
(parsed with `parse_actions`, so parse errors can be exercised) or an
exception instance (raised as is, e.g. `ActionParseError("bad", "x")`).
When the script runs out the policy answers `done`.
"""

from __future__ import annotations

import json
import os
from typing import Any, Iterable, Sequence

from vlagent.actions import Action
from vlagent.actions import parsers as _parsers
from vlagent.environments.base import Observation
from vlagent.policy.base import Decision, HistoryItem

ScriptItem = Action | dict | str | list | BaseException


class ScriptedPolicy:
    name = "scripted"

    def __init__(self, steps: Iterable[ScriptItem], *, fmt: str = "auto") -> None:
        self.steps: list[ScriptItem] = list(steps)
        for n, item in enumerate(self.steps):
            _check_item(n, item)
        self.fmt = fmt
        self.position = 0
        # What each decide() call received, for inspection (tests, debugging).
        self.seen_histories: list[list[HistoryItem]] = []

    @classmethod
    def from_trajectory(cls, path: str | os.PathLike) -> "ScriptedPolicy":
        """The actions a recorded run carried out (or would have, in a dry run), step by step.

        Steps that failed to parse, were declined or failed to execute are
        left out; a final done / answer is kept. Secrets stay `{{name}}`
        placeholders, substituted again by the replaying agent.
        """
        return cls([actions for _, actions in recorded_steps(path)])

    @property
    def remaining(self) -> int:
        return len(self.steps) - self.position

    def decide(self, task: str, observation: Observation, history: Sequence[HistoryItem]) -> Decision:
        self.seen_histories.append(list(history))
        if self.position >= len(self.steps):
            return Decision(raw_output="done()  # end of script", actions=[Action("done")], thought="script finished")
        item = self.steps[self.position]
        self.position += 1
        if isinstance(item, BaseException):
            raise item
        if isinstance(item, str):
            # Looked up at call time so tests can swap the parser.
            actions = _parsers.parse_actions(item, fmt=self.fmt, image_size=observation.image.size)
            return Decision(raw_output=item, actions=actions)
        actions = _to_actions(item)
        raw = json.dumps([a.to_dict() for a in actions], ensure_ascii=False)
        return Decision(raw_output=raw, actions=actions)


def recorded_steps(path: str | os.PathLike) -> list[tuple[dict[str, Any], list[Action]]]:
    """(step record, the actions it carried out) for each step of a run folder that carried any out
    (executed, dry run, or a final done / answer)."""
    from vlagent.recorder import load_trajectory

    _, records, _ = load_trajectory(path)
    steps = []
    for n, record in enumerate(records):
        index = record.get("index", n)
        where = f"step {index + 1 if isinstance(index, int) else index} of {path}"  # from 1, as the report counts
        actions, outcomes = record.get("actions") or [], record.get("outcomes") or []
        if not (isinstance(actions, list) and isinstance(outcomes, list) and all(isinstance(o, dict) for o in outcomes)):
            raise ValueError(f"{where}: its actions and outcomes are not lists of records")
        kept = []
        for a, o in zip(actions, outcomes):
            if o.get("status") in ("executed", "dry_run", "final"):
                try:
                    kept.append(Action.from_dict(a))
                except (ValueError, TypeError) as e:
                    raise ValueError(f"{where}: a carried-out action cannot be read ({e})") from None
        if kept:
            steps.append((record, kept))
    return steps


def _to_actions(item: Any) -> list[Action]:
    if isinstance(item, Action):
        return [item]
    if isinstance(item, dict):
        return [Action.from_dict(item)]
    return [a if isinstance(a, Action) else Action.from_dict(a) for a in item]


def _check_item(n: int, item: Any) -> None:
    if isinstance(item, (Action, str, BaseException)):
        return
    try:
        if isinstance(item, dict):
            Action.from_dict(item)
            return
        if isinstance(item, (list, tuple)) and all(isinstance(a, (Action, dict)) for a in item):
            _to_actions(item)
            return
    except ValueError as e:
        raise ValueError(f"script step {n}: {e}") from None
    raise TypeError(
        f"script step {n}: expected an Action, a list of Actions, a dict, a string or an exception, "
        f"got {type(item).__name__}"
    )


__all__ = ["ScriptedPolicy", "recorded_steps"]
