"""`vlagent demo --android`: demos/android_settings.py on the virtual phone, over a real adb server.

The adb server is a private one on a free port (killed afterwards), so a user's own server and phones
are left alone; the phone is the bundled virtual one, at 720x1600 (the grounding harvest uses
1080x2400), `adb connect`ed like a network device. The phone's own `adb shell state` is checked.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import subprocess
import time
from pathlib import Path
from typing import Any, Iterator

from vlagent.demo import DEMO_TEXT, DemoOutcome, DemoUnavailable, Log, load_script, run_script, save_state

PHONE = {"width": 720, "height": 1600, "density": 320}


def android_checks(state: dict[str, Any]) -> dict[str, bool]:
    toggles = state.get("toggles") or {}
    return {
        "Dark mode is on": toggles.get("dark_mode") is True,
        "Battery saver is on": toggles.get("battery_saver") is True,
        "the Settings list scrolled": ((state.get("scroll") or {}).get("settings") or 0) > 0,
        f"Notes keeps just {DEMO_TEXT!r} (the other note long-pressed away)": state.get("notes") == [DEMO_TEXT],
        "Notes is on screen": state.get("app") == "notes",
    }


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _adb(port: int, *args: str, timeout: float = 20) -> subprocess.CompletedProcess:
    env = {**os.environ, "ANDROID_ADB_SERVER_PORT": str(port)}
    return subprocess.run(["adb", "-P", str(port), *args], capture_output=True, text=True, timeout=timeout,
                          env=env, stdin=subprocess.DEVNULL)


@contextlib.contextmanager
def virtual_phone(log: Log, timeout: float = 15.0) -> Iterator[tuple[str, int]]:
    """(serial, adb server port): the virtual phone, `adb connect`ed to a private adb server."""
    from vlagent.environments.practice.virtual_android import VirtualAndroidDevice

    if shutil.which("adb") is None:
        raise DemoUnavailable("the `adb` binary is not installed (Debian/Ubuntu: apt-get install adb)")
    port = _free_port()
    started = _adb(port, "start-server")
    if started.returncode != 0:
        raise DemoUnavailable(f"`adb start-server` failed: {started.stderr.strip()[-300:]}")
    device = VirtualAndroidDevice(**PHONE).start()
    try:
        deadline = time.monotonic() + timeout
        while f"{device.serial}\tdevice" not in _adb(port, "devices").stdout:
            if time.monotonic() > deadline:
                raise DemoUnavailable(f"the virtual phone {device.serial} never became an adb device")
            _adb(port, "connect", device.serial)
            time.sleep(0.1)
        log(f"virtual phone {device.serial} ({PHONE['width']}x{PHONE['height']}) on the adb server at port {port}")
        yield device.serial, port
    finally:
        device.stop()
        _adb(port, "kill-server")


def run_android_demo(run_dir: Path, *, grounder: Any = "default", log: Log = lambda text: None) -> DemoOutcome:
    import vlagent
    from vlagent.environments.base import EnvironmentUnavailable

    script = load_script("android_settings")
    t0 = time.monotonic()
    with virtual_phone(log) as (serial, port):
        try:
            from vlagent.environments.android import AndroidEnv

            phone = AndroidEnv(serial, adb_port=port)
        except (ImportError, EnvironmentUnavailable) as exc:
            raise DemoUnavailable(f"cannot reach the virtual phone: {exc}") from None
        bot = vlagent.connect("android", grounder=grounder, env=phone, run_dir=run_dir,
                              task="vlagent demo --android: Settings (demos/android_settings.py)")
        log(f"grounder: {bot.grounder.name}; running demos/android_settings.py")
        status, error = run_script(bot, script, log)
        final = json.loads(phone.shell("state"))
    save_state(bot.run_dir, final, drop=("elements", "events"))
    return DemoOutcome(status, bot.run_dir, bot.session.report, bot.grounder.name, bot.session.steps,
                       time.monotonic() - t0, error, android_checks(final), final)


__all__ = ["run_android_demo", "android_checks", "virtual_phone", "PHONE"]
