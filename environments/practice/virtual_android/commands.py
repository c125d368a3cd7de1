"""The Android and shell commands the virtual phone understands, as the real ones answer.

`AndroidCommands` holds one `cmd_NAME(args, stdin)` per command; each returns a
`Result` (stdout, stderr, exit code) or raises `UsageError`. The phone's state
(UI, props, settings, files) lives on `VirtualPhone`, which mixes these in.
"""

from __future__ import annotations

import base64
import io
import json
import re
import struct
import threading
import time
from dataclasses import dataclass

from vlagent.environments.practice.virtual_android.apps import APPS, KEYCODE_NAMES, KEYCODES, LAUNCHER_PACKAGE, MODIFIERS
from vlagent.environments.practice.virtual_android.phone_ui import PhoneUI
from vlagent.environments.practice.virtual_android.uiautomator import window_xml

ADB_KEYBOARD = "com.android.adbkeyboard/.AdbIME"
LATIN_IME = "com.android.inputmethod.latin/.LatinIME"

# screencap's raw format: PIXEL_FORMAT_RGBA_8888, dataspace sRGB (Android 12+ writes the 4th field)
PIXEL_FORMAT_RGBA_8888 = 1
DATASPACE_SRGB = 142671872


@dataclass
class Result:
    out: bytes = b""
    err: bytes = b""
    code: int = 0


class UsageError(ValueError):
    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.code = code


def _option(args: list[str], flag: str) -> str | None:
    if flag in args:
        i = args.index(flag)
        if i + 1 < len(args):
            return args[i + 1]
    return None


def _app_by_package(package: str) -> str | None:
    for key, app in APPS.items():
        if app["package"] == package:
            return key
    return None



class AndroidCommands:
    """The command emulations; the attributes below are the phone state they act on."""

    ui: PhoneUI
    adbkeyboard: bool
    props: dict[str, str]
    settings: dict[str, dict[str, str]]
    wm_size_override: tuple[int, int] | None
    files: dict[str, bytes]
    lock: threading.RLock

    def _write_file(self, path: str, data: bytes, append: bool = False) -> None:
        if path in ("/dev/null", "/dev/zero"):
            return
        self.files[path] = (self.files.get(path, b"") if append else b"") + data

    # -- plain utilities ------------------------------------------------------

    def cmd_echo(self, args: list[str], stdin: bytes) -> Result:
        newline = True
        if args and args[0] == "-n":
            newline, args = False, args[1:]
        return Result((" ".join(args) + ("\n" if newline else "")).encode())

    def cmd_cat(self, args: list[str], stdin: bytes) -> Result:
        if not args:
            return Result(stdin)
        out, err, code = b"", b"", 0
        for path in args:
            if path in self.files:
                out += self.files[path]
            else:
                err += f"cat: {path}: No such file or directory\n".encode()
                code = 1
        return Result(out, err, code)

    def cmd_rm(self, args: list[str], stdin: bytes) -> Result:
        force = "-f" in args
        err, code = b"", 0
        for path in (a for a in args if not a.startswith("-")):
            if self.files.pop(path, None) is None and not force:
                err += f"rm: {path}: No such file or directory\n".encode()
                code = 1
        return Result(b"", err, code)

    def cmd_ls(self, args: list[str], stdin: bytes) -> Result:
        paths = [a for a in args if not a.startswith("-")]
        if not paths:
            return Result("".join(sorted(p.rsplit("/", 1)[-1] + "\n" for p in self.files)).encode())
        out, err, code = b"", b"", 0
        for p in paths:
            if p in self.files:
                out += (p + "\n").encode()
            else:
                err += f"ls: {p}: No such file or directory\n".encode()
                code = 1
        return Result(out, err, code)

    def cmd_grep(self, args: list[str], stdin: bytes) -> Result:
        flags = [a for a in args if a.startswith("-")]
        rest = [a for a in args if not a.startswith("-")]
        if not rest:
            raise UsageError("usage: grep [-iv] PATTERN [FILE...]", 2)
        pattern = re.compile(rest[0], re.I if "-i" in flags else 0)
        data = b"".join(self.files.get(p, b"") for p in rest[1:]) if rest[1:] else stdin
        invert = "-v" in flags
        lines = [ln for ln in data.decode("utf-8", "replace").splitlines(keepends=True) if bool(pattern.search(ln)) != invert]
        return Result("".join(lines).encode(), code=0 if lines else 1)

    def cmd_sleep(self, args: list[str], stdin: bytes) -> Result:
        try:
            seconds = float(args[0])
        except (IndexError, ValueError):
            raise UsageError("sleep: need a number of seconds", 1) from None
        # Released while sleeping so that other streams keep working.
        self.lock.release()
        try:
            time.sleep(min(seconds, 60))
        finally:
            self.lock.acquire()
        return Result()

    # -- Android commands -----------------------------------------------------

    def cmd_getprop(self, args: list[str], stdin: bytes) -> Result:
        if not args:
            return Result("".join(f"[{k}]: [{v}]\n" for k, v in sorted(self.props.items())).encode())
        return Result((self.props.get(args[0], args[1] if len(args) > 1 else "") + "\n").encode())

    def cmd_wm(self, args: list[str], stdin: bytes) -> Result:
        w, h = self.ui.natural
        if args[:1] == ["size"]:
            if len(args) == 1:
                text = f"Physical size: {w}x{h}\n"
                if self.wm_size_override:
                    text += "Override size: {}x{}\n".format(*self.wm_size_override)
                return Result(text.encode())
            if args[1] == "reset":
                self.wm_size_override = None
                return Result()
            raise UsageError("wm size: the virtual device only reports its size (or `wm size reset`)", 255)
        if args[:1] == ["density"]:
            return Result(f"Physical density: {self.ui.density}\n".encode())
        raise UsageError("usage: wm [size|density] (the virtual device supports these two)", 255)

    def cmd_settings(self, args: list[str], stdin: bytes) -> Result:
        if len(args) >= 2 and args[0] in ("get", "put", "delete") and args[1] in self.settings:
            table = self.settings[args[1]]
            if args[0] == "get" and len(args) == 3:
                return Result((table.get(args[2], "null") + "\n").encode())
            if args[0] == "put" and len(args) >= 4:
                self._put_setting(args[1], args[2], args[3])
                return Result()
            if args[0] == "delete" and len(args) == 3:
                table.pop(args[2], None)
                return Result(b"Deleted 1 rows\n")
        if len(args) == 2 and args[0] == "list" and args[1] in self.settings:
            return Result("".join(f"{k}={v}\n" for k, v in sorted(self.settings[args[1]].items())).encode())
        raise UsageError("usage: settings [get|put|delete|list] NAMESPACE KEY [VALUE]", 255)

    def _put_setting(self, namespace: str, key: str, value: str) -> None:
        if namespace == "system" and key == "user_rotation":
            try:
                rotation = int(value)
                if rotation not in (0, 1, 2, 3):
                    raise ValueError
            except ValueError:
                raise UsageError(f"Invalid user_rotation value: {value}", 255) from None
            self.ui.set_rotation(rotation)
        if namespace == "secure" and key == "default_input_method":
            if value not in self._ime_ids():
                raise UsageError(f"Unknown input method {value}", 255)
        self.settings[namespace][key] = value

    def _ime_ids(self) -> list[str]:
        return [LATIN_IME] + ([ADB_KEYBOARD] if self.adbkeyboard else [])

    def cmd_ime(self, args: list[str], stdin: bytes) -> Result:
        secure = self.settings["secure"]
        enabled = secure["enabled_input_methods"].split(":")
        if args[:1] == ["list"]:
            ids = self._ime_ids() if "-a" in args else [i for i in self._ime_ids() if i in enabled]
            if "-s" in args:
                return Result("".join(i + "\n" for i in ids).encode())
            return Result("".join(f"{i}:\n  mId={i}\n" for i in ids).encode())
        if args[:1] in (["enable"], ["disable"], ["set"]) and len(args) >= 2:
            ime = args[-1]
            if ime not in self._ime_ids():
                return Result(err=f"Unknown input method {ime} cannot be {args[0]}d for user #0\n".encode(), code=255)
            if args[0] == "enable":
                if ime not in enabled:
                    secure["enabled_input_methods"] = ":".join(enabled + [ime])
                return Result(f"Input method {ime}: now enabled for user #0\n".encode())
            if args[0] == "disable":
                secure["enabled_input_methods"] = ":".join(i for i in enabled if i != ime)
                return Result(f"Input method {ime}: now disabled for user #0\n".encode())
            if ime not in enabled:
                return Result(err=f"Input method {ime} is not enabled for user #0\n".encode(), code=255)
            secure["default_input_method"] = ime
            return Result(f"Input method {ime} selected for user #0\n".encode())
        raise UsageError("usage: ime [list [-a] [-s] | enable ID | disable ID | set ID]", 255)

    def cmd_input(self, args: list[str], stdin: bytes) -> Result:
        ui = self.ui
        if args and args[0] in ("touchscreen", "touchpad", "keyboard", "dpad", "gamepad", "mouse", "stylus", "trackball"):
            args = args[1:]
        if len(args) >= 2 and args[0] == "-d":
            args = args[2:]
        if not args:
            raise UsageError("usage: input [<source>] [-d DISPLAY_ID] <command> [<arg>...]", 1)
        verb, rest = args[0], args[1:]
        try:
            if verb == "tap" and len(rest) == 2:
                ui.tap(float(rest[0]), float(rest[1]))
            elif verb in ("swipe", "draganddrop") and len(rest) in (4, 5):
                x1, y1, x2, y2 = (float(v) for v in rest[:4])
                ms = int(rest[4]) if len(rest) == 5 else 300
                ui.swipe(x1, y1, x2, y2, ms)
            elif verb == "text" and len(rest) >= 1:
                return self._input_text(" ".join(rest))
            elif verb in ("keyevent", "keycombination") and rest:
                codes = [self._keycode(r) for r in rest if not r.startswith("--")]
                if verb == "keycombination":
                    mods = frozenset(KEYCODE_NAMES.get(c, "") for c in codes[:-1])
                    ui.key(codes[-1], mods & MODIFIERS)
                else:
                    for c in codes:
                        ui.key(c)
            else:
                raise UsageError(f"Error: Unknown command: {verb} (or wrong arguments: {' '.join(rest)})", 1)
        except ValueError as e:
            if isinstance(e, UsageError):
                raise
            raise UsageError(f"Error: {e}", 1) from None
        return Result()

    def _keycode(self, name: str) -> int:
        if name.isdigit():
            return int(name)
        key = name.upper().removeprefix("KEYCODE_")
        if key not in KEYCODES:
            raise UsageError(f"Error: Unknown keycode: {name}", 1)
        return KEYCODES[key]

    def _input_text(self, text: str) -> Result:
        """`input text`: %s is a space; only characters a US keyboard has can be typed (like Android)."""
        out: list[str] = []
        k = 0
        while k < len(text):
            if text[k] == "%" and k + 1 < len(text) and text[k + 1] == "s":
                out.append(" ")
                k += 2
            else:
                out.append(text[k])
                k += 1
        typed = "".join(out)
        bad = sorted({ch for ch in typed if not (" " <= ch <= "~")})
        if bad:
            # Real devices throw from KeyCharacterMap for characters no key produces.
            return Result(err=("Exception occurred while executing 'text':\njava.lang.IllegalArgumentException: "
                               f"Cannot type characters {''.join(bad)!r} with the virtual keyboard\n").encode(), code=1)
        self.ui.commit_text(typed, source="input text")
        return Result()

    def cmd_am(self, args: list[str], stdin: bytes) -> Result:
        if not args:
            raise UsageError("usage: am [start|broadcast|force-stop] ...", 1)
        if args[0] == "start":
            component = _option(args, "-n")
            if component is None:
                raise UsageError("am start: the virtual device needs -n PACKAGE/ACTIVITY", 1)
            package = component.split("/", 1)[0]
            key = _app_by_package(package)
            if key is None:
                return Result(err=(f"Starting: Intent {{ cmp={component} }}\nError type 3\nError: Activity class "
                                   f"{{{component}}} does not exist.\n").encode(), code=1)
            with self.ui.lock:
                self.ui.open_app(key)
            return Result(f"Starting: Intent {{ cmp={component} }}\n".encode())
        if args[0] == "force-stop":
            with self.ui.lock:
                if len(args) > 1 and self.ui.package == args[1]:
                    self.ui.go_home()
            return Result()
        if args[0] == "broadcast":
            return self._broadcast(args[1:])
        raise UsageError(f"am: unknown command '{args[0]}' (the virtual device knows start, broadcast, force-stop)", 1)

    def _broadcast(self, args: list[str]) -> Result:
        action = _option(args, "-a")
        msg = _option(args, "--es")
        extras_key = None
        if "--es" in args:
            i = args.index("--es")
            extras_key = args[i + 1] if i + 1 < len(args) else None
            msg = args[i + 2] if i + 2 < len(args) else None
        delivered = 0
        # ADBKeyboard's receiver exists only while it is the active IME (it lives in the IME service).
        if (self.adbkeyboard and self.settings["secure"]["default_input_method"] == ADB_KEYBOARD
                and action in ("ADB_INPUT_TEXT", "ADB_INPUT_B64") and extras_key == "msg" and msg is not None):
            text = msg
            if action == "ADB_INPUT_B64":
                try:
                    text = base64.b64decode(msg, validate=True).decode("utf-8")
                except ValueError:
                    text = None  # type: ignore[assignment]
            if text is not None:
                self.ui.commit_text(text, source="adbkeyboard")
                delivered = 1
        return Result((f"Broadcasting: Intent {{ act={action} flg=0x400000 (has extras) }}\n"
                       f"Broadcast completed: result={-1 if delivered else 0}\n").encode())

    def cmd_monkey(self, args: list[str], stdin: bytes) -> Result:
        package = _option(args, "-p")
        if package is None:
            raise UsageError("usage: monkey -p PACKAGE -c android.intent.category.LAUNCHER 1", 1)
        key = _app_by_package(package)
        if key is None:
            return Result(b"  bash arg: -p\n", b"** No activities found to run, monkey aborted.\n", 251)
        with self.ui.lock:
            self.ui.open_app(key)
        return Result(f"  bash arg: -p\n  bash arg: {package}\nEvents injected: 1\n## Network stats: elapsed time=5ms\n".encode())

    def cmd_pm(self, args: list[str], stdin: bytes) -> Result:
        if args[:2] == ["list", "packages"]:
            packages = sorted([LAUNCHER_PACKAGE, "android", "com.android.systemui"] + [a["package"] for a in APPS.values()]
                              + (["com.android.adbkeyboard"] if self.adbkeyboard else []) + ["com.android.inputmethod.latin"])
            needle = next((a for a in args[2:] if not a.startswith("-")), "")
            return Result("".join(f"package:{p}\n" for p in packages if needle in p).encode())
        if args[:1] == ["path"] and len(args) == 2:
            if _app_by_package(args[1]) is not None or args[1] == LAUNCHER_PACKAGE:
                return Result(f"package:/system/app/{args[1]}/base.apk\n".encode())
            return Result(code=1)
        raise UsageError("usage: pm list packages [FILTER] | pm path PACKAGE", 1)

    def cmd_dumpsys(self, args: list[str], stdin: bytes) -> Result:
        ui = self.ui
        w, h = ui.size
        if args[:1] == ["input"]:
            # The lines real devices print per touchscreen (Android 10-14 wording).
            text = ("INPUT MANAGER (dumpsys input)\n\nInput Reader State:\n  Device 3: virtual_touchscreen\n"
                    f"    Touch Input Mapper (mode=DIRECT):\n      Viewport INTERNAL: displayId=0, orientation={ui.rotation}, "
                    f"logicalFrame=[0, 0, {w}, {h}]\n      SurfaceWidth: {w}px\n      SurfaceHeight: {h}px\n"
                    f"      SurfaceOrientation: {ui.rotation}\n")
            return Result(text.encode())
        if args[:2] == ["window", "displays"] or args[:1] == ["display"]:
            return Result((f"Display: mDisplayId=0\n  init={ui.natural[0]}x{ui.natural[1]} {ui.density}dpi cur={w}x{h} "
                           f"app={w}x{h}\n  mCurrentRotation=ROTATION_{ui.rotation * 90}\n").encode())
        if args[:1] == ["input_method"]:
            current = self.settings["secure"]["default_input_method"]
            return Result(f"Current Input Method Manager state:\n  mCurMethodId={current}\n  mCurId={current}\n".encode())
        if args[:2] == ["window", "windows"] or args[:1] == ["activity"]:
            pkg = ui.package
            return Result(f"  mCurrentFocus=Window{{1 u0 {pkg}/{pkg}.MainActivity}}\n".encode())
        return Result(f"Can't find service: {args[0] if args else ''}\n".encode())

    def cmd_cmd(self, args: list[str], stdin: bytes) -> Result:
        # No `cmd clipboard` on stock Android: the adapter must not rely on it.
        service = args[0] if args else ""
        return Result(err=f"Can't find service: {service}\n".encode(), code=20)

    def cmd_screencap(self, args: list[str], stdin: bytes) -> Result:
        png = "-p" in args
        paths = [a for a in args if not a.startswith("-")]
        img = self.ui.render()
        if png:
            buf = io.BytesIO()
            img.save(buf, format="PNG", compress_level=1)
            data = buf.getvalue()
        else:
            w, h = img.size
            data = struct.pack("<4I", w, h, PIXEL_FORMAT_RGBA_8888, DATASPACE_SRGB) + img.convert("RGBA").tobytes()
        if paths:
            self._write_file(paths[0], data)
            return Result()
        return Result(data)

    def cmd_state(self, args: list[str], stdin: bytes) -> Result:
        state = self.ui.state()
        state["ime"] = self.settings["secure"]["default_input_method"]
        return Result((json.dumps(state, ensure_ascii=False) + "\n").encode())

    def cmd_uiautomator(self, args: list[str], stdin: bytes) -> Result:
        if args[:1] != ["dump"]:
            raise UsageError("Usage: uiautomator dump [--compressed] [FILE]", 1)
        paths = [a for a in args[1:] if not a.startswith("--")]
        path = paths[0] if paths else "/sdcard/window_dump.xml"
        xml = window_xml(self.ui)
        if path == "/dev/tty":
            return Result(xml + b"UI hierchary dumped to: /dev/tty\n")
        self._write_file(path, xml)
        return Result(f"UI hierchary dumped to: {path}\n".encode())
