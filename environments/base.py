"""The `Environment` protocol: where actions happen.

An environment turns the screen into an `Observation` and executes `Action`s.
It alone converts normalized screenshot coordinates into device pixels.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from PIL import Image

from vlagent.actions import Action


@dataclass
class Observation:
    """What the agent sees at one moment.

    `image` is the screenshot the model looks at; normalized action points are
    fractions of *this* image. `screen_size` is (width, height) in device
    pixels (what the environment clicks in). `elements` optionally lists
    on-screen elements (accessibility tree) as dicts with `kind`, `label`,
    `bounds` ([x1, y1, x2, y2] in screenshot pixels) and `value`.
    """

    image: Image.Image
    screen_size: tuple[int, int]
    timestamp: float = field(default_factory=time.time)
    elements: list[dict[str, Any]] | None = None
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def image_size(self) -> tuple[int, int]:
        return self.image.size


def pixel_of(point: tuple[float, float], size: tuple[int, int]) -> tuple[int, int]:
    """The pixel a normalized screenshot point falls in, on a surface of `size` (width, height).

    The environments' one coordinate conversion: each passes the size of the
    surface it acts on (logical monitor, rotated phone display) and adds its
    own offsets. The far edge (1.0) is the last pixel, never one past it.
    """
    x, y = point
    if not (0.0 <= x <= 1.0 and 0.0 <= y <= 1.0):
        raise ValueError(f"point must be normalized to [0, 1], got {point!r}")
    w, h = size
    return min(math.floor(x * w), w - 1), min(math.floor(y * h), h - 1)


@dataclass(frozen=True)
class Focus:
    """Where typed text would go right now, in the environment's own words.

    `name` is what a secret's scope is matched against: the focused window's
    title on a desktop, the foreground app's package on Android; None when it
    cannot be told. `kind` says which of the two it is ("window" or "app"), and
    `details` holds the rest (window id and class, activity) for messages.
    """

    name: str | None
    kind: str
    details: dict[str, Any] = field(default_factory=dict)

    def describe(self) -> str:
        if self.name is None:
            where = self.details.get("window") or self.details.get("error") or self.details.get("how")
            return f"an unknown {self.kind}" + (f" ({where})" if where else "")
        shown = self.name if len(self.name) <= 80 else self.name[:77] + "..."
        return f"the window titled {shown!r}" if self.kind == "window" else f"the app {shown!r}"


class EnvironmentFailure(RuntimeError):
    """Base for environment failures (no display, device gone, ...)."""


class EnvironmentUnavailable(EnvironmentFailure):
    """The environment cannot start: no display, no device, missing package."""


class EnvironmentLost(EnvironmentFailure):
    """The environment went away mid-run (device disconnected, display closed)."""


class UnsupportedAction(EnvironmentFailure):
    """This environment cannot execute this kind of action."""


@runtime_checkable
class Environment(Protocol):
    """observe() / execute() / close(); usable as a context manager."""

    name: str

    def observe(self) -> Observation: ...

    def execute(self, action: Action) -> None: ...

    def close(self) -> None: ...

    def __enter__(self) -> "Environment": ...

    def __exit__(self, *exc: object) -> None: ...


class BaseEnvironment:
    """Context-manager plumbing shared by the concrete environments."""

    name = "base"

    def observe(self) -> Observation:  # pragma: no cover - abstract
        raise NotImplementedError

    def execute(self, action: Action) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def close(self) -> None:
        pass

    def __enter__(self) -> "BaseEnvironment":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


__all__ = [
    "Focus",
    "Observation",
    "Environment",
    "BaseEnvironment",
    "EnvironmentFailure",
    "EnvironmentUnavailable",
    "EnvironmentLost",
    "UnsupportedAction",
]
