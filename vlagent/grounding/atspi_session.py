"""A private accessibility session: Xvfb + dbus-run-session + the AT-SPI helper.

`AtspiSession` starts, inside one `dbus-run-session`, Debian's
`/usr/bin/python3` running `atspi_helper.py`; applications are launched by
that helper, so they share its session bus and the accessibility bus that
`at-spi-bus-launcher` (activated on demand through D-Bus) gives them. GTK3
only exposes its tree with `GTK_MODULES=gail:atk-bridge` and `NO_AT_BRIDGE=0`.

As root, the whole session runs as the unprivileged `nobody` user (setpriv):
some applications (Mousepad) paint a red "you are using the root account"
bar into every screenshot otherwise, and a D-Bus session bus only accepts
clients of its own user, so the helper and the applications must all drop
privileges together.
"""

from __future__ import annotations

import json
import os
import pwd
import queue
import shutil
import subprocess
import tempfile
import threading
from pathlib import Path
from typing import Any

from vlagent.grounding.harvest import HarvestError

SYSTEM_PYTHON = "/usr/bin/python3"
HELPER = Path(__file__).with_name("atspi_helper.py")
UNPRIVILEGED_USER = "nobody"


def atspi_unavailable() -> str | None:
    """None when AT-SPI harvesting can work here, else what is missing (for skips and errors)."""
    missing = []
    if not Path(SYSTEM_PYTHON).exists():
        missing.append(f"{SYSTEM_PYTHON} (Debian's python3)")
    else:
        probe = subprocess.run([SYSTEM_PYTHON, "-c", "import pyatspi"], capture_output=True, timeout=30)
        if probe.returncode != 0:
            missing.append("python3-pyatspi (for /usr/bin/python3)")
    if shutil.which("dbus-run-session") is None:
        missing.append("dbus-run-session (package dbus)")
    if not any(Path(p).exists() for p in ("/usr/libexec/at-spi-bus-launcher", "/usr/lib/at-spi2-core/at-spi-bus-launcher")):
        missing.append("at-spi-bus-launcher (package at-spi2-core)")
    if shutil.which("Xvfb") is None:
        missing.append("Xvfb (package xvfb)")
    if not missing:
        return None
    return "not installed: " + ", ".join(missing) + " (apt-get install python3-pyatspi at-spi2-core dbus xvfb)"


class AtspiSession:
    """One helper process on one X display; `request()` speaks its JSON-lines protocol."""

    def __init__(self, display: str, extra_env: dict[str, str] | None = None, timeout: float = 20.0) -> None:
        reason = atspi_unavailable()
        if reason:
            raise HarvestError(f"cannot harvest GTK applications: {reason}")
        self.timeout = timeout
        self.workdir = Path(tempfile.mkdtemp(prefix="vlagent-atspi-"))
        self.app_log = self.workdir / "apps.log"
        home = self.workdir / "user"
        runtime = self.workdir / "runtime"
        for d in (home, runtime, home / ".config"):
            d.mkdir(mode=0o700, exist_ok=True)
        helper = self.workdir / "atspi_helper.py"  # a copy the unprivileged user can read
        shutil.copy(HELPER, helper)
        self.app_log.touch()
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "LANG": "C.UTF-8",
            "DISPLAY": display,
            "HOME": str(home),
            "XDG_RUNTIME_DIR": str(runtime),
            "XDG_CONFIG_HOME": str(home / ".config"),
            "GTK_MODULES": "gail:atk-bridge",
            "NO_AT_BRIDGE": "0",
            "GTK_A11Y": "atspi",
            # Settings live in memory: no dconf service to activate, nothing left behind.
            "GSETTINGS_BACKEND": "memory",
            "VLAGENT_ATSPI_APP_LOG": str(self.app_log),
            **(extra_env or {}),
        }
        argv = ["dbus-run-session", "--", SYSTEM_PYTHON, "-u", str(helper)]
        if os.geteuid() == 0:
            user = pwd.getpwnam(UNPRIVILEGED_USER)
            for path in [self.workdir, home, runtime, home / ".config", helper, self.app_log]:
                os.chown(path, user.pw_uid, user.pw_gid)
            self.workdir.chmod(0o755)
            argv = ["setpriv", f"--reuid={user.pw_uid}", f"--regid={user.pw_gid}", "--clear-groups", *argv]
        self.stderr_path = self.workdir / "session.log"
        self._stderr = open(self.stderr_path, "wb")
        self.proc = subprocess.Popen(
            argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._stderr, env=env,
            cwd=home, text=True, bufsize=1, start_new_session=True,
        )  # fmt: skip
        self._lines: queue.Queue[str | None] = queue.Queue()
        self._noise: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            if line.startswith("{"):
                self._lines.put(line)
            else:  # not a reply (setpriv or dbus-run-session talking): keep it for the log
                self._noise.append(line.rstrip())
        self._lines.put(None)

    def log_tail(self, lines: int = 12) -> str:
        text = ""
        for path in (self.stderr_path, self.app_log):
            try:
                text += "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) + "\n"
            except OSError:
                pass
        return text.strip()

    def request(self, op: str, timeout: float | None = None, **fields: Any) -> dict[str, Any]:
        """Send one request; returns the reply, raises HarvestError when the helper failed or died."""
        if self.proc.poll() is not None:
            raise HarvestError(f"the AT-SPI helper exited (code {self.proc.returncode}):\n{self.log_tail()}")
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps({"op": op, **fields}) + "\n")
        self.proc.stdin.flush()
        try:
            line = self._lines.get(timeout=timeout or self.timeout)
        except queue.Empty:
            raise HarvestError(f"the AT-SPI helper did not answer {op!r} in {timeout or self.timeout:g}s") from None
        if line is None:
            raise HarvestError(f"the AT-SPI helper exited while answering {op!r}:\n{self.log_tail()}")
        reply = json.loads(line)
        if not reply.get("ok"):
            raise HarvestError(f"AT-SPI {op} failed: {reply.get('error')}")
        return reply

    def launch(self, argv: list[str]) -> int:
        return int(self.request("launch", argv=argv)["pid"])

    def tree(self, pid: int) -> list[dict[str, Any]]:
        return list(self.request("tree", pid=pid)["nodes"])

    def action(self, pid: int, path: list[int], action: str) -> None:
        self.request("action", pid=pid, path=path, action=action)

    def alive(self, pid: int) -> bool:
        return bool(self.request("alive", pid=pid)["alive"])

    def close(self) -> None:
        try:
            if self.proc.poll() is None:
                self.request("quit", timeout=10)
                self.proc.wait(timeout=10)
        except (HarvestError, subprocess.TimeoutExpired, BrokenPipeError, OSError):
            pass
        finally:
            # The session's own process group: whatever dbus-daemon or the bus
            # launcher left behind goes too.
            try:
                os.killpg(self.proc.pid, 15)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, 9)
            self._stderr.close()
            shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> "AtspiSession":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


__all__ = ["AtspiSession", "SYSTEM_PYTHON", "atspi_unavailable"]
