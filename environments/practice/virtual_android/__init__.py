"""A virtual Android phone that speaks the real adb wire protocol.

    device = VirtualAndroidDevice(port=0).start()   # or: python -m vlagent.environments.practice.virtual_android --port 5555
    # adb connect 127.0.0.1:<device.port>; adb shell state; adb exec-out screencap -p > s.png
    device.stop()

Used by the tests and demos in place of a phone: the real adb server and
adbutils drive it exactly as they drive a device.
"""

from vlagent.environments.practice.virtual_android.device import ADB_KEYBOARD, VirtualPhone
from vlagent.environments.practice.virtual_android.phone_ui import APPS, PhoneUI
from vlagent.environments.practice.virtual_android.server import VirtualAndroidDevice

__all__ = ["VirtualAndroidDevice", "VirtualPhone", "PhoneUI", "APPS", "ADB_KEYBOARD"]
