"""`vlagent demo`: the offline main job — a script that names what it acts on, never where.

desktop (default): a virtual display is started when there is none (or when asked), the Tk practice
app opens on it in a look the grounding harvest never saw (the held-out "sand" theme, the "flipped"
layout, a window size the harvester does not use), and the steps of demos/desktop_form.py run through
`vlagent.connect("desktop", grounder=...)`: every step a description, grounded on a fresh screenshot.
`--android`: the same with demos/android_settings.py on the virtual phone (at a screen size the
harvest does not use) behind a private, real adb server.

Afterwards the environment's own report of its state is checked (the practice app's state file, the
phone's `adb shell state`), and the run folder holds trajectory.jsonl and report.html like any run.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any, Callable, Iterator

DEMO_TEXT = "Grüße, 你好"
SCREEN_SIZE = (1280, 720)
# Not one of the harvester's DESKTOP_GEOMETRIES, nor its themes/layouts: the grounder meets this look here first.
APP_GEOMETRY = "1080x600+100+40"
APP_LOOK = ("--theme", "sand", "--layout", "flipped")
DEMOS_DIR = Path(__file__).resolve().parents[1] / "demos"

Log = Callable[[str], None]


class DemoUnavailable(RuntimeError):
    """The demo cannot start: no X server binaries, no Tk, no adb, desktop packages missing."""


@dataclass
class DemoOutcome:
    status: str  # "done" (every step of the script ran) or "failed"
    run_dir: Path
    report: Path | None
    grounder: str
    steps: int = 0  # recorded steps (lookups and actions)
    seconds: float = 0.0
    error: str | None = None
    checks: dict[str, bool] = field(default_factory=dict)
    final_state: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.status == "done" and bool(self.checks) and all(self.checks.values())

    def to_dict(self) -> dict[str, Any]:
        return {"status": self.status, "ok": self.ok, "checks": self.checks, "grounder": self.grounder,
                "steps": self.steps, "seconds": round(self.seconds, 2), "error": self.error,
                "run_dir": str(self.run_dir), "report": str(self.report) if self.report else None}


def load_script(name: str) -> ModuleType:
    """demos/<name>.py as a module; its run(bot) holds the steps. The demos live in the source
    checkout (setup.sh installs it editable), not in a wheel."""
    path = DEMOS_DIR / f"{name}.py"
    if not path.is_file():
        raise DemoUnavailable(f"the demo script {path} is missing: run `vlagent demo` from a source checkout")
    spec = importlib.util.spec_from_file_location(f"vlagent_demo_{name}", path)
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


class _Narrated:
    """The Bot as the script sees it, telling the log each call and how long it took."""

    def __init__(self, bot: Any, log: Log) -> None:
        self._bot, self._log = bot, log

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._bot, name)
        if name.startswith("_") or not callable(attr):
            return attr

        def call(*args: Any, **kw: Any) -> Any:
            shown = ", ".join([repr(a) for a in args] + [f"{k}={v!r}" for k, v in kw.items()])
            t0 = time.monotonic()
            try:
                return attr(*args, **kw)
            finally:
                self._log(f"{name}({shown})  {time.monotonic() - t0:.1f} s")

        return call


def run_script(bot: Any, script: ModuleType, log: Log) -> tuple[str, str | None]:
    """Run script.run(bot) inside the bot's session; ("done", None) or ("failed", why).
    Any error ends the demo with its message, not a traceback: the run folder says the rest."""
    try:
        with bot:
            script.run(_Narrated(bot, log))
    except Exception as exc:  # TargetNotFound, ActionFailed, EnvironmentLost, a bug in the script
        return "failed", f"{type(exc).__name__}: {exc}"
    return "done", None


def save_state(run_dir: Path, state: dict[str, Any], drop: tuple[str, ...]) -> None:
    """The environment's final report, kept beside the trajectory."""
    shown = {k: v for k, v in state.items() if k not in drop}
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "final_state.json").write_text(json.dumps(shown, ensure_ascii=False, indent=2), encoding="utf-8")


# --------------------------------------------------------------------------- desktop


def demo_checks(state: dict[str, Any]) -> dict[str, bool]:
    return {
        "Save was clicked": "save" in state.get("clicks", []),
        f"the field holds {DEMO_TEXT!r}": state.get("text") == DEMO_TEXT,
        "the checkbox is ticked": state.get("checkbox") is True,
        "the list scrolled": (state.get("list_first_visible") or 0) > 0,
        "the token is on the target": (state.get("drag") or {}).get("result") == "target",
    }


@contextlib.contextmanager
def _display(force_virtual: bool, log: Log) -> Iterator[tuple[str, dict[str, str]]]:
    """(DISPLAY name, environment for child processes): the current display, or a new Xvfb."""
    current = os.environ.get("DISPLAY")
    if current and not force_virtual:
        log(f"using the display {current}")
        yield current, dict(os.environ)
        return
    from vlagent.environments.xserver import DisplayStartError, binaries_available, start_virtual_display

    missing = binaries_available()
    if missing:
        raise DemoUnavailable(f"no DISPLAY and cannot start a virtual one: {missing} (apt-get install xvfb)")
    try:
        with start_virtual_display(*SCREEN_SIZE) as display:
            log(f"started a virtual display {display.name} ({SCREEN_SIZE[0]}x{SCREEN_SIZE[1]})")
            yield display.name, display.env
    except DisplayStartError as exc:
        raise DemoUnavailable(f"could not start a virtual display: {exc}") from None


def run_desktop_demo(run_dir: Path, *, grounder: Any = "default", force_virtual_display: bool = False,
                     log: Log = lambda text: None) -> DemoOutcome:
    import vlagent
    from vlagent.environments.base import EnvironmentUnavailable
    from vlagent.environments.practice import desktop_app

    script = load_script("desktop_form")
    workdir = Path(tempfile.mkdtemp(prefix="vlagent-demo-"))
    state_file = workdir / "practice_app_state.json"
    t0 = time.monotonic()
    try:
        with _display(force_virtual_display, log) as (display, env):
            try:
                from vlagent.environments.desktop import DesktopEnv
            except ImportError as exc:
                raise DemoUnavailable(f"the desktop environment is not installed ({exc}): "
                                      "pip install 'vlagent[desktop]'") from None
            try:
                app = desktop_app.launch(state_file, display, geometry=APP_GEOMETRY, env=env, extra_args=APP_LOOK)
            except (RuntimeError, OSError) as exc:
                raise DemoUnavailable(f"the practice app did not start on {display}: {exc}") from None
            log(f"practice app is up ({' '.join(APP_LOOK)}, {APP_GEOMETRY})")
            try:
                try:
                    # All monitors as one image: the app window is wherever the window manager put it.
                    desktop = DesktopEnv(monitor=0, display=display)
                except EnvironmentUnavailable as exc:
                    raise DemoUnavailable(str(exc)) from None
                bot = vlagent.connect("desktop", grounder=grounder, env=desktop, run_dir=run_dir,
                                      task="vlagent demo: the practice form (demos/desktop_form.py)")
                log(f"grounder: {bot.grounder.name}; running {DEMOS_DIR / 'desktop_form.py'}")
                status, error = run_script(bot, script, log)
                # Events reach the app asynchronously: give it a moment to report the last ones.
                try:
                    final = desktop_app.wait_for_state(state_file, lambda s: all(demo_checks(s).values()), timeout=3.0)
                except TimeoutError:
                    final = desktop_app.read_state(state_file)
            finally:
                app.terminate()
                with contextlib.suppress(Exception):
                    app.wait(timeout=5)
        save_state(bot.run_dir, final, drop=("boxes", "menu_boxes"))
        return DemoOutcome(status, bot.run_dir, bot.session.report, bot.grounder.name, bot.session.steps,
                           time.monotonic() - t0, error, demo_checks(final), final)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def run_demo(run_dir: str | os.PathLike | None = None, *, android: bool = False, grounder: Any = "default",
             force_virtual_display: bool = False, log: Log = lambda text: None) -> DemoOutcome:
    """Run the desktop demo (or, with android=True, the phone demo); returns what happened and the checks.
    grounder: a --grounder SPEC or a grounder object (the CLI makes it first, so a bad SPEC fails fast)."""
    from vlagent.recorder import default_run_dir

    run_dir = Path(run_dir) if run_dir is not None else default_run_dir("demo-android" if android else "demo")
    if android:
        from vlagent.demo_android import run_android_demo

        return run_android_demo(run_dir, grounder=grounder, log=log)
    return run_desktop_demo(run_dir, grounder=grounder, force_virtual_display=force_virtual_display, log=log)


__all__ = ["run_demo", "run_desktop_demo", "demo_checks", "load_script", "DemoOutcome",
           "DemoUnavailable", "DEMO_TEXT"]
