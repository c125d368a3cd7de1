"""Planner + grounder runs: a served model names its targets in words, our grounder points.

The served model is the fake OpenAI server (real HTTP on 127.0.0.1); the grounder is a real one (the
centre of the screen without a display, the OCR-match baseline on the practice app under Xvfb), so the
tests do not depend on which trained grounder `default` is.
"""

from __future__ import annotations

import json

import pytest
from PIL import Image

from fake_openai_server import FakeOpenAIServer, tool_call, tool_call_xml
from vlagent.actions import Action, ActionParseError
from vlagent.actions.targets import read_targeted_calls, to_actions
from vlagent.agent import Agent
from vlagent.cli import EXIT_OK, EXIT_USAGE, build_parser, main
from vlagent.environments.base import BaseEnvironment, Observation
from vlagent.grounding.grounders import make_grounder
from vlagent.policy.openai_policy import OpenAIPolicy
from vlagent.policy.prompts import tool_for
from vlagent.recorder import load_trajectory


def tool_schema(request: dict) -> dict:
    """The tool the system prompt of a chat request declares (the JSON line inside <tools>)."""
    system = request["messages"][0]["content"]
    line = system.split("<tools>\n", 1)[1].split("\n</tools>", 1)[0]
    return json.loads(line)["function"]


def request_text(server: FakeOpenAIServer, index: int) -> str:
    return "\n".join(server.texts(server.requests[index]))


class MemoryEnv(BaseEnvironment):
    """A blank screen that keeps what it was asked to execute."""

    name = "memory"

    def __init__(self) -> None:
        self.executed: list[Action] = []

    def observe(self) -> Observation:
        shade = 250 - 10 * len(self.executed)
        return Observation(image=Image.new("RGB", (800, 600), (shade, shade, shade)), screen_size=(800, 600))

    def execute(self, action: Action) -> None:
        self.executed.append(action)


# ---------------------------------------------------------------------------- the planner's tool and replies


@pytest.mark.parametrize("platform", ["desktop", "mobile"])
def test_the_planner_tool_points_by_description(platform):
    tool = tool_for(platform, coordinates="target")["function"]
    properties = tool["parameters"]["properties"]
    assert {"target", "target2"} <= set(properties) and not {"coordinate", "coordinate2"} & set(properties)
    assert properties["target"]["type"] == "string" and "`target`" in properties["action"]["description"]
    assert "`coordinate" not in json.dumps(tool)  # no action description names a coordinate argument


def test_planner_replies_are_checked_then_resolved_with_the_grounded_points():
    reply = (
        tool_call("left_click_drag", target="the Drag me token", target2="the Drop here area")
        + tool_call_xml("type", target=" the Name field ", text="Grüße")
        + tool_call("scroll", pixels=-3)
    )
    calls = read_targeted_calls(reply)
    assert [c.targets for c in calls] == [
        {"target": "the Drag me token", "target2": "the Drop here area"}, {"target": "the Name field"}, {},
    ]  # fmt: skip
    points = {"the Drag me token": (0.1, 0.2), "the Drop here area": (0.7, 0.8), "the Name field": (0.3, 0.4)}
    assert to_actions(calls, points) == [
        Action("drag", point=(0.1, 0.2), end=(0.7, 0.8)),
        Action("click", point=(0.3, 0.4)),  # typing into a field clicks it first
        Action("type", text="Grüße"),
        Action("scroll", direction="down", amount=3),
    ]
    tap = read_targeted_calls(tool_call("type", tool="mobile_use", target="the search box", text="cats"))
    assert to_actions(tap, {"the search box": (0.5, 0.1)})[0] == Action("click", point=(0.5, 0.1))


@pytest.mark.parametrize(
    "reply, reason",
    [
        (tool_call("left_click", coordinate=[500, 500]), "not with coordinates"),
        (tool_call("left_click"), "'target' must describe an element"),
        (tool_call("left_click", target="  "), "'target' must describe an element"),
        (tool_call("left_click", target=[1, 2]), "'target' must describe an element"),
        (tool_call("left_click_drag", target="the token"), "'target2' must describe an element"),
        (tool_call("key", keys=["enter"], target="the field"), "does not take 'target'"),
        (tool_call("fly", target="the moon"), "unknown computer_use action"),
    ],
)
def test_malformed_planner_calls_are_parse_errors(reply, reason):
    with pytest.raises(ActionParseError, match=reason):
        read_targeted_calls(reply)


def test_the_request_declares_targets_and_typing_into_a_field_clicks_it_first(tmp_path):
    replies = [
        "The form is empty. Typing the name.\n" + tool_call_xml("type", target="the Name field", text="Grüße"),
        tool_call("left_click", coordinate=[100, 100]),  # a planner that points anyway: refused, shown to it
        tool_call("terminate", status="success"),
    ]
    env = MemoryEnv()
    with FakeOpenAIServer(replies) as server:
        policy = OpenAIPolicy("fake-model", base_url=server.base_url, grounder=make_grounder("center"), max_retries=0)
        result = Agent(policy, env, max_steps=5, run_dir=tmp_path / "run").run("type Grüße into the Name field")
    assert server.problems == [] and result.status == "done", result.error
    assert env.executed == [Action("click", point=(0.5, 0.5)), Action("type", text="Grüße")]
    for request in server.requests:
        properties = tool_schema(request)["parameters"]["properties"]
        assert "target" in properties and "coordinate" not in properties
    assert "not with coordinates" in request_text(server, 2)
    _, steps, _ = load_trajectory(tmp_path / "run")
    assert steps[0]["grounding"] == [
        {"action": "type", "argument": "target", "target": "the Name field", "grounder": "center",
         "found": True, "point": [0.5, 0.5], "confidence": 0.0},
    ]  # fmt: skip
    assert "ground_s" in steps[0]["policy_timings"] and "parse_s" not in steps[0]["policy_timings"]


# ---------------------------------------------------------------------------- the command line


@pytest.fixture
def no_env_defaults(monkeypatch):
    for name in ("VLAGENT_API_BASE", "VLAGENT_MODEL"):
        monkeypatch.delenv(name, raising=False)


def test_the_run_flags_are_parsed(no_env_defaults):
    args = build_parser().parse_args(
        ["run", "tick the box", "--api-base", "http://h/v1", "--model", "m", "--grounder", "ocr", "--text-only"]
    )
    assert (args.grounder, args.screen_text, args.task) == ("ocr", "only", "tick the box")
    args = build_parser().parse_args(["run", "--screen-text", "tick the box"])
    assert (args.grounder, args.screen_text, args.task) == (None, "also", "tick the box")


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--grounder", "ocr"], "give --api-base URL and --model NAME"),
        (["--grounder", "ocr", "--model", "/models/none"], "give --api-base URL and --model NAME"),
        (["--grounder", "ocr", "--api-base", "http://127.0.0.1:9/v1"], "give --api-base URL and --model NAME"),
        (["--grounder", "ocr", "--api-base", "http://127.0.0.1:9/v1", "--model", "m", "--format", "uitars"],
         "--format qwen"),
        (["--grounder", "telepathy", "--api-base", "http://127.0.0.1:9/v1", "--model", "m"], "unknown grounder"),
        (["--text-only", "--api-base", "http://127.0.0.1:9/v1", "--model", "m"], "add --grounder"),
        (["--screen-text", "--model", "/models/none"], "give --api-base"),
    ],
)
def test_bad_flag_combinations_are_usage_errors(flags, message, no_env_defaults, capsys):
    code = main(["run", "do something", *flags])
    err = " ".join(capsys.readouterr().err.split())  # rich wraps long lines
    assert code == EXIT_USAGE and message in err, err


# ---------------------------------------------------------------------------- on the practice app (Xvfb)


@pytest.fixture(scope="module")
def practice(tmp_path_factory):
    from display_fixtures import _skip_without_binaries, practice_session
    from vlagent.environments.xserver import start_virtual_display

    _skip_without_binaries()
    with start_virtual_display(1280, 720) as display:
        with practice_session(display, tmp_path_factory.mktemp("practice"), "800x560+160+60") as session:
            yield session


def run_cli(practice, monkeypatch, capsys, server, run_dir, *flags: str) -> tuple[int, dict]:
    monkeypatch.setenv("DISPLAY", practice.display.name)
    for name in ("VLAGENT_API_BASE", "VLAGENT_MODEL"):
        monkeypatch.delenv(name, raising=False)
    code = main(["run", "fill in the practice form", "--json", "--run-dir", str(run_dir), "--max-steps", "6",
                 "--api-base", server.base_url, "--model", "fake-model", "--grounder", "ocr", *flags])
    out, err = capsys.readouterr()
    return code, (json.loads(out) if out.strip() else {"stderr": err})


@pytest.mark.display
def test_a_planner_and_the_ocr_grounder_fill_in_the_practice_form(practice, monkeypatch, capsys, tmp_path):
    replies = [
        "The form is open. Pressing Open first.\n" + tool_call("left_click", target="the Open button"),
        "Now the name.\n" + tool_call("type", target="the Name field", text="Grüße"),
        "Last, the checkbox.\n" + tool_call_xml("left_click", target="the Remember me checkbox"),
        tool_call("terminate", status="success"),
    ]
    with FakeOpenAIServer(replies) as server:
        code, result = run_cli(practice, monkeypatch, capsys, server, tmp_path / "run", "--screen-text")
    assert code == EXIT_OK and result["status"] == "done" and result["steps"] == 4, result
    state = practice.wait(lambda s: s["checkbox"] is True, "the box ticked")
    assert state["last_clicked"] == "open" and state["text"] == "Grüße"
    assert server.problems == [] and len(server.requests) == 4
    assert all(sizes for sizes in server.image_sizes) and "Remember me" in request_text(server, 0)  # image and text
    for request in server.requests:
        properties = tool_schema(request)["parameters"]["properties"]
        assert "target" in properties and "coordinate" not in properties
    _, steps, _ = load_trajectory(tmp_path / "run")
    grounded = [(g["target"], g["found"], g["grounder"]) for s in steps for g in s.get("grounding", [])]
    assert grounded == [("the Open button", True, "ocr-match"), ("the Name field", True, "ocr-match"),
                        ("the Remember me checkbox", True, "ocr-match")]
    assert [a["kind"] for s in steps for a in s["actions"]] == ["click", "click", "type", "click", "done"]


@pytest.mark.display
def test_a_target_that_matches_nothing_clicks_nothing_and_the_model_is_told(practice, monkeypatch, capsys, tmp_path):
    before = practice.settle()
    replies = [
        "I will press it.\n" + tool_call("left_click", target="the purple elephant button"),
        tool_call("answer", text="there is no purple elephant button"),
    ]
    with FakeOpenAIServer(replies, require_image=False) as server:  # --text-only: a text-only model
        code, result = run_cli(practice, monkeypatch, capsys, server, tmp_path / "run", "--text-only")
    assert code == EXIT_OK and result["status"] == "answered", result
    after = practice.settle()
    assert after["clicks"] == before["clicks"] and after["pad"] == before["pad"]  # nothing was clicked
    assert server.problems == [] and server.image_sizes == [[], []]  # no screenshot was sent
    first, second = request_text(server, 0), request_text(server, 1)
    assert "Current screen as text" in first and "Remember me" in first
    assert any("Open" in row and "Delete" in row for row in first.splitlines())  # a row of the screen, in order
    told = second.split("Error: ", 1)[1]  # text-only: the earlier step is told as text, with its error
    assert told.startswith("target 'the purple elephant button' is not on the screen") and "nearest: '" in told
    _, steps, _ = load_trajectory(tmp_path / "run")
    assert steps[0]["actions"] == [] and "purple elephant" in steps[0]["error"]
    (record,) = steps[0]["grounding"]
    assert record["found"] is False and record["candidates"] and "point" not in record
    report = (tmp_path / "run" / "report.html").read_text(encoding="utf-8")
    assert "the purple elephant button" in report and "not found" in report
