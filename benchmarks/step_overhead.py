"""The agent loop's own cost per step, without the model: capture, encode, click.

Starts its own Xvfb at 1920x1080 with the practice app filling the screen
(real widgets and text, not a black screen), then times many steps of

    capture (mss via DesktopEnv.observe, or pyautogui.screenshot)
    -> encode (PNG as the run recorder writes it, `vlagent.images.encode_png`;
       Pillow's PNG at compress_level=1, which the recorder used before; JPEG
       q90 as an API policy may send it)
    -> execute a click through DesktopEnv (pyautogui + XTest)

with the two capture paths alternating in blocks of steps (so machine load
hits both alike), and prints median / p90 per phase and the ratios.

Then it times the real loop: `Agent.run` with a `ScriptedPolicy` of clicks
on the same DesktopEnv, recording into a real run folder, in three setups:

    inline Pillow   the screenshot encoded with Pillow's PNG on the loop's path
                    (the recorder before it had a writer thread and its own
                    encoder; patched in for comparison)
    writer thread   the recorder as shipped: encode_png in its writer thread
    writer + model  the same with a policy that takes --think-ms per step, as
                    any real model does: the writer then has time to keep up

Per setup: the wall time of a step (one on_step to the next), the agent's own
stage timings (observe, record = handing the screenshot over, execute), and
loop cost = step time minus the policy's think time.

    python benchmarks/step_overhead.py [--steps 200] [--size 1920x1080] [--think-ms 100]
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
from typing import Any

from machine_info import cpu_name  # noqa: E402  (benchmarks/ is first on sys.path)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return ordered[index]


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


def _ms(values: list[float]) -> str:
    return f"{statistics.median(values) * 1e3:>7.1f} / {percentile(values, 0.9) * 1e3:>6.1f}"


class _ThinkingPolicy:
    """Wraps a policy and sleeps `seconds` per decision, like a model's latency."""

    def __init__(self, inner, seconds: float) -> None:
        self.inner, self.seconds, self.name = inner, seconds, inner.name

    def decide(self, task, observation, history):
        time.sleep(self.seconds)
        return self.inner.decide(task, observation, history)


def time_agent_loop(
    env: Any,
    targets: list[tuple[float, float]],
    steps: int,
    warmup: int,
    run_dir: Path,
    think_s: float = 0.0,
    inline_png: bool = False,
) -> dict[str, Any]:
    """Run the real Agent loop for warmup+steps clicks; per-step wall times and stage timings (seconds)."""
    from vlagent.actions import Action
    from vlagent.agent import Agent
    from vlagent.policy.scripted import ScriptedPolicy
    from vlagent.recorder import RunRecorder, screenshot_name

    total = warmup + steps
    policy = ScriptedPolicy([Action("click", point=targets[i % 2]) for i in range(total)])
    stamps: list[float] = []
    agent = Agent(
        _ThinkingPolicy(policy, think_s) if think_s else policy,
        env,
        max_steps=total,
        run_dir=run_dir,
        on_step=lambda record: stamps.append(time.perf_counter()),
    )
    original = RunRecorder.save_screenshot
    if inline_png:  # what the recorder did before its writer thread

        def save_inline(self, index, image):
            image.save(self.run_dir / screenshot_name(index), format="PNG", compress_level=1)
            return screenshot_name(index)

        RunRecorder.save_screenshot = save_inline
    try:
        started = time.perf_counter()
        result = agent.run("click the header band")
        returned = time.perf_counter()
    finally:
        RunRecorder.save_screenshot = original
    if result.steps != total or len(stamps) != total:
        raise SystemExit(f"agent loop ran {result.steps} of {total} steps: {result.status} {result.error}")
    walls = [b - a for a, b in zip([started, *stamps], stamps)][warmup:]
    records = result.records[warmup:]
    stages = {name: [r.timings[name] for r in records] for name in ("observe", "record", "execute")}
    return {
        "step": walls,
        "loop": [w - think_s for w in walls],
        **stages,
        # After the last step: waiting for the writer to drain, then building report.html.
        "finish_s": returned - stamps[-1],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=200, help="measured steps per capture path")
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--block", type=int, default=10, help="steps per path before switching to the other")
    parser.add_argument("--size", default="1920x1080", help="virtual screen WxH")
    parser.add_argument("--no-app", action="store_true", help="leave the screen empty (black) instead")
    parser.add_argument("--think-ms", type=float, default=100.0, help="simulated model latency for the last loop setup")
    args = parser.parse_args(argv)
    width, height = (int(v) for v in args.size.lower().split("x"))

    from PIL import Image

    from vlagent.actions import Action
    from vlagent.environments.practice import desktop_app
    from vlagent.environments.desktop import DesktopEnv
    from vlagent.environments.xserver import binaries_available, start_virtual_display

    missing = binaries_available()
    if missing:
        print(f"cannot run: {missing}", file=sys.stderr)
        return 2

    from vlagent.images import encode_png as recorder_png

    def encode_png(image: Image.Image) -> int:
        return len(recorder_png(image))

    def encode_pillow_png(image: Image.Image) -> int:
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
            app = desktop_app.launch(Path(tmp) / "state.json", display.name, geometry=f"{width}x{height}+0+0")
        try:
            env = DesktopEnv(display=display.name)
            os.environ["DISPLAY"] = display.name  # pyautogui.screenshot (Pillow's ImageGrab) reads it
            gui = env.gui
            note = _enable_pyautogui_screenshot()
            # Click on the app's header band: realistic target, no handler, no redraw storm.
            if app is not None:
                x, y, w, _ = desktop_app.read_state(Path(tmp) / "state.json")["window"]
                targets = [((x + w * f) / width, (y + 18) / height) for f in (0.45, 0.55)]
            else:
                targets = [(0.45, 0.5), (0.55, 0.5)]

            captures = {
                "mss (DesktopEnv.observe)": lambda: env.observe().image,
                "pyautogui.screenshot": lambda: gui.screenshot(),
            }
            phases = ("capture", "png", "pillow_png", "jpeg", "click", "step_png", "step_jpeg")
            timings = {name: {p: [] for p in phases} for name in captures}
            sizes: dict[str, list[int]] = {"png": [], "pillow_png": [], "jpeg": []}
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
                        pillow_bytes = encode_pillow_png(image)
                        t3p = time.perf_counter()
                        env.execute(Action("click", point=targets[step % 2]))
                        t4 = time.perf_counter()
                        click_s = t4 - t3p
                        if step < args.warmup:
                            continue
                        if image.size != (width, height):
                            raise SystemExit(f"{name} returned {image.size}, expected {(width, height)}")
                        row = timings[name]
                        row["capture"].append(t1 - t0)
                        row["png"].append(t2 - t1)
                        row["jpeg"].append(t3 - t2)
                        row["pillow_png"].append(t3p - t3)
                        row["click"].append(click_s)
                        # One step as the loop would run it with the encode inline: capture + one encode + the click.
                        row["step_png"].append((t1 - t0) + (t2 - t1) + click_s)
                        row["step_jpeg"].append((t1 - t0) + (t3 - t2) + click_s)
                        sizes["png"].append(png_bytes)
                        sizes["pillow_png"].append(pillow_bytes)
                        sizes["jpeg"].append(jpeg_bytes)
            loops = {}
            for label, think_s, inline in (
                ("inline Pillow", 0.0, True),
                ("writer thread", 0.0, False),
                (f"writer + {args.think_ms:g} ms model", args.think_ms / 1e3, False),
            ):
                loops[label] = time_agent_loop(
                    env, targets, args.steps, args.warmup, Path(tmp) / label.replace(" ", "-"),
                    think_s=think_s, inline_png=inline,
                )  # fmt: skip
        finally:
            if app is not None:
                app.terminate()
                app.wait(timeout=5)

    print(f"step overhead at {width}x{height} on Xvfb, {args.steps} steps per path (+{args.warmup} warm-up), "
          f"{'practice app full screen' if not args.no_app else 'empty screen'}")  # fmt: skip
    if note:
        print(note)
    print(f"machine: {cpu_name()}, {os.cpu_count()} CPUs, Python {platform.python_version()}")
    print(f"encoded sizes: PNG (recorder) ≈ {statistics.median(sizes['png']) / 1e3:.0f} kB, "
          f"PNG (Pillow level 1) ≈ {statistics.median(sizes['pillow_png']) / 1e3:.0f} kB, "
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
    print("capture includes the conversion to an RGB PIL image; png = the recorder's encode_png, pillow_png = "
          "Pillow's PNG at compress_level=1; step_png = capture + png + click (the encode inline); "
          "step_jpeg = capture + JPEG q90 + click")  # fmt: skip

    print()
    print(f"the agent loop (Agent + ScriptedPolicy clicks + DesktopEnv with mss + the run recorder), "
          f"{args.steps} steps each, milliseconds, median / p90")  # fmt: skip
    columns = ("step", "loop", "observe", "record", "execute")
    header = f"{'setup':<26}" + "".join(f"{c:>16}" for c in columns) + f"{'finish':>10}"
    print(header)
    print("-" * len(header))
    for label, row in loops.items():
        print(f"{label:<26}" + "".join(f"{_ms(row[c]):>16}" for c in columns) + f"{row['finish_s'] * 1e3:>8.0f} ms")
    print("step = wall time of one step; loop = step minus the simulated model time; record = the loop's time to "
          "hand over (or, inline, encode) the screenshot and write the trajectory line; finish = after the last "
          "step: draining the writer and building report.html")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
