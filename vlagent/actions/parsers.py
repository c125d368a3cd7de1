"""Parsers for model outputs (filled in by the parsers work)."""

from __future__ import annotations

from vlagent.actions.schema import Action, ActionParseError


def parse_actions(text: str, *, fmt: str = "auto", image_size: tuple[int, int] | None = None) -> list[Action]:
    raise ActionParseError("parse_actions is being written", text)
