"""A recorded, safety-gated session with one environment: observe, act, one call at a time.

This is the loop's bookkeeping without a policy: the caller (a script, an MCP client) decides each
action. Every action goes through the same gate as `vlagent run` (dry-run, confirmation of risky
actions, `{{secret}}` placeholders typed but never recorded, action and time limits) and is recorded
as a step of a run folder (trajectory.jsonl, screenshots, report.html on close). After an executed
action the session waits for the screen to show it (`settle`: a change that then holds still; none in
SETTLE_CHANGE seconds, and the next call goes ahead), so the caller's next look sees what it did.

    with Session(env, task="mcp session") as s:
        obs = s.observe()
        outcome = s.act(Action("click", point=(0.5, 0.5)), note="click(x=0.5, y=0.5)")
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Mapping, Sequence

from vlagent.actions import Action
from vlagent.agent import ActionOutcome, StepRecord, execute_gated
from vlagent.environments.base import EnvironmentLost, Observation
from vlagent.loop_guard import screen_print, wait_until_still
from vlagent.recorder import RunRecorder, default_run_dir, iso_time
from vlagent.safety import MIN_HIDDEN, PLACEHOLDER, ConfirmGate, ConfirmSetting, SecretStore, names_a_secret


SETTLE_CHANGE = 0.5  # seconds an action is given to change the screen (no change: the next call goes ahead)
SETTLE_WAIT = 2.0  # seconds at most for a changing screen to hold still after an action (an animation never does)


# actions that leave the (desktop) pointer where they pointed
_POINTING = frozenset({"click", "double_click", "triple_click", "right_click", "middle_click", "move", "drag"})


class SessionLimit(RuntimeError):
    """The session's action or time limit is reached: nothing more is executed."""


class Session:
    def __init__(
        self,
        env: Any,
        *,
        task: str = "session",
        run_dir: str | Path | None = None,
        runs_root: str | Path | None = None,
        dry_run: bool = False,
        confirm: ConfirmSetting = None,
        secrets: Mapping[str, str] | Sequence[str] | None = None,
        max_actions: int | None = None,
        max_seconds: float | None = None,
        settle: bool = True,
    ) -> None:
        self.env = env
        self.settle = settle
        self.task = task
        self.dry_run = dry_run
        self.gate = confirm if isinstance(confirm, ConfirmGate) else ConfirmGate(confirm)
        self.secrets = secrets if isinstance(secrets, SecretStore) else SecretStore(secrets)
        self.max_actions = max_actions
        self.max_seconds = max_seconds
        self.run_dir = Path(run_dir) if run_dir is not None else default_run_dir(task, runs_root)
        self.recorder = RunRecorder(self.run_dir, scrub=self.secrets.redact_obj)
        self.recorder.write_header(task=task, policy="session (each action chosen by the caller)",
                                   env=getattr(env, "name", type(env).__name__), started=iso_time(time.time()),
                                   settings=self._settings())
        self.actions = 0
        self.steps = 0
        self.last: Observation | None = None
        # where the last executed action left the pointer (its tooltip may show there), or None
        self.pointer: tuple[float, float] | None = None
        # where it rested before a script moved it aside from a tooltip (vlagent.scripting.POINTER_ASIDE)
        self.aside_from: tuple[float, float] | None = None
        self._t0 = time.monotonic()
        self._closed = False
        self.report: Path | None = None

    # -- the calls ------------------------------------------------------------

    def observe(self) -> Observation:
        """A fresh screenshot; later points are fractions of it."""
        self._check_open()
        self.last = self.env.observe()
        return self.last

    def act(self, action: Action, note: str = "", approved: bool | None = None) -> ActionOutcome:
        """Execute one action on the current screen (observed first if nothing was), recorded as a step.
        `approved`: the caller already asked the user (True/False); None lets the session's gate decide.
        Raises SessionLimit past the limits and EnvironmentLost when the environment is gone."""
        self._check_open()
        if self.max_actions is not None and self.actions >= self.max_actions:
            raise SessionLimit(f"the session's limit of {self.max_actions} actions is reached; nothing was executed")
        if self.max_seconds is not None and time.monotonic() - self._t0 >= self.max_seconds:
            raise SessionLimit(f"the session's time limit of {self.max_seconds:g} s is reached; nothing was executed")
        obs = self.last if self.last is not None else self.observe()
        rec = StepRecord(index=self.steps, time=time.time(), raw_output=note, actions=[action],
                         screen_size=obs.screen_size, image_size=obs.image_size)
        rec.screenshot = self.recorder.save_screenshot(rec.index, obs.image)
        try:
            gate = self.gate if approved is None else ConfirmGate(lambda _action: approved)
            outcome = execute_gated(self.env, action, gate, self.secrets, self.dry_run)
        except EnvironmentLost as e:
            outcome = ActionOutcome("failed", error=f"environment lost while executing {action.describe()}: {e}")
            self._record(rec, outcome)
            raise
        self._record(rec, outcome)
        self.actions += outcome.executed or outcome.status == "dry_run"
        if outcome.executed and action.kind in _POINTING:
            self.pointer = action.end if action.kind == "drag" else action.point
        self.last = None  # the screen may have changed: the next call looks again
        if outcome.executed and self.settle:
            # A menu still opening, a dialog still closing: the next call should see what this one did.
            wait_until_still(lambda: self.observe().image, screen_print(obs.image), SETTLE_WAIT, SETTLE_CHANGE)
        return outcome

    def typed(self, text: str, secret: bool | None, description: str = "") -> str:
        """The text a `type` action carries: `text` itself, or a placeholder the gate types as `text` and the
        recording keeps (``{{typed_1}}``). secret None: hidden when `description` names a password, PIN,
        code, key or token field and the text is MIN_HIDDEN characters or more (scrubbing a "5" out of
        every note would garble them). Text holding {{name}} placeholders keeps them; the plain words
        beside them are hidden the same way, one by one ("{{user}}:hunter22" -> "{{user}}:{{typed_1}}"),
        except whitespace, and punctuation alone (a ":" scrubbed out of every note would garble them)."""
        if not text or secret is False or (secret is None and not names_a_secret(description)):
            return text
        if not self.secrets.placeholders(text):
            return self.secrets.hide(text) if secret or len(text) >= MIN_HIDDEN else text
        pieces = PLACEHOLDER.split(text)  # plain, name, plain, name, ..., plain
        for i in range(0, len(pieces), 2):
            pieces[i] = _hide_words(pieces[i], self.secrets, bool(secret))
        for i in range(1, len(pieces), 2):
            pieces[i] = "{{" + pieces[i] + "}}"
        return "".join(pieces)

    def note(self, text: str, error: str | None = None) -> None:
        """Record a step that executed nothing (a lookup, a refused call), with the current screenshot."""
        self._check_open()
        obs = self.last
        rec = StepRecord(index=self.steps, time=time.time(), raw_output=text, error=error,
                         screen_size=obs.screen_size if obs else None, image_size=obs.image_size if obs else None)
        if obs is not None:
            rec.screenshot = self.recorder.save_screenshot(rec.index, obs.image)
        self._write(rec)

    def close(self, status: str = "done") -> Path | None:
        """Finish the run folder and write report.html; returns its path. Safe to call twice."""
        if self._closed:
            return self.report
        self._closed = True
        try:
            self.recorder.write_result(status=status, success=None, answer=None, steps=self.steps,
                                       elapsed_s=round(time.monotonic() - self._t0, 3), finished=iso_time(time.time()))
        finally:
            self.recorder.close()
        from vlagent.report import build_report

        self.report = build_report(self.run_dir)
        return self.report

    def __enter__(self) -> "Session":
        return self

    def __exit__(self, exc_type, *rest: Any) -> None:
        self.close("done" if exc_type is None else "error")

    # -- bookkeeping ----------------------------------------------------------

    def _record(self, rec: StepRecord, outcome: ActionOutcome) -> None:
        rec.outcomes = [outcome]
        rec.error = outcome.error
        rec.timings["execute"] = outcome.seconds
        self._write(rec)

    def _write(self, rec: StepRecord) -> None:
        redact = self.secrets.redact
        rec.raw_output = redact(rec.raw_output or "")
        rec.error = redact(rec.error) if rec.error else rec.error
        rec.actions = [self.secrets.redact_action(a) for a in rec.actions]
        for o in rec.outcomes:
            o.error = redact(o.error) if o.error else o.error
        self.recorder.write_step(rec.to_dict())
        self.steps += 1

    def _check_open(self) -> None:
        if self._closed:
            raise RuntimeError(f"the session recorded in {self.run_dir} is closed")

    def _settings(self) -> dict[str, Any]:
        return {"dry_run": self.dry_run, "confirm": self.gate.description, "secrets": self.secrets.names,
                "secret_scopes": self.secrets.scopes, "max_actions": self.max_actions, "max_seconds": self.max_seconds}


def _hide_words(plain: str, secrets: SecretStore, asked: bool) -> str:
    """`plain` (text between placeholders) with its core, the part inside surrounding whitespace, kept
    secret: when it holds a letter or digit, and the script asked (`asked`) or it is MIN_HIDDEN
    characters or more."""
    core = plain.strip()
    if not any(c.isalnum() for c in core) or not (asked or len(core) >= MIN_HIDDEN):
        return plain
    start = plain.index(core)
    return plain[:start] + secrets.hide(core) + plain[start + len(core):]
