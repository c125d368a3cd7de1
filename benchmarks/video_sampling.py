"""Long-video frame sampling: our exact / keyframe modes against decoding everything, on three files.

    python benchmarks/video_sampling.py              # the three files below (generated once, cached)
    python benchmarks/video_sampling.py --files 360p --strategies auto,seek,straight
    python benchmarks/video_sampling.py --quick      # small stand-ins of the three: checks the script in seconds

Files (libx264 "fast", smooth moving content at a low bitrate, each frame's
index written in a strip of luma cells at the top, so the benchmark also checks
that every sampled frame is the frame its timestamp says):
  720p    two hours, 1280x720, 10 fps, a keyframe every 10 s: 64 and 768 frames
  360p    two hours, 640x360, 5 fps, a keyframe every 10 s: 64 and 768 frames
  1080p   one minute, 1920x1080, 30 fps, a keyframe every 2 s: sampled at 2 fps (120 frames)
Generated once and cached under --cache-dir (default benchmarks/.cache/).

Each measurement runs in its own subprocess, so peak memory is the process's
maximum resident set (VmHWM: FFmpeg's buffers included). Rows per file:
  decode all        decode every frame, convert none (what a naive reader must at least do)
  exact N           vlagent sample_frames(num_frames=N, mode="exact")   (strategy "auto")
  exact N seek      ... strategy="seek" (the sampler before the cost planner), with --strategies
  exact N straight  ... strategy="straight" (one straight decode), with --strategies
  keyframe N        vlagent sample_frames(num_frames=N, mode="keyframe")
  qwen-vl-utils N   qwen_vl_utils.fetch_video(nframes=N), when it can be imported
Times are wall-clock seconds of the work inside the subprocess (imports
excluded); "vs all" is the fraction of that file's decode-all time, measured
in the same run. Targets (issue 16): exact 768 <= 0.60, keyframe 768 <= 0.20,
exact 64 <= 0.08 on the two-hour files; every row <= 1.0 on every file.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from machine_info import cpu_name, peak_rss_mb  # noqa: E402  (benchmarks/ is first on sys.path)

ROOT = Path(__file__).resolve().parent
BITS = 24  # index cells in the top strip


@dataclass(frozen=True)
class VideoCase:
    name: str
    minutes: float
    width: int
    height: int
    fps: int
    keyframe_s: int
    counts: tuple[int, ...] = ()  # num_frames rows
    sample_fps: float | None = None  # or one fps row

    @property
    def frames(self) -> int:
        return int(round(self.minutes * 60 * self.fps))

    def file_name(self) -> str:
        return f"sampling_{self.minutes:g}min_{self.width}x{self.height}_{self.fps}fps_k{self.keyframe_s}s.mp4"

    def samplings(self) -> list[tuple[str, float]]:
        """(label, value): ("n", N) for num_frames=N, ("fps", f) for fps=f."""
        return [("n", n) for n in self.counts] + ([("fps", self.sample_fps)] if self.sample_fps else [])


FULL = {
    "720p": VideoCase("720p", 120, 1280, 720, 10, 10, counts=(64, 768)),
    "360p": VideoCase("360p", 120, 640, 360, 5, 10, counts=(64, 768)),
    "1080p": VideoCase("1080p", 1, 1920, 1080, 30, 2, sample_fps=2.0),
}
QUICK = {  # the same shapes, small enough to generate and measure in seconds
    "720p": VideoCase("720p", 2, 320, 180, 10, 10, counts=(16, 64)),
    "360p": VideoCase("360p", 2, 160, 96, 5, 10, counts=(16, 64)),
    "1080p": VideoCase("1080p", 1 / 6, 480, 272, 30, 2, sample_fps=2.0),
}
TARGETS = {("exact", 768): 0.60, ("keyframe", 768): 0.20, ("exact", 64): 0.08}


# ---------------------------------------------------------------------------- test video


def make_video(path: Path, case: VideoCase, preset: str = "fast") -> None:
    """Smooth moving luma gradient + index cells; written to a temp name, then renamed."""
    import av
    import numpy as np

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".partial.mp4")
    width, height, fps = case.width, case.height, case.fps
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
        stream.codec_context.gop_size = case.keyframe_s * fps
        stream.codec_context.thread_count = 0  # all cores
        stream.codec_context.options = {"preset": preset, "crf": "30", "sc_threshold": "0"}
        for i in range(case.frames):
            shift = (i * 3) % width
            luma = background[:, shift : shift + width].copy()
            luma[:strip] = 16
            for b, bit in enumerate(format(i, f"0{BITS}b")):
                if bit == "1":
                    luma[:strip, b * cell : (b + 1) * cell] = 235
            frame = av.VideoFrame.from_ndarray(np.concatenate([luma, chroma]), format="yuv420p")
            frame.pts = i
            for packet in stream.encode(frame):
                container.mux(packet)
            if i and i % (fps * 600) == 0:
                print(f"  encoded {i}/{case.frames} frames ({i / case.frames:.0%}, "
                      f"{time.perf_counter() - start:.0f} s)", file=sys.stderr)
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


def measure(kind: str, path: str, how: str, value: float, strategy: str, width: int, height: int, fps: int) -> dict:
    import av  # noqa: F401 - imported before the clock starts
    import numpy as np  # noqa: F401

    amount = {"num_frames": int(value)} if how == "n" else {"fps": value}
    result: dict = {}
    start = time.perf_counter()
    if kind == "decode_all":
        with av.open(path) as container:
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            count = sum(1 for _ in container.decode(stream))
        result["frames"] = result["decoded_frames"] = count
    elif kind in ("exact", "keyframe"):
        from vlagent.video import sample_frames

        sample = sample_frames(path, mode=kind, strategy=strategy, **amount)
        result["seconds"] = time.perf_counter() - start
        result["frames"] = len(sample)
        result["decoded_frames"] = sample.stats["decoded_frames"]
        result["seeks"] = sample.stats["seeks"]
        result["size"] = f"{sample.plan.width}x{sample.plan.height}"
        # Correctness: the index in each frame is the frame at its timestamp.
        result["wrong_frames"] = sum(read_index(f, width, height) != round(t * fps)
                                     for f, t in zip(sample.frames, sample.timestamps))
    elif kind == "qwen_vl_utils":
        from qwen_vl_utils import fetch_video

        spec = {"video": path, **({"nframes": int(value)} if how == "n" else {"fps": value})}
        video = fetch_video(spec)
        result["frames"] = int(video.shape[0])
        result["size"] = f"{video.shape[-1]}x{video.shape[-2]}"
    else:
        raise ValueError(f"unknown measurement {kind!r}")
    result.setdefault("seconds", time.perf_counter() - start)
    result["peak_rss_mb"] = peak_rss_mb()
    return result


@dataclass(frozen=True)
class Row:
    kind: str  # decode_all | exact | keyframe | qwen_vl_utils
    how: str = "n"  # n | fps
    value: float = 0
    strategy: str = "auto"

    @property
    def label(self) -> str:
        if self.kind == "decode_all":
            return "decode all"
        name = {"qwen_vl_utils": "qwen-vl-utils"}.get(self.kind, self.kind)
        amount = f"{int(self.value)}" if self.how == "n" else f"@{self.value:g}fps"
        return f"{name} {amount}" + (f" {self.strategy}" if self.kind == "exact" and self.strategy != "auto" else "")

    def target(self) -> float | None:
        return TARGETS.get((self.kind, int(self.value))) if self.how == "n" and self.strategy == "auto" else None


def run_child(row: Row, path: Path, case: VideoCase) -> dict:
    cmd = [sys.executable, __file__, "--measure", row.kind, "--path", str(path), "--how", row.how,
           "--value", str(row.value), "--strategy", row.strategy, "--width", str(case.width),
           "--height", str(case.height), "--fps", str(case.fps)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        return {"error": (proc.stderr.strip().splitlines() or ["failed"])[-1]}
    return json.loads(proc.stdout.strip().splitlines()[-1])


# ---------------------------------------------------------------------------- main


def rows_for(case: VideoCase, modes: list[str], strategies: list[str], have_qvu: bool) -> list[Row]:
    rows = [Row("decode_all")]
    for how, value in case.samplings():
        for mode in modes:
            for strategy in (strategies if mode == "exact" else ["auto"]):
                rows.append(Row(mode, how, value, strategy))
        if have_qvu:
            rows.append(Row("qwen_vl_utils", how, value))
    return rows


def print_table(case: VideoCase, path: Path, rows: list[Row], results: list[dict], judge: bool) -> list[str]:
    """The file's table; returns the targets missed."""
    size_mb = path.stat().st_size / 2**20
    print(f"\n{case.name}: {path.name}: {case.minutes:g} min, {case.width}x{case.height}, {case.fps} fps, "
          f"keyframe every {case.keyframe_s} s, {case.frames} frames, {size_mb:.1f} MiB")
    header = (f"{'measurement':<22}{'time s':>9}{'vs all':>8}{'target':>9}{'peak MB':>9}{'frames':>8}"
              f"{'decoded':>9}{'seeks':>7}{'size':>11}{'wrong':>7}")
    print(header)
    print("-" * len(header))
    all_s = next((r["seconds"] for row, r in zip(rows, results) if row.kind == "decode_all" and "seconds" in r), None)
    missed = []
    for row, r in zip(rows, results):
        if "error" in r:
            print(f"{row.label:<22}  failed: {r['error']}")
            missed.append(f"{case.name} {row.label}: failed")
            continue
        ratio = r["seconds"] / all_s if all_s else None
        limit = row.target() if judge else None
        mark = ""
        if ratio is not None and row.kind != "decode_all" and row.kind != "qwen_vl_utils":
            bound = min(limit, 1.0) if limit is not None else 1.0
            ok = ratio <= bound
            mark = f"{'<=' if limit is not None else ''}{bound:.2f} {'ok' if ok else 'MISS'}" if judge else ""
            if judge and not ok:
                missed.append(f"{case.name} {row.label}: {ratio:.3f} > {bound:.2f}")
        print(f"{row.label:<22}{r['seconds']:>9.3f}{(f'{ratio:.3f}' if ratio is not None else '-'):>8}{mark:>9}"
              f"{r['peak_rss_mb']:>9.0f}{r.get('frames', 0):>8}{r.get('decoded_frames', '-')!s:>9}"
              f"{r.get('seeks', '-')!s:>7}{r.get('size', '-'):>11}{r.get('wrong_frames', '-')!s:>7}")
    return missed


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", "--smoke", action="store_true", help="small stand-ins of the three files: seconds")
    p.add_argument("--files", default="720p,360p,1080p", help="which files (default 720p,360p,1080p)")
    p.add_argument("--modes", default="exact,keyframe", help="sampler modes to measure (default exact,keyframe)")
    p.add_argument("--strategies", default="auto",
                   help="exact-mode strategies to measure: auto (default), seek, straight (comma-separated)")
    p.add_argument("--preset", default="fast", help="libx264 preset for generating the videos (default fast)")
    p.add_argument("--cache-dir", default=str(ROOT / ".cache"), help="where the generated videos are kept")
    p.add_argument("--measure", help=argparse.SUPPRESS)
    p.add_argument("--path", help=argparse.SUPPRESS)
    p.add_argument("--how", default="n", help=argparse.SUPPRESS)
    p.add_argument("--value", type=float, default=0, help=argparse.SUPPRESS)
    p.add_argument("--strategy", default="auto", help=argparse.SUPPRESS)
    p.add_argument("--width", type=int, default=0, help=argparse.SUPPRESS)
    p.add_argument("--height", type=int, default=0, help=argparse.SUPPRESS)
    p.add_argument("--fps", type=int, default=0, help=argparse.SUPPRESS)
    args = p.parse_args(argv)

    if args.measure:  # child process: one measurement, JSON on stdout
        print(json.dumps(measure(args.measure, args.path, args.how, args.value, args.strategy,
                                 args.width, args.height, args.fps)))
        return 0

    cases = QUICK if args.quick else FULL
    names = [n.strip() for n in args.files.split(",") if n.strip()]
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    strategies = [s.strip() for s in args.strategies.split(",") if s.strip()]
    for what, given, known in (("file", names, cases), ("mode", modes, ("exact", "keyframe")),
                               ("strategy", strategies, ("auto", "seek", "straight"))):
        if unknown := set(given) - set(known):
            p.error(f"unknown {what}(s): {', '.join(sorted(unknown))} (known: {', '.join(known)})")
    try:
        import qwen_vl_utils  # noqa: F401

        have_qvu = True
    except Exception:  # noqa: BLE001 - any import failure means "not available"
        have_qvu = False

    cache = Path(args.cache_dir)
    cache.mkdir(parents=True, exist_ok=True)
    if cache == ROOT / ".cache":
        (cache / ".gitignore").write_text("*\n")
    load_before = os.getloadavg()[0]
    missed: list[str] = []
    wrong = False
    tables = []
    for name in names:
        case = cases[name]
        path = cache / case.file_name()
        if not path.exists():
            print(f"generating {path.name} (once; cached) ...", file=sys.stderr)
            t = time.perf_counter()
            make_video(path, case, preset=args.preset)
            print(f"  done in {time.perf_counter() - t:.1f} s", file=sys.stderr)
        rows = rows_for(case, modes, strategies, have_qvu)
        results = []
        for row in rows:
            print(f"  {case.name}: measuring {row.label}", file=sys.stderr)
            results.append(run_child(row, path, case))
        tables.append((case, path, rows, results))
        wrong |= any(r.get("wrong_frames") for r in results)

    print(f"\nmachine: {cpu_name()}, {os.cpu_count()} CPUs, Python {platform.python_version()}; "
          f"load average (1 min) {load_before:.2f} before, {os.getloadavg()[0]:.2f} after")
    for case, path, rows, results in tables:
        missed += print_table(case, path, rows, results, judge=not args.quick)
    if not have_qvu:
        print("\nqwen-vl-utils: not importable here (it also needs torchvision, decord or torchcodec); rows skipped.")
    if args.quick:
        print("\n--quick: small stand-in files; targets are judged on the full files only.")
    elif missed:
        print("\ntargets missed:\n  " + "\n  ".join(missed))
    else:
        print("\nall targets met.")
    if wrong:
        print("\nERROR: some sampled frames are not the frame their timestamp says.")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
