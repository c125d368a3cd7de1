"""Where actions happen: desktop, Android, and practice environments.

Heavy backends (mss/pyautogui, adbutils) are imported lazily so that the base
install stays light.
"""

from vlagent.environments.base import (
    BaseEnvironment,
    Environment,
    EnvironmentFailure,
    EnvironmentLost,
    EnvironmentUnavailable,
    Focus,
    Observation,
    UnsupportedAction,
)

_LAZY = {
    "DesktopEnv": "vlagent.environments.desktop",
    "AndroidEnv": "vlagent.environments.android",
}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'vlagent.environments' has no attribute {name!r}")


__all__ = [
    "BaseEnvironment",
    "Environment",
    "EnvironmentFailure",
    "EnvironmentLost",
    "EnvironmentUnavailable",
    "Focus",
    "Observation",
    "UnsupportedAction",
    "DesktopEnv",
    "AndroidEnv",
]
