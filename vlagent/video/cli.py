"""`vlagent video-qa VIDEO "QUESTION"`: sample a video and ask a model about it.

The main CLI calls `register(subparsers)`; the sub-command's handler is set
with `set_defaults(func=run_video_qa)` and returns the exit code:
0 answered, 2 usage error, 3 the video cannot be sampled (VideoError),
4 the model backend failed. `python -m vlagent.video.cli ...` runs it alone.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import warnings
from typing import Sequence

EXIT_OK, EXIT_USAGE, EXIT_BAD_VIDEO, EXIT_BACKEND = 0, 2, 3, 4


def register(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add the `video-qa` sub-command to `subparsers` and return its parser."""
    p = subparsers.add_parser(
        "video-qa",
        help="answer a question about a video",
        description="Sample frames from VIDEO (PyAV, no full decode) and ask a vision-language model QUESTION. "
        "Use --model PATH for the local engine, or --api-base URL --model NAME for an OpenAI-compatible server.",
    )
    p.add_argument("video", help="path of the video file")
    p.add_argument("question", help="the question to ask about the video")
    p.add_argument("--fps", type=float, default=None, help="frames per second to sample (default 2)")
    p.add_argument("--num-frames", type=int, default=None, help="sample exactly this many frames instead of --fps")
    p.add_argument("--max-frames", type=int, default=768, help="upper bound on frames when sampling by fps (default 768)")
    p.add_argument("--min-frames", type=int, default=4, help="lower bound on frames when sampling by fps (default 4)")
    p.add_argument("--start", type=float, default=None, help="start of the range, seconds")
    p.add_argument("--end", type=float, default=None, help="end of the range, seconds")
    p.add_argument("--mode", choices=("exact", "keyframe"), default="exact",
                   help="exact: the frame on screen at each sample time; keyframe: nearest keyframes (faster)")
    p.add_argument("--max-pixels", type=int, default=None, help="pixel cap per frame")
    p.add_argument("--total-pixels", type=int, default=None, help="pixel (token × 32²) budget over the whole video")
    p.add_argument("--model", default=None,
                   help="local checkpoint folder, or the served model name with --api-base (default $VLAGENT_MODEL)")
    p.add_argument("--api-base", default=None,
                   help="base URL of an OpenAI-compatible server, e.g. http://localhost:8000/v1 (default $VLAGENT_API_BASE)")
    p.add_argument("--api-key-env", default="OPENAI_API_KEY",
                   help="environment variable holding the API key (default OPENAI_API_KEY, then VLAGENT_API_KEY)")
    p.add_argument("--max-new-tokens", type=int, default=512, help="longest answer, in tokens")
    p.add_argument("--device", default="cpu", help="device for the local engine (cpu, cuda)")
    p.add_argument("--dtype", default=None, help="dtype for the local engine (float32, bfloat16)")
    p.add_argument("--json", action="store_true", help="print answer, frames used, timestamps and timings as JSON")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run_video_qa)
    return p


def _usage_error(message: str) -> int:
    print(f"vlagent video-qa: error: {message}", file=sys.stderr)
    return EXIT_USAGE


def _make_backend(args: argparse.Namespace):
    from vlagent.video.qa import LocalVideoBackend, OpenAIVideoBackend

    if args.api_base:
        return OpenAIVideoBackend(
            args.model, base_url=args.api_base, api_key_env=args.api_key_env, max_tokens=args.max_new_tokens
        )
    return LocalVideoBackend(args.model, device=args.device, dtype=args.dtype, max_new_tokens=args.max_new_tokens)


class _Announcing:
    """A backend wrapper that calls `on_answer()` when the model is asked (for the progress line)."""

    def __init__(self, backend, on_answer) -> None:
        self.backend = backend
        self.on_answer = on_answer

    def answer(self, sample, question):
        self.on_answer()
        return self.backend.answer(sample, question)


def _ask(args: argparse.Namespace, err, show: bool):
    """Sample the video and ask the backend, with a progress bar on a terminal."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from vlagent.video.qa import ask

    backend = _make_backend(args)
    with Progress(
        TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
        console=err, transient=True, disable=not show,
    ) as bar:
        task = bar.add_task("sampling frames", total=None)

        def progress(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        def asking() -> None:
            bar.update(task, description=f"asking {args.model}")

        return ask(
            args.video, args.question, backend=_Announcing(backend, asking), fps=args.fps, num_frames=args.num_frames,
            max_frames=args.max_frames, min_frames=args.min_frames, start=args.start, end=args.end,
            mode=args.mode, max_pixels=args.max_pixels, total_pixels=args.total_pixels, progress=progress,
        )


def run_video_qa(args: argparse.Namespace) -> int:
    """Handler of `video-qa` (the exit code is returned, not raised)."""
    from vlagent.video.qa import VideoBackendError
    from vlagent.video.sampling import VideoDecodeWarning, VideoError

    # Environment defaults are read when the command runs, not when it is registered.
    args.model = args.model or os.environ.get("VLAGENT_MODEL")
    args.api_base = args.api_base or os.environ.get("VLAGENT_API_BASE")
    if not args.model:
        return _usage_error("give --model PATH (local engine) or --api-base URL --model NAME")
    if args.fps is not None and args.num_frames is not None:
        return _usage_error("give either --fps or --num-frames, not both")
    if not args.question.strip():
        return _usage_error("the question is empty")
    if args.start is not None and args.start < 0:
        return _usage_error(f"--start must be >= 0 seconds; got {args.start:g}")
    if args.start is not None and args.end is not None and args.end <= args.start:
        return _usage_error(f"--end ({args.end:g} s) must come after --start ({args.start:g} s)")
    if not args.api_base and not os.path.isdir(args.model):
        return _usage_error(f"--model {args.model}: no such checkpoint folder (or give --api-base URL to ask a "
                            "served model of that name)")

    from rich.console import Console

    err = Console(stderr=True)
    show = not args.no_progress and err.is_terminal
    try:
        with warnings.catch_warnings(record=True) as caught:  # frames that did not decode: said plainly below
            warnings.simplefilter("always", VideoDecodeWarning)
            result = _ask(args, err, show)
    except VideoError as exc:
        err.print(f"[red]bad video:[/red] {exc}", highlight=False)
        return EXIT_BAD_VIDEO
    except VideoBackendError as exc:
        err.print(f"[red]backend error:[/red] {exc}", highlight=False)
        return EXIT_BACKEND
    except ValueError as exc:
        return _usage_error(str(exc))
    for warning in caught:  # the answer came: say what was left out (a failure's own message says it)
        if issubclass(warning.category, VideoDecodeWarning):
            err.print(f"[yellow]warning:[/yellow] {warning.message}", highlight=False)
        else:
            warnings.showwarning(warning.message, warning.category, warning.filename, warning.lineno)

    if args.json:
        print(json.dumps(result.to_dict(), indent=2))
    else:
        print(result.answer)
        if show:
            err.print(
                f"[dim]{result.frames_used} frames, {result.timings['sample_s']:.2f} s sampling, "
                f"{result.timings['answer_s']:.2f} s answering[/dim]"
            )
    return EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="vlagent")
    sub = parser.add_subparsers(dest="command", required=True)
    register(sub)
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
