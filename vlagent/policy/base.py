"""The policy protocol: given a task, what the screen shows and what happened
so far, decide the next actions.

Every policy (OpenAI-compatible API, local engine, scripted replay) returns a
`Decision`. A policy whose model produced output that cannot be parsed raises
`ActionParseError` (from `vlagent.actions`); the agent shows that error to the
model in the history and asks again.

Screenshots (`observation.image`, `HistoryItem.image`) are shared with the run
recorder, which writes them from a background thread: a policy that wants to
draw on one works on a copy.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol, Sequence, runtime_checkable

from PIL import Image

from vlagent.actions import Action
from vlagent.environments.base import Observation


@dataclass
class HistoryItem:
    """One earlier step as the policy sees it.

    `image` is set only for the last few steps (the agent's
    `history_images`), older ones carry text only. `error` is what went wrong
    (a parse error, an execution error), shown to the model verbatim.
    """

    step: int
    raw_output: str
    thought: str | None = None
    actions: list[Action] = field(default_factory=list)
    error: str | None = None
    image: Image.Image | None = None


class StopRun(Exception):
    """Raised by `decide` to end the run now, before anything of the step runs, with `status` (one of
    vlagent.agent.STATUSES, e.g. "screen_changed" for a replay whose screen no longer matches the
    recording) and the message the run records and shows."""

    def __init__(self, status: str, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass
class Decision:
    """What a policy decided for one step.

    `error`: the reply was read but cannot be carried out (a planner's target
    the grounder did not find); then `actions` is empty and the agent shows
    the error to the model, as it does a parse error. `grounding`: what each
    target description was grounded to, recorded with the step.
    """

    raw_output: str
    actions: list[Action]
    thought: str | None = None
    timings: dict[str, float] = field(default_factory=dict)
    usage: dict[str, Any] | None = None
    error: str | None = None
    grounding: list[dict[str, Any]] | None = None


@runtime_checkable
class Policy(Protocol):
    name: str

    def decide(self, task: str, observation: Observation, history: Sequence[HistoryItem]) -> Decision: ...


__all__ = ["Policy", "Decision", "HistoryItem"]
