"""The virtual phone: its state and the shell that runs commands on it.

`VirtualPhone.run_service(name)` serves adb services: `shell:CMD` and
`exec:CMD` run CMD through a tiny sh (shell.py: quotes, `$VAR`/`$?`, `;`,
`&&`, `||`, pipes, `>`/`2>` redirections: what adbutils and the adapter send;
`&` runs the command in the foreground), stdout and stderr merged as
adbd's raw shell does. Commands (commands.py): input, screencap, wm, getprop,
settings, ime, am, monkey, pm, dumpsys, uiautomator, state, cat, echo, rm, ls,
grep, sleep, wait, true, false, id, cmd. Anything else prints the real shell's
"inaccessible or not found" and exits 127.
"""

from __future__ import annotations

import io
import threading
from typing import Callable

from vlagent.environments.practice.virtual_android.commands import (
    LATIN_IME,
    AndroidCommands,
    Result,
    UsageError,
)
from vlagent.environments.practice.virtual_android.phone_ui import PhoneUI
from vlagent.environments.practice.virtual_android.shell import ShellSyntaxError, Command, parse

SH = "/system/bin/sh"


class VirtualPhone(AndroidCommands):
    """Device state (UI, props, settings, files) and the commands that act on it."""

    def __init__(
        self,
        width: int = 1080,
        height: int = 2400,
        density: int = 420,
        *,
        adbkeyboard: bool = True,
        model: str = "vlagent Virtual Phone",
        release: str = "14",
        sdk: int = 34,
        status_time: str | None = None,
    ) -> None:
        self.ui = PhoneUI(width, height, density, status_time=status_time)
        self.adbkeyboard = adbkeyboard
        self.props = {
            "ro.product.model": model,
            "ro.product.name": "vlagent_phone",
            "ro.product.device": "vlagent",
            "ro.product.manufacturer": "vlagent",
            "ro.product.brand": "vlagent",
            "ro.build.version.release": release,
            "ro.build.version.sdk": str(sdk),
            "ro.build.characteristics": "default",
            "ro.serialno": "VIRTUAL0001",
            "ro.sf.lcd_density": str(density),
        }
        self.settings = {
            "system": {"user_rotation": "0", "accelerometer_rotation": "0", "screen_brightness": "128"},
            "secure": {"default_input_method": LATIN_IME, "enabled_input_methods": LATIN_IME},
            "global": {"airplane_mode_on": "0"},
        }
        self.wm_size_override: tuple[int, int] | None = None
        self.files: dict[str, bytes] = {}
        self.env = {"HOME": "/", "PATH": "/system/bin:/system/xbin", "USER": "shell", "?": "0"}
        self.lock = threading.RLock()
        self.commands: dict[str, Callable[[list[str], bytes], Result]] = {
            "input": self.cmd_input, "screencap": self.cmd_screencap, "wm": self.cmd_wm, "getprop": self.cmd_getprop,
            "settings": self.cmd_settings, "ime": self.cmd_ime, "am": self.cmd_am, "monkey": self.cmd_monkey,
            "pm": self.cmd_pm, "dumpsys": self.cmd_dumpsys, "uiautomator": self.cmd_uiautomator, "state": self.cmd_state,
            "cat": self.cmd_cat, "echo": self.cmd_echo, "rm": self.cmd_rm, "ls": self.cmd_ls, "grep": self.cmd_grep,
            "sleep": self.cmd_sleep, "true": lambda a, i: Result(), "false": lambda a, i: Result(code=1),
            "wait": lambda a, i: Result(),  # `&` runs in the foreground here, so there is nothing to wait for
            "id": lambda a, i: Result(b"uid=2000(shell) gid=2000(shell) groups=2000(shell) context=u:r:shell:s0\n"),
            "cmd": self.cmd_cmd,
        }

    @property
    def banner(self) -> str:
        p = self.props
        return (f"device::ro.product.name={p['ro.product.name']};ro.product.model={p['ro.product.model']};"
                f"ro.product.device={p['ro.product.device']};features=cmd,stat_v2")

    # -- adb services -------------------------------------------------------

    def run_service(self, name: str) -> Callable[[], bytes] | None:
        """The producer of an adb service's output, or None for services this phone does not offer."""
        for prefix in ("shell:", "exec:"):
            if name.startswith(prefix):
                command = name[len(prefix) :]
                return lambda: self.run_line(command)
        return None  # sync:, reverse:, shell,v2: ... are not offered

    def run_line(self, line: str) -> bytes:
        with self.lock:
            try:
                sequence = parse(line)
            except ShellSyntaxError as e:
                self.env["?"] = "2"
                return f"{SH}: {e}\n".encode()
            out = io.BytesIO()
            code = 0
            for connector, pipeline in sequence:
                if (connector == "&&" and code != 0) or (connector == "||" and code == 0):
                    continue
                stdin = b""
                for command in pipeline:
                    res = self._run_command(command, stdin)
                    stdin = res.out
                    if command is not pipeline[-1]:
                        out.write(res.err)
                code = res.code
                out.write(res.out)
                out.write(res.err)
                self.env["?"] = str(code)
            return out.getvalue()

    def _run_command(self, command: Command, stdin: bytes) -> Result:
        argv = [w.expand(self.env) for w in command.argv]
        handler = self.commands.get(argv[0])
        if handler is None:
            res = Result(err=f"{SH}: {argv[0]}: inaccessible or not found\n".encode(), code=127)
        else:
            try:
                res = handler(argv[1:], stdin)
            except UsageError as e:
                res = Result(err=f"{e}\n".encode(), code=e.code)
        for op, word in command.redirects:
            target = word.expand(self.env) if word is not None else ""
            if op in ("2>&1",):
                res = Result(res.out + res.err, b"", res.code)
            elif op in (">&2", "1>&2"):
                res = Result(b"", res.err + res.out, res.code)
            elif op in ("2>", "2>>"):
                self._write_file(target, res.err, append=op.endswith(">>"))
                res = Result(res.out, b"", res.code)
            elif op in (">", "1>", ">>", "1>>"):
                self._write_file(target, res.out, append=op.endswith(">>"))
                res = Result(b"", res.err, res.code)
        return res
