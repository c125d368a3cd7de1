"""Start throw-away X servers: one virtual screen (Xvfb) or two monitors (Xorg dummy).

Used by the desktop tests, the step-overhead benchmark and `vlagent demo`:

    with start_virtual_display(1280, 720) as display:
        app = desktop_app.launch(state_file, display.name)
        env = DesktopEnv(display=display.name)

Nothing here touches the caller's DISPLAY; pass `display.name` (or
`display.env` to a subprocess) explicitly.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, Sequence

X11_SOCKET_DIR = Path("/tmp/.X11-unix")
_USED_NUMBERS: set[int] = set()


class DisplayStartError(RuntimeError):
    """The X server could not be started (binary missing, crashed, never answered)."""


@dataclass
class VirtualDisplay:
    """A running X server. `monitors` are (left, top, width, height) as laid out."""

    number: int
    monitors: list[tuple[int, int, int, int]]
    process: subprocess.Popen
    workdir: Path
    xauthority: Path = field(default=Path(os.devnull))

    @property
    def name(self) -> str:
        return f":{self.number}"

    @property
    def size(self) -> tuple[int, int]:
        """Size of the whole desktop (the bounding box of all monitors)."""
        return (
            max(left + w for left, _, w, _ in self.monitors),
            max(top + h for _, top, _, h in self.monitors),
        )

    @property
    def env(self) -> dict[str, str]:
        """os.environ with DISPLAY (and an existing XAUTHORITY) pointing at this server."""
        return {**os.environ, "DISPLAY": self.name, "XAUTHORITY": str(self.xauthority)}


def _display_in_use(number: int) -> bool:
    return Path(f"/tmp/.X{number}-lock").exists() or (X11_SOCKET_DIR / f"X{number}").exists()


def free_display_number(start: int = 90, stop: int = 600) -> int:
    """A display number with neither a lock file nor a socket (racy by nature;
    the caller retries when the server reports the number is taken)."""
    # Spread concurrent callers (parallel test sessions) over the range.
    offset = (os.getpid() * 7) % (stop - start)
    for i in range(stop - start):
        number = start + (offset + i) % (stop - start)
        # Numbers this process used before are skipped too, so a stale connection
        # to a stopped server can never be mistaken for one to a new server.
        if number not in _USED_NUMBERS and not _display_in_use(number):
            _USED_NUMBERS.add(number)
            return number
    raise DisplayStartError(f"no free X display number in :{start}..:{stop - 1}")


def _socket_ready(number: int) -> bool:
    path = X11_SOCKET_DIR / f"X{number}"
    if not path.exists():
        return False
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        try:
            sock.connect(str(path))
        except OSError:
            return False
    return True


def _wait_ready(proc: subprocess.Popen, number: int, timeout: float, log: Path) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise DisplayStartError(
                f"X server for :{number} exited with code {proc.returncode}; log {log}:\n{log_tail(log)}"
            )
        if _socket_ready(number):
            return
        time.sleep(0.02)
    proc.kill()
    raise DisplayStartError(f"X server for :{number} did not accept connections within {timeout:g}s; log {log}")


def log_tail(path: Path, lines: int = 15) -> str:
    """The last lines of a server's log file, for an error message."""
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def stop_process(proc: subprocess.Popen) -> None:
    """Terminate a server process, killing it if it does not exit within 5 s."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)


def _require(binary: str, package: str) -> str:
    path = shutil.which(binary)
    if path is None:
        raise DisplayStartError(f"{binary} not found on PATH; install it (Debian/Ubuntu: apt-get install {package})")
    return path


@contextlib.contextmanager
def _server(
    argv_for: "callable", monitors: list[tuple[int, int, int, int]], timeout: float, attempts: int = 5
) -> Iterator[VirtualDisplay]:
    workdir = Path(tempfile.mkdtemp(prefix="vlagent-x-"))
    xauthority = workdir / "Xauthority"
    xauthority.touch(mode=0o600)  # python-xlib refuses to connect when the file is missing
    proc = None
    try:
        for _ in range(attempts):
            number = free_display_number()
            log = workdir / f"server-{number}.log"
            with open(log, "wb") as log_file:
                proc = subprocess.Popen(
                    argv_for(number, workdir, log),
                    stdout=log_file,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                    start_new_session=True,  # a Ctrl-C in the terminal does not kill it mid-test
                )
            try:
                _wait_ready(proc, number, timeout, log)
                break
            except DisplayStartError:
                stop_process(proc)
                # Another process may have grabbed the number between the check and the start.
                if "already active" in log_tail(log) or "Server is already" in log_tail(log):
                    continue
                raise
        else:
            raise DisplayStartError(f"could not find a free display number after {attempts} attempts")
        yield VirtualDisplay(number, monitors, proc, workdir, xauthority)
    finally:
        if proc is not None:
            stop_process(proc)
        shutil.rmtree(workdir, ignore_errors=True)


@contextlib.contextmanager
def start_virtual_display(width: int = 1280, height: int = 720, timeout: float = 10.0) -> Iterator[VirtualDisplay]:
    """Run `Xvfb :N -screen 0 WxHx24 -nolisten tcp` on a free display number.

    Yields a `VirtualDisplay` once the server accepts connections; kills it on exit.
    """
    if width < 64 or height < 64:
        raise ValueError(f"screen size must be at least 64x64, got {width}x{height}")
    xvfb = _require("Xvfb", "xvfb")

    def argv(number: int, workdir: Path, log: Path) -> list[str]:
        return [xvfb, f":{number}", "-screen", "0", f"{width}x{height}x24", "-nolisten", "tcp", "-noreset"]

    with _server(argv, [(0, 0, width, height)], timeout) as display:
        yield display


_DUMMY_CONFIG = """\
Section "ServerFlags"
    Option "AutoAddDevices" "false"
    Option "AutoEnableDevices" "false"
    Option "DontVTSwitch" "true"
EndSection

Section "Device"
    Identifier "dummy-card"
    Driver "dummy"
    VideoRam 256000
EndSection

Section "Monitor"
    Identifier "dummy-monitor"
    HorizSync 5.0 - 1000.0
    VertRefresh 5.0 - 200.0
EndSection

Section "Screen"
    Identifier "dummy-screen"
    Device "dummy-card"
    Monitor "dummy-monitor"
    DefaultDepth 24
    SubSection "Display"
        Depth 24
        Virtual {virtual_w} {virtual_h}
    EndSubSection
EndSection
"""


def _xrandr(display: VirtualDisplay, *args: str) -> None:
    result = subprocess.run(["xrandr", *args], env=display.env, capture_output=True, text=True, timeout=10)
    if result.returncode != 0:
        raise DisplayStartError(f"xrandr {' '.join(args)} failed: {result.stderr.strip()}")


def _mode_name(width: int, height: int) -> str:
    return f"{width}x{height}"


@contextlib.contextmanager
def start_dual_monitor_display(
    monitors: Sequence[tuple[int, int]] = ((1280, 720), (1024, 768)), timeout: float = 15.0
) -> Iterator[VirtualDisplay]:
    """Two (or more) monitors side by side, left to right, top-aligned.

    Xvfb's multi-screen mode is invisible to mss, so this runs Xorg with the
    dummy video driver (Debian: xserver-xorg-video-dummy) from a config file in
    a temporary folder, with its own `-logfile` there, and lays the outputs
    out with xrandr. Needs permission to run Xorg (root, or Xorg.wrap allowing it).
    """
    if not 1 <= len(monitors) <= 4:
        raise ValueError(f"between 1 and 4 monitors, got {len(monitors)}")
    xorg = _require("Xorg", "xserver-xorg-core xserver-xorg-video-dummy")
    _require("xrandr", "x11-xserver-utils")
    layout: list[tuple[int, int, int, int]] = []
    left = 0
    for width, height in monitors:
        layout.append((left, 0, width, height))
        left += width
    virtual_w, virtual_h = left, max(h for _, h in monitors)

    def argv(number: int, workdir: Path, log: Path) -> list[str]:
        config = workdir / "xorg.conf"
        config.write_text(_DUMMY_CONFIG.format(virtual_w=virtual_w, virtual_h=virtual_h))
        configdir = workdir / "xorg.conf.d"  # empty: ignore the system's config snippets
        configdir.mkdir(exist_ok=True)
        return [
            xorg, f":{number}", "-config", str(config), "-configdir", str(configdir),
            "-logfile", str(log), "-noreset", "-nolisten", "tcp", "-novtswitch", "-sharevts",
        ]  # fmt: skip

    with _server(argv, layout, timeout) as display:
        outputs = [f"DUMMY{i}" for i in range(len(monitors))]
        args: list[str] = []
        for output, (x, y, width, height) in zip(outputs, layout):
            mode = _mode_name(width, height)
            # The dummy outputs list only some standard modes; add ours if missing.
            subprocess.run(["xrandr", "--newmode", mode, *_modeline(width, height)], env=display.env,
                           capture_output=True, timeout=10)  # fmt: skip
            subprocess.run(["xrandr", "--addmode", output, mode], env=display.env, capture_output=True, timeout=10)
            args += ["--output", output, "--mode", mode, "--pos", f"{x}x{y}"]
        _xrandr(display, "--fb", f"{virtual_w}x{virtual_h}", *args)
        yield display


def _modeline(width: int, height: int, refresh: float = 60.0) -> list[str]:
    """A simple CVT-like modeline (the dummy driver does not care about timings)."""
    h_total, v_total = int(width * 1.25), int(height * 1.05) + 3
    clock = h_total * v_total * refresh / 1e6
    return [
        f"{clock:.2f}",
        str(width), str(width + 48), str(width + 80), str(h_total),
        str(height), str(height + 3), str(height + 8), str(v_total),
        "-hsync", "+vsync",
    ]  # fmt: skip


def binaries_available(dual_monitor: bool = False) -> str | None:
    """None when the needed X server binaries exist, else a reason to skip."""
    needed = ["Xorg", "xrandr"] if dual_monitor else ["Xvfb"]
    missing = [b for b in needed if shutil.which(b) is None]
    if dual_monitor and not Path("/usr/lib/xorg/modules/drivers/dummy_drv.so").exists() and not missing:
        missing.append("the Xorg dummy driver (xserver-xorg-video-dummy)")
    return f"not installed: {', '.join(missing)}" if missing else None


__all__ = [
    "VirtualDisplay",
    "DisplayStartError",
    "start_virtual_display",
    "start_dual_monitor_display",
    "free_display_number",
    "binaries_available",
]
