"""python -m vlagent.environments.practice.virtual_android --port 5555 [--width 1080 --height 2400 --density 420]

Runs the virtual phone in the foreground until Ctrl+C or SIGTERM; then
`adb connect 127.0.0.1:5555` and drive it like a phone (`adb shell state`
prints what is on screen as JSON).
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading

from vlagent.environments.practice.virtual_android.server import VirtualAndroidDevice


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m vlagent.environments.practice.virtual_android", description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, default=5555, help="TCP port to listen on (default 5555)")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--width", type=int, default=1080, help="portrait width in pixels (default 1080)")
    parser.add_argument("--height", type=int, default=2400, help="portrait height in pixels (default 2400)")
    parser.add_argument("--density", type=int, default=420, help="screen density in dpi (default 420)")
    parser.add_argument("--adbkeyboard", action=argparse.BooleanOptionalAction, default=True,
                        help="offer the ADBKeyboard IME (non-ASCII typing); --no-adbkeyboard to test without it")
    parser.add_argument("--model", default="vlagent Virtual Phone", help="ro.product.model")
    args = parser.parse_args(argv)
    if args.width <= 0 or args.height <= 0:
        parser.error(f"--width and --height must be positive, got {args.width}x{args.height}")

    device = VirtualAndroidDevice(port=args.port, host=args.host, width=args.width, height=args.height,
                                  density=args.density, adbkeyboard=args.adbkeyboard, model=args.model)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    try:
        device.start()
    except OSError as e:
        print(f"cannot listen on {args.host}:{args.port}: {e}", file=sys.stderr)
        return 1
    print(f"virtual Android device on {device.serial} ({args.width}x{args.height}, {args.density} dpi); "
          f"connect with: adb connect {device.serial}", flush=True)
    try:
        while not stop.wait(0.5):
            pass
    finally:
        device.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
