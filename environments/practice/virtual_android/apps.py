"""What is installed on the virtual phone: apps, settings rows, contacts, key codes."""

from __future__ import annotations

APPS: dict[str, dict[str, str]] = {
    # app key -> launcher label, package, launcher activity, icon colour
    "settings": {"label": "Settings", "package": "com.android.settings", "activity": ".Settings", "color": "#5f6368"},
    "notes": {"label": "Notes", "package": "com.vlagent.notes", "activity": ".MainActivity", "color": "#f9ab00"},
    "contacts": {"label": "Contacts", "package": "com.android.contacts", "activity": ".activities.PeopleActivity", "color": "#1a73e8"},
    "clock": {"label": "Clock", "package": "com.android.deskclock", "activity": ".DeskClock", "color": "#188038"},
}
LAUNCHER_PACKAGE = "com.android.launcher3"

TOGGLES: list[tuple[str, str, bool]] = [
    # key, label, initial value
    ("wifi", "Wi-Fi", True),
    ("bluetooth", "Bluetooth", True),
    ("airplane_mode", "Airplane mode", False),
    ("dark_mode", "Dark mode", False),
    ("location", "Location", True),
    ("do_not_disturb", "Do not disturb", False),
    ("auto_rotate", "Auto-rotate screen", False),
    ("nfc", "NFC", False),
    ("battery_saver", "Battery saver", False),
    ("hotspot", "Hotspot", False),
]
SETTINGS_PAGES: list[str] = [
    "Network & internet", "Connected devices", "Apps", "Notifications", "Battery", "Storage",
    "Sound & vibration", "Display", "Wallpaper & style", "Accessibility", "Security & privacy",
    "Passwords & accounts", "Digital wellbeing", "Google", "System", "Languages", "Keyboard",
    "Date & time", "Backup", "Reset options", "Multiple users", "Developer options", "Gestures",
    "Default apps", "Permission manager", "Special app access", "Emergency SOS", "Lock screen",
    "Printing", "About phone",
]
SETTINGS_ROWS: list[tuple[str, str]] = (
    [("toggle", key) for key, _, _ in TOGGLES[:5]] + [("page", p) for p in SETTINGS_PAGES[:8]]
    + [("toggle", key) for key, _, _ in TOGGLES[5:]] + [("page", p) for p in SETTINGS_PAGES[8:]]
)
assert len(SETTINGS_ROWS) == 40
TOGGLE_LABELS = {key: label for key, label, _ in TOGGLES}

_FIRST = ["Ada", "Alan", "Barbara", "Claude", "Dennis", "Edsger", "Frances", "Grace", "Hedy", "Ivan",
          "John", "Ken", "Linus", "Margaret", "Niklaus", "Ole", "Radia", "Sophie", "Tim", "Whitfield"]
_LAST = ["Lovelace", "Turing", "Liskov", "Shannon", "Ritchie", "Dijkstra", "Allen", "Hopper", "Lamarr",
         "Sutherland", "McCarthy", "Thompson", "Torvalds", "Hamilton", "Wirth", "Dahl", "Perlman",
         "Wilson", "Berners-Lee", "Diffie"]
CONTACTS: list[tuple[str, str]] = sorted(
    [(f"{_FIRST[i % 20]} {_LAST[(i * 7) % 20]}", f"+1 555 01{i:02d}") for i in range(40)]
)

KEYCODES: dict[str, int] = {
    "HOME": 3, "BACK": 4, "CALL": 5, "ENDCALL": 6, "DPAD_UP": 19, "DPAD_DOWN": 20, "DPAD_LEFT": 21,
    "DPAD_RIGHT": 22, "DPAD_CENTER": 23, "VOLUME_UP": 24, "VOLUME_DOWN": 25, "POWER": 26, "CAMERA": 27,
    "CLEAR": 28, "COMMA": 55, "PERIOD": 56, "ALT_LEFT": 57, "ALT_RIGHT": 58, "SHIFT_LEFT": 59,
    "SHIFT_RIGHT": 60, "TAB": 61, "SPACE": 62, "ENTER": 66, "DEL": 67, "MENU": 82, "SEARCH": 84,
    "PAGE_UP": 92, "PAGE_DOWN": 93, "ESCAPE": 111, "FORWARD_DEL": 112, "CTRL_LEFT": 113,
    "CTRL_RIGHT": 114, "META_LEFT": 117, "MOVE_HOME": 122, "MOVE_END": 123, "VOLUME_MUTE": 164,
    "APP_SWITCH": 187, "SLEEP": 223, "WAKEUP": 224,
}
KEYCODES.update({chr(ord("A") + i): 29 + i for i in range(26)})
KEYCODES.update({str(d): 7 + d for d in range(10)})
KEYCODE_NAMES = {v: k for k, v in KEYCODES.items()}
MODIFIERS = {"SHIFT_LEFT", "SHIFT_RIGHT", "CTRL_LEFT", "CTRL_RIGHT", "ALT_LEFT", "ALT_RIGHT", "META_LEFT"}
