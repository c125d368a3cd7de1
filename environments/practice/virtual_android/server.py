"""`VirtualAndroidDevice`: a `VirtualPhone` served over the adb wire protocol."""

from __future__ import annotations

from typing import Any

from vlagent.environments.practice.virtual_android.device import VirtualPhone
from vlagent.environments.practice.virtual_android.protocol import AdbDeviceServer


class VirtualAndroidDevice:
    """A phone on 127.0.0.1:`port` that `adb connect` accepts; start() / stop() run it on threads.

    Keyword arguments go to `VirtualPhone` (width, height, density, adbkeyboard,
    model, release, sdk, status_time). `phone` is the device state, for tests
    that want to look behind adb.
    """

    def __init__(self, port: int = 0, host: str = "127.0.0.1", **phone: Any) -> None:
        self.phone = VirtualPhone(**phone)
        self.server = AdbDeviceServer(self.phone.run_service, self.phone.banner, host=host, port=port)

    @property
    def port(self) -> int:
        if self.server.port is None:
            raise RuntimeError("the virtual device is not started")
        return self.server.port

    @property
    def serial(self) -> str:
        """What `adb devices` calls it after `adb connect`."""
        return f"{self.server.host}:{self.port}"

    def start(self) -> "VirtualAndroidDevice":
        self.server.start()
        return self

    def stop(self) -> None:
        self.server.stop()

    def __enter__(self) -> "VirtualAndroidDevice":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
