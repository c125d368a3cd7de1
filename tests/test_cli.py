"""The `vlagent` command line, in-process through `vlagent.cli.main` (plus one console-script call)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image, ImageChops

from fake_openai_server import FakeOpenAIServer, tool_call
from vlagent.actions import Action
from vlagent.cli import EXIT_OK, EXIT_POLICY, EXIT_USAGE, main
from vlagent.environments.base import BaseEnvironment, Observation


@pytest.fixture(autouse=True)
def _no_env_defaults(monkeypatch):
    # The CLI reads defaults from these; the user's shell must not leak into the tests.
    for name in ("VLAGENT_API_BASE", "VLAGENT_MODEL", "OPENAI_API_KEY", "VLAGENT_API_KEY"):
        monkeypatch.delenv(name, raising=False)


def run_cli(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_console_script_help():
    exe = shutil.which("vlagent") or pytest.fail("the vlagent console script is not installed (pip install -e .)")
    done = subprocess.run([exe, "--help"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    for word in ("run", "ground", "report", "replay", "doctor", "demo", "exit codes", "130"):
        assert word in done.stdout


def test_python_dash_m_version():
    done = subprocess.run([sys.executable, "-m", "vlagent", "--version"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and done.stdout.startswith("vlagent ")


def test_doctor_json_names_key_packages(capsys):
    code, out, _ = run_cli(capsys, "doctor", "--json")
    summary = json.loads(out)
    names = {c["name"]: c for c in summary["checks"]}
    for package in ("pillow", "numpy", "rich", "openai", "torch", "mss"):
        assert package in names
    assert names["pillow"]["status"] == "ok" and names["pillow"]["detail"][0].isdigit()
    assert names["cpu attention"]["status"] in ("ok", "warn")  # the fused CPU kernel's state, either way
    assert names["cpu kernels"]["status"] in ("ok", "warn") and "C kernels" in names["cpu kernels"]["detail"]
    assert {"python", "packages", "accelerators", "display", "android"} <= {c["group"] for c in summary["checks"]}
    assert code == (EXIT_OK if summary["ok"] else 1)


def test_doctor_probes_an_api_backend(capsys):
    with FakeOpenAIServer(models=["qwen3.5-2b"]) as server:
        code, out, _ = run_cli(capsys, "doctor", "--json", "--api-base", server.base_url, "--model", "other-model")
    api = [c for c in json.loads(out)["checks"] if c["group"] == "api"]
    assert api[0]["status"] == "ok" and "qwen3.5-2b" in api[0]["detail"]
    assert api[1] == {"group": "api", "name": "other-model", "status": "warn", "detail": api[1]["detail"]}


class MemoryEnv(BaseEnvironment):
    name = "memory"

    def __init__(self) -> None:
        self.executed: list[Action] = []

    def observe(self) -> Observation:
        return Observation(image=Image.new("RGB", (320, 200), (200, 220, 240)), screen_size=(320, 200))

    def execute(self, action: Action) -> None:
        self.executed.append(action)


def test_report_rebuilds_the_page_of_a_run(tmp_path, capsys):
    from vlagent.agent import Agent
    from vlagent.policy.scripted import ScriptedPolicy

    policy = ScriptedPolicy([Action("click", point=(0.5, 0.5)), Action("answer", text="all good")])
    result = Agent(policy, MemoryEnv(), run_dir=tmp_path / "run").run("click the middle")
    assert result.status == "answered"
    page = tmp_path / "run" / "report.html"
    page.unlink(missing_ok=True)

    code, out, _ = run_cli(capsys, "report", str(tmp_path / "run"))
    assert code == EXIT_OK
    assert Path(out.strip()) == page and page.is_file()
    html = page.read_text(encoding="utf-8")
    assert "click the middle" in html and "all good" in html


def test_report_exports_the_run_as_a_video(tmp_path, capsys):
    from vlagent.agent import Agent
    from vlagent.policy.scripted import ScriptedPolicy
    from vlagent.video import sample_frames

    policy = ScriptedPolicy([Action("click", point=(0.5, 0.5)), Action("answer", text="ok")])
    Agent(policy, MemoryEnv(), run_dir=tmp_path / "run").run("click the middle")
    video = tmp_path / "run.mp4"
    code, out, err = run_cli(capsys, "report", str(tmp_path / "run"), "--video", str(video), "--seconds-per-step", "2", "--json")
    assert code == EXIT_OK, err
    assert json.loads(out)["video"] == str(video)
    sample = sample_frames(video, fps=1.0, min_frames=2)
    assert sample.duration == pytest.approx(4.0, abs=0.6)  # two steps with screenshots, 2 s each

    code, _, err = run_cli(capsys, "report", str(tmp_path / "run"), "--video", str(tmp_path / "x.mp4"), "--seconds-per-step", "0")
    assert code == 2


def test_ground_draws_the_point_and_prints_json(tmp_path, capsys):
    image_path = tmp_path / "screen.png"
    Image.new("RGB", (400, 300), "white").save(image_path)
    out_path = tmp_path / "grounded.png"
    reply = "The box is left of centre.\n" + tool_call("left_click", coordinate=[250, 500])
    with FakeOpenAIServer([reply]) as server:
        code, out, err = run_cli(
            capsys, "ground", str(image_path), "click the box",
            "--api-base", server.base_url, "--model", "fake-model", "--out", str(out_path), "--json",
        )  # fmt: skip
    assert code == EXIT_OK, err
    record = json.loads(out)
    assert record["actions"] == [{"kind": "click", "point": [0.25, 0.5]}]
    assert record["thought"] == "The box is left of centre." and record["out"] == str(out_path)
    assert "click the box" in "\n".join(server.texts(server.requests[0]))

    drawn = Image.open(out_path).convert("RGB")
    assert drawn.size == (400, 300)
    diff = ImageChops.difference(drawn, Image.new("RGB", (400, 300), "white")).getbbox()
    assert diff is not None, "nothing was drawn"
    x1, y1, x2, y2 = diff
    assert x1 <= 100 <= x2 and y1 <= 150 <= y2  # the marking covers the clicked pixel (0.25·400, 0.5·300)

    # Without --json: just the actions, as JSON.
    with FakeOpenAIServer([reply]) as server:
        code, out, _ = run_cli(capsys, "ground", str(image_path), "click the box", "--api-base", server.base_url, "--model", "fake-model")
    assert code == EXIT_OK and json.loads(out) == [{"kind": "click", "point": [0.25, 0.5]}]
    assert (tmp_path / "screen.ground.png").is_file()


def test_ground_backend_errors_exit_4(tmp_path, capsys):
    image_path = tmp_path / "screen.png"
    Image.new("RGB", (64, 64)).save(image_path)
    with FakeOpenAIServer(models=["served"]) as server:
        code, _, err = run_cli(capsys, "ground", str(image_path), "x", "--api-base", server.base_url, "--model", "missing")
    assert code == EXIT_POLICY and "missing" in err
    with FakeOpenAIServer(["no tool call here"]) as server:
        code, _, err = run_cli(capsys, "ground", str(image_path), "x", "--api-base", server.base_url, "--model", "fake-model")
    assert code == EXIT_POLICY and "parsed" in err


@pytest.mark.parametrize(
    "argv",
    [
        [],
        ["run"],
        ["run", "a task"],  # no model
        ["run", "a task", "--model", "not-a-folder-and-no-api-base"],
        ["run", "a task", "--env", "toaster", "--api-base", "http://127.0.0.1:9/v1", "--model", "m"],
        ["run", "a task", "--max-steps", "0"],
        ["run", "a task", "--confirm", "sometimes"],
        ["run", "a task", "--api-base", "localhost:8000", "--model", "m"],  # no scheme: not retried as a connection error
        ["ground", "/no/such/image.png", "x", "--api-base", "http://127.0.0.1:9/v1", "--model", "m"],
        ["report", "/no/such/run"],
        ["no-such-command"],
    ],
)
def test_usage_errors_exit_2(argv, capsys):
    code, _, err = run_cli(capsys, *argv)
    assert code == EXIT_USAGE
    assert err.strip()  # says what is wrong


def test_local_model_folder_that_does_not_load_exits_4(tmp_path, capsys):
    # A folder given to --model without --api-base means the local engine; an empty folder cannot load.
    code, _, err = run_cli(capsys, "ground", __file__, "x", "--model", str(tmp_path))
    assert code == EXIT_USAGE  # not an image: checked before the model is loaded
    image_path = tmp_path / "screen.png"
    Image.new("RGB", (64, 64)).save(image_path)
    empty = tmp_path / "empty-model"
    empty.mkdir()
    code, _, err = run_cli(capsys, "ground", str(image_path), "x", "--model", str(empty))
    assert code == EXIT_POLICY and ("local" in err)


@pytest.mark.parametrize(
    "status, error_kind, code",
    [
        ("answered", None, EXIT_OK),
        ("max_steps", None, 1),
        ("interrupted", None, 130),
        ("error", "policy", EXIT_POLICY),
        ("error", "environment", 3),
        ("error", "internal", 1),
    ],
)
def test_exit_code_follows_the_structured_error_kind(tmp_path, status, error_kind, code):
    from vlagent.agent import RunResult
    from vlagent.cli import _result_exit_code

    # The message is deliberately misleading: only error_kind decides.
    message = "the policy failed: but this text must not matter" if error_kind == "environment" else "x"
    result = RunResult(status, None, status == "answered", 1, tmp_path, error=message, error_kind=error_kind)
    assert _result_exit_code(result) == code


def test_unknown_secret_is_a_usage_error(capsys, monkeypatch):
    monkeypatch.delenv("VLAGENT_SECRET_PIN", raising=False)
    monkeypatch.delenv("PIN", raising=False)
    code, _, err = run_cli(capsys, "run", "x", "--secret", "PIN", "--api-base", "http://127.0.0.1:9/v1", "--model", "m")
    assert code == EXIT_USAGE and "VLAGENT_SECRET_PIN" in err


# ---------------------------------------------------------------------------- with an X server


try:  # the desktop tests' fresh-Xvfb fixture, when that module is present
    from display_fixtures import x_display  # noqa: F401
except ImportError:

    @pytest.fixture
    def x_display():
        from vlagent.environments.xserver import binaries_available, start_virtual_display

        missing = binaries_available()
        if missing:
            pytest.skip(missing)
        with start_virtual_display(1280, 720) as display:
            yield display


@pytest.fixture
def virtual_display(x_display, monkeypatch):
    """A fresh Xvfb that the CLI finds through $DISPLAY."""
    monkeypatch.setenv("DISPLAY", x_display.name)
    return x_display


@pytest.mark.display
def test_run_dry_run_against_the_fake_server(virtual_display, tmp_path, capsys):
    replies = [
        "Clicking.\n" + tool_call("left_click", coordinate=[500, 500]),
        tool_call("answer", text="looked at it"),
    ]
    run_dir = tmp_path / "run"
    with FakeOpenAIServer(replies) as server:
        code, out, err = run_cli(
            capsys, "run", "look at the screen", "--dry-run", "--json", "--run-dir", str(run_dir),
            "--api-base", server.base_url, "--model", "fake-model", "--max-steps", "5",
        )  # fmt: skip
    assert code == EXIT_OK, err
    result = json.loads(out)
    assert result["status"] == "answered" and result["answer"] == "looked at it" and result["steps"] == 2
    assert server.problems == [] and len(server.requests) == 2
    assert server.image_sizes[0][0][0] % 32 == 0  # a real, resized screenshot of the display
    steps = [json.loads(line) for line in (run_dir / "trajectory.jsonl").read_text().splitlines()]
    outcomes = [o["status"] for s in steps if s["type"] == "step" for o in s["outcomes"]]
    assert outcomes == ["dry_run", "final"]
    assert "dry run" in err
    assert "step 1 " in err and "step 2 " in err and "step 0 " not in err  # counted as the report counts

    # The recorded run replays (dry) on the same display, as a new run next to it.
    code, out, err = run_cli(capsys, "replay", str(run_dir), "--dry-run", "--json")
    assert code == EXIT_OK, err
    replayed = json.loads(out)
    assert replayed["status"] == "answered" and Path(replayed["run_dir"]).parent == tmp_path

    # A backend that refuses the key ends the run with exit code 4, naming the endpoint.
    with FakeOpenAIServer(status=401) as server:
        code, out, err = run_cli(
            capsys, "run", "anything", "--json", "--run-dir", str(tmp_path / "refused"),
            "--api-base", server.base_url, "--model", "fake-model",
        )  # fmt: skip
    assert code == EXIT_POLICY
    refused = json.loads(out)
    assert refused["status"] == "error" and server.base_url in refused["error"] and "401" in refused["error"]

    # doctor sees the display and its monitor.
    code, out, _ = run_cli(capsys, "doctor", "--json")
    monitors = next(c for c in json.loads(out)["checks"] if c["name"] == "monitors")
    width, height = virtual_display.size
    assert monitors["status"] == "ok" and f"{width}x{height}" in monitors["detail"]


def test_video_qa_plugin_is_registered(capsys):
    code, out, _ = run_cli(capsys, "video-qa", "--help")
    assert code == EXIT_OK and "question" in out
    code, out, _ = run_cli(capsys, "--help")
    assert "video-qa" in out


def _recorded_run(tmp_path: Path, env_name: str = "memory") -> Path:
    from vlagent.agent import Agent
    from vlagent.policy.scripted import ScriptedPolicy

    env = MemoryEnv()
    env.name = env_name
    run_dir = tmp_path / "run"
    Agent(ScriptedPolicy([Action("click", point=(0.5, 0.5)), Action("answer", text="ok")]), env,
          run_dir=run_dir).run("click the middle")
    return run_dir


def test_bad_input_is_a_usage_error_named_before_any_work(tmp_path, capsys):
    """Each of these once ended in a traceback (exit 1), some after a display had started."""
    run_dir = _recorded_run(tmp_path)
    image = tmp_path / "screen.png"
    Image.new("RGB", (64, 64), "white").save(image)
    api = ["--api-base", "http://127.0.0.1:9/v1", "--model", "m"]
    cases = [
        (["run", "  ", *api], "task is empty"),
        (["run", "do it", "--run-dir", str(run_dir), *api], "already holds a run"),
        (["demo", "--out", str(run_dir)], "already holds a run"),
        (["ground", str(image), "", "--grounder", "ocr"], "instruction is empty"),
        (["ground", str(image), "x", "--grounder", "ocr", *api], "not both"),
        (["ground", str(image), "x", "--grounder", "ocr", "--out", str(tmp_path / "no" / "x.png")], "does not exist"),
        (["ground", str(image), "x", "--grounder", "ocr", "--out", str(tmp_path / "x.txt")], "not an image format"),
        (["ground", str(image), "x", "--grounder", "ocr", "--out", str(tmp_path)], "is a folder"),
        (["report", str(run_dir), "--video", str(tmp_path / "no" / "run.mp4")], "does not exist"),
        (["report", str(run_dir), "--video", str(tmp_path / "run.gif")], "name it .mp4"),
    ]
    for argv, message in cases:
        code, out, err = run_cli(capsys, *argv)
        assert code == EXIT_USAGE and message in " ".join(err.split()), (argv, code, err)
    assert not (tmp_path / "x.txt").exists() and not (tmp_path / "run.gif").exists()
    assert len((run_dir / "trajectory.jsonl").read_text().splitlines()) == 4  # the run is untouched


def test_mcp_video_model_without_a_server_or_key_is_a_usage_error(capsys):
    pytest.importorskip("mcp")
    code, _, err = run_cli(capsys, "mcp", "--video-model", "some-model", "--grounder", "none")
    assert code == EXIT_USAGE and "--video-model some-model" in " ".join(err.split())


def test_replay_acts_where_the_run_was_recorded(tmp_path, capsys, monkeypatch):
    import vlagent.cli as cli

    asked = []

    def make_env(spec, monitor=1):
        asked.append(spec)
        raise cli.CliError(f"no {spec} here", cli.EXIT_ENV)

    monkeypatch.setattr(cli, "make_env", make_env)
    android = _recorded_run(tmp_path / "a", env_name="android")
    desktop = _recorded_run(tmp_path / "d", env_name="desktop")
    other = _recorded_run(tmp_path / "o", env_name="memory")
    for run_dir in (android, desktop, other):
        run_cli(capsys, "replay", str(run_dir), "--dry-run")
    run_cli(capsys, "replay", str(android), "--dry-run", "--env", "desktop")
    assert asked == ["android", "desktop", "desktop", "desktop"]


def test_replay_records_where_out_says(tmp_path, capsys, monkeypatch):
    import vlagent.cli as cli

    monkeypatch.setattr(cli, "make_env", lambda spec, monitor=1: MemoryEnv())
    recorded = _recorded_run(tmp_path)
    out = tmp_path / "elsewhere" / "replayed"
    code, stdout, err = run_cli(capsys, "replay", str(recorded), "--out", str(out), "--max-screen-diff", "off", "--json")
    assert code == EXIT_OK, err
    assert json.loads(stdout)["run_dir"] == str(out) and (out / "trajectory.jsonl").is_file()
    code, _, err = run_cli(capsys, "replay", str(recorded), "--out", str(out))  # that folder holds a run now
    assert code == EXIT_USAGE and "already holds a run" in " ".join(err.split())
