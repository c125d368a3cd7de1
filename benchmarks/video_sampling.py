"""Long-video frame sampling: our exact / keyframe modes against decoding everything.

    python benchmarks/video_sampling.py              # two-hour 1280x720 H.264, 10 fps
    python benchmarks/video_sampling.py --minutes 30
    python benchmarks/video_sampling.py --smoke      # 2 minutes at 320x180: checks the script

The test video is generated once and cached under benchmarks/.cache/ (libx264
"fast" preset, a keyframe every 10 s, smooth moving content at a low bitrate;
each frame's index is written in a strip of luma cells at the top, so the
benchmark also checks that every sampled frame is the one its timestamp says).

Each measurement runs in its own subprocess, so peak memory is the process's
maximum resident set (VmHWM: FFmpeg's buffers included, which tracemalloc
would not see). Rows:
  baseline          import numpy + av and open the file (the floor of every row)
  decode all        decode every frame, convert none (what a naive reader must at least do)
  exact N           vlagent sample_frames(num_frames=N, mode="exact")
  keyframe N        vlagent sample_frames(num_frames=N, mode="keyframe")
  qwen-vl-utils N   qwen_vl_utils.fetch_video(nframes=N), when it can be imported
Times are wall-clock seconds of the work inside the subprocess (imports excluded);
"vs all" is the fraction of the decode-all time.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent
CACHE = ROOT / ".cache"
BITS = 24  # index cells in the top strip


# ---------------------------------------------------------------------------- test video


def video_path(minutes: float, width: int, height: int, fps: int, keyframe_s: int) -> Path:
    return CACHE / f"sampling_{minutes:g}min_{width}x{height}_{fps}fps_k{keyframe_s}s.mp4"


def make_video(path: Path, *, minutes: float, width: int, height: int, fps: int, keyframe_s: int, preset: str = "fast") -> None:
    """Smooth moving luma gradient + index cells; written to a temp name, then renamed."""
    import av
    import numpy as np

    path.parent.mkdir(parents=True, exist_ok=True)
    (path.parent / ".gitignore").write_text("*\n")
    tmp = path.with_suffix(".partial.mp4")
    frames = int(round(minutes * 60 * fps))
    # A wide smooth background; each frame shows a window of it sliding right.
    xs = np.arange(width * 2, dtype=np.float32)
    ys = np.arange(height, dtype=np.float32)[:, None]
    background = (128 + 60 * np.sin(xs / 97.0) * np.cos(ys / 61.0)).astype(np.uint8)
    strip = max(8, height // 8)
    cell = width // BITS
    chroma = np.full((height // 2, width), 128, dtype=np.uint8)  # U and V planes, stacked as yuv420p rows
    start = time.perf_counter()
    with av.open(str(tmp), mode="w") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.codec_context.gop_size = keyframe_s * fps
        stream.codec_context.thread_count = 0  # all cores
        stream.codec_context.options = {"preset": preset, "crf": "30", "sc_threshold": "0"}
        for i in range(frames):
            shift = (i * 3) % width
            luma = background[:, shift : shift + width].copy()
            luma[:strip] = 16
            for b, bit in enumerate(format(i, f"0{BITS}b")):
                if bit == "1":
                    luma[: strip, b * cell : (b + 1) * cell] = 235
            frame = av.VideoFrame.from_ndarray(np.concatenate([luma, chroma]), format="yuv420p")
            frame.pts = i
            for packet in stream.encode(frame):
                container.mux(packet)
            if i and i % (fps * 600) == 0:
                done = i / frames
                print(f"  encoded {i}/{frames} frames ({done:.0%}, {time.perf_counter() - start:.0f} s)", file=sys.stderr)
        for packet in stream.encode():
            container.mux(packet)
    tmp.rename(path)


def read_index(rgb, width: int, height: int) -> int:
    """The index written in the top strip of a (resized) RGB frame."""
    h, w = rgb.shape[:2]
    strip = max(8, height // 8) * h / height
    cell = (width // BITS) * w / width
    bits = ""
    for b in range(BITS):
        x0, x1 = int(b * cell + cell / 4), int((b + 1) * cell - cell / 4)
        y0, y1 = int(strip / 4), max(int(strip * 3 / 4), int(strip / 4) + 1)
        bits += "1" if rgb[y0:y1, x0:x1].mean() > 128 else "0"
    return int(bits, 2)


# ---------------------------------------------------------------------------- measurements (child side)


def measure(kind: str, path: str, n: int, width: int, height: int, fps: int) -> dict:
    import av  # noqa: F401 - part of the baseline
    import numpy as np  # noqa: F401

    result: dict = {"kind": kind, "n": n}
    start = time.perf_counter()
    if kind == "baseline":
        with av.open(path) as container:
            result["frames"] = 0
    elif kind == "decode_all":
        with av.open(path) as container:
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            count = 0
            for _ in container.decode(stream):
                count += 1
            result["frames"] = result["decoded_frames"] = count
    elif kind in ("exact", "keyframe"):
        from vlagent.video import sample_frames

        sample = sample_frames(path, num_frames=n, mode=kind)
        result["frames"] = len(sample)
        result["decoded_frames"] = sample.stats["decoded_frames"]
        result["size"] = f"{sample.plan.width}x{sample.plan.height}"
        result["tokens"] = sample.plan.num_tokens
        # Correctness: the index in each frame is the frame at its timestamp.
        wrong = sum(read_index(f, width, height) != round(t * fps) for f, t in zip(sample.frames, sample.timestamps))
        result["wrong_frames"] = wrong
    elif kind == "qwen_vl_utils":
        from qwen_vl_utils import fetch_video

        video = fetch_video({"video": path, "nframes": n})
        result["frames"] = int(video.shape[0])
        result["size"] = f"{video.shape[-1]}x{video.shape[-2]}"
    else:
        raise ValueError(f"unknown measurement {kind!r}")
    result["seconds"] = time.perf_counter() - start
    result["peak_rss_mb"] = peak_rss_mb()
    return result


def peak_rss_mb() -> float:
    """This process's peak resident set. Linux's ru_maxrss carries the parent's
    peak across fork + exec (after generating the video: ~130 MB), so read the
    high-water mark of this process's own memory map where there is one."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_child(kind: str, path: Path, n: int, args: argparse.Namespace) -> dict:
    cmd = [
        sys.executable, __file__, "--measure", kind, "--path", str(path), "--n", str(n),
        "--width", str(args.width), "--height", str(args.height), "--fps", str(args.fps),
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        return {"kind": kind, "n": n, "error": (proc.stderr.strip().splitlines() or ["failed"])[-1]}
    return json.loads(proc.stdout.strip().splitlines()[-1])


# ---------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--minutes", type=float, default=120.0, help="length of the test video (default 120)")
    p.add_argument("--smoke", action="store_true", help="2 minutes at 320x180: a quick check of the script")
    p.add_argument("--width", type=int, default=1280)
    p.add_argument("--height", type=int, default=720)
    p.add_argument("--fps", type=int, default=10)
    p.add_argument("--keyframe-seconds", type=int, default=10)
    p.add_argument("--preset", default="fast", help="libx264 preset for generating the video (default fast)")
    p.add_argument("--frames", default="64,768", help="sample counts to measure (default 64,768)")
    p.add_argument("--skip-decode-all", action="store_true", help="skip the decode-everything row")
    p.add_argument("--modes", default="exact,keyframe", help="sampler modes to measure (default exact,keyframe)")
    p.add_argument("--measure", help=argparse.SUPPRESS)
    p.add_argument("--path", help=argparse.SUPPRESS)
    p.add_argument("--n", type=int, default=0, help=argparse.SUPPRESS)
    args = p.parse_args(argv)

    if args.measure:  # child process: one measurement, JSON on stdout
        print(json.dumps(measure(args.measure, args.path, args.n, args.width, args.height, args.fps)))
        return 0

    if args.smoke:
        args.minutes, args.width, args.height = 2.0, 320, 180
    counts = [int(x) for x in args.frames.split(",") if x.strip()]
    path = video_path(args.minutes, args.width, args.height, args.fps, args.keyframe_seconds)
    if not path.exists():
        print(f"generating {path.name} (once; cached) ...", file=sys.stderr)
        t = time.perf_counter()
        make_video(path, minutes=args.minutes, width=args.width, height=args.height, fps=args.fps, keyframe_s=args.keyframe_seconds, preset=args.preset)
        print(f"  done in {time.perf_counter() - t:.1f} s", file=sys.stderr)
    size_mb = path.stat().st_size / 2**20
    total_frames = int(round(args.minutes * 60 * args.fps))

    try:
        import qwen_vl_utils  # noqa: F401

        have_qvu = True
    except Exception:  # noqa: BLE001 - any import failure means "not available"
        have_qvu = False

    plan = [("baseline", 0)]
    if not args.skip_decode_all:
        plan.append(("decode_all", 0))
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    if unknown := set(modes) - {"exact", "keyframe"}:
        p.error(f"unknown mode(s): {', '.join(sorted(unknown))}")
    for n in counts:
        plan += [(mode, n) for mode in modes]
        if have_qvu:
            plan.append(("qwen_vl_utils", n))

    rows = []
    for kind, n in plan:
        print(f"  measuring {kind} {n or ''}".rstrip(), file=sys.stderr)
        rows.append(run_child(kind, path, n, args))

    all_s = next((r["seconds"] for r in rows if r["kind"] == "decode_all" and "seconds" in r), None)
    print(
        f"\nvideo: {path.name}: {args.minutes:g} min, {args.width}x{args.height}, {args.fps} fps, "
        f"keyframe every {args.keyframe_seconds} s, {total_frames} frames, {size_mb:.1f} MiB"
    )
    print(f"machine: {platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}\n")
    header = f"{'measurement':<18}{'time s':>9}{'vs all':>9}{'peak RSS MB':>13}{'frames':>8}{'decoded':>9}{'size':>11}{'wrong':>7}"
    print(header)
    print("-" * len(header))
    for r in rows:
        name = {"decode_all": "decode all", "qwen_vl_utils": "qwen-vl-utils"}.get(r["kind"], r["kind"])
        name = f"{name} {r['n']}" if r["n"] else name
        if "error" in r:
            print(f"{name:<18}  failed: {r['error']}")
            continue
        frac = f"{r['seconds'] / all_s:.3f}" if all_s else "-"
        print(
            f"{name:<18}{r['seconds']:>9.3f}{frac:>9}{r['peak_rss_mb']:>13.0f}{r.get('frames', 0):>8}"
            f"{r.get('decoded_frames', '-')!s:>9}{r.get('size', '-'):>11}{r.get('wrong_frames', '-')!s:>7}"
        )
    if not have_qvu:
        print("\nqwen-vl-utils: not importable here (it also needs torchvision, decord or torchcodec); row skipped.")
    bad = [r for r in rows if r.get("wrong_frames")]
    if bad:
        print("\nERROR: some sampled frames are not the frame their timestamp says.")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
