"""The agent loop against an in-memory environment (no display needed)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from PIL import Image, ImageDraw

from vlagent.actions import Action, ActionParseError
from vlagent.agent import Agent, RunResult
from vlagent.environments.base import BaseEnvironment, EnvironmentLost, Observation, UnsupportedAction
from vlagent.policy.base import Decision
from vlagent.policy.scripted import ScriptedPolicy
from vlagent.recorder import load_trajectory
from vlagent.replay import replay


class FakeEnv(BaseEnvironment):
    """Draws a small screen whose content changes with every executed action."""

    name = "fake"

    def __init__(self, size=(320, 200), fail_on=None, lose_after=None, interrupt_on=None, unsupported=()):
        self.size = size
        self.executed: list[Action] = []
        self.observations = 0
        self.fail_on, self.lose_after, self.interrupt_on = fail_on, lose_after, interrupt_on
        self.unsupported = set(unsupported)

    def observe(self) -> Observation:
        self.observations += 1
        if self.lose_after is not None and self.observations > self.lose_after:
            raise EnvironmentLost("display :99 went away")
        img = Image.new("RGB", self.size, (235, 238, 245))
        d = ImageDraw.Draw(img)
        d.rectangle((20, 20, 140, 60), fill=(40, 90, 200))
        d.text((24, 30), f"actions: {len(self.executed)}", fill="white")
        return Observation(image=img, screen_size=(self.size[0] * 2, self.size[1] * 2))

    def execute(self, action: Action) -> None:
        if self.interrupt_on == action.kind:
            raise KeyboardInterrupt
        if action.kind in self.unsupported:
            raise UnsupportedAction(f"{action.kind} is not supported here")
        if self.fail_on == action.kind:
            raise EnvironmentLost("device disconnected")
        self.executed.append(action)


def run(policy, env=None, tmp_path=None, **kw) -> tuple[RunResult, FakeEnv]:
    env = env or FakeEnv()
    task = kw.pop("task", "press the button")
    result = Agent(policy, env, run_dir=tmp_path / "run", **kw).run(task)
    return result, env


CLICK = Action("click", point=(0.25, 0.5))


def test_run_to_done_records_everything(tmp_path):
    policy = ScriptedPolicy([CLICK, [Action("type", text="hello"), Action("key", keys=("enter",))], Action("done")])
    seen = []
    result, env = run(policy, tmp_path=tmp_path, on_step=seen.append)
    assert result.status == "done" and result.success is True and result.steps == 3
    assert env.executed == [CLICK, Action("type", text="hello"), Action("key", keys=("enter",))]
    assert [r.index for r in seen] == [0, 1, 2]

    header, steps, final = load_trajectory(result.run_dir)
    assert header["task"] == "press the button" and header["policy"] == "scripted" and header["env"] == "fake"
    assert header["settings"]["max_steps"] == 30
    assert [s["index"] for s in steps] == [0, 1, 2]
    assert steps[1]["actions"] == [{"kind": "type", "text": "hello"}, {"kind": "key", "keys": ["enter"]}]
    assert [o["status"] for o in steps[1]["outcomes"]] == ["executed", "executed"]
    assert steps[0]["screen_size"] == [640, 400] and steps[0]["image_size"] == [320, 200]
    assert set(steps[0]["timings"]) == {"observe", "decide", "execute", "record"}
    assert final["status"] == "done" and final["steps"] == 3
    for s in steps:
        assert (result.run_dir / s["screenshot"]).is_file()
    assert (result.run_dir / "report.html").is_file() and result.report == result.run_dir / "report.html"


def test_answer_ends_the_run(tmp_path):
    policy = ScriptedPolicy([CLICK, Action("answer", text="42"), CLICK])
    result, env = run(policy, tmp_path=tmp_path)
    assert (result.status, result.answer, result.steps) == ("answered", "42", 2)
    assert env.executed == [CLICK]
    assert policy.remaining == 1


def test_parse_error_is_shown_to_the_model_then_recovered(tmp_path):
    policy = ScriptedPolicy([ActionParseError("no action found", "I think I should click it"), CLICK, Action("done")])
    result, env = run(policy, tmp_path=tmp_path)
    assert result.status == "done" and env.executed == [CLICK]
    # The second decide() call saw the failed step with its raw output and error.
    second = policy.seen_histories[1]
    assert len(second) == 1 and second[0].raw_output == "I think I should click it"
    assert "no action found" in second[0].error and second[0].actions == []
    # ...and later histories still carry it.
    assert "no action found" in policy.seen_histories[2][0].error
    _, steps, _ = load_trajectory(result.run_dir)
    assert steps[0]["raw_output"] == "I think I should click it" and "no action found" in steps[0]["error"]


def test_raw_strings_go_through_parse_actions(tmp_path, monkeypatch):
    import vlagent.actions.parsers as parsers

    calls = []

    def fake_parse(text, fmt="auto", image_size=None):
        calls.append((text, fmt, image_size))
        if text == "bad":
            raise ActionParseError("unknown function", text)
        return [Action("click", point=(0.1, 0.2))]

    monkeypatch.setattr(parsers, "parse_actions", fake_parse)
    policy = ScriptedPolicy(["bad", "click(10, 20)"])
    result, env = run(policy, tmp_path=tmp_path)
    assert calls == [("bad", "auto", (320, 200)), ("click(10, 20)", "auto", (320, 200))]
    assert result.status == "done" and env.executed == [Action("click", point=(0.1, 0.2))]
    assert "unknown function" in policy.seen_histories[1][0].error


def test_repeated_failures_end_cleanly(tmp_path):
    policy = ScriptedPolicy([ActionParseError(f"garbage {i}", "???") for i in range(5)])
    result, env = run(policy, tmp_path=tmp_path, max_failures=3)
    assert result.status == "failed" and result.steps == 3 and not result.success
    assert "3 failed steps in a row" in result.error and "garbage 2" in result.error
    _, steps, final = load_trajectory(result.run_dir)
    assert len(steps) == 3 and final["status"] == "failed"
    assert env.executed == []


def test_by_default_the_model_gets_one_more_try_after_an_error(tmp_path):
    policy = ScriptedPolicy([ActionParseError("garbage", "???"), ActionParseError("still garbage", "!!!"), CLICK])
    result, env = run(policy, tmp_path=tmp_path)
    assert result.status == "failed" and result.steps == 2 and env.executed == []
    assert [len(h) for h in policy.seen_histories] == [0, 1]  # asked again once, with the error shown
    assert "garbage" in policy.seen_histories[1][0].error and "still garbage" in result.error


def test_failures_must_be_consecutive(tmp_path):
    err = ActionParseError("bad", "x")
    policy = ScriptedPolicy([err, err, CLICK, err, err, Action("done")])
    result, _ = run(policy, tmp_path=tmp_path, max_failures=3)
    assert result.status == "done" and result.steps == 6


def test_unsupported_action_is_shown_like_a_parse_error(tmp_path):
    policy = ScriptedPolicy([Action("home"), CLICK, Action("done")])
    result, env = run(policy, FakeEnv(unsupported={"home"}), tmp_path=tmp_path)
    assert result.status == "done" and env.executed == [CLICK]
    assert "home is not supported here" in policy.seen_histories[1][0].error
    assert result.records[0].outcomes[0].status == "failed"


def test_dry_run_executes_nothing_but_records(tmp_path):
    policy = ScriptedPolicy([CLICK, Action("type", text="x\n"), Action("done")])
    asked = []
    result, env = run(policy, tmp_path=tmp_path, dry_run=True, confirm="all", asker=lambda a: asked.append(a) or True)
    assert result.status == "done" and env.executed == [] and asked == []
    _, steps, _ = load_trajectory(result.run_dir)
    assert [s["outcomes"][0]["status"] for s in steps] == ["dry_run", "dry_run", "final"]
    assert steps[0]["actions"] == [CLICK.to_dict()]
    assert json.loads(result.run_dir.joinpath("trajectory.jsonl").read_text().splitlines()[0])["settings"]["dry_run"]


def test_confirm_risky_asks_only_for_risky_actions(tmp_path):
    risky = [Action("key", keys=("ctrl", "w")), Action("type", text="rm -rf /\n"), Action("open_app", text="Terminal")]
    safe = [CLICK, Action("key", keys=("enter",)), Action("type", text="hello"), Action("scroll", direction="down")]
    policy = ScriptedPolicy([*safe, *risky, Action("done")])
    asked = []
    result, env = run(
        policy, tmp_path=tmp_path, confirm="risky", risky=["open_app"], asker=lambda a: asked.append(a) or True
    )
    assert result.status == "done"
    assert asked == risky
    assert env.executed == safe + risky
    _, steps, _ = load_trajectory(result.run_dir)
    assert [s["outcomes"][0]["confirmed"] for s in steps[:-1]] == [None] * 4 + [True] * 3


def test_declined_action_is_skipped_recorded_and_shown(tmp_path):
    combo = Action("key", keys=("alt", "f4"))
    policy = ScriptedPolicy([[combo, CLICK], Action("done")])
    result, env = run(policy, tmp_path=tmp_path, confirm="risky", asker=lambda a: False)
    assert result.status == "done" and env.executed == []
    _, steps, _ = load_trajectory(result.run_dir)
    o = steps[0]["outcomes"]
    assert o[0]["status"] == "declined" and o[0]["skipped"] and o[0]["confirmed"] is False
    assert o[1]["status"] == "skipped"  # the rest of that step is not run either
    assert "the user declined key alt+f4" in policy.seen_histories[1][0].error


def test_confirm_callable_decides_every_action(tmp_path):
    policy = ScriptedPolicy([CLICK, Action("click", point=(0.9, 0.9)), Action("done")])
    result, env = run(policy, tmp_path=tmp_path, confirm=lambda a: a.point[0] < 0.5)
    assert env.executed == [CLICK] and result.status == "done"


def test_step_limit(tmp_path):
    policy = ScriptedPolicy([CLICK] * 10)
    result, env = run(policy, tmp_path=tmp_path, max_steps=4)
    assert result.status == "max_steps" and result.steps == 4 and len(env.executed) == 4
    assert load_trajectory(result.run_dir)[2]["status"] == "max_steps"


class SlowPolicy:
    name = "slow"

    def decide(self, task, observation, history):
        time.sleep(0.05)
        return Decision(raw_output="click", actions=[CLICK])


def test_time_limit(tmp_path):
    result, env = run(SlowPolicy(), tmp_path=tmp_path, max_seconds=0.12)
    assert result.status == "timeout" and "time limit" in result.error
    assert 1 <= result.steps <= 4 and len(env.executed) < result.steps + 1
    assert load_trajectory(result.run_dir)[2]["status"] == "timeout"


class InterruptingPolicy:
    name = "interrupting"

    def __init__(self, after):
        self.after, self.calls = after, 0

    def decide(self, task, observation, history):
        self.calls += 1
        if self.calls > self.after:
            raise KeyboardInterrupt
        return Decision(raw_output="click", actions=[CLICK], thought="clicking")


def test_ctrl_c_in_policy_stops_cleanly(tmp_path):
    result, env = run(InterruptingPolicy(after=2), tmp_path=tmp_path)
    assert result.status == "interrupted" and len(env.executed) == 2
    header, steps, final = load_trajectory(result.run_dir)
    assert final["status"] == "interrupted" and len(steps) == 3 and "interrupted" in steps[2]["error"]
    assert (result.run_dir / "report.html").is_file()
    # The screenshot writer was drained before the run returned: every step's file is there.
    assert [(result.run_dir / s["screenshot"]).is_file() for s in steps] == [True] * 3
    assert result.error_kind is None


def test_ctrl_c_in_environment_stops_cleanly(tmp_path):
    policy = ScriptedPolicy([CLICK, Action("scroll", direction="down"), Action("done")])
    result, env = run(policy, FakeEnv(interrupt_on="scroll"), tmp_path=tmp_path)
    assert result.status == "interrupted" and env.executed == [CLICK]
    _, steps, final = load_trajectory(result.run_dir)
    assert final["status"] == "interrupted" and len(steps) == 2


def test_environment_lost_ends_with_error_and_keeps_trajectory(tmp_path):
    policy = ScriptedPolicy([CLICK, Action("scroll", direction="up"), Action("done")])
    result, env = run(policy, FakeEnv(fail_on="scroll"), tmp_path=tmp_path)
    assert result.status == "error" and "device disconnected" in result.error
    assert result.error_kind == "environment"
    _, steps, final = load_trajectory(result.run_dir)
    assert len(steps) == 2 and steps[1]["outcomes"][0]["status"] == "failed" and final["status"] == "error"
    assert final["error_kind"] == "environment"

    result, env = run(ScriptedPolicy([CLICK] * 5), FakeEnv(lose_after=2), tmp_path=tmp_path / "b")
    assert result.status == "error" and "display :99 went away" in result.error and len(env.executed) == 2
    assert result.error_kind == "environment"
    steps = load_trajectory(result.run_dir)[1]
    assert steps[-1]["screenshot"] is None and "display :99 went away" in steps[-1]["error"]
    assert result.report is not None and "no screenshot" in result.report.read_text()


class BrokenPolicy:
    name = "broken"

    def decide(self, task, observation, history):
        raise ConnectionError("server at 127.0.0.1:9 refused")


def test_policy_exception_ends_with_error(tmp_path):
    result, env = run(BrokenPolicy(), tmp_path=tmp_path)
    assert result.status == "error" and "ConnectionError" in result.error and result.steps == 1
    assert result.error_kind == "policy"
    assert load_trajectory(result.run_dir)[2]["status"] == "error"


def test_only_error_runs_have_an_error_kind(tmp_path):
    for n, script in enumerate(([CLICK, Action("done")], [ActionParseError("bad", "x")] * 3, [CLICK] * 3)):
        result, _ = run(ScriptedPolicy(script), tmp_path=tmp_path / str(n), max_steps=2)
        assert result.status in ("done", "failed", "max_steps") and result.error_kind is None
        assert load_trajectory(result.run_dir)[2]["error_kind"] is None


class InfoRecordingPolicy:
    """Keeps what each decide() call saw in observation.info."""

    name = "info-recorder"

    def __init__(self, script):
        self.infos, self.script = [], list(script)

    def decide(self, task, observation, history):
        self.infos.append(dict(observation.info))
        return Decision(raw_output="", actions=[self.script.pop(0)])


def test_the_policy_is_told_the_secret_names_but_not_the_values(tmp_path):
    policy = InfoRecordingPolicy([Action("type", text="{{password}} {{pin}}"), Action("done")])
    result, env = run(policy, tmp_path=tmp_path, secrets={"pin": "0000", "password": SECRET})
    assert result.status == "done" and env.executed == [Action("type", text=f"{SECRET} 0000")]
    assert [info.get("secret_names") for info in policy.infos] == [["password", "pin"]] * 2
    assert SECRET not in repr(policy.infos) and "0000" not in repr(policy.infos)
    # Without secrets nothing is added.
    policy = InfoRecordingPolicy([Action("done")])
    run(policy, tmp_path=tmp_path / "none")
    assert "secret_names" not in policy.infos[0]


def test_history_images_only_for_the_last_steps(tmp_path):
    policy = ScriptedPolicy([CLICK] * 4)
    run(policy, tmp_path=tmp_path, history_images=2)
    last = policy.seen_histories[4]
    assert [h.step for h in last] == [0, 1, 2, 3]
    assert [h.image is not None for h in last] == [False, False, True, True]
    assert last[0].actions == [CLICK]


SECRET = "S3cr#t!pw-äß"


def test_secrets_are_typed_but_never_stored_or_shown(tmp_path):
    type_it = Action("type", text="user alice pass {{password}}")
    policy = ScriptedPolicy(
        [
            type_it,
            # A model that leaked the value into its output and thought must be scrubbed too.
            Action("type", text=f"again {SECRET}"),
            Action("type", text="{{pin}}"),  # unknown placeholder: error, nothing typed
            Action("answer", text=f"logged in with {SECRET}"),
        ]
    )
    result, env = run(policy, tmp_path=tmp_path, secrets={"password": SECRET}, task="log in")
    assert result.status == "answered"
    assert env.executed[0] == Action("type", text=f"user alice pass {SECRET}")
    assert len(env.executed) == 2  # {{pin}} typed nothing
    assert "unknown secret placeholder" in policy.seen_histories[3][2].error
    # The policy never saw the value.
    for history in policy.seen_histories:
        for item in history:
            assert SECRET not in repr(item)
    assert policy.seen_histories[1][0].actions == [type_it]
    assert SECRET not in repr(result.records) and SECRET not in result.answer
    # No file of the run folder contains it (raw bytes, utf-8 and json-escaped forms).
    needles = [SECRET.encode(), json.dumps(SECRET).strip('"').encode(), SECRET.encode("utf-16-le")]
    files = [p for p in Path(result.run_dir).rglob("*") if p.is_file()]
    assert {p.name for p in files} >= {"trajectory.jsonl", "report.html", "step-000.png"}
    for p in files:
        data = p.read_bytes()
        assert not any(n in data for n in needles), p
    assert "{{password}}" in result.run_dir.joinpath("trajectory.jsonl").read_text()


def test_secrets_from_environment_variables(tmp_path, monkeypatch):
    monkeypatch.setenv("VLAGENT_SECRET_TOKEN", "tok-123")
    monkeypatch.setenv("api_key", "key-456")
    policy = ScriptedPolicy([Action("type", text="{{token}} {{api_key}}")])
    result, env = run(policy, tmp_path=tmp_path, secrets=["token", "api_key"])
    assert env.executed == [Action("type", text="tok-123 key-456")]
    monkeypatch.delenv("api_key")
    with pytest.raises(ValueError, match="VLAGENT_SECRET_API_KEY"):
        Agent(policy, env, secrets=["api_key"])


def test_replay_reexecutes_the_same_actions(tmp_path):
    actions = [
        CLICK,
        [Action("type", text="{{password}}"), Action("key", keys=("ctrl", "s"))],
        Action("drag", point=(0.1, 0.1), end=(0.8, 0.9)),
        Action("answer", text="saved"),
    ]
    # A declined step and a parse error in the original are not replayed.
    script = [actions[0], ActionParseError("bad", "??"), Action("key", keys=("alt", "f4")), *actions[1:]]
    original, env1 = run(
        ScriptedPolicy(script),
        tmp_path=tmp_path,
        secrets={"password": SECRET},
        confirm="risky",
        asker=lambda a: a.keys != ("alt", "f4"),
    )
    assert original.status == "answered"
    env2 = FakeEnv()
    again = replay(original.run_dir, env2, secrets={"password": SECRET}, run_dir_out=tmp_path / "replay")
    assert again.status == "answered" and again.answer == "saved"
    assert env2.executed == env1.executed
    assert env2.executed[1].text == SECRET
    assert again.run_dir == tmp_path / "replay" and (again.run_dir / "report.html").is_file()
    assert load_trajectory(again.run_dir)[0]["task"] == "press the button"

    dry = FakeEnv()
    result = replay(original.run_dir, dry, dry_run=True, secrets={"password": SECRET}, run_dir_out=tmp_path / "dry")
    assert dry.executed == [] and result.steps == 4


def test_bad_arguments_are_named(tmp_path):
    with pytest.raises(ValueError, match="confirm"):
        Agent(ScriptedPolicy([]), FakeEnv(), confirm="sometimes")
    with pytest.raises(ValueError, match="max_steps"):
        Agent(ScriptedPolicy([]), FakeEnv(), max_steps=0)
    with pytest.raises(TypeError, match="script step 1"):
        ScriptedPolicy([CLICK, 3])
    with pytest.raises(ValueError, match="task"):
        Agent(ScriptedPolicy([]), FakeEnv(), run_dir=tmp_path).run("  ")


def test_default_run_dir_is_timestamped_slug(tmp_path):
    result = Agent(ScriptedPolicy([]), FakeEnv(), runs_root=tmp_path).run("Open the Settings / Wi-Fi page!")
    assert result.run_dir.parent == tmp_path
    assert result.run_dir.name.endswith("-open-the-settings-wi-fi-page")
    assert result.run_dir.name[:8].isdigit() and result.run_dir.name[15] == "Z"


def test_runs_go_where_vlagent_runs_says_or_to_the_data_folder_when_here_cannot_be_written(tmp_path, monkeypatch):
    """A desktop MCP client may start `vlagent mcp` in / (not writable): its runs went nowhere."""
    import os

    from vlagent import recorder
    from vlagent.session import Session

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv(recorder.RUNS_ENV, raising=False)
    assert recorder.runs_root() == Path("runs")
    monkeypatch.setenv(recorder.RUNS_ENV, str(tmp_path / "all-runs"))
    result = Agent(ScriptedPolicy([]), FakeEnv()).run("from the environment")
    assert result.run_dir.parent == tmp_path / "all-runs"
    with Session(FakeEnv(), task="mcp session") as session:
        assert session.run_dir.parent == tmp_path / "all-runs"
    monkeypatch.delenv(recorder.RUNS_ENV)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    writable = os.access
    monkeypatch.setattr(recorder.os, "access", lambda path, mode: False if str(path) in (".", "runs") else writable(path, mode))
    assert recorder.runs_root() == tmp_path / "data" / "vlagent" / "runs"
    assert Agent(ScriptedPolicy([]), FakeEnv()).run("read-only here").run_dir.parent == tmp_path / "data" / "vlagent" / "runs"
    assert not (tmp_path / "runs").exists()


class LeakyEnv(FakeEnv):
    """Its error messages quote what it was asked to type (as xdotool's do)."""

    def execute(self, action: Action) -> None:
        if action.kind == "type":
            raise RuntimeError(f"xdotool could not type {action.text!r}")
        super().execute(action)


def test_secret_values_in_environment_errors_are_scrubbed(tmp_path):
    policy = ScriptedPolicy([Action("type", text="{{password}}"), Action("done")])
    result, env = run(policy, LeakyEnv(), tmp_path=tmp_path, secrets={"password": SECRET})
    error = policy.seen_histories[1][0].error
    assert "xdotool could not type" in error and "{{password}}" in error and SECRET not in error
    for p in result.run_dir.iterdir():
        assert SECRET.encode() not in p.read_bytes()


def test_raw_model_text_through_the_real_parser(tmp_path):
    from vlagent.actions import parse_actions

    text = 'Thought: the button.\nAction: click(start_box="(41,20)")'
    expected = parse_actions(text, image_size=(320, 200))
    policy = ScriptedPolicy(["hello there, no action here", text])
    result, env = run(policy, tmp_path=tmp_path)
    assert result.status == "done" and env.executed == expected
    assert policy.seen_histories[1][0].raw_output == "hello there, no action here"
    assert policy.seen_histories[1][0].error.startswith("your output could not be parsed")


class WrongPolicy:
    name = "wrong"

    def decide(self, task, observation, history):
        return ["click"]


def test_a_bug_in_the_policy_propagates_but_the_run_is_saved(tmp_path):
    with pytest.raises(TypeError, match="expected Decision"):
        Agent(WrongPolicy(), FakeEnv(), run_dir=tmp_path / "run").run("t")
    header, steps, final = load_trajectory(tmp_path / "run")
    assert final["status"] == "error" and "expected Decision" in final["error"]
    assert final["error_kind"] == "internal"
    # The step it broke is kept, with its screenshot.
    assert len(steps) == 1 and "expected Decision" in steps[0]["error"]
    assert (tmp_path / "run" / steps[0]["screenshot"]).is_file()
    assert (tmp_path / "run" / "report.html").is_file()


class ColourPerTaskEnv(BaseEnvironment):
    """Shows each task its own colour: the thread running task "red ..." sees a red screen."""

    name = "colour"

    def __init__(self):
        self.task_of_thread: dict[int, str] = {}

    def observe(self) -> Observation:
        import threading

        colour = self.task_of_thread[threading.get_ident()].split()[0]
        return Observation(image=Image.new("RGB", (64, 48), colour), screen_size=(64, 48))

    def execute(self, action: Action) -> None:
        pass


class InterleavingPolicy:
    """Makes two runs meet inside every step, and notes the screenshots each history carries."""

    name = "interleaving"

    def __init__(self, steps: int):
        import threading

        self.barrier = threading.Barrier(2, timeout=10)
        self.steps = steps
        self.seen: dict[str, list[tuple[int, tuple[int, int, int] | None]]] = {}

    def decide(self, task, observation, history):
        self.barrier.wait()  # both runs have observed their screen before either records its step
        self.seen.setdefault(task, []).extend((h.step, h.image.getpixel((0, 0)) if h.image else None) for h in history)
        action = Action("done") if len(history) + 1 >= self.steps else Action("wait", seconds=0)
        return Decision(raw_output=action.describe(), actions=[action])


def test_one_agent_runs_twice_at_once_without_mixing_its_runs(tmp_path):
    import threading

    env, policy = ColourPerTaskEnv(), InterleavingPolicy(steps=3)
    agent = Agent(policy, env, runs_root=tmp_path, history_images=2)
    results: dict[str, RunResult] = {}

    def run_task(task: str) -> None:
        env.task_of_thread[threading.get_ident()] = task
        results[task] = agent.run(task)

    threads = [threading.Thread(target=run_task, args=(task,)) for task in ("red screen", "blue screen")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert {task: r.status for task, r in results.items()} == {"red screen": "done", "blue screen": "done"}
    assert results["red screen"].run_dir != results["blue screen"].run_dir
    red, blue = (255, 0, 0), (0, 0, 255)
    # every earlier screenshot a run's policy is shown is that run's own, for each of its steps
    assert policy.seen["red screen"] == [(0, red), (0, red), (1, red)]
    assert policy.seen["blue screen"] == [(0, blue), (0, blue), (1, blue)]
    for task, result in results.items():
        assert [r.index for r in result.records] == [0, 1, 2]
        _, steps, final = load_trajectory(result.run_dir)
        assert final["status"] == "done" and len(steps) == 3


def test_one_agent_runs_again_from_a_clean_start(tmp_path):
    agent = Agent(ScriptedPolicy([CLICK, Action("done")]), FakeEnv(), runs_root=tmp_path)
    first = agent.run("first task")
    agent.policy = ScriptedPolicy([Action("done")])
    second = agent.run("second task")
    assert (first.steps, second.steps) == (2, 1)
    assert [r.index for r in second.records] == [0] and len(first.records) == 2
    assert first.run_dir != second.run_dir
