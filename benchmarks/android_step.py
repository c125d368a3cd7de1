"""Per-step overhead of the Android environment: one screenshot + one tap over adb.

Starts its own adb server (a free port) and the virtual phone, then times N
steps of `screenshot -> input tap` three ways, side by side:

- raw:      AndroidEnv's path: `exec:screencap` raw RGBA, decoded without PNG
- png:      AndroidEnv with screencap="png" (`screencap -p`, PNG decode)
- adbutils: `adbutils` device.screenshot() (`screencap -p` through its shell reader)

The phone is virtual, so the figures measure adb transport + encode/decode
on this machine, not a phone's screencap time (a real phone adds its own
capture cost, ~50-300 ms, to every column, and its USB link is slower than
loopback for the 10 MB raw frame).

    python benchmarks/android_step.py --steps 20 [--width 1080 --height 2400]
"""

from __future__ import annotations

import argparse
import os
import platform
import socket
import statistics
import subprocess
import sys
import time

from vlagent.environments.android import AndroidEnv
from vlagent.environments.practice.virtual_android import VirtualAndroidDevice


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _adb(port: int, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["adb", "-P", str(port), *args], capture_output=True, text=True, timeout=30,
                          env=dict(os.environ, ANDROID_ADB_SERVER_PORT=str(port)), stdin=subprocess.DEVNULL)


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=20, help="timed steps per method (default 20)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps first (default 2)")
    parser.add_argument("--width", type=int, default=1080)
    parser.add_argument("--height", type=int, default=2400)
    args = parser.parse_args(argv)
    if args.steps < 1:
        parser.error("--steps must be at least 1")

    port = _free_port()
    if _adb(port, "start-server").returncode != 0:
        print("cannot start the adb server (is `adb` installed?)", file=sys.stderr)
        return 1
    device = VirtualAndroidDevice(width=args.width, height=args.height, status_time="12:00").start()
    try:
        if "connected" not in _adb(port, "connect", device.serial).stdout:
            print(f"adb connect {device.serial} failed", file=sys.stderr)
            return 1
        deadline = time.monotonic() + 10
        while f"{device.serial}\tdevice" not in _adb(port, "devices").stdout:
            if time.monotonic() > deadline:
                print("the virtual phone never came online", file=sys.stderr)
                return 1
            time.sleep(0.05)
        env = AndroidEnv(device.serial, adb_port=port, read_elements=False, settle=0)
        tap = env.to_device((0.5, 0.05))  # the status bar: taps change nothing, frames stay alike

        def step_env(mode: str) -> tuple[float, float]:
            t0 = time.perf_counter()
            env.screenshot(mode)
            t1 = time.perf_counter()
            env.shell(f"input tap {tap[0]} {tap[1]}")
            return t1 - t0, time.perf_counter() - t1

        def step_adbutils() -> tuple[float, float]:
            t0 = time.perf_counter()
            env.device.screenshot().load()  # PIL opens lazily: decode, as any consumer must
            t1 = time.perf_counter()
            env.device.shell(f"input tap {tap[0]} {tap[1]}")
            return t1 - t0, time.perf_counter() - t1

        methods = {"raw (AndroidEnv)": lambda: step_env("raw"), "png (AndroidEnv)": lambda: step_env("png"),
                   "adbutils.screenshot": step_adbutils}
        rows = []
        for name, step in methods.items():
            for _ in range(args.warmup):
                step()
            shots, taps, totals = [], [], []
            for _ in range(args.steps):
                s, t = step()
                shots.append(s * 1000)
                taps.append(t * 1000)
                totals.append((s + t) * 1000)
            rows.append((name, shots, taps, totals))
    finally:
        device.stop()
        _adb(port, "kill-server")

    print(f"Android step overhead, virtual phone {args.width}x{args.height} over a local adb server "
          f"({args.steps} steps; {platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()})")
    print(f"{'method':<22}{'screenshot med':>16}{'p90':>9}{'tap med':>10}{'step med':>11}{'p90':>9}  (ms)")
    for name, shots, taps, totals in rows:
        print(f"{name:<22}{statistics.median(shots):>16.1f}{_pct(shots, 0.9):>9.1f}{statistics.median(taps):>10.1f}"
              f"{statistics.median(totals):>11.1f}{_pct(totals, 0.9):>9.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
