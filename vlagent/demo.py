"""`vlagent demo`: the whole loop, offline, on the Tk practice app.

A virtual display (Xvfb) is started when there is none (or when asked), the
practice app opens on it, and a `ScriptedPolicy` works the app through the
real `Agent` and `DesktopEnv`: click a button, type non-ASCII text into the
field, tick the checkbox, scroll the list, drag the token onto the target,
answer. The practice app reports where its widgets are, so the script knows
where to point; what the app reports afterwards is checked, and the run's
report is written like any other run's.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

DEMO_TASK = "Exercise the practice app: press Save, fill in the name, tick the box, scroll the list, drop the token."
DEMO_TEXT = "Grüße, 你好"
SCREEN_SIZE = (1280, 720)
APP_GEOMETRY = "900x600+40+40"


class DemoUnavailable(RuntimeError):
    """The demo cannot start: no X server binaries, no Tk, desktop packages missing."""


@dataclass
class DemoOutcome:
    result: Any  # vlagent.agent.RunResult
    checks: dict[str, bool] = field(default_factory=dict)
    final_state: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return bool(self.checks) and all(self.checks.values())


def box_center(box: list[int], monitor: dict[str, int]) -> tuple[float, float]:
    """Centre of a widget box (root-window pixels) as a normalized point of the
    monitor's screenshot (the virtual display has no HiDPI scaling)."""
    x1, y1, x2, y2 = box
    return (
        ((x1 + x2) / 2 - monitor["left"]) / monitor["width"],
        ((y1 + y2) / 2 - monitor["top"]) / monitor["height"],
    )


def demo_script(boxes: dict[str, list[int]], monitor: dict[str, int]) -> list[Any]:
    """The steps of the demo, from the practice app's widget boxes."""
    from vlagent.actions import Action

    missing = [n for n in ("button_save", "entry", "checkbox", "list", "drag_token", "drop_target") if n not in boxes]
    if missing:
        raise DemoUnavailable(f"the practice app did not report where these widgets are: {missing}")

    def at(name: str) -> tuple[float, float]:
        return box_center(boxes[name], monitor)

    return [
        Action("click", point=at("button_save")),
        [Action("click", point=at("entry")), Action("type", text=DEMO_TEXT)],
        Action("click", point=at("checkbox")),
        Action("scroll", point=at("list"), direction="down", amount=5),
        Action("drag", point=at("drag_token"), end=at("drop_target")),
        Action(
            "answer",
            text=f"Pressed Save, typed {DEMO_TEXT!r}, ticked 'Remember me', scrolled the list "
            "and dropped the token on the target.",
        ),
    ]


def demo_checks(state: dict[str, Any]) -> dict[str, bool]:
    return {
        "Save was clicked": state.get("last_clicked") == "save" or "save" in state.get("clicks", []),
        f"the field holds {DEMO_TEXT!r}": state.get("text") == DEMO_TEXT,
        "the checkbox is ticked": state.get("checkbox") is True,
        "the list scrolled": (state.get("list_first_visible") or 0) > 0,
        "the token is on the target": (state.get("drag") or {}).get("result") == "target",
    }


@contextlib.contextmanager
def _display(force_virtual: bool, log: Callable[[str], None]) -> Iterator[str]:
    current = os.environ.get("DISPLAY")
    if current and not force_virtual:
        log(f"using the display {current}")
        yield current
        return
    from vlagent.environments.xserver import DisplayStartError, binaries_available, start_virtual_display

    missing = binaries_available()
    if missing:
        raise DemoUnavailable(f"no DISPLAY and cannot start a virtual one: {missing} (apt-get install xvfb)")
    try:
        with start_virtual_display(*SCREEN_SIZE) as display:
            log(f"started a virtual display {display.name} ({SCREEN_SIZE[0]}x{SCREEN_SIZE[1]})")
            yield display.name
    except DisplayStartError as exc:
        raise DemoUnavailable(f"could not start a virtual display: {exc}") from None


def run_demo(
    run_dir: str | os.PathLike | None = None,
    *,
    force_virtual_display: bool = False,
    on_step: Callable[[Any], None] | None = None,
    log: Callable[[str], None] = lambda text: None,
) -> DemoOutcome:
    """Run the scripted demo; returns the run result and the checks of the app's final state."""
    from vlagent.agent import Agent
    from vlagent.environments.practice import desktop_app
    from vlagent.environments.base import EnvironmentUnavailable
    from vlagent.policy.scripted import ScriptedPolicy
    from vlagent.recorder import default_run_dir

    run_dir = Path(run_dir) if run_dir is not None else default_run_dir("demo")
    workdir = Path(tempfile.mkdtemp(prefix="vlagent-demo-"))
    state_file = workdir / "practice_app_state.json"
    try:
        with _display(force_virtual_display, log) as display:
            try:
                from vlagent.environments.desktop import DesktopEnv
            except ImportError as exc:
                raise DemoUnavailable(f"the desktop environment is not installed ({exc}): pip install 'vlagent[desktop]'")
            try:
                app = desktop_app.launch(state_file, display, geometry=APP_GEOMETRY)
            except (RuntimeError, OSError) as exc:
                raise DemoUnavailable(f"the practice app did not start on {display}: {exc}") from None
            log("practice app is up")
            try:
                try:
                    # All monitors as one image: the app window is wherever the window manager put it.
                    env = DesktopEnv(monitor=0, display=display)
                except EnvironmentUnavailable as exc:
                    raise DemoUnavailable(str(exc)) from None
                with env:
                    state = desktop_app.read_state(state_file)
                    script = demo_script(state["boxes"], env.monitor.as_dict())
                    agent = Agent(ScriptedPolicy(script), env, max_steps=len(script) + 1, run_dir=run_dir, on_step=on_step)
                    result = agent.run(DEMO_TASK)
                # Events reach the app asynchronously: give it a moment to report the last ones.
                checks_of = demo_checks
                try:
                    final = desktop_app.wait_for_state(state_file, lambda s: all(checks_of(s).values()), timeout=3.0)
                except TimeoutError:
                    final = desktop_app.read_state(state_file)
            finally:
                app.terminate()
                with contextlib.suppress(Exception):
                    app.wait(timeout=5)
        result.run_dir.mkdir(parents=True, exist_ok=True)
        shown = {k: v for k, v in final.items() if k not in ("boxes", "menu_boxes")}
        (Path(result.run_dir) / "practice_app_state.json").write_text(
            json.dumps(shown, ensure_ascii=False, indent=2), encoding="utf-8"
        )
        return DemoOutcome(result=result, checks=demo_checks(final), final_state=final)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


__all__ = ["run_demo", "demo_script", "demo_checks", "DemoOutcome", "DemoUnavailable", "DEMO_TEXT", "DEMO_TASK"]
