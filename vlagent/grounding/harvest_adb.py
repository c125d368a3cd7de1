"""Harvest the screens of an Android device over adb: screencap + uiautomator dump.

    vlagent grounding-data harvest --source android --out DIR --option serial=SERIAL
                                   [--option screens=5] [--option interval=3] [--option label=pixel7]

Works with a real phone (USB or `adb connect`) and with our virtual phone:
each capture takes `adb exec-out screencap -p` and `adb shell uiautomator
dump`, and keeps the screen only if a second dump after the screenshot
agrees (nothing moved). While it runs, a person can walk the phone through
its apps; `screens` captures `interval` seconds apart.

Elements come from the dump's nodes (`uiautomator_targets`): enabled nodes
with bounds and a name (text, content-desc, or an EditText's hint), kinds
from their class (Button -> button, ImageButton -> icon, EditText -> field,
Switch -> switch, CheckBox -> checkbox, SeekBar -> slider, clickable rows of
a RecyclerView/ListView -> list item...). Records: platform "android",
source "android:<label>".
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
import xml.etree.ElementTree as ET
from io import BytesIO
from pathlib import Path
from typing import Any, Callable

from vlagent.grounding.dataset import GroundingRecord
from vlagent.grounding.harvest import HarvestError
from vlagent.grounding.harvest_common import ScreenTarget, save_screenshot, screen_records

DUMP_PATH = "/sdcard/window_dump.xml"
LIST_CLASSES = ("RecyclerView", "ListView", "GridView", "ScrollView")


def _short(cls: str) -> str:
    return cls.rsplit(".", 1)[-1]


def _bounds(text: str) -> tuple[int, int, int, int] | None:
    try:
        a, b = text.strip("[]").split("][")
        x1, y1 = (int(v) for v in a.split(","))
        x2, y2 = (int(v) for v in b.split(","))
    except ValueError:
        return None
    return (x1, y1, x2, y2) if x2 > x1 and y2 > y1 else None


def _kind(node: ET.Element, parent: ET.Element | None) -> tuple[str, str] | None:
    """(element kind, role word) for one dump node, or None when it is not a target."""
    cls = _short(node.get("class", ""))
    clickable = node.get("clickable") == "true" or node.get("long-clickable") == "true"
    in_list = parent is not None and _short(parent.get("class", "")) in LIST_CLASSES
    if "EditText" in cls or "AutoCompleteTextView" in cls:
        return ("field", "field")
    if "Switch" in cls or "ToggleButton" in cls:
        return ("switch", "switch")
    if "CheckBox" in cls:
        return ("checkbox", "checkbox")
    if "RadioButton" in cls:
        return ("radio", "radio button")
    if "SeekBar" in cls:
        return ("slider", "slider")
    if "ImageButton" in cls or (cls == "ImageView" and clickable):
        return ("icon", "icon")
    if in_list and clickable:
        return ("list item", "item")
    if "Button" in cls:
        return ("button", "button")
    if "Tab" in cls and clickable:
        return ("tab", "tab")
    if clickable and node.get("content-desc") and not node.get("text"):
        return ("icon", "icon")
    if clickable and node.get("content-desc") == node.get("text") and node.get("text"):
        return ("icon", "app icon")  # launcher icons label themselves in both attributes
    if clickable:
        return ("button", "button")
    if node.get("text"):
        return ("text", "text")
    return None


def _name(node: ET.Element, kind: str) -> str:
    text, desc, hint = node.get("text", ""), node.get("content-desc", ""), node.get("hint", "")
    if kind == "field":
        return hint or desc or text  # an EditText's text is what was typed, not its name
    if text:
        return text
    if desc:
        return desc
    # A clickable row whose words sit in one child TextView.
    inner = [n.get("text", "") for n in node.iter() if n is not node and n.get("text")]
    return inner[0] if len(inner) == 1 else ""


def _clickable_ancestor(node: ET.Element, parents: dict[ET.Element, ET.Element]) -> bool:
    parent = parents.get(node)
    while parent is not None:
        if parent.get("clickable") == "true":
            return True
        parent = parents.get(parent)
    return False


def uiautomator_targets(xml: bytes | str, size: tuple[int, int]) -> list[ScreenTarget]:
    """Targets of one uiautomator dump, in the pixels of a screenshot of `size`."""
    try:
        root = ET.fromstring(xml)
    except ET.ParseError as exc:
        raise HarvestError(f"the uiautomator dump is not XML: {exc}") from None
    targets: list[ScreenTarget] = []
    parents = {child: parent for parent in root.iter() for child in parent}
    for node in root.iter("node"):
        if node.get("enabled", "true") != "true":
            continue
        box = _bounds(node.get("bounds", ""))
        if box is None or box[2] > size[0] + 1 or box[3] > size[1] + 1:
            continue
        kind = _kind(node, parents.get(node))
        if kind is None:
            continue
        if kind[0] == "text" and _clickable_ancestor(node, parents):
            continue  # the words of a clickable row or button: that one is the target
        name = _name(node, kind[0])
        if name:
            targets.append(ScreenTarget(name, kind[0], box, role_word=kind[1],
                                        meta={"class": _short(node.get("class", ""))}))  # fmt: skip
    return targets


class Adb:
    """The adb client for one device (optionally on a private server port)."""

    def __init__(self, serial: str, port: int | None = None, binary: str = "adb") -> None:
        path = shutil.which(binary)
        if path is None:
            raise HarvestError("adb is not installed (apt-get install adb)")
        self.serial, self.port, self.argv = serial, port, [path] + (["-P", str(port)] if port else [])

    def run(self, *args: str, timeout: float = 30) -> bytes:
        env = dict(os.environ, **({"ANDROID_ADB_SERVER_PORT": str(self.port)} if self.port else {}))
        res = subprocess.run([*self.argv, "-s", self.serial, *args], capture_output=True, timeout=timeout,
                             env=env, stdin=subprocess.DEVNULL)  # fmt: skip
        if res.returncode != 0:
            raise HarvestError(f"adb {' '.join(args)} on {self.serial} failed: {res.stderr.decode(errors='replace')}")
        return res.stdout

    def dump(self) -> bytes:
        self.run("shell", "uiautomator", "dump", DUMP_PATH)
        return self.run("exec-out", "cat", DUMP_PATH)

    def screenshot(self) -> Any:
        from PIL import Image

        return Image.open(BytesIO(self.run("exec-out", "screencap", "-p"))).convert("RGB")


def capture(adb: Adb, attempts: int = 3) -> tuple[Any, bytes]:
    """A screenshot and the uiautomator dump it shows (dumped before and after the screenshot)."""
    for _ in range(attempts):
        before = adb.dump()
        image = adb.screenshot()
        if adb.dump() == before:
            return image, before
        time.sleep(0.5)
    raise HarvestError(f"{adb.serial}'s screen kept changing while being captured")


def harvest_android(
    out_dir: Path, serial: str | None = None, screens: Any = 1, interval: Any = 3.0, label: str = "device",
    adb_port: Any = None, count: int | None = None, seed: int | None = None, log: Callable[[str], Any] = print,
) -> list[GroundingRecord]:
    """Capture `screens` screens of the adb device `serial`, `interval` seconds apart."""
    del seed
    if not serial:
        raise HarvestError("name the device: --option serial=SERIAL (see `adb devices`)")
    adb = Adb(serial, int(adb_port) if adb_port else None)
    records: list[GroundingRecord] = []
    source = f"android:{label}"
    total = int(screens) if count is None else min(int(screens), int(count))  # --count: screens too
    for index in range(total):
        if index:
            time.sleep(float(interval))
        image, xml = capture(adb)
        screen_id = f"{label}-{index:03d}"
        rel = save_screenshot(image, Path(out_dir), f"android/{screen_id}.png")
        got = screen_records(rel, image.size, uiautomator_targets(xml, image.size), source, "android", screen_id)
        log(f"android: {screen_id}: {len(got)} targets")
        records += got
    return records


__all__ = ["Adb", "capture", "harvest_android", "uiautomator_targets"]
