"""An Android device over adb (through adbutils and the adb server).

    with AndroidEnv() as env:              # the only attached device, or AndroidEnv("SERIAL")
        obs = env.observe()                # screenshot (+ accessibility elements)
        env.execute(Action("click", point=(0.5, 0.3)))

Screenshots: raw `screencap` over the `exec:` service (no PNG encode on the
phone, no decode here; 12- or 16-byte header), `screencap -p` as the fallback.

Coordinates: `pixel_of` (base.py) is the only coordinate arithmetic. The
screenshot is in the current rotation (landscape when the phone is turned),
and `input tap` takes the logical display coordinates of that same rotation,
so a normalized screenshot point times the logical display size (wm size,
override honoured, swapped when the rotation is 90/270) is the pixel to touch.

Typing: printable ASCII goes through `input text`, single-quoted for the
phone's sh and with spaces as %s; a literal "%s" is split over two `input
text` calls so Android does not turn it into a space. Anything else (accents,
CJK, emoji) goes through ADBKeyboard (https://github.com/senzhk/ADBKeyBoard):
switch to its IME, send the text base64-encoded with `am broadcast -a
ADB_INPUT_B64`, switch back. Stock Android has no shell command to set the
clipboard, so without ADBKeyboard such text is refused with an error naming
it, before anything is typed.
"""

from __future__ import annotations

import base64
import io
import os
import re
import socket
import struct
import subprocess
import time
import xml.etree.ElementTree as ET
from typing import Any

from PIL import Image

from vlagent.actions import POINTER_KINDS, Action
from vlagent.environments.base import (
    BaseEnvironment,
    EnvironmentLost,
    EnvironmentUnavailable,
    Focus,
    Observation,
    UnsupportedAction,
    pixel_of,
)

ADB_KEYBOARD_IME = "com.android.adbkeyboard/.AdbIME"
ADB_KEYBOARD_HELP = (
    "install ADBKeyboard (https://github.com/senzhk/ADBKeyBoard: `adb install ADBKeyboard.apk`, then "
    f"`adb shell ime enable {ADB_KEYBOARD_IME}`)"
)
DUMP_PATH = "/sdcard/vlagent_window_dump.xml"

# --------------------------------------------------------------------------- keys

# Names models and users write -> Android KEYCODE_ names (without the prefix).
KEY_NAMES: dict[str, str] = {
    "back": "BACK", "home": "HOME", "menu": "MENU", "search": "SEARCH", "power": "POWER", "camera": "CAMERA",
    "enter": "ENTER", "return": "ENTER", "kp_enter": "ENTER",
    "backspace": "DEL", "delete": "DEL", "del": "DEL", "bksp": "DEL", "forward_delete": "FORWARD_DEL",
    "tab": "TAB", "space": "SPACE", "spacebar": "SPACE", "escape": "ESCAPE", "esc": "ESCAPE",
    "app_switch": "APP_SWITCH", "recent": "APP_SWITCH", "recents": "APP_SWITCH", "recent_apps": "APP_SWITCH",
    "overview": "APP_SWITCH", "switch_app": "APP_SWITCH",
    "volume_up": "VOLUME_UP", "volumeup": "VOLUME_UP", "volume_down": "VOLUME_DOWN", "volumedown": "VOLUME_DOWN",
    "volume_mute": "VOLUME_MUTE", "mute": "VOLUME_MUTE",
    "up": "DPAD_UP", "down": "DPAD_DOWN", "left": "DPAD_LEFT", "right": "DPAD_RIGHT", "center": "DPAD_CENTER",
    "page_up": "PAGE_UP", "pageup": "PAGE_UP", "page_down": "PAGE_DOWN", "pagedown": "PAGE_DOWN",
    "move_home": "MOVE_HOME", "end": "MOVE_END", "move_end": "MOVE_END",
    "ctrl": "CTRL_LEFT", "control": "CTRL_LEFT", "shift": "SHIFT_LEFT", "alt": "ALT_LEFT",
    "meta": "META_LEFT", "cmd": "META_LEFT", "win": "META_LEFT", "super": "META_LEFT",
    "wakeup": "WAKEUP", "sleep": "SLEEP", "notification": "NOTIFICATION",
}  # fmt: skip
MODIFIER_KEYS = frozenset({"CTRL_LEFT", "SHIFT_LEFT", "ALT_LEFT", "META_LEFT"})


def android_keycode(name: str) -> str:
    """`KEYCODE_*` for a key name ("Back", "enter", "recent apps", "a", "5", "KEYCODE_TAB")."""
    key = name.strip()
    if key.upper().startswith("KEYCODE_") and re.fullmatch(r"KEYCODE_[A-Z0-9_]+", key.upper()):
        return key.upper()
    if len(key) == 1 and key.isascii() and key.isalnum():
        return f"KEYCODE_{key.upper()}"
    norm = key.lower().replace(" ", "_").replace("-", "_")
    code = KEY_NAMES.get(norm) or KEY_NAMES.get(norm.replace("_", ""))
    if code is None:
        raise UnsupportedAction(f"unknown Android key {name!r}; known: {', '.join(sorted(KEY_NAMES))}, letters, digits")
    return f"KEYCODE_{code}"


# --------------------------------------------------------------------------- geometry


def logical_size(natural: tuple[int, int], rotation: int) -> tuple[int, int]:
    """The display size in a rotation: width and height swap at 90 and 270 degrees."""
    w, h = natural
    return (h, w) if rotation % 2 else (w, h)


def parse_wm_size(text: str) -> tuple[int, int]:
    """(w, h) from `wm size` output; an `Override size:` line wins over `Physical size:`."""
    found = dict(re.findall(r"(Physical|Override) size:\s*(\d+x\d+)", text))
    size = found.get("Override") or found.get("Physical")
    if size is None:
        raise ValueError(f"cannot read the screen size from `wm size` output {text.strip()!r}")
    w, h = (int(v) for v in size.split("x"))
    return w, h


def parse_wm_density(text: str) -> int | None:
    found = dict(re.findall(r"(Physical|Override) density:\s*(\d+)", text))
    value = found.get("Override") or found.get("Physical")
    return int(value) if value else None


def parse_rotation(text: str) -> int | None:
    """Rotation 0-3 from `dumpsys input` (SurfaceOrientation) or `dumpsys window displays`."""
    for pattern in (r"SurfaceOrientation:\s*(\d)", r"mCurrentRotation=(?:ROTATION_)?(\d+)", r"orientation=(\d)\b"):
        m = re.search(pattern, text)
        if m:
            value = int(m.group(1))
            return value // 90 if value >= 90 else value
    return None


# --------------------------------------------------------------------------- screenshots

# PixelFormat -> (bytes per pixel, PIL raw mode)
_RAW_FORMATS = {1: (4, "RGBA"), 2: (4, "RGBX"), 3: (3, "RGB"), 4: (2, "BGR;16"), 5: (4, "BGRA")}


def decode_raw_screencap(data: bytes | bytearray | memoryview) -> Image.Image:
    """Decode `screencap` raw output: width, height, format (+ dataspace on newer Android), pixels."""
    if len(data) < 12:
        raise ValueError(f"raw screencap output too short ({len(data)} bytes)")
    data = memoryview(data)
    w, h, fmt = struct.unpack_from("<3I", data)
    if fmt not in _RAW_FORMATS or not _fits(len(data), w, h, fmt):
        # screencap on multi-display phones prints a "[Warning] Multiple displays..." line first
        data = data[_text_prefix_length(data) :]
        if len(data) < 12:
            raise ValueError("raw screencap output holds no image")
        w, h, fmt = struct.unpack_from("<3I", data)
    if fmt not in _RAW_FORMATS:
        raise ValueError(f"unsupported raw screencap pixel format {fmt}")
    header = _fits(len(data), w, h, fmt)
    if not header:
        raise ValueError(f"raw screencap size mismatch: {len(data)} bytes for {w}x{h} format {fmt}")
    bpp, mode = _RAW_FORMATS[fmt]
    buf = data[header:]
    if bpp == 4:
        return Image.frombuffer("RGBA", (w, h), buf, "raw", mode, 0, 1).convert("RGB")
    return Image.frombuffer("RGB", (w, h), bytes(buf), "raw", mode, 0, 1)


def _fits(length: int, w: int, h: int, fmt: int) -> int:
    """The header size (16 on Android 12+, 12 before) that makes `length` exactly one frame, else 0."""
    if fmt not in _RAW_FORMATS:
        return 0
    pixels = w * h * _RAW_FORMATS[fmt][0]
    return next((header for header in (16, 12) if length == header + pixels), 0)


def _text_prefix_length(data: memoryview) -> int:
    """Bytes of leading printable text lines (warnings) before binary output."""
    end = 0
    head = bytes(data[:4096])
    while True:
        nl = head.find(b"\n", end)
        line = head[end:nl]
        if nl < 0 or not line or not all(32 <= c < 127 or c == 13 for c in line):
            return end
        end = nl + 1


def decode_png_screencap(data: bytes | bytearray) -> Image.Image:
    """Decode `screencap -p` output (skipping any warning text before the PNG signature)."""
    start = bytes(data[:4096]).find(b"\x89PNG\r\n\x1a\n")
    if start < 0:
        raise ValueError(f"screencap -p returned no PNG: {bytes(data[:120])!r}")
    image = Image.open(io.BytesIO(data[start:]))
    image.load()
    return image.convert("RGB")


# --------------------------------------------------------------------------- typing


def quote_sh(text: str) -> str:
    """Single-quote for the phone's sh: nothing inside is special but ' itself."""
    return "'" + text.replace("'", "'\\''") + "'"


def is_input_text_safe(text: str) -> bool:
    """Text `input text` can type: printable ASCII plus newline and tab (sent as keys)."""
    return all(" " <= ch <= "~" or ch in "\n\t" for ch in text)


def input_text_commands(text: str) -> list[str]:
    """Shell commands that type printable-ASCII `text` exactly.

    Spaces become %s (Android's `input text` escape). Android turns every
    "%s" into a space and has no escape for it, so the text is cut between a
    literal '%' and a following 's'. Newline and tab are sent as key events.
    """
    if not is_input_text_safe(text):
        raise ValueError(f"input text can only type printable ASCII, got {text!r}")
    commands: list[str] = []
    for part in re.split(r"(\n|\t)", text):
        if part == "\n":
            commands.append("input keyevent KEYCODE_ENTER")
        elif part == "\t":
            commands.append("input keyevent KEYCODE_TAB")
        elif part:
            # cut "...%" | "s..." so no '%' is ever directly followed by 's' in one call
            for chunk in re.split(r"(?<=%)(?=s)", part):
                commands.append("input text " + quote_sh(chunk.replace(" ", "%s")))
    return commands


# --------------------------------------------------------------------------- accessibility tree

_BOUNDS = re.compile(r"\[(-?\d+),(-?\d+)\]\[(-?\d+),(-?\d+)\]")
LAUNCHER_HINTS = ("launcher", "nexuslauncher", "home")


def _node_kind(node: ET.Element, parent_scrollable: bool) -> str:
    cls = node.get("class", "")
    short = cls.rsplit(".", 1)[-1]
    true = lambda name: node.get(name) == "true"  # noqa: E731
    if true("checkable") or short in ("Switch", "SwitchCompat", "SwitchMaterial", "CheckBox", "ToggleButton", "RadioButton"):
        return "toggle"
    if "EditText" in short or short == "AutoCompleteTextView":
        return "edit_text"
    if true("scrollable"):
        return "list"
    clickable = true("clickable") or true("long-clickable")
    if clickable and any(h in node.get("package", "") for h in LAUNCHER_HINTS) and short in ("TextView", "BubbleTextView"):
        return "icon"
    if clickable and parent_scrollable:
        return "list_item"
    if "Button" in short:
        return "button"
    if "Image" in short:
        return "button" if clickable else "image"
    return "button" if clickable else "text"


def parse_ui_xml(xml: str | bytes, scale: tuple[float, float] = (1.0, 1.0)) -> list[dict[str, Any]]:
    """Elements of a uiautomator dump: nodes with a label or that can be touched.

    `scale` converts display pixels to screenshot pixels. Unreadable nodes
    are skipped; an unreadable document raises ValueError.
    """
    if isinstance(xml, bytes):
        xml = xml.decode("utf-8", "replace")
    start = xml.find("<?xml")
    if start < 0:
        start = xml.find("<hierarchy")
    end = xml.rfind("</hierarchy>")
    if start < 0 or end < 0:
        raise ValueError("no <hierarchy> in the uiautomator dump")
    try:
        root = ET.fromstring(xml[start : end + len("</hierarchy>")])
    except ET.ParseError as e:
        raise ValueError(f"unreadable uiautomator dump: {e}") from None
    sx, sy = scale
    out: list[dict[str, Any]] = []

    def visit(node: ET.Element, parent_scrollable: bool) -> None:
        for child in node:
            if child.tag != "node":
                continue
            m = _BOUNDS.fullmatch(child.get("bounds", ""))
            scrollable = child.get("scrollable") == "true"
            if m:
                x1, y1, x2, y2 = (int(v) for v in m.groups())
                text, desc = child.get("text", ""), child.get("content-desc", "")
                kind = _node_kind(child, parent_scrollable)
                touchable = any(child.get(k) == "true" for k in ("clickable", "long-clickable", "checkable", "scrollable"))
                if x2 > x1 and y2 > y1 and (text or desc or touchable or kind == "edit_text"):
                    if kind == "edit_text":
                        label = desc or child.get("hint", "") or child.get("resource-id", "").rsplit("/", 1)[-1]
                        value: Any = text
                    elif kind == "toggle":
                        label, value = text or desc, child.get("checked") == "true"
                    else:
                        label, value = text or desc, None
                    out.append({
                        "kind": kind,
                        "label": label,
                        "bounds": [round(x1 * sx), round(y1 * sy), round(x2 * sx), round(y2 * sy)],
                        "value": value,
                        "focused": child.get("focused") == "true",
                        "resource_id": child.get("resource-id", ""),
                        "package": child.get("package", ""),
                    })
            visit(child, scrollable)

    visit(root, False)
    return out


_FOCUS_WINDOW = re.compile(r"mCurrentFocus=(?:Window\{\S+ u\d+ ([^}]*)\}|null)")
_COMPONENT = re.compile(r"([A-Za-z0-9_.]+)/(\S+)")
_FOCUS_APP = re.compile(r"(?:mFocusedApp|mResumedActivity|topResumedActivity)[=:].*?ActivityRecord\{\S+ u\d+ ([^\s/}]+)/(\S+?)[\s}]")


def parse_focus(text: str) -> Focus:
    """The foreground app from `dumpsys window windows` lines (mCurrentFocus, mFocusedApp).

    `mCurrentFocus=Window{3bd8e73 u0 com.android.settings/com.android.settings.Settings}` names the
    package that receives keys. A focused system window without a package (`NotificationShade`) gives
    name None; so does no focus at all, unless `mFocusedApp` names the app about to take it.
    """
    window = _FOCUS_WINDOW.search(text)
    if window and window.group(1):
        component = _COMPONENT.fullmatch(window.group(1).strip())
        if component:
            return Focus(component.group(1), "app", {"activity": component.group(2)})
        return Focus(None, "app", {"window": window.group(1).strip()[:100]})
    app = _FOCUS_APP.search(text)
    if app:
        return Focus(app.group(1), "app", {"activity": app.group(2)})
    return Focus(None, "app", {"dumpsys": text.strip()[:200]})


# --------------------------------------------------------------------------- the environment


class AndroidEnv(BaseEnvironment):
    """A phone or emulator reached through the adb server (`adb devices`).

    serial: which device (default: $ANDROID_SERIAL, else the only one
    attached). adb_host/adb_port: the adb server (port default:
    $ANDROID_ADB_SERVER_PORT, else 5037, as the adb client does). read_elements: also dump the accessibility tree each
    observe (slower on real phones: ~1 s). screencap: "raw" (fast, falls back
    to PNG when the raw output cannot be read) or "png". settle: seconds to
    wait after an action so the next screenshot shows its effect.
    reconnect_s: how long a device that drops off (cable, Wi-Fi, a restarted
    adb server) may take to come back before it counts as gone; meanwhile a
    command that only reads is sent again, and one that acts only if adb
    refused it before it reached the device. 0: gone at once.
    """

    name = "android"

    def __init__(
        self,
        serial: str | None = None,
        *,
        adb_host: str = "127.0.0.1",
        adb_port: int | None = None,
        read_elements: bool = True,
        screencap: str = "raw",
        settle: float = 0.3,
        timeout: float = 20.0,
        reconnect_s: float = 10.0,
    ) -> None:
        if screencap not in ("raw", "png"):
            raise ValueError(f"screencap must be 'raw' or 'png', got {screencap!r}")
        try:
            import adbutils
        except ImportError as e:
            raise EnvironmentUnavailable("AndroidEnv needs adbutils: pip install 'vlagent[android]'") from e
        self._adbutils = adbutils
        if adb_port is None:
            adb_port = int(os.environ.get("ANDROID_ADB_SERVER_PORT") or 5037)
        if serial is None:
            serial = os.environ.get("ANDROID_SERIAL") or None
        self.adb_host, self.adb_port = adb_host, adb_port
        self.read_elements = read_elements
        self.screencap_mode = screencap
        self.settle = settle
        self.timeout = timeout
        self.reconnect_s = reconnect_s
        self._ensure_server()
        self.client = adbutils.AdbClient(host=adb_host, port=adb_port, socket_timeout=timeout)
        self.serial = self._pick_device(serial)
        self.device = self.client.device(self.serial)
        self._adbkeyboard: bool | None = None
        try:
            self._read_geometry()
        except EnvironmentLost as e:
            raise EnvironmentUnavailable(str(e)) from None

    # -- connection ---------------------------------------------------------

    def _ensure_server(self) -> None:
        """Reach the adb server; start a local one like the adb client would (never silently elsewhere)."""
        if _port_open(self.adb_host, self.adb_port):
            return
        local = self.adb_host in ("127.0.0.1", "localhost", "::1")
        if local:
            try:
                subprocess.run(["adb", "-P", str(self.adb_port), "start-server"], capture_output=True, timeout=20)
            except (OSError, subprocess.SubprocessError):
                pass
            if _port_open(self.adb_host, self.adb_port):
                return
        raise EnvironmentUnavailable(
            f"no adb server at {self.adb_host}:{self.adb_port}"
            + (" and `adb start-server` could not start one (is the Android platform-tools `adb` installed?)" if local else "")
        )

    def _pick_device(self, serial: str | None) -> str:
        try:
            infos = self.client.list()
        except (self._adbutils.AdbError, OSError) as e:
            raise EnvironmentUnavailable(f"cannot list devices on the adb server at {self.adb_host}:{self.adb_port}: {e}") from e
        listing = ", ".join(f"{i.serial} ({i.state})" for i in infos) or "none"
        ready = [i.serial for i in infos if i.state == "device"]
        if serial is not None:
            state = next((i.state for i in infos if i.serial == serial), None)
            if state == "device":
                return serial
            if state == "unauthorized":
                raise EnvironmentUnavailable(f"Android device {serial} is unauthorized: accept the USB debugging prompt on the phone")
            if state is not None:
                raise EnvironmentUnavailable(f"Android device {serial} is {state}, not ready (attached devices: {listing})")
            raise EnvironmentUnavailable(f"Android device {serial} is not attached (attached devices: {listing}); "
                                         f"for a network device run `adb connect {serial}` first")
        if not ready:
            raise EnvironmentUnavailable(
                f"no Android device attached to the adb server at {self.adb_host}:{self.adb_port} (adb devices: {listing}); "
                "plug in a phone with USB debugging on, start an emulator, or `adb connect HOST:PORT`"
            )
        if len(ready) > 1:
            raise EnvironmentUnavailable(
                f"several Android devices are attached: {', '.join(ready)}; choose one with "
                f"AndroidEnv(serial=...) or --env android:SERIAL"
            )
        return ready[0]

    def _lost(self, error: BaseException) -> EnvironmentLost:
        waited = f"; it did not come back within {self.reconnect_s:g} s" if self.reconnect_s > 0 else ""
        return EnvironmentLost(f"Android device {self.serial} is gone ({type(error).__name__}: {error}){waited}; "
                               "check the cable / `adb devices` and run again")

    def _retry_after(self, error: BaseException, reads_only: bool) -> bool:
        """After a failed adb call: wait for the device to come back, and say whether to send the command again.

        Again only when that cannot do twice what the device already did: a command that only reads
        (`reads_only`), or one adb refused before it reached the device (the server said offline / not
        found, or the server itself was not there)."""
        refused = isinstance(error, ConnectionRefusedError) or (
            isinstance(error, self._adbutils.AdbError)
            and any(w in str(error) for w in ("offline", "not found", "unauthorized", "connect to adb server")))
        return (reads_only or refused) and self._wait_for_device()

    def _wait_for_device(self) -> bool:
        """Wait up to `reconnect_s` for the device to be ready again, as the adb client would: starting a
        local adb server that was stopped, and reconnecting a network device (HOST:PORT) the new one does
        not know."""
        deadline = time.monotonic() + self.reconnect_s
        while time.monotonic() < deadline:
            try:
                self._ensure_server()
                state = {i.serial: i.state for i in self.client.list()}.get(self.serial)
                if state == "device":
                    return True
                if state in (None, "offline") and re.fullmatch(r"[\w.-]+:\d+", self.serial):
                    # A network device: `adb disconnect` + `adb connect`, since a server that lost one waits
                    # long before it retries, and answers a bare connect with "already connected".
                    if state == "offline":
                        self.client.disconnect(self.serial)
                    self.client.connect(self.serial, timeout=2)
            except (self._adbutils.AdbError, OSError, EnvironmentUnavailable):
                pass
            time.sleep(0.2)
        return False

    def shell(self, command: str, timeout: float | None = None, *, reads_only: bool = False) -> str:
        """Run a shell command on the device; EnvironmentLost when the device is gone (and did not come
        back within `reconnect_s`). `reads_only`: the command changes nothing, so it may be sent again."""
        try:
            return self.device.shell(command, timeout=timeout or self.timeout)
        except (self._adbutils.AdbError, OSError, EOFError) as e:
            if not self._retry_after(e, reads_only):
                raise self._lost(e) from None
        try:
            return self.device.shell(command, timeout=timeout or self.timeout)
        except (self._adbutils.AdbError, OSError, EOFError) as e:
            raise self._lost(e) from None

    def exec_out(self, command: str, timeout: float | None = None) -> bytearray:
        """Binary output of a command that only reads (screencap) over the `exec:` service (no shell
        framing), read in large chunks; sent again once if the device drops off and comes back."""
        try:
            return self._exec_out(command, timeout)
        except (self._adbutils.AdbError, OSError, EOFError) as e:
            if not self._retry_after(e, True):
                raise self._lost(e) from None
        try:
            return self._exec_out(command, timeout)
        except (self._adbutils.AdbError, OSError, EOFError) as e:
            raise self._lost(e) from None

    def _exec_out(self, command: str, timeout: float | None) -> bytearray:
        conn = self.device.open_transport(timeout=timeout or self.timeout)
        try:
            conn.send_command("exec:" + command)
            conn.check_okay()
            sock = conn.conn
            sock.settimeout(timeout or self.timeout)
            buf = bytearray()
            chunk = bytearray(1 << 20)
            view = memoryview(chunk)
            while True:
                n = sock.recv_into(view)
                if n == 0:
                    break
                buf += view[:n]
            return buf
        finally:
            conn.close()

    # -- geometry -------------------------------------------------------------

    def _read_geometry(self) -> None:
        sep = "@@vlagent@@"
        out = self.shell(
            f"wm size; echo {sep}; wm density; echo {sep}; dumpsys input | grep SurfaceOrientation; echo {sep}; "
            "getprop ro.build.version.sdk; getprop ro.product.model", reads_only=True
        )
        parts = out.split(sep)
        if len(parts) != 4:
            raise EnvironmentUnavailable(f"unexpected answer from {self.serial} while reading its screen: {out[:200]!r}")
        try:
            self.natural_size = parse_wm_size(parts[0])
        except ValueError as e:
            raise EnvironmentUnavailable(f"Android device {self.serial}: {e}") from None
        self.density = parse_wm_density(parts[1])
        rotation = parse_rotation(parts[2])
        self.rotation = rotation if rotation is not None else self._read_rotation()
        props = parts[3].split()
        self.sdk = int(props[0]) if props and props[0].isdigit() else None
        self.model = " ".join(props[1:]) if len(props) > 1 else ""

    def _read_rotation(self) -> int:
        rotation = parse_rotation(self.shell("dumpsys input | grep SurfaceOrientation", reads_only=True))
        if rotation is None:
            rotation = parse_rotation(self.shell("dumpsys window displays | grep mCurrentRotation", reads_only=True))
        if rotation is None:
            user = self.shell("settings get system user_rotation", reads_only=True).strip()
            rotation = int(user) if user in ("0", "1", "2", "3") else 0
        return rotation

    @property
    def display_size(self) -> tuple[int, int]:
        """Logical display size in the current rotation: what `input tap` coordinates range over."""
        return logical_size(self.natural_size, self.rotation)

    def to_device(self, point: tuple[float, float]) -> tuple[int, int]:
        return pixel_of(point, self.display_size)

    # -- observing --------------------------------------------------------------

    def screenshot(self, mode: str | None = None) -> Image.Image:
        mode = mode or self.screencap_mode
        if mode == "raw":
            for _ in range(2):  # once more: a capture cut short by a glitch is not a device without raw output
                data = self.exec_out("screencap")
                try:
                    return decode_raw_screencap(data)
                except ValueError:
                    pass
            self.screencap_mode = "png"  # this device's raw output is not readable: use PNG from now on
        error: Exception | None = None
        for _ in range(2):
            data = self.exec_out("screencap -p")
            try:
                return decode_png_screencap(data)
            except Exception as e:  # noqa: BLE001 - PIL raises several kinds for a damaged PNG
                error = e
        raise EnvironmentLost(f"Android device {self.serial} returned an unreadable screenshot twice ({error})")

    def observe(self) -> Observation:
        image = self.screenshot()
        if (image.width > image.height) != (self.display_size[0] > self.display_size[1]):
            self.rotation = self._read_rotation()  # the phone turned: its screenshots and touch space turned too
        display = self.display_size
        elements = None
        info: dict[str, Any] = {
            "platform": "android",
            "serial": self.serial,
            "density": self.density,
            "rotation": self.rotation,
            "model": self.model,
            "sdk": self.sdk,
            "screencap": self.screencap_mode,
        }
        if self.read_elements:
            try:
                elements = self.elements(scale=(image.width / display[0], image.height / display[1]))
            except EnvironmentLost:
                raise
            except Exception as e:  # the tree is a bonus: a screen without it is still a screen
                info["elements_error"] = f"{type(e).__name__}: {e}"
        return Observation(image=image, screen_size=display, elements=elements, info=info)

    def elements(self, scale: tuple[float, float] = (1.0, 1.0)) -> list[dict[str, Any]]:
        """The accessibility tree of the current screen (uiautomator dump)."""
        out = self.shell(f"uiautomator dump {DUMP_PATH} >/dev/null && cat {DUMP_PATH}", timeout=max(self.timeout, 30),
                         reads_only=True)
        return parse_ui_xml(out, scale)

    def focus(self) -> Focus:
        """The foreground app typed text goes to (its package: what a scoped secret is matched against)."""
        return parse_focus(self.shell("dumpsys window windows | grep -E 'mCurrentFocus|mFocusedApp'", reads_only=True))

    # -- acting -------------------------------------------------------------------

    def execute(self, action: Action) -> None:
        kind = action.kind
        handler = getattr(self, f"_do_{kind}", None)
        if handler is None:
            raise UnsupportedAction(f"{kind} has no meaning on a touch screen (use click, long_press, swipe, scroll, type, key)")
        if action.keys and kind in POINTER_KINDS:
            raise UnsupportedAction(f"a touch screen has no keys to hold during a {kind} (got {'+'.join(action.keys)})")
        handler(action)
        if kind not in ("wait", "answer", "done") and self.settle > 0:
            time.sleep(self.settle)

    def _input(self, *commands: str) -> None:
        """Run `input` commands in one shell call; `input` prints nothing when it succeeds."""
        out = self.shell(" && ".join(commands)).strip()
        if out:
            raise RuntimeError(f"the device refused {' && '.join(commands)!r}: {out[:300]}")

    def _do_click(self, action: Action) -> None:
        x, y = self.to_device(action.point)  # type: ignore[arg-type]
        self._input(f"input tap {x} {y}")

    def _do_double_click(self, action: Action) -> None:
        self._taps(action, 2)

    def _do_triple_click(self, action: Action) -> None:
        self._taps(action, 3)

    def _taps(self, action: Action, count: int) -> None:
        """Taps 100 ms apart. Each `input` starts a JVM (~0.2 s on a phone), so they are started in
        the background, staggered, instead of one after the other (which would be too slow for a double tap)."""
        x, y = self.to_device(action.point)  # type: ignore[arg-type]
        line = " & sleep 0.1; ".join([f"input tap {x} {y}"] * count) + "; wait"
        out = self.shell(line).strip()
        if out:
            raise RuntimeError(f"the device refused {line!r}: {out[:300]}")

    def _do_long_press(self, action: Action) -> None:
        x, y = self.to_device(action.point)  # type: ignore[arg-type]
        ms = round(1000 * action.seconds) if action.seconds else 800
        self._input(f"input swipe {x} {y} {x} {y} {max(ms, 500)}")

    def _do_swipe(self, action: Action, default_ms: int = 300) -> None:
        x1, y1 = self.to_device(action.point)  # type: ignore[arg-type]
        x2, y2 = self.to_device(action.end)  # type: ignore[arg-type]
        ms = round(1000 * action.seconds) if action.seconds else default_ms
        self._input(f"input swipe {x1} {y1} {x2} {y2} {max(ms, 1)}")

    def _do_drag(self, action: Action) -> None:
        self._do_swipe(action, default_ms=1000)

    def _do_scroll(self, action: Action) -> None:
        """Scroll as a finger swipe: "down" shows content further down, so the finger moves up.

        `amount` counts wheel-like steps of 15 % of the screen (default: half a screen).
        """
        w, h = self.display_size
        cx, cy = self.to_device(action.point) if action.point else (w // 2, h // 2)
        fraction = 0.5 if action.amount is None else min(max(action.amount * 0.15, 0.1), 0.8)
        vertical = action.direction in ("up", "down")
        length = round((h if vertical else w) * fraction)
        # the swipe must stay on screen: centre it on the point, shifted inwards if needed
        lo, hi = (cy, h) if vertical else (cx, w)
        margin = max(1, round(0.05 * hi))
        start = min(max(lo + length // 2, margin + length), hi - margin)
        end = start - length
        sign = {"down": 1, "right": 1, "up": -1, "left": -1}[action.direction]  # type: ignore[index]
        a, b = (start, end) if sign > 0 else (end, start)
        if vertical:
            self._input(f"input swipe {cx} {a} {cx} {b} 400")
        else:
            self._input(f"input swipe {a} {cy} {b} {cy} 400")

    def _do_key(self, action: Action) -> None:
        codes = [android_keycode(k) for k in action.keys or ()]
        if len(codes) == 1:
            self._input(f"input keyevent {codes[0]}")
            return
        if self.sdk is not None and self.sdk < 33:
            raise UnsupportedAction(f"key combinations need Android 13 (`input keycombination`); this device has SDK {self.sdk}")
        self._input("input keycombination " + " ".join(codes))

    def _do_back(self, action: Action) -> None:
        self._input("input keyevent KEYCODE_BACK")

    def _do_home(self, action: Action) -> None:
        self._input("input keyevent KEYCODE_HOME")

    def _do_wait(self, action: Action) -> None:
        time.sleep(1.0 if action.seconds is None else action.seconds)

    def _do_answer(self, action: Action) -> None:
        pass

    _do_done = _do_answer

    def _do_type(self, action: Action) -> None:
        self.type_text(action.text or "")

    def type_text(self, text: str) -> None:
        if not text:
            return
        if is_input_text_safe(text):
            self._input(*input_text_commands(text))
            return
        if not self.has_adbkeyboard():
            odd = "".join(sorted({ch for ch in text if not is_input_text_safe(ch)}))
            raise UnsupportedAction(
                f"typing {odd!r} needs the ADBKeyboard IME, which {self.serial} does not have: {ADB_KEYBOARD_HELP}. "
                "Nothing was typed (`input text` only types ASCII)."
            )
        self._type_with_adbkeyboard(text)

    def has_adbkeyboard(self) -> bool:
        if self._adbkeyboard is None:
            self._adbkeyboard = ADB_KEYBOARD_IME in self.shell("ime list -a -s", reads_only=True).split()
        return self._adbkeyboard

    def _type_with_adbkeyboard(self, text: str) -> None:
        previous = self.shell("settings get secure default_input_method", reads_only=True).strip()
        switched = previous != ADB_KEYBOARD_IME
        if switched:
            out = self.shell(f"ime enable {ADB_KEYBOARD_IME} >/dev/null; ime set {ADB_KEYBOARD_IME}")
            if "selected" not in out:
                raise RuntimeError(f"could not switch to ADBKeyboard: {out.strip()[:300]}")
            self._wait_for_ime(ADB_KEYBOARD_IME)
        try:
            payload = base64.b64encode(text.encode("utf-8")).decode("ascii")
            out = self.shell(f"am broadcast -a ADB_INPUT_B64 --es msg {payload}")
            if "Broadcast completed" not in out:
                raise RuntimeError(f"ADBKeyboard broadcast failed: {out.strip()[:300]}")
        finally:
            if switched and previous and previous != "null":
                self.shell(f"ime set {quote_sh(previous)}")

    def _wait_for_ime(self, ime: str, timeout: float = 3.0) -> None:
        """The IME binds asynchronously after `ime set`; its broadcast receiver exists only once bound."""
        deadline = time.monotonic() + timeout
        while True:
            out = self.shell("dumpsys input_method | grep mCurMethodId", reads_only=True)
            if f"mCurMethodId={ime}" in out:
                return
            if time.monotonic() > deadline:
                raise RuntimeError(f"{ime} did not become the active input method within {timeout:g} s ({out.strip()[:200]})")
            time.sleep(0.1)

    def _do_open_app(self, action: Action) -> None:
        self.open_app(action.text or "")

    def open_app(self, name: str) -> None:
        """Open an app by package name, or by the label of its launcher icon."""
        name = name.strip()
        packages = self._packages()
        if name in packages:
            self._launch(name)
            return
        self._input("input keyevent KEYCODE_HOME")
        if self.settle > 0:
            time.sleep(self.settle)
        wanted = name.casefold()
        for el in self.elements():
            if el["kind"] in ("icon", "button", "text") and el["label"].strip().casefold() == wanted:
                x1, y1, x2, y2 = el["bounds"]
                self._input(f"input tap {(x1 + x2) // 2} {(y1 + y2) // 2}")
                return
        key = re.sub(r"[^a-z0-9]", "", wanted)
        matches = [p for p in packages if key and key in p.lower().replace(".", "")]
        if len(matches) == 1:
            self._launch(matches[0])
            return
        hint = f"; packages that match: {', '.join(matches)}" if matches else ""
        raise UnsupportedAction(f"no app called {name!r} on the home screen or among the installed packages{hint}")

    def _packages(self) -> set[str]:
        return {line[len("package:"):].strip() for line in self.shell("pm list packages", reads_only=True).splitlines() if line.startswith("package:")}

    def _launch(self, package: str) -> None:
        out = self.shell(f"monkey -p {quote_sh(package)} -c android.intent.category.LAUNCHER 1")
        if "Events injected" not in out:
            raise UnsupportedAction(f"{package} has no launcher activity: {out.strip()[-200:]}")

    def close(self) -> None:
        pass  # the adb server and the device are not ours to stop


def _port_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=2):
            return True
    except OSError:
        return False


__all__ = [
    "AndroidEnv",
    "logical_size",
    "parse_wm_size",
    "parse_wm_density",
    "parse_rotation",
    "decode_raw_screencap",
    "decode_png_screencap",
    "input_text_commands",
    "quote_sh",
    "parse_ui_xml",
    "parse_focus",
    "android_keycode",
    "ADB_KEYBOARD_IME",
]
