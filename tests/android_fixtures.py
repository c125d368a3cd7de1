"""A private adb server and virtual phones connected to it, for Android tests.

    from android_fixtures import adb_server, phone, PhoneSession  # noqa: F401

`adb_server` (module scope) starts the real `adb` server on a free port and
kills it at the end. `phone` (function scope) starts a `VirtualAndroidDevice`
on another free port, `adb connect`s it, waits until `adb devices` says
`device`, and hands back a `PhoneSession`: serial, adb port, `state()` (the
device's `adb shell state` JSON, read over adb), `adb(...)`, and helpers that
turn a state element into a normalized point of the screenshot. Tests that
need a variant (no ADBKeyboard, landscape) use `start_phone(adb_server, ...)`.
Skipped (with the reason) only when the `adb` binary is not installed.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from typing import Any, Iterator

import pytest

from vlagent.environments.practice.virtual_android import VirtualAndroidDevice

STATUS_TIME = "12:00"  # a fixed status-bar clock: screenshots taken a minute apart stay comparable


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class AdbServer:
    port: int

    def run(self, *args: str, timeout: float = 20) -> subprocess.CompletedProcess:
        env = dict(os.environ, ANDROID_ADB_SERVER_PORT=str(self.port))
        return subprocess.run(["adb", "-P", str(self.port), *args], capture_output=True, text=True, timeout=timeout,
                              env=env, stdin=subprocess.DEVNULL)

    def devices(self) -> dict[str, str]:
        out = self.run("devices").stdout
        return dict(line.split("\t", 1) for line in out.splitlines()[1:] if "\t" in line)

    def connect(self, serial: str, timeout: float = 10) -> None:
        deadline = time.monotonic() + timeout
        while True:
            res = self.run("connect", serial)
            if "connected" in res.stdout:
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"adb connect {serial} failed: {res.stdout} {res.stderr}")
            time.sleep(0.1)
        self.wait_for(serial, "device", deadline)

    def wait_for(self, serial: str, state: str | None, deadline: float) -> None:
        while self.devices().get(serial) != state:
            if time.monotonic() > deadline:
                raise RuntimeError(f"{serial} never became {state!r}: adb devices says {self.devices()}")
            time.sleep(0.05)

    def disconnect(self, serial: str) -> None:
        self.run("disconnect", serial)


@pytest.fixture(scope="module")
def adb_server() -> Iterator[AdbServer]:
    if shutil.which("adb") is None:
        pytest.skip("the `adb` binary is not installed (Debian/Ubuntu: apt install adb)")
    server = AdbServer(free_port())
    res = server.run("start-server")
    if res.returncode != 0:
        raise RuntimeError(f"adb start-server failed: {res.stderr}")
    try:
        yield server
    finally:
        server.run("kill-server")


@dataclass
class PhoneSession:
    device: VirtualAndroidDevice
    adb: AdbServer

    @property
    def serial(self) -> str:
        return self.device.serial

    def shell(self, command: str) -> str:
        res = self.adb.run("-s", self.serial, "shell", command)
        if res.returncode != 0:
            raise RuntimeError(f"adb shell {command!r} failed: {res.stderr}")
        return res.stdout

    def state(self) -> dict[str, Any]:
        """`adb shell state`, through the real adb client and server."""
        return json.loads(self.shell("state"))

    def element(self, label: str, state: dict[str, Any] | None = None, kind: str | None = None) -> dict[str, Any]:
        state = state or self.state()
        for el in state["elements"]:
            if el["label"] == label and (kind is None or el["kind"] == kind):
                return el
        raise LookupError(f"no element {label!r} on screen; visible: {[e['label'] for e in state['elements']]}")

    def point(self, label: str, state: dict[str, Any] | None = None, kind: str | None = None) -> tuple[float, float]:
        """The centre of an element as a normalized point of the screenshot (same size as the display)."""
        state = state or self.state()
        x1, y1, x2, y2 = self.element(label, state, kind)["bounds"]
        w, h = state["size"]
        return ((x1 + x2) / 2 / w, (y1 + y2) / 2 / h)


@contextlib.contextmanager
def start_phone(adb: AdbServer, **phone: Any) -> Iterator[PhoneSession]:
    phone.setdefault("status_time", STATUS_TIME)
    device = VirtualAndroidDevice(**phone).start()
    try:
        adb.connect(device.serial)
        yield PhoneSession(device, adb)
    finally:
        device.stop()
        adb.disconnect(device.serial)


@pytest.fixture
def phone(adb_server: AdbServer) -> Iterator[PhoneSession]:
    with start_phone(adb_server) as session:
        yield session
