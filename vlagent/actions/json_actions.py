"""vlagent's own action JSON (what `Action.to_dict()` writes) -> Actions.

One object or a list of them, bare or inside a ```json fence. Points are
already normalized; the shared 1% edge tolerance still applies (then clamped).
"""

from __future__ import annotations

from typing import Any

from vlagent.actions._common import json_payload, load_json, normalize_point
from vlagent.actions.schema import Action, ActionError, ActionParseError


def looks_like_action_json(obj: Any) -> bool:
    items = obj if isinstance(obj, list) else [obj]
    return bool(items) and all(isinstance(item, dict) and "kind" in item for item in items)


def actions_from_json(loaded: Any, source: str) -> list[Action]:
    items = loaded if isinstance(loaded, list) else [loaded]
    if not items:
        raise ActionParseError("no action found: the JSON list is empty", source)
    actions = []
    for item in items:
        if not isinstance(item, dict):
            raise ActionParseError(f"an action must be a JSON object, got {type(item).__name__}", source)
        data = dict(item)
        for name in ("point", "end"):
            value = data.get(name)
            if isinstance(value, list) and len(value) == 2:
                data[name] = normalize_point(name, value[0], value[1], (1.0, 1.0), source)
        try:
            actions.append(Action.from_dict(data))
        except (ActionError, TypeError) as exc:
            raise ActionParseError(str(exc), source) from None
    return actions


def parse_action_json(text: str) -> list[Action]:
    payload = json_payload(text)
    if payload is None:
        raise ActionParseError("no action JSON found (expected an object or list, optionally in a ```json fence)", text)
    return actions_from_json(load_json(payload, "the action JSON", text), payload)
