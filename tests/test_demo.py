"""`vlagent demo` (desktop and --android): the README's main job, headless, through the CLI.

Each demo runs a script from demos/ whose steps are descriptions; the tests check the exit code, the
environment's own final state, and that every call of the script's run() is in trajectory.jsonl and
report.html, in order.
"""
from __future__ import annotations

import ast
import html
import json
import shutil
from pathlib import Path

import pytest

from display_fixtures import _skip_without_binaries
from vlagent.cli import EXIT_OK, EXIT_USAGE, main
from vlagent.demo import APP_GEOMETRY, APP_LOOK, DEMO_TEXT, DEMOS_DIR
from vlagent.recorder import load_trajectory

# How each scripting call is written into the trajectory (Bot's notes), from the call's positional arguments.
MARKERS = {
    "wait_for": "wait_for({0!r})", "locate": "locate({0!r})", "exists": "exists({0!r})",
    "click": "click({0!r})", "type_into": "type_into({0!r})", "scroll": "scroll({0})",
    "drag": "drag({0!r} -> ", "swipe": "swipe({0!r} -> ", "long_press": "long_press({0!r})",
    "home": "home()", "back": "back()", "open_app": "open_app({0})", "press": "press(",
}  # fmt: skip


def script_calls(name: str) -> list[tuple[str, list[str]]]:
    """(method, positional string arguments) of each `bot.METHOD(...)` in demos/NAME.py's run()."""
    tree = ast.parse((DEMOS_DIR / f"{name}.py").read_text(encoding="utf-8"))
    run = next(n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "run")
    calls = [n for n in ast.walk(run) if isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute)
             and isinstance(n.func.value, ast.Name) and n.func.value.id == "bot"]  # fmt: skip
    calls.sort(key=lambda n: (n.lineno, n.col_offset))
    return [(c.func.attr, [a.value for a in c.args if isinstance(a, ast.Constant)]) for c in calls]


def assert_every_call_recorded(run_dir: Path, script: str) -> None:
    _, steps, result = load_trajectory(run_dir)
    notes = [s["raw_output"] for s in steps]
    report = (run_dir / "report.html").read_text(encoding="utf-8")
    at = 0
    for method, args in script_calls(script):
        marker = MARKERS[method].format(*args)
        hit = next((i for i in range(at, len(notes)) if notes[i].startswith(marker)), None)
        assert hit is not None, f"{marker!r} is not in the trajectory after step {at}: {notes[at:]}"
        at = hit + 1
        assert html.escape(marker) in report, f"{marker!r} is not in report.html"
    assert result["status"] == "done"


def run_demo_cli(capsys, *argv: str) -> tuple[int, dict, str]:
    code = main(["demo", *argv, "--json"])
    out, err = capsys.readouterr()
    return code, json.loads(out) if out.strip() else {}, err


def test_the_demo_look_is_held_out_of_the_grounding_harvest():
    from vlagent.demo_android import PHONE
    from vlagent.environments.practice import desktop_app
    from vlagent.grounding.harvest_practice import DESKTOP_GEOMETRIES

    theme, layout = APP_LOOK[1], APP_LOOK[3]
    assert theme in desktop_app.HELD_OUT_THEMES and theme not in desktop_app.THEMES
    assert layout in desktop_app.HELD_OUT_LAYOUTS and layout not in desktop_app.LAYOUTS
    assert APP_GEOMETRY not in DESKTOP_GEOMETRIES
    assert (PHONE["width"], PHONE["height"]) != (1080, 2400)  # the harvest's phone (PhoneUI's default)


def test_a_bad_grounder_spec_is_a_usage_error_before_anything_starts(capsys, tmp_path):
    code, _, err = run_demo_cli(capsys, "--grounder", "telepathy", "--out", str(tmp_path / "run"))
    assert code == EXIT_USAGE and "telepathy" in err and not (tmp_path / "run").exists()


@pytest.mark.display
def test_desktop_demo_end_to_end(tmp_path, capsys, monkeypatch):
    _skip_without_binaries()
    monkeypatch.delenv("DISPLAY", raising=False)  # the demo starts its own Xvfb
    out_dir = tmp_path / "demo"
    code, result, err = run_demo_cli(capsys, "--out", str(out_dir))
    assert code == EXIT_OK, (result, err[-3000:])
    assert result["ok"] is True and result["status"] == "done" and all(result["checks"].values()), result
    state = json.loads((out_dir / "final_state.json").read_text(encoding="utf-8"))
    assert state["text"] == DEMO_TEXT and state["checkbox"] is True and state["drag"]["result"] == "target"
    assert "save" in state["clicks"] and state["list_first_visible"] > 0
    assert Path(result["report"]) == out_dir / "report.html" and "virtual display" in err
    assert_every_call_recorded(out_dir, "desktop_form")


def test_android_demo_end_to_end(tmp_path, capsys):
    if shutil.which("adb") is None:
        pytest.skip("the `adb` binary is not installed (Debian/Ubuntu: apt install adb)")
    out_dir = tmp_path / "demo-android"
    code, result, err = run_demo_cli(capsys, "--android", "--out", str(out_dir))
    assert code == EXIT_OK, (result, err[-3000:])
    assert result["ok"] is True and all(result["checks"].values()), result
    state = json.loads((out_dir / "final_state.json").read_text(encoding="utf-8"))
    assert state["dark_mode"] is True and state["notes"] == [DEMO_TEXT] and state["app"] == "notes"
    assert_every_call_recorded(out_dir, "android_settings")
