"""The agent loop: observe → decide → safety gate → execute → record.

    agent = Agent(policy, env, max_steps=20, confirm="risky", secrets=["password"])
    result = agent.run("log in as alice with {{password}}")
    print(result.status, result.answer, result.run_dir)

Errors are values the loop shows the model, not crashes: a parse error, a
planner's target the grounder did not find (`Decision.error`), an
unsupported action, an unknown secret placeholder or a declined confirmation
go back to the policy as that step's `HistoryItem.error` and the policy is
asked again; `max_failures` failed steps in a row end the run ("failed"). The
default, 2, is the issue's rule: the model sees an error once and gets one more
try; a second failure in a row ends the run.
The environment going away or the policy itself failing (network, after its
own retries) ends the run ("error", with `RunResult.error_kind` saying which),
and so does a run folder that can no longer be written (full disk: kind
"recording"; the step that could not be recorded is the last one executed).
Ctrl+C ends it ("interrupted"; the CLI turns SIGTERM into the same). A policy may end it itself by raising
`StopRun` (a replay whose screen no longer matches the recording:
"screen_changed"). In every case the trajectory written so far
stays on disk and a report is built.

The policy is told which secrets exist (names only) through
`observation.info["secret_names"]`, so its prompt can offer the `{{name}}`
placeholders; the values never leave `SecretStore`.
"""

from __future__ import annotations

import dataclasses
import logging
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

from vlagent.actions import Action, ActionParseError
from vlagent.environments.base import EnvironmentLost, Observation, UnsupportedAction
from vlagent.loop_guard import LoopGuard
from vlagent.policy.base import Decision, HistoryItem, Policy, StopRun
from vlagent.recorder import RecordingFailed, RunRecorder, default_run_dir, iso_time
from vlagent.safety import Asker, ConfirmGate, ConfirmSetting, SecretError, SecretStore

log = logging.getLogger("vlagent.agent")

STATUSES = ("done", "answered", "max_steps", "timeout", "interrupted", "failed", "stuck", "screen_changed", "error")
# Why a run ended with status "error": the policy / its backend, the environment
# (display or device gone, screenshot failed), the run folder (cannot be written:
# full, read-only), or a bug (an unexpected exception).
ERROR_KINDS = ("policy", "environment", "recording", "internal")


@dataclass
class ActionOutcome:
    """What happened to one decided action.

    `status`: "executed", "dry_run" (would have run), "declined" (the user
    said no), "failed" (error), "skipped" (not reached: an earlier action of
    the step failed or the run ended), "final" (done / answer).
    """

    status: str
    confirmed: bool | None = None
    error: str | None = None
    seconds: float = 0.0

    @property
    def executed(self) -> bool:
        return self.status == "executed"

    @property
    def skipped(self) -> bool:
        return self.status in ("declined", "skipped")

    def to_dict(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "executed": self.executed,
            "skipped": self.skipped,
            "confirmed": self.confirmed,
            "error": self.error,
            "seconds": round(self.seconds, 4),
        }


@dataclass
class StepRecord:
    """One step as written to trajectory.jsonl (secrets already scrubbed)."""

    index: int
    time: float
    raw_output: str = ""
    thought: str | None = None
    actions: list[Action] = field(default_factory=list)
    outcomes: list[ActionOutcome] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    policy_timings: dict[str, float] = field(default_factory=dict)
    error: str | None = None
    screenshot: str | None = None
    screen_size: tuple[int, int] | None = None
    image_size: tuple[int, int] | None = None
    usage: dict[str, Any] | None = None
    grounding: list[dict[str, Any]] | None = None  # a planner's target descriptions and where they were found

    def to_dict(self) -> dict[str, Any]:
        extra = {"grounding": self.grounding} if self.grounding else {}
        return {
            "index": self.index,
            "time": iso_time(self.time),
            "thought": self.thought,
            "raw_output": self.raw_output,
            "actions": [a.to_dict() for a in self.actions],
            "outcomes": [o.to_dict() for o in self.outcomes],
            "timings": {k: round(v, 4) for k, v in self.timings.items()},
            "policy_timings": {k: round(v, 4) for k, v in self.policy_timings.items()},
            "error": self.error,
            "screenshot": self.screenshot,
            "screen_size": list(self.screen_size) if self.screen_size else None,
            "image_size": list(self.image_size) if self.image_size else None,
            "usage": self.usage,
            **extra,
        }


@dataclass
class RunResult:
    status: str  # one of STATUSES
    answer: str | None
    success: bool | None
    steps: int
    run_dir: Path
    error: str | None = None
    error_kind: str | None = None  # one of ERROR_KINDS when status == "error", else None
    records: list[StepRecord] = field(default_factory=list)
    task: str = ""
    elapsed: float = 0.0
    report: Path | None = None

    @staticmethod
    def is_finished(status: str) -> bool:
        """True for the statuses with which the policy itself ends a run (done / answer)."""
        return status in ("done", "answered")

    @property
    def finished(self) -> bool:
        return self.is_finished(self.status)


class _EndRun(Exception):
    """Internal: stop the loop with this status after recording the step."""

    def __init__(self, status: str, error: str | None = None, kind: str | None = None) -> None:
        super().__init__(error or status)
        self.status, self.error, self.kind = status, error, kind


@dataclass
class _Run:
    """The state of one run: the agent keeps none of it, so one Agent can run again (or concurrently)."""

    task: str
    run_dir: Path
    recorder: RunRecorder
    t0: float = field(default_factory=time.monotonic)
    observation: Observation | None = None  # of the step in progress
    images: dict[int, Any] = field(default_factory=dict)  # step -> screenshot, only the last `history_images`
    records: list[StepRecord] = field(default_factory=list)
    history: list[HistoryItem] = field(default_factory=list)
    current: StepRecord | None = None  # the step in progress, until it is recorded
    failures: int = 0  # failed steps in a row
    status: str | None = None  # set when the run ends
    error: str | None = None
    error_kind: str | None = None
    answer: str | None = None
    success: bool | None = None
    guard: LoopGuard | None = None  # notices the same action on an unchanged screen
    warned_loop: bool = False  # the model was told about its loop once

    def end(self, status: str, error: str | None = None, kind: str | None = None) -> None:
        self.status, self.error, self.error_kind = status, error, kind


class Agent:
    """Runs a policy on an environment until the task ends or a limit is hit.

    `confirm`: None, "all", "risky" or a callable(action) -> bool (see
    `vlagent.safety`); `asker` replaces the terminal y/n prompt for "all" /
    "risky"; `risky` adds action kinds or key combos (``"ctrl+w"``) to the
    risky set. `secrets`: dict name -> value, or a list of names read from
    ``VLAGENT_SECRET_<NAME>`` / ``<NAME>``. `run_dir`: where the run folder
    goes (default ``<runs_root>/<UTC timestamp>-<task slug>``); `runs_root`
    defaults to `recorder.runs_root()` ($VLAGENT_RUNS, else ``runs/``). `on_step(record)` is called after every step.
    """

    def __init__(
        self,
        policy: Policy,
        env: Any,
        *,
        max_steps: int = 30,
        max_seconds: float | None = None,
        dry_run: bool = False,
        confirm: ConfirmSetting = None,
        secrets: Mapping[str, str] | Sequence[str] | SecretStore | None = None,
        run_dir: str | Path | None = None,
        history_images: int = 2,
        max_failures: int = 2,
        loop_repeat: int | None = 3,
        on_step: Callable[[StepRecord], None] | None = None,
        asker: Asker | None = None,
        risky: Iterable[str] = (),
        runs_root: str | Path | None = None,
    ) -> None:
        if max_steps < 1:
            raise ValueError(f"max_steps must be at least 1, got {max_steps}")
        if max_seconds is not None and max_seconds <= 0:
            raise ValueError(f"max_seconds must be positive, got {max_seconds}")
        if history_images < 0:
            raise ValueError(f"history_images must be >= 0, got {history_images}")
        if max_failures < 1:
            raise ValueError(f"max_failures must be at least 1, got {max_failures}")
        if loop_repeat is not None and loop_repeat < 2:
            raise ValueError(f"loop_repeat must be at least 2 (or None to turn loop detection off), got {loop_repeat}")
        self.policy = policy
        self.env = env
        self.max_steps = max_steps
        self.max_seconds = max_seconds
        self.dry_run = dry_run
        self.gate = ConfirmGate(confirm, asker=asker, risky=risky)
        self.secrets = secrets if isinstance(secrets, SecretStore) else SecretStore(secrets)
        self.run_dir = Path(run_dir) if run_dir is not None else None
        self.runs_root = Path(runs_root) if runs_root is not None else None
        self.history_images = history_images
        self.max_failures = max_failures
        self.loop_repeat = loop_repeat
        self.on_step = on_step

    # -- public -----------------------------------------------------------

    def run(self, task: str) -> RunResult:
        if not isinstance(task, str) or not task.strip():
            raise ValueError("the task must be a non-empty string")
        run_dir = self.run_dir if self.run_dir is not None else default_run_dir(task, self.runs_root)
        run = _Run(task, run_dir, RunRecorder(run_dir, scrub=self.secrets.redact_obj))
        run.guard = LoopGuard(self.loop_repeat) if self.loop_repeat else None
        try:
            run.recorder.write_header(
                task=task,
                policy=_name_of(self.policy),
                env=_name_of(self.env),
                started=iso_time(time.time()),
                settings=self._settings(),
            )
            self._loop(run)
        except KeyboardInterrupt as e:  # Ctrl+C, or the CLI's SIGTERM (its message says which)
            run.end("interrupted", str(e) or "interrupted by the user (Ctrl+C)")
            self._keep_unfinished_step(run, "interrupted")
        except RecordingFailed as e:
            run.end("error", f"{e}; the run stopped there, nothing more was executed", "recording")
            self._keep_unfinished_step(run, run.error)
        finally:
            if run.status is None:  # an unexpected exception is propagating: still record it
                exc = sys.exc_info()[1]
                run.end("error", f"{type(exc).__name__}: {exc}" if exc else "unknown error", "internal")
                self._keep_unfinished_step(run, run.error)
            result = self._finish_run(run)
        log.info("run %s: %s after %d step(s) -> %s", run_dir, result.status, result.steps, result.answer or result.error)
        return result

    # -- the run -----------------------------------------------------------

    def _loop(self, run: "_Run") -> None:
        """Steps until the policy ends the run or a limit is hit; sets `run.status`."""
        while run.status is None:
            index = len(run.records)
            if index >= self.max_steps:
                run.end("max_steps", f"stopped at the step limit ({self.max_steps} steps)")
                break
            if self._out_of_time(run):
                run.end("timeout", f"stopped at the time limit ({self.max_seconds:g} s)")
                break
            run.current = StepRecord(index=index, time=time.time())
            end: _EndRun | None = None
            failed, final = False, None
            try:
                failed, final = self._step(run, run.current)
                if final is not None:
                    run.status, run.answer, run.success = final
            except _EndRun as e:
                end = e
            if end is None and final is None:
                end = self._check_loop(run, run.current)
            rec, run.current = run.current, None
            run.records.append(rec)
            self._finish_step(run, rec)
            if end is not None:
                run.end(end.status, end.error, end.kind)
                break
            run.failures = run.failures + 1 if failed else 0
            if run.failures >= self.max_failures and run.status is None:
                last = run.records[-1].error or "unknown error"
                run.end("failed", f"{run.failures} failed steps in a row (max_failures={self.max_failures}); last error: {last}")

    def _check_loop(self, run: "_Run", rec: StepRecord) -> "_EndRun | None":
        """Tell the model once that it is looping (in this step's error, which it reads next); if the loop
        goes on, end the run as "stuck" instead of spending the remaining steps."""
        obs = run.observation
        if run.guard is None or not isinstance(obs, Observation):
            return None
        verdict = run.guard.check(obs.image, rec.actions)
        if verdict is None:
            return None
        if not run.warned_loop:
            run.warned_loop = True
            rec.error = _join(rec.error, f"{verdict}; try something different")
            return None
        return _EndRun("stuck", f"stuck: {verdict} (after being told once)")

    def _keep_unfinished_step(self, run: "_Run", note: str | None) -> None:
        """Record the step a Ctrl+C or an unexpected exception broke off, with its screenshot."""
        rec, run.current = run.current, None
        if rec is None:
            return
        rec.error = _join(rec.error, note)
        run.records.append(rec)
        self._safe(lambda: self._finish_step(run, rec, notify=False))

    def _finish_run(self, run: "_Run") -> RunResult:
        """The result, written to the trajectory, with every file on disk and the report built."""
        elapsed = time.monotonic() - run.t0
        status = run.status or "error"
        result = RunResult(
            status=status,
            answer=self.secrets.redact(run.answer) if run.answer is not None else None,
            # done / answer without an explicit success flag means the policy thinks it succeeded
            success=(run.success is not False) if RunResult.is_finished(status) else False,
            steps=len(run.records),
            run_dir=run.run_dir,
            error=self.secrets.redact(run.error) if run.error else None,
            error_kind=run.error_kind,
            records=run.records,
            task=run.task,
            elapsed=elapsed,
        )
        self._safe(
            lambda: run.recorder.write_result(
                status=result.status,
                answer=result.answer,
                success=result.success,
                steps=result.steps,
                error=result.error,
                error_kind=result.error_kind,
                elapsed_s=round(elapsed, 3),
                finished=iso_time(time.time()),
            )
        )
        self._safe(run.recorder.close)  # waits for the screenshot writer: every file is on disk after this
        result.report = self._safe(lambda: _build_report(run.run_dir))
        return result

    # -- one step ---------------------------------------------------------

    def _step(self, run: "_Run", rec: StepRecord) -> tuple[bool, tuple[str, str | None, bool | None] | None]:
        """Fill `rec`. Returns (failed, final) where final is (status, answer, success)."""
        t = time.perf_counter()
        try:
            obs = self.env.observe()
        except EnvironmentLost as e:
            rec.error = f"environment lost: {e}"
            raise _EndRun("error", rec.error, "environment") from None
        except Exception as e:
            rec.error = f"observing the screen failed: {type(e).__name__}: {e}"
            raise _EndRun("error", rec.error, "environment") from None
        rec.timings["observe"] = time.perf_counter() - t
        run.observation = obs
        rec.screen_size, rec.image_size = tuple(obs.screen_size), tuple(obs.image.size)
        if self.secrets:
            # Names only: the prompt can offer the {{name}} placeholders without any value.
            obs = dataclasses.replace(obs, info={**obs.info, "secret_names": self.secrets.names})

        t = time.perf_counter()
        rec.screenshot = run.recorder.save_screenshot(rec.index, obs.image)
        rec.timings["record"] = time.perf_counter() - t

        t = time.perf_counter()
        try:
            decision = self.policy.decide(run.task, obs, self._history_view(run))
        except ActionParseError as e:
            rec.timings["decide"] = time.perf_counter() - t
            rec.raw_output = e.text
            rec.error = f"your output could not be parsed: {e.reason}"
            return True, None
        except StopRun as e:  # the policy ends the run (a replay whose screen no longer matches)
            rec.timings["decide"] = time.perf_counter() - t
            rec.error = str(e)
            if e.status not in STATUSES or e.status in ("done", "answered"):
                raise _EndRun("error", f"the policy stopped the run with an unknown status {e.status!r}: {e}", "policy") from None
            raise _EndRun(e.status, rec.error) from None
        except Exception as e:
            rec.timings["decide"] = time.perf_counter() - t
            rec.error = f"the policy failed: {type(e).__name__}: {e}"
            raise _EndRun("error", rec.error, "policy") from None
        rec.timings["decide"] = time.perf_counter() - t
        if not isinstance(decision, Decision):
            raise TypeError(f"{_name_of(self.policy)}.decide returned {type(decision).__name__}, expected Decision")
        rec.raw_output, rec.thought, rec.usage = decision.raw_output, decision.thought, decision.usage
        rec.policy_timings = dict(decision.timings)
        rec.actions = list(decision.actions)
        rec.grounding = decision.grounding
        if decision.error:  # read but not doable (a target not found): nothing runs, the model is told
            rec.error = decision.error
            rec.actions = []
            return True, None
        if not rec.actions:
            rec.error = "your output contained no action"
            return True, None

        run.recorder.check()  # a screenshot that could not be written: stop before acting (RecordingFailed)
        t = time.perf_counter()
        try:
            return self._execute_all(run, rec)
        finally:
            rec.timings["execute"] = time.perf_counter() - t

    def _execute_all(self, run: "_Run", rec: StepRecord) -> tuple[bool, tuple[str, str | None, bool | None] | None]:
        failed = False
        final = None
        errors: list[str] = []
        stop: str | None = None  # why the remaining actions are skipped
        try:
            for action in rec.actions:
                if stop is not None:
                    rec.outcomes.append(ActionOutcome("skipped", error=stop))
                    continue
                if action.kind == "done":
                    rec.outcomes.append(ActionOutcome("final"))
                    final, stop = ("done", None, action.success), "the run ended"
                    continue
                if action.kind == "answer":
                    rec.outcomes.append(ActionOutcome("final"))
                    final, stop = ("answered", action.text, action.success), "the run ended"
                    continue
                if self._out_of_time(run):
                    rec.outcomes.append(ActionOutcome("skipped", error="time limit reached"))
                    raise _EndRun("timeout", f"stopped at the time limit ({self.max_seconds:g} s)")
                try:
                    outcome = self._execute_one(action)
                except _EndRun as e:
                    rec.outcomes.append(ActionOutcome("failed", error=e.error))
                    errors.append(e.error or e.status)
                    raise
                rec.outcomes.append(outcome)
                if outcome.status in ("failed", "declined"):
                    errors.append(outcome.error or outcome.status)
                    failed = failed or outcome.status == "failed"
                    stop = f"not run: an earlier action was {outcome.status}"
        finally:
            rec.error = _join(rec.error, "; ".join(errors) if errors else None)
        return failed, final

    def _execute_one(self, action: Action) -> ActionOutcome:
        try:
            return execute_gated(self.env, action, self.gate, self.secrets, self.dry_run)
        except EnvironmentLost as e:
            raise _EndRun("error", f"environment lost while executing {action.describe()}: {e}", "environment") from None

    # -- bookkeeping -------------------------------------------------------

    def _finish_step(self, run: "_Run", rec: StepRecord, notify: bool = True) -> None:
        """Scrub secrets, write the step, and add it to the history the policy sees."""
        scrub = self.secrets
        rec.raw_output = scrub.redact(rec.raw_output or "")
        rec.thought = scrub.redact(rec.thought) if rec.thought else rec.thought
        rec.error = scrub.redact(rec.error) if rec.error else rec.error
        rec.actions = [scrub.redact_action(a) for a in rec.actions]
        for o in rec.outcomes:
            o.error = scrub.redact(o.error) if o.error else o.error
        t = time.perf_counter()
        run.recorder.write_step(rec.to_dict())
        rec.timings["record"] = rec.timings.get("record", 0.0) + time.perf_counter() - t
        run.history.append(
            HistoryItem(
                step=rec.index,
                raw_output=rec.raw_output,
                thought=rec.thought,
                actions=list(rec.actions),
                error=rec.error,
            )
        )
        obs = run.observation
        run.images[rec.index] = obs.image if isinstance(obs, Observation) else None
        run.observation = None
        # Older screenshots are never sent again: drop them to bound memory.
        for step in [s for s in run.images if s < rec.index - self.history_images + 1]:
            del run.images[step]
        if notify and self.on_step is not None:
            self.on_step(rec)

    def _history_view(self, run: "_Run") -> list[HistoryItem]:
        # Fresh copies every step: a policy may keep or change what it was given.
        return [dataclasses.replace(h, actions=list(h.actions), image=run.images.get(h.step)) for h in run.history]

    def _out_of_time(self, run: "_Run") -> bool:
        return self.max_seconds is not None and time.monotonic() - run.t0 >= self.max_seconds

    def _settings(self) -> dict[str, Any]:
        return {
            "max_steps": self.max_steps,
            "max_seconds": self.max_seconds,
            "dry_run": self.dry_run,
            "confirm": self.gate.description,
            "secrets": self.secrets.names,  # names only, never values
            "secret_scopes": self.secrets.scopes,  # where each scoped secret may be typed (globs)
            "history_images": self.history_images,
            "max_failures": self.max_failures,
            "loop_repeat": self.loop_repeat,
        }

    @staticmethod
    def _safe(fn: Callable[[], Any]) -> Any:
        """Run cleanup work that must not hide the run's own outcome."""
        try:
            return fn()
        except Exception as e:  # noqa: BLE001 - logged, the run result matters more
            log.warning("while finishing the run: %s: %s", type(e).__name__, e)
            return None


def execute_gated(env: Any, action: Action, gate: ConfirmGate, secrets: SecretStore, dry_run: bool) -> ActionOutcome:
    """Confirm (when the gate asks), fill in secrets, check that scoped secrets go where they belong, execute:
    the one way vlagent executes an action (the agent loop and vlagent.session). An outcome, never an exception,
    except EnvironmentLost."""
    confirmed = None if dry_run else gate.approve(action)
    if confirmed is False:
        return ActionOutcome("declined", confirmed=False, error=f"the user declined {action.describe()}; it was not executed")
    try:
        real = secrets.prepare(action)
    except SecretError as e:
        return ActionOutcome("failed", confirmed=confirmed, error=str(e))
    if dry_run:
        return ActionOutcome("dry_run")
    t = time.perf_counter()
    try:
        # A scoped secret goes only where it belongs: asked as late as possible, just before any key is sent.
        secrets.check_scope(action, env)
    except SecretError as e:
        return ActionOutcome("failed", confirmed=confirmed, error=str(e), seconds=time.perf_counter() - t)
    try:
        env.execute(real)
    except EnvironmentLost:
        raise
    except UnsupportedAction as e:
        return ActionOutcome("failed", confirmed, f"unsupported action {action.describe()}: {e}", time.perf_counter() - t)
    except Exception as e:  # noqa: BLE001 - reported as the action's outcome
        msg = f"executing {action.describe()} failed: {type(e).__name__}: {e}"
        return ActionOutcome("failed", confirmed, msg, time.perf_counter() - t)
    return ActionOutcome("executed", confirmed, None, time.perf_counter() - t)


def _build_report(run_dir: Path) -> Path:
    from vlagent.report import build_report

    return build_report(run_dir)


def _join(a: str | None, b: str | None) -> str | None:
    return "; ".join(x for x in (a, b) if x) or None


def _name_of(obj: Any) -> str:
    return str(getattr(obj, "name", None) or type(obj).__name__)


__all__ = ["Agent", "ActionOutcome", "RunResult", "StepRecord", "STATUSES", "ERROR_KINDS"]
