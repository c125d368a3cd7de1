"""The `vlagent` command line.

Every optional part (desktop, Android, local engine, report, video) is
imported inside the command that needs it, so a missing optional dependency
gives a clear message instead of an ImportError at startup.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
from pathlib import Path
from typing import Any, Callable, Sequence

from rich.console import Console
from rich.markup import escape

from vlagent import __version__

EXIT_OK = 0
EXIT_NOT_SUCCESS = 1
EXIT_USAGE = 2
EXIT_ENV = 3
EXIT_POLICY = 4
EXIT_STUCK = 5
EXIT_SCREEN_CHANGED = 6
EXIT_INTERRUPTED = 130

EXIT_CODES_HELP = """\
exit codes:
  0    done: the task was completed or answered (doctor: no check failed)
  1    the run ended without success (failure reported, step or time limit, repeated errors,
       the run folder could not be written (full disk), an internal error)
  2    usage error (bad arguments, missing file, unknown secret, a run folder that cannot be
       created, or read by report/replay)
  3    environment unavailable or lost during the run (no display, no device, missing
       desktop/android packages; video-qa: the video cannot be read)
  4    policy or backend error (server unreachable, bad credentials, unknown model,
       unparseable model output in `ground`, local engine unavailable)
  5    stuck: the model repeated an action that changed nothing, even after being told
  6    replay stopped: the screen differs from the recording before a step (nothing of it ran)
  130  interrupted (Ctrl+C or SIGTERM; the run folder and its report are written first)

environment variables:
  VLAGENT_API_BASE, VLAGENT_MODEL   defaults for --api-base and --model
  OPENAI_API_KEY / VLAGENT_API_KEY  API key (a local server needs none)
  VLAGENT_SECRET_<NAME> or <NAME>   values of --secret NAME[@GLOB] (typed as {{NAME}})
"""

# Run statuses (vlagent.agent.STATUSES) -> exit codes; "error" is split by cause below.
_STATUS_EXIT = {
    "done": EXIT_OK,
    "answered": EXIT_OK,
    "max_steps": EXIT_NOT_SUCCESS,
    "timeout": EXIT_NOT_SUCCESS,
    "failed": EXIT_NOT_SUCCESS,
    "stuck": EXIT_STUCK,
    "screen_changed": EXIT_SCREEN_CHANGED,
    "interrupted": EXIT_INTERRUPTED,
}


class Terminated(KeyboardInterrupt):
    """SIGTERM, turned into an interrupt so a run ends as on Ctrl+C: recorded, reported, exit 130."""


def _raise_terminated(signum: int, frame: Any) -> None:
    raise Terminated("terminated by SIGTERM")


@contextlib.contextmanager
def _sigterm_interrupts() -> Any:
    """While a command runs, SIGTERM raises `Terminated` (main thread only; the old handler comes back)."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _raise_terminated)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


class CliError(Exception):
    """A failure with a message for the user and an exit code."""

    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.code = code


def _err_console() -> Console:
    return Console(stderr=True, highlight=False)


def _out_console() -> Console:
    return Console(highlight=False, soft_wrap=True)


# Where --json output goes. While a --json command runs, everything else printed to
# stdout (e.g. python-xlib's "Xlib.xauth: warning" lines) is sent to stderr, so
# stdout holds exactly one JSON document.
_json_out: Any = None


def _print_json(data: Any) -> None:
    out = _json_out or sys.stdout
    out.write(json.dumps(data, ensure_ascii=False, indent=2, default=str) + "\n")
    out.flush()


# --------------------------------------------------------------------------- shared options


def _add_model_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("model (an OpenAI-compatible server, or a local checkpoint folder)")
    group.add_argument(
        "--api-base",
        default=os.environ.get("VLAGENT_API_BASE"),
        metavar="URL",
        help="OpenAI-compatible endpoint, e.g. http://localhost:8000/v1 (default $VLAGENT_API_BASE)",
    )
    group.add_argument(
        "--model",
        default=os.environ.get("VLAGENT_MODEL"),
        metavar="NAME|PATH",
        help="served model name with --api-base, or a local checkpoint folder (default $VLAGENT_MODEL)",
    )
    group.add_argument(
        "--api-key-env", default="OPENAI_API_KEY", metavar="VAR", help="variable holding the API key (default %(default)s)"
    )
    group.add_argument(
        "--format",
        dest="reply_format",
        default="qwen",
        choices=["qwen", "qwen-pixels", "uitars", "json", "auto"],
        help="how the model writes actions (default qwen: 0-1000 relative coordinates)",
    )
    group.add_argument(
        "--tool-style",
        default=None,
        choices=["xml", "json"],
        help="tool-call layout asked for in the prompt: xml (Qwen3.5) or json (Qwen3-VL, Qwen2.5-VL)",
    )
    group.add_argument("--max-pixels", type=int, default=None, help="largest screenshot area sent to the model")
    group.add_argument("--request-timeout", type=_positive_float, default=None, metavar="SECONDS",
                       help="how long to wait for each reply of a served model before retrying it (default 120)")
    group.add_argument("--device", default=None, help="local engine device (cuda, cpu, ...)")
    group.add_argument("--dtype", default=None, help="local engine dtype (bfloat16, float32, ...)")


def make_policy(args: argparse.Namespace, grounder: Any = None) -> Any:
    """OpenAIPolicy for --api-base, LocalPolicy for a checkpoint folder.

    With `grounder` (run --grounder) the served model is a planner whose targets the grounder finds.
    (Secret names reach the prompt through the agent, per step, not from here.)
    """
    if not args.model:
        raise CliError("no model: give --api-base URL --model NAME, or --model PATH of a local checkpoint", EXIT_USAGE)
    if args.api_base:
        try:
            from vlagent.policy.openai_policy import OpenAIPolicy
        except ImportError as exc:
            raise CliError(f"the API policy needs the 'openai' package ({exc}): pip install 'vlagent[api]'", EXIT_POLICY)
        from vlagent.policy.errors import PolicyError

        kwargs: dict[str, Any] = {}
        if args.max_pixels:
            kwargs["max_pixels"] = args.max_pixels
        if getattr(args, "request_timeout", None):
            kwargs["timeout"] = args.request_timeout
        try:
            return OpenAIPolicy(
                args.model,
                base_url=args.api_base,
                api_key_env=args.api_key_env,
                fmt=args.reply_format,
                tool_style=args.tool_style,
                grounder=grounder,
                screen_text=getattr(args, "screen_text", None),
                **kwargs,
            )
        except PolicyError as exc:
            raise CliError(str(exc), EXIT_POLICY) from None
        except ValueError as exc:
            raise CliError(str(exc), EXIT_USAGE) from None
    path = Path(args.model).expanduser()
    if not path.is_dir():
        raise CliError(
            f"--model {args.model!r} is not a local checkpoint folder; to use a served model, also give "
            "--api-base URL (or set VLAGENT_API_BASE)",
            EXIT_USAGE,
        )
    try:
        from vlagent.policy.local import LocalPolicy
    except ImportError as exc:
        raise CliError(
            f"the local engine is not available ({exc}); install it with pip install 'vlagent[model]', "
            "or serve the model and use --api-base",
            EXIT_POLICY,
        ) from None
    kwargs = {k: v for k, v in (("device", args.device), ("dtype", args.dtype)) if v}
    try:
        return LocalPolicy(str(path), **kwargs)
    except Exception as exc:  # noqa: BLE001 - any load failure is reported the same way
        raise CliError(f"cannot load the local model from {path}: {type(exc).__name__}: {exc}", EXIT_POLICY) from None


def parse_env_spec(spec: str) -> tuple[str, str | None]:
    """'desktop' -> ('desktop', None); 'android:emulator-5554' -> ('android', 'emulator-5554')."""
    kind, _, serial = spec.partition(":")
    kind = kind.strip().lower()
    if kind not in ("desktop", "android"):
        raise CliError(f"unknown environment {spec!r}; use desktop or android[:SERIAL]", EXIT_USAGE)
    if kind == "desktop" and serial:
        raise CliError("the desktop environment takes no serial; use --monitor N to pick a screen", EXIT_USAGE)
    return kind, serial or None


def make_env(spec: str, monitor: int = 1) -> Any:
    kind, serial = parse_env_spec(spec)
    try:
        if kind == "desktop":
            from vlagent.environments.desktop import DesktopEnv

            return DesktopEnv(monitor=monitor)
        from vlagent.environments.android import AndroidEnv

        return AndroidEnv(serial=serial)
    except ImportError as exc:
        extra = "desktop" if kind == "desktop" else "android"
        raise CliError(f"the {kind} environment is not available ({exc}): pip install 'vlagent[{extra}]'", EXIT_ENV)
    except ValueError as exc:
        raise CliError(str(exc), EXIT_USAGE) from None
    except Exception as exc:
        from vlagent.environments.base import EnvironmentFailure

        if isinstance(exc, EnvironmentFailure):
            raise CliError(f"{kind} environment unavailable: {exc}", EXIT_ENV) from None
        raise


def _result_exit_code(result: Any) -> int:
    if result.finished:
        return EXIT_OK if result.success is not False else EXIT_NOT_SUCCESS
    if result.status == "error":
        return {"policy": EXIT_POLICY, "environment": EXIT_ENV}.get(result.error_kind, EXIT_NOT_SUCCESS)
    return _STATUS_EXIT.get(result.status, EXIT_NOT_SUCCESS)


def _result_dict(result: Any) -> dict[str, Any]:
    return {
        "status": result.status,
        "success": result.success,
        "answer": result.answer,
        "steps": result.steps,
        "error": result.error,
        "error_kind": result.error_kind,
        "elapsed_s": round(result.elapsed, 3),
        "run_dir": str(result.run_dir),
        "report": str(result.report) if result.report else None,
    }


def _step_printer(console: Console) -> Callable[[Any], None]:
    def on_step(record: Any) -> None:
        console.print(f"[bold]step {record.index + 1}[/]", end=" ")  # from 1, as the report counts
        if record.thought:
            thought = " ".join(record.thought.split())
            console.print(f"[dim]{escape(thought[:150] + ('…' if len(thought) > 150 else ''))}[/]")
        else:
            console.print()
        for action, outcome in zip(record.actions, record.outcomes):
            color = {"executed": "green", "dry_run": "cyan", "final": "magenta"}.get(outcome.status, "yellow")
            console.print(f"  [{color}]{outcome.status:>8}[/] {escape(action.describe())}")
            if outcome.error:
                console.print(f"           [red]{escape(outcome.error)}[/]")
        if record.error and not record.outcomes:
            console.print(f"  [red]error[/] {escape(record.error)}")

    return on_step


def _show_result(args: argparse.Namespace, result: Any) -> int:
    """Print a run's result (JSON with --json) and return its exit code."""
    if args.json:
        _print_json(_result_dict(result))
    else:
        _print_result(_out_console(), result)
    return _result_exit_code(result)


def _print_result(console: Console, result: Any) -> None:
    color = "green" if _result_exit_code(result) == EXIT_OK else "red"
    console.print(f"[bold {color}]{result.status}[/] after {result.steps} step(s) in {result.elapsed:.1f} s")
    if result.answer:
        console.print(f"[bold]answer:[/] {escape(result.answer)}")
    if result.error:
        console.print(f"[red]{escape(result.error)}[/]")
    console.print(f"run folder: {result.run_dir}")
    if result.report:
        console.print(f"report:     {result.report}")


# --------------------------------------------------------------------------- run


def cmd_run(args: argparse.Namespace) -> int:
    from vlagent.recorder import RecordingFailed, check_run_dir_free
    from vlagent.safety import SecretError, SecretStore

    if not args.task.strip():
        raise CliError("the task is empty: say what the agent should do", EXIT_USAGE)
    try:
        check_run_dir_free(args.run_dir)  # before a model loads or a display starts
    except RecordingFailed as exc:
        raise CliError(str(exc), EXIT_USAGE) from None
    try:
        secrets = SecretStore(args.secret or None)
    except SecretError as exc:
        raise CliError(str(exc), EXIT_USAGE) from None
    policy = make_policy(args, grounder=_planner_grounder(args))
    env = make_env(args.env, monitor=args.monitor)
    from vlagent.agent import Agent

    err = _err_console()
    try:
        agent = Agent(
            policy,
            env,
            max_steps=args.max_steps,
            max_seconds=args.max_seconds,
            loop_repeat=args.loop_limit if args.loop_limit and args.loop_limit > 1 else None,
            dry_run=args.dry_run,
            confirm=args.confirm,
            secrets=secrets,
            run_dir=args.run_dir,
            on_step=_step_printer(err),
        )
    except ValueError as exc:
        env.close()
        raise CliError(str(exc), EXIT_USAGE) from None
    mode = " [cyan](dry run: nothing is executed)[/]" if args.dry_run else ""
    err.print(f"[bold]task:[/] {escape(args.task)}  [dim]policy {getattr(policy, 'name', '?')} · env {args.env}[/]{mode}")
    try:
        # A spinner on a terminal while the model thinks; steps print above it.
        waiting = err.status("working…") if err.is_terminal else contextlib.nullcontext()
        with waiting:
            result = agent.run(args.task)
    except RecordingFailed as exc:  # the run folder cannot be made (or holds a run, checked first): nothing ran
        raise CliError(f"{exc} (choose a writable --run-dir)", EXIT_USAGE) from None
    finally:
        env.close()
    return _show_result(args, result)


def _planner_grounder(args: argparse.Namespace) -> Any:
    """The grounder of a planner + grounder run (run --grounder), once the flags that go with it are checked."""
    if args.screen_text and not args.api_base:
        raise CliError("--screen-text / --text-only send the screen's text to a served model: give --api-base URL "
                       "--model NAME", EXIT_USAGE)
    if args.screen_text == "only" and not args.grounder:
        raise CliError("--text-only sends no screenshot, so the model cannot point at anything: add --grounder SPEC "
                       "to point for it", EXIT_USAGE)
    if not args.grounder:
        return None
    if not (args.api_base and args.model):
        raise CliError("--grounder makes a served model the planner: give --api-base URL and --model NAME too "
                       "(or set VLAGENT_API_BASE and VLAGENT_MODEL)", EXIT_USAGE)
    if args.reply_format not in ("qwen", "auto"):
        raise CliError(f"--grounder: the planner names its targets in Qwen tool calls, which --format "
                       f"{args.reply_format} cannot carry; use --format qwen", EXIT_USAGE)
    from vlagent.grounding.grounders import GrounderSpecError, make_grounder

    try:
        return make_grounder(args.grounder)
    except (GrounderSpecError, FileNotFoundError, ValueError) as exc:
        raise CliError(f"grounder {args.grounder!r}: {exc}", EXIT_USAGE) from None


# --------------------------------------------------------------------------- ground


def cmd_ground(args: argparse.Namespace) -> int:
    from PIL import Image, UnidentifiedImageError

    from vlagent.actions import ActionParseError
    from vlagent.environments.base import Observation

    image_path = Path(args.image)
    try:
        image = Image.open(image_path)
        image.load()
    except FileNotFoundError:
        raise CliError(f"no such image: {image_path}", EXIT_USAGE) from None
    except (UnidentifiedImageError, OSError) as exc:
        raise CliError(f"cannot read image {image_path}: {exc}", EXIT_USAGE) from None
    image = image.convert("RGB")
    if not args.instruction.strip():
        raise CliError("the instruction is empty: describe what to find (\"the Save button\")", EXIT_USAGE)
    given = [flag for flag, value, env in (("--api-base", args.api_base, "VLAGENT_API_BASE"),
                                            ("--model", args.model, "VLAGENT_MODEL"))
             if value and value != os.environ.get(env)]  # typed, not the environment's default
    if args.grounder and given:
        raise CliError(f"give --grounder or {' and '.join(given)}, not both (a served model as the grounder: "
                       "--grounder api:MODEL@URL)", EXIT_USAGE)
    out = Path(args.out) if args.out else image_path.with_name(f"{image_path.stem}.ground.png")
    _check_writable(out, "--out")
    if out.suffix.lower() not in Image.registered_extensions():
        raise CliError(f"cannot write {out}: {out.suffix or 'no suffix'} is not an image format (use .png)", EXIT_USAGE)
    if args.grounder or not args.model:  # no model named: ground with a grounder (the shipped one by default)
        return _ground_with_grounder(args, image, image_path, out)
    policy = make_policy(args)
    observation = Observation(image=image, screen_size=image.size, info={"platform": args.platform})

    from vlagent.policy.errors import PolicyError

    try:
        decision = policy.decide(args.instruction, observation, [])
    except ActionParseError as exc:
        raise CliError(f"the model's reply could not be parsed: {exc}", EXIT_POLICY) from None
    except PolicyError as exc:
        raise CliError(str(exc), EXIT_POLICY) from None

    from vlagent.overlay import draw_action

    drawn = image
    for action in decision.actions:
        drawn = draw_action(drawn, action)
    _save_image(drawn, out)
    record = {
        "image": str(image_path),
        "image_size": list(image.size),
        "instruction": args.instruction,
        "actions": [a.to_dict() for a in decision.actions],
        "thought": decision.thought,
        "raw_output": decision.raw_output,
        "out": str(out),
    }
    if args.json:
        _print_json(record)
    else:
        _print_json([a.to_dict() for a in decision.actions])
        _err_console().print(f"drawn on: {out}")
    return EXIT_OK


def _check_writable(out: Path, flag: str) -> None:
    """A clear usage error, before any work, when `out` cannot be written."""
    folder = out.parent if str(out.parent) else Path(".")
    if not folder.is_dir():
        raise CliError(f"cannot write {out}: the folder {folder} does not exist (choose another {flag})", EXIT_USAGE)
    if out.is_dir():
        raise CliError(f"cannot write {out}: it is a folder (give a file name with {flag})", EXIT_USAGE)
    if not os.access(folder, os.W_OK):
        raise CliError(f"cannot write {out}: the folder {folder} is not writable (choose another {flag})", EXIT_USAGE)


def _save_image(image: Any, out: Path) -> None:
    try:
        image.save(out)
    except (OSError, ValueError) as exc:  # ValueError: a suffix PIL has no format for
        raise CliError(f"cannot write {out}: {exc}", EXIT_USAGE) from None


def _ground_with_grounder(args: argparse.Namespace, image: Any, image_path: Path, out: Path) -> int:
    """`vlagent ground` through a grounder: the point, its confidence and the candidates, drawn and printed.
    "Not found" exits 1 and still draws the candidates."""
    from vlagent.grounding.grounders import GrounderSpecError, make_grounder
    from vlagent.overlay import draw_grounding

    spec = args.grounder or "default"
    try:
        grounder = make_grounder(spec)
    except (GrounderSpecError, FileNotFoundError, ValueError) as exc:
        raise CliError(f"grounder {spec!r}: {exc}", EXIT_USAGE) from None
    platform = {"mobile": "android"}.get(args.platform, args.platform)
    result = grounder.ground(image, args.instruction, platform=platform)
    _save_image(draw_grounding(image, result.point if result.found else None, [c.point for c in result.candidates]), out)
    record = {
        "point": list(result.point) if result.found else None,
        "found": result.found,
        "confidence": round(result.confidence, 4),
        "box": list(result.box) if result.box else None,
        "candidates": [{"point": list(c.point), "score": round(c.score, 4), "box": list(c.box) if c.box else None}
                       for c in result.candidates],
        "grounder": grounder.name,
        "out": str(out),
    }
    if not result.found:
        record["error"] = result.error
    _print_json(record if args.json else {k: record[k] for k in ("point", "found", "confidence", "grounder")})
    console = _err_console()
    if result.found:
        console.print(f"drawn on: {out}")
        return EXIT_OK
    console.print(f"[yellow]not found[/]: {escape(result.error or '')}; candidates drawn on {out}")
    return EXIT_NOT_SUCCESS


# --------------------------------------------------------------------------- report / replay


def _check_run_dir(path: str) -> Path:
    """A run folder whose trajectory can be read (a last line cut short by a crash is fine)."""
    from vlagent.recorder import load_trajectory

    run_dir = Path(path)
    if not (run_dir / "trajectory.jsonl").is_file():
        raise CliError(f"{run_dir} is not a run folder (no trajectory.jsonl)", EXIT_USAGE)
    try:
        load_trajectory(run_dir)
    except (OSError, ValueError) as exc:  # ValueError: a bad line (UnicodeDecodeError is one too)
        raise CliError(f"{run_dir} holds an unreadable trajectory: {exc}", EXIT_USAGE) from None
    return run_dir


def _open_in_browser(path: Path) -> None:
    import webbrowser

    if not webbrowser.open(path.resolve().as_uri()):
        _err_console().print(f"[yellow]could not open a browser; open {path} yourself[/]")


def cmd_report(args: argparse.Namespace) -> int:
    run_dir = _check_run_dir(args.run_dir)
    from vlagent.report import build_report

    try:
        path = build_report(run_dir)
    except OSError as exc:
        raise CliError(f"cannot write the report of {run_dir}: {exc}", EXIT_USAGE) from None
    video = None
    if args.video:
        from vlagent.run_export import export_run_video

        video_path = Path(args.video)
        if video_path.suffix.lower() not in (".mp4", ".m4v"):
            raise CliError(f"--video {video_path}: the video is written as H.264 in MP4; name it .mp4", EXIT_USAGE)
        _check_writable(video_path, "--video")
        try:
            video = export_run_video(run_dir, video_path, seconds_per_step=args.seconds_per_step)
        except (ValueError, ImportError) as exc:
            raise CliError(str(exc), EXIT_USAGE) from None
        except OSError as exc:
            raise CliError(f"cannot write {video_path}: {exc}", EXIT_USAGE) from None
    if args.json:
        _print_json({"run_dir": str(run_dir), "report": str(path), "video": str(video) if video else None})
    else:
        print(path)
        if video:
            print(video)
    if args.open:
        _open_in_browser(path)
    return EXIT_OK


def cmd_replay(args: argparse.Namespace) -> int:
    run_dir = _check_run_dir(args.run_dir)
    from vlagent.recorder import check_run_dir_free
    from vlagent.replay import replay
    from vlagent.safety import SecretError, SecretStore

    try:
        check_run_dir_free(args.out)  # before a display or a phone is reached
    except OSError as exc:
        raise CliError(f"{exc} (choose another --out)", EXIT_USAGE) from None
    try:
        secrets = SecretStore(args.secret or None)
    except SecretError as exc:
        raise CliError(str(exc), EXIT_USAGE) from None
    # None: replay's own default; "off": no comparison
    screen = {} if args.max_screen_diff is None else {"max_screen_diff": None if args.max_screen_diff == "off" else args.max_screen_diff}
    from vlagent.recorder import RecordingFailed

    try:
        from vlagent.policy.scripted import recorded_steps

        recorded_steps(run_dir)  # every step's actions must read before anything is executed
    except (ValueError, TypeError, AttributeError, KeyError) as exc:
        raise CliError(f"{run_dir} cannot be replayed: {exc}", EXIT_USAGE) from None
    env = make_env(args.env or _recorded_env(run_dir), monitor=args.monitor)
    err = _err_console()
    try:
        result = replay(
            run_dir,
            env,
            dry_run=args.dry_run,
            secrets=secrets,
            confirm=args.confirm,
            on_screen_change=_ask_screen_change if args.confirm else None,
            on_step=_step_printer(err),
            run_dir_out=args.out,
            **screen,
        )
    except RecordingFailed as exc:
        where = args.out or f"next to {run_dir}"
        raise CliError(f"{exc} (the replay is recorded {where}; choose --out)", EXIT_USAGE) from None
    finally:
        env.close()
    return _show_result(args, result)


def _recorded_env(run_dir: Path) -> str:
    """Where a run was recorded (its header's env: desktop or android), desktop when it does not say."""
    from vlagent.recorder import load_trajectory

    header, _, _ = load_trajectory(run_dir)
    return header.get("env") if header.get("env") in ("desktop", "android") else "desktop"


def _ask_screen_change(message: str) -> bool:
    """replay --confirm: the screen differs from the recording; ask whether to replay the step anyway."""
    from rich.prompt import Confirm

    return Confirm.ask(f"[bold yellow]{escape(message)}[/] Replay this step anyway?", default=False,
                       console=_err_console())


def _screen_diff(text: str) -> float | str:
    if text.strip().lower() in ("off", "none"):
        return "off"
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a percent from 0 to 100, or 'off'; got {text!r}") from None
    if not 0.0 <= value <= 100.0:
        raise argparse.ArgumentTypeError(f"expected a percent from 0 to 100, or 'off'; got {text!r}")
    return value


# --------------------------------------------------------------------------- doctor


def cmd_doctor(args: argparse.Namespace) -> int:
    from vlagent.doctor import FAIL, run_checks, summarize

    checks = run_checks(api_base=args.api_base, model=args.model, api_key_env=args.api_key_env)
    summary = summarize(checks)
    if args.json:
        _print_json(summary)
    else:
        from rich.table import Table

        table = Table(title=f"vlagent {__version__} doctor", show_lines=False)
        for column in ("group", "check", "status", "detail"):
            table.add_column(column)
        style = {"ok": "green", "warn": "yellow", "fail": "bold red"}
        for c in checks:
            table.add_row(c.group, escape(c.name), f"[{style[c.status]}]{c.status}[/]", escape(c.detail))
        console = _out_console()
        console.print(table)
        counts = summary["counts"]
        console.print(f"{counts['ok']} ok, {counts['warn']} warnings, {counts['fail']} failures")
    return EXIT_OK if not any(c.status == FAIL for c in checks) else EXIT_NOT_SUCCESS


# --------------------------------------------------------------------------- demo


def cmd_demo(args: argparse.Namespace) -> int:
    from vlagent import demo
    from vlagent.grounding.grounders import GrounderSpecError, make_grounder

    from vlagent.recorder import RecordingFailed, check_run_dir_free

    err = _err_console()
    try:  # before any display or phone starts: a bad SPEC or a taken folder fails fast
        grounder = make_grounder(args.grounder)
        check_run_dir_free(args.out)
    except GrounderSpecError as exc:
        raise CliError(str(exc), EXIT_USAGE) from None
    except RecordingFailed as exc:
        raise CliError(f"{exc} (choose another --out)", EXIT_USAGE) from None
    try:
        outcome = demo.run_demo(
            run_dir=args.out,
            android=args.android,
            grounder=grounder,
            force_virtual_display=args.xvfb,
            log=lambda text: err.print(f"[dim]{escape(text)}[/]"),
        )
    except demo.DemoUnavailable as exc:
        raise CliError(str(exc), EXIT_ENV) from None
    except RecordingFailed as exc:
        raise CliError(f"{exc} (choose another --out)", EXIT_USAGE) from None
    if args.json:
        _print_json(outcome.to_dict())
    else:
        console = _out_console()
        for name, passed in outcome.checks.items():
            console.print(f"  {'[green]✓[/]' if passed else '[red]✗[/]'} {escape(name)}")
        color = "green" if outcome.ok else "red"
        console.print(f"[bold {color}]{'ok' if outcome.ok else 'failed'}[/]: {outcome.steps} recorded steps in "
                      f"{outcome.seconds:.1f} s with the {escape(outcome.grounder)} grounder")
        if outcome.error:
            console.print(f"[red]{escape(outcome.error)}[/]")
        console.print(f"run folder: {outcome.run_dir}")
    if args.open and outcome.report:
        _open_in_browser(outcome.report)
    if outcome.report and not args.json:
        print(outcome.report)
    return EXIT_OK if outcome.ok else EXIT_NOT_SUCCESS


# --------------------------------------------------------------------------- parser


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _positive_float(text: str) -> float:
    value = float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {text}")
    return value


def _monitor(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError("monitor must be 0 (all monitors) or a monitor number >= 1")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="vlagent",
        description="A vision-language agent that looks at a screen and acts on it.",
        epilog=EXIT_CODES_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"vlagent {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    def add(name: str, help_text: str, func: Callable[[argparse.Namespace], int]) -> argparse.ArgumentParser:
        p = sub.add_parser(
            name, help=help_text, description=help_text, epilog=EXIT_CODES_HELP,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )  # fmt: skip
        p.set_defaults(func=func)
        return p

    p = add("run", "run a task on a desktop or an Android device", cmd_run)
    p.add_argument("task", help="what to do, in plain words (may contain {{secret}} placeholders)")
    p.add_argument("--env", default="desktop", metavar="desktop|android[:SERIAL]", help="where to act (default desktop)")
    p.add_argument("--monitor", type=_monitor, default=1, help="desktop monitor (1 = first, 0 = all; default 1)")
    _add_model_options(p)
    p.add_argument("--grounder", default=None, metavar="SPEC",
                   help="planner + grounder: the served model names its targets in words and this grounder finds "
                        "them on the screen (default, ocr, grounder:FOLDER, ...); needs --api-base and --model")
    p.add_argument("--screen-text", dest="screen_text", action="store_const", const="also", default=None,
                   help="also send the screen's OCR text to the served model, besides the screenshot")
    p.add_argument("--text-only", dest="screen_text", action="store_const", const="only",
                   help="send the screen's OCR text instead of the screenshot, for text-only models (needs --grounder)")
    p.add_argument("--dry-run", action="store_true", help="decide and record, execute nothing")
    p.add_argument(
        "--confirm", nargs="?", const="risky", choices=["risky", "all"], default=None,
        help="ask before executing risky actions (default when given) or all actions",
    )  # fmt: skip
    p.add_argument("--max-steps", type=_positive_int, default=30, help="step limit (default 30)")
    p.add_argument("--max-seconds", type=_positive_float, default=None, help="wall-clock limit")
    p.add_argument("--loop-limit", type=int, default=3, metavar="N",
                   help="the same action N times on an unchanged screen is a loop: the model is told, then the run "
                        "ends as 'stuck' (exit 5); 0 turns this off (default 3)")
    p.add_argument(
        "--secret", action="append", metavar="NAME[@GLOB]",
        help="a secret the model may type as {{NAME}}; the value comes from $VLAGENT_SECRET_NAME or $NAME (repeatable). "
             "NAME@GLOB binds it to its place: typed only into a focused window whose title matches GLOB (desktop) "
             "or the foreground app whose package does (Android), e.g. password@'*Login*'; elsewhere it is refused",
    )  # fmt: skip
    p.add_argument("--run-dir", default=None, help="run folder (default runs/<time>-<task>; $VLAGENT_RUNS sets the parent)")
    p.add_argument("--json", action="store_true", help="print the result as JSON on stdout")

    p = add("ground", "one grounding step: where on IMAGE is INSTRUCTION? prints the action as JSON", cmd_ground)
    p.add_argument("image", help="a screenshot (PNG, JPEG, ...)")
    p.add_argument("instruction", help='what to point at, e.g. "click the Save button"')
    _add_model_options(p)
    p.add_argument("--platform", default="desktop", choices=["desktop", "mobile"], help="which tool prompt to use")
    p.add_argument("--grounder", default=None, metavar="SPEC",
                   help="ground with this grounder instead of a model (default when no --model: the shipped one); "
                        "e.g. default, ocr, grounder:FOLDER")
    p.add_argument("--out", default=None, help="where to write the image with the action drawn (default IMAGE.ground.png)")
    p.add_argument("--json", action="store_true", help="print the full record (actions, thought, raw output)")

    p = add("report", "(re)build the HTML report of a run folder", cmd_report)
    p.add_argument("run_dir")
    p.add_argument("--open", action="store_true", help="open the report in a browser")
    p.add_argument("--video", metavar="OUT.mp4", default=None, help="also export the steps as an H.264 MP4 with the actions drawn")
    p.add_argument("--seconds-per-step", type=_positive_float, default=1.0, help="how long each step shows in the video (default 1)")
    p.add_argument("--json", action="store_true")

    p = add("replay", "execute a recorded run again (recorded as a new run)", cmd_replay)
    p.add_argument("run_dir")
    p.add_argument("--env", default=None, metavar="desktop|android[:SERIAL]",
                   help="where to replay (default: where the run was recorded)")
    p.add_argument("--out", default=None, metavar="DIR",
                   help="the replay's own run folder (default: a new folder next to the recorded run)")
    p.add_argument("--monitor", type=_monitor, default=1)
    p.add_argument("--dry-run", action="store_true")
    p.add_argument("--confirm", nargs="?", const="risky", choices=["risky", "all"], default=None,
                   help="ask before risky (or all) actions, and whether to go on when the screen differs from the "
                        "recording (instead of stopping)")
    p.add_argument("--max-screen-diff", type=_screen_diff, default=None, metavar="PERCENT",
                   help="before each step, how much of the screen (or of the area around the step's points) may "
                        "differ from the recording, in percent; more stops the replay before the step (exit 6). "
                        "'off' does not compare (default 4)")
    p.add_argument("--secret", action="append", metavar="NAME[@GLOB]", help="as for run")
    p.add_argument("--json", action="store_true")

    p = add("doctor", "check what is installed and reachable", cmd_doctor)
    p.add_argument("--api-base", default=os.environ.get("VLAGENT_API_BASE"), metavar="URL", help="also probe this endpoint")
    p.add_argument("--model", default=os.environ.get("VLAGENT_MODEL"), help="with --api-base: check it is served")
    p.add_argument("--api-key-env", default="OPENAI_API_KEY", metavar="VAR")
    p.add_argument("--json", action="store_true")

    p = add(
        "demo",
        "offline demo: a script that names what it clicks (demos/desktop_form.py) works the practice app "
        "through the default grounder on a virtual display, then writes a report",
        cmd_demo,
    )
    p.add_argument("--android", action="store_true",
                   help="the virtual phone over a real adb server instead (demos/android_settings.py)")
    p.add_argument("--grounder", default="default", metavar="SPEC", help="which grounder finds the targets (default: default)")
    p.add_argument("--out", default=None, metavar="DIR", help="run folder (default runs/<time>-demo; $VLAGENT_RUNS sets the parent)")
    p.add_argument("--open", action="store_true", help="open the report in a browser")
    p.add_argument("--xvfb", action="store_true", help="use a new virtual display even if DISPLAY is set")
    p.add_argument("--json", action="store_true")

    _register_plugins(sub)
    return parser


# Commands defined here print --json output through _print_json (plugins print their own).
_OWN_COMMANDS = frozenset({cmd_run, cmd_ground, cmd_report, cmd_replay, cmd_doctor, cmd_demo})


def _register_plugins(sub: Any) -> None:
    """Subcommands from optional parts (video-qa, mcp), when they are importable."""
    try:
        from vlagent.video.cli import register
    except ImportError:
        pass
    else:
        register(sub)
    from vlagent.mcp_server import register as register_mcp  # imports the mcp SDK only when run

    register_mcp(sub)
    from vlagent.grounding.cli import register as register_grounding  # eval-grounding, grounding-data
    from vlagent.grounding.train_cli import register as register_training  # train-grounding

    register_grounding(sub)
    register_training(sub)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse: --help/--version (0) or a usage error (2)
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    if getattr(args, "func", None) is None:
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    global _json_out
    try:
        with _sigterm_interrupts():
            if getattr(args, "json", False) and args.func in _OWN_COMMANDS:
                _json_out = sys.stdout
                with contextlib.redirect_stdout(sys.stderr):
                    code = args.func(args)
            else:
                code = args.func(args)
    except CliError as exc:
        _err_console().print(f"[bold red]error:[/] {escape(str(exc))}")
        return exc.code
    except KeyboardInterrupt as exc:
        _err_console().print(f"[yellow]{escape(str(exc) or 'interrupted')}[/]")
        return EXIT_INTERRUPTED
    finally:
        _json_out = None
    return EXIT_OK if code is None else int(code)


if __name__ == "__main__":
    sys.exit(main())
