"""The practice app under Xvfb for the fault tests that drive `vlagent run` through the CLI:

    from fault_app import SCREEN, app, display, grid_point  # noqa: F401  (fixtures)
"""
from __future__ import annotations

from pathlib import Path

import pytest

from display_fixtures import _skip_without_binaries
from fault_checks import SECRET_ENV
from vlagent.environments.practice import desktop_app
from vlagent.environments.xserver import start_virtual_display

SCREEN = (1280, 720)


@pytest.fixture(scope="module")
def display():
    _skip_without_binaries()
    with start_virtual_display(*SCREEN) as d:
        yield d


@pytest.fixture
def app(display, tmp_path, monkeypatch):
    """A fresh practice app (so its click list starts empty), and the CLI pointed at its display with the
    test secret in its environment and no model server configured."""
    for name in ("VLAGENT_API_BASE", "VLAGENT_MODEL", "OPENAI_API_KEY", "VLAGENT_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("DISPLAY", display.name)
    monkeypatch.setenv("XAUTHORITY", display.env["XAUTHORITY"])
    for key, value in SECRET_ENV.items():
        monkeypatch.setenv(key, value)
    state_file = tmp_path / "app-state.json"
    proc = desktop_app.launch(state_file, display.name, geometry="800x560+200+80", env=display.env)
    try:
        yield state_file
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def grid_point(state_file: Path, widget: str) -> list[int]:
    """The centre of a widget on the 0-1000 grid of the screenshot (the whole 1280x720 screen)."""
    x1, y1, x2, y2 = desktop_app.read_state(state_file)["boxes"][widget]
    return [round(((x1 + x2) // 2 + 0.5) / SCREEN[0] * 1000), round(((y1 + y2) // 2 + 0.5) / SCREEN[1] * 1000)]
