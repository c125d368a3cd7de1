"""A virtual Android phone that speaks the real adb wire protocol.

    device = VirtualAndroidDevice(port=0).start()   # or: python -m vlagent.environments.practice.virtual_android --port 5555
    # adb connect 127.0.0.1:<device.port>; adb shell state; adb exec-out screencap -p > s.png
    device.stop()

Used by the tests and demos in place of a phone: the real adb server and
adbutils drive it exactly as they drive a device.
"""

from vlagent.environments.practice.virtual_android.commands import ADB_KEYBOARD
from vlagent.environments.practice.virtual_android.device import VirtualPhone
from vlagent.environments.practice.virtual_android.apps import APPS
from vlagent.environments.practice.virtual_android.phone_ui import PhoneUI
from vlagent.environments.practice.virtual_android.server import VirtualAndroidDevice

__all__ = ["VirtualAndroidDevice", "VirtualPhone", "PhoneUI", "APPS", "ADB_KEYBOARD"]
