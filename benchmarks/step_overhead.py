"""The agent loop's own cost per step, without the model: capture, encode, click.

Starts its own Xvfb at 1920x1080 with the practice app filling the screen
(real widgets and text, not a black screen), then times many steps of

    capture (mss via DesktopEnv.observe, or pyautogui.screenshot)
    -> encode (PNG compress_level=1 as the run recorder saves it; JPEG q90 as
       an API policy may send it)
    -> execute a click through DesktopEnv (pyautogui + XTest)

with the two capture paths alternating in blocks of steps (so machine load
hits both alike), and prints median / p90 per phase and the ratios.

    python benchmarks/step_overhead.py [--steps 200] [--size 1920x1080]
"""

from __future__ import annotations

import argparse
import io
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return ordered[index]


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def _enable_pyautogui_screenshot() -> str | None:
    """pyautogui.screenshot() on Linux goes through pyscreeze, which takes Pillow's
    in-memory ImageGrab.grab() path only when it has found gnome-screenshot (as on
    a stock Ubuntu desktop) and otherwise shells out to scrot. Without either, take
    the Pillow path as a stock desktop would; the binary itself is never run there."""
    import pyscreeze

    if pyscreeze.GNOMESCREENSHOT_EXISTS or pyscreeze.SCROT_EXISTS:
        return None
    pyscreeze.GNOMESCREENSHOT_EXISTS = True
    return "note: no gnome-screenshot/scrot here; pyautogui.screenshot() runs its Pillow ImageGrab path as on Ubuntu"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=200, help="measured steps per capture path")
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--block", type=int, default=10, help="steps per path before switching to the other")
    parser.add_argument("--size", default="1920x1080", help="virtual screen WxH")
    parser.add_argument("--no-app", action="store_true", help="leave the screen empty (black) instead")
    args = parser.parse_args(argv)
    width, height = (int(v) for v in args.size.lower().split("x"))

    from PIL import Image

    from vlagent.actions import Action
    from vlagent.environments import practice_app
    from vlagent.environments.desktop import DesktopEnv
    from vlagent.environments.xserver import binaries_available, start_virtual_display

    missing = binaries_available()
    if missing:
        print(f"cannot run: {missing}", file=sys.stderr)
        return 2

    def encode_png(image: Image.Image) -> int:
        buffer = io.BytesIO()
        image.save(buffer, format="PNG", compress_level=1)
        return buffer.tell()

    def encode_jpeg(image: Image.Image) -> int:
        buffer = io.BytesIO()
        image.save(buffer, format="JPEG", quality=90)
        return buffer.tell()

    with start_virtual_display(width, height) as display, tempfile.TemporaryDirectory() as tmp:
        app = None
        if not args.no_app:
            app = practice_app.launch(Path(tmp) / "state.json", display.name, geometry=f"{width}x{height}+0+0")
        try:
            env = DesktopEnv(display=display.name)
            os.environ["DISPLAY"] = display.name  # pyautogui.screenshot (Pillow's ImageGrab) reads it
            gui = env.gui
            note = _enable_pyautogui_screenshot()
            # Click on the app's header band: realistic target, no handler, no redraw storm.
            if app is not None:
                x, y, w, _ = practice_app.read_state(Path(tmp) / "state.json")["window"]
                targets = [((x + w * f) / width, (y + 18) / height) for f in (0.45, 0.55)]
            else:
                targets = [(0.45, 0.5), (0.55, 0.5)]

            captures = {
                "mss (DesktopEnv.observe)": lambda: env.observe().image,
                "pyautogui.screenshot": lambda: gui.screenshot(),
            }
            phases = ("capture", "png", "jpeg", "click", "step_png", "step_jpeg")
            timings = {name: {p: [] for p in phases} for name in captures}
            sizes: dict[str, list[int]] = {"png": [], "jpeg": []}
            # Paths alternate in blocks of steps: load changes hit both alike, and each
            # block runs like a real loop that always uses one capture path.
            done = {name: 0 for name in captures}
            while min(done.values()) < args.warmup + args.steps:
                for name, capture in captures.items():
                    for _ in range(args.block):
                        step = done[name]
                        if step >= args.warmup + args.steps:
                            break
                        done[name] += 1
                        t0 = time.perf_counter()
                        image = capture()
                        t1 = time.perf_counter()
                        png_bytes = encode_png(image)
                        t2 = time.perf_counter()
                        jpeg_bytes = encode_jpeg(image)
                        t3 = time.perf_counter()
                        env.execute(Action("click", point=targets[step % 2]))
                        t4 = time.perf_counter()
                        if step < args.warmup:
                            continue
                        if image.size != (width, height):
                            raise SystemExit(f"{name} returned {image.size}, expected {(width, height)}")
                        row = timings[name]
                        row["capture"].append(t1 - t0)
                        row["png"].append(t2 - t1)
                        row["jpeg"].append(t3 - t2)
                        row["click"].append(t4 - t3)
                        # One step as the loop runs it: capture + one encode + the click.
                        row["step_png"].append((t1 - t0) + (t2 - t1) + (t4 - t3))
                        row["step_jpeg"].append((t1 - t0) + (t3 - t2) + (t4 - t3))
                        sizes["png"].append(png_bytes)
                        sizes["jpeg"].append(jpeg_bytes)
        finally:
            if app is not None:
                app.terminate()
                app.wait(timeout=5)

    print(f"step overhead at {width}x{height} on Xvfb, {args.steps} steps per path (+{args.warmup} warm-up), "
          f"{'practice app full screen' if not args.no_app else 'empty screen'}")  # fmt: skip
    if note:
        print(note)
    print(f"machine: {cpu_name()}, {os.cpu_count()} CPUs, Python {platform.python_version()}")
    print(f"encoded sizes: PNG level 1 ≈ {statistics.median(sizes['png']) / 1e3:.0f} kB, "
          f"JPEG q90 ≈ {statistics.median(sizes['jpeg']) / 1e3:.0f} kB")  # fmt: skip
    print("milliseconds, median / p90")
    header = f"{'capture path':<26}" + "".join(f"{p:>18}" for p in phases)
    print(header)
    print("-" * len(header))
    for name, row in timings.items():
        cells = "".join(
            f"{statistics.median(row[p]) * 1e3:>10.1f} / {percentile(row[p], 0.9) * 1e3:>5.1f}" for p in phases
        )
        print(f"{name:<26}{cells}")
    print()
    (fast, slow) = list(timings)
    for phase in ("capture", "step_png", "step_jpeg"):
        ratio = statistics.median(timings[slow][phase]) / statistics.median(timings[fast][phase])
        print(f"{phase}: {slow} / {fast} = {ratio:.2f}x (medians)")
    print("capture includes the conversion to an RGB PIL image; step_png = capture + PNG level 1 (as the run "
          "recorder saves screenshots) + click; step_jpeg = capture + JPEG q90 + click")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
