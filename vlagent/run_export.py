"""A run folder as a video: each step's screenshot with its actions drawn, H.264 in MP4.

    from vlagent.run_export import export_run_video
    export_run_video("runs/20261129-...-task", "run.mp4")   # one step a second

The result is an ordinary screen recording, so `vlagent video-qa run.mp4
"where did it go wrong?"` works on it: the frame shown at t seconds is step
floor(t / seconds_per_step). Actions are drawn by `vlagent.overlay.draw_action`,
with the HTML report's markers. Screenshots are read and encoded one at a time, so
memory does not grow with the run's length. Screenshots of another size than
the first (a phone turned to landscape) are scaled to fit and centred on black.
"""

from __future__ import annotations

import os
from fractions import Fraction
from pathlib import Path

from PIL import Image

from vlagent.recorder import load_trajectory
from vlagent.overlay import draw_action, step_actions


def _even_size(size: tuple[int, int], max_side: int) -> tuple[int, int]:
    """`size` scaled down to fit `max_side`, then rounded down to even numbers (yuv420p needs them)."""
    w, h = size
    scale = min(1.0, max_side / max(w, h))
    return max(2, int(w * scale) // 2 * 2), max(2, int(h * scale) // 2 * 2)


def _fit(image: Image.Image, size: tuple[int, int]) -> Image.Image:
    """`image` scaled to fit inside `size` keeping its aspect ratio, centred on black."""
    if image.size == size:
        return image
    scale = min(size[0] / image.width, size[1] / image.height)
    inner = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
    canvas = Image.new("RGB", size)
    canvas.paste(image.resize(inner, Image.Resampling.BILINEAR), ((size[0] - inner[0]) // 2, (size[1] - inner[1]) // 2))
    return canvas


def _screenshot(run_dir: Path, step: dict) -> Image.Image | None:
    """The step's screenshot as RGB, or None when it is missing or unreadable."""
    from vlagent.recorder import screenshot_path

    path = screenshot_path(run_dir, step.get("screenshot"))
    if path is None:
        return None
    try:
        with Image.open(path) as shot:
            return shot.convert("RGB")
    except (OSError, ValueError):
        return None


def export_run_video(
    run_dir: str | os.PathLike,
    out_path: str | os.PathLike,
    *,
    seconds_per_step: float = 1.0,
    max_side: int = 1920,
    crf: int = 23,
) -> Path:
    """Write the steps of `run_dir` as an H.264 MP4 at `out_path`; returns its path.

    Each step with a screenshot on disk becomes one frame shown for
    `seconds_per_step` seconds, with the step's actions drawn on it. Steps
    whose screenshot is missing or unreadable are left out. Raises
    FileNotFoundError for a folder without trajectory.jsonl and ValueError
    when no step has a readable screenshot.
    """
    try:
        import av
    except ImportError as exc:  # pragma: no cover - PyAV is the video extra
        raise ImportError("exporting a run video needs PyAV: pip install 'vlagent[video]'") from exc
    if not seconds_per_step > 0:
        raise ValueError(f"seconds_per_step must be positive, got {seconds_per_step}")
    run_dir = Path(run_dir)
    if not (run_dir / "trajectory.jsonl").is_file():
        raise FileNotFoundError(f"{run_dir} is not a run folder (no trajectory.jsonl)")
    _, steps, _ = load_trajectory(run_dir)
    out_path = Path(out_path)
    rate = Fraction(1) / Fraction(seconds_per_step).limit_denominator(1000)  # frames per second
    tmp = out_path.with_name(out_path.name + ".part")
    container = stream = None
    frames = 0
    try:
        for step in steps:
            image = _screenshot(run_dir, step)
            if image is None:
                continue  # never written (a crash), or unreadable: the video goes on without it
            for action in step_actions(step):
                image = draw_action(image, action)
            if container is None:  # the first screenshot decides the video's size
                size = _even_size(image.size, max_side)
                container = av.open(str(tmp), mode="w", format="mp4")
                stream = container.add_stream("libx264", rate=rate)
                stream.width, stream.height, stream.pix_fmt = size[0], size[1], "yuv420p"
                stream.codec_context.gop_size = 10  # a keyframe every 10 steps keeps seeking cheap
                stream.options = {"preset": "veryfast", "crf": str(crf)}
            frame = av.VideoFrame.from_image(_fit(image, (stream.width, stream.height)))
            frame.pts, frame.time_base = frames, 1 / rate
            container.mux(stream.encode(frame))
            frames += 1
        if container is None:
            raise ValueError(f"no step of {run_dir} has a readable screenshot: nothing to put in a video")
        container.mux(stream.encode(None))
        container.close()
        container = None
        tmp.replace(out_path)
    finally:
        if container is not None:
            container.close()
        tmp.unlink(missing_ok=True)
    return out_path


__all__ = ["export_run_video"]
