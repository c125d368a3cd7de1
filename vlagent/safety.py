"""The safety gate between a decided action and the screen.

Three independent guards live here (the step and wall-clock limits are plain
counters in the agent loop):

- **confirmation**: ask the user before executing actions. `confirm` is None
  (never ask), ``"all"`` (every action that touches the screen), ``"risky"``
  (only risky ones, see `is_risky`) or a callable ``(action) -> bool`` that
  decides itself. The default asker reads y/n on the terminal.
- **secrets**: the model writes ``{{name}}`` placeholders in `type` text; the
  real values are substituted only at execution time and are scrubbed from
  everything written or shown to the model (`SecretStore.redact`).
- **dry run** is handled by the agent (decide and record, execute nothing).
"""

from __future__ import annotations

import os
import re
from typing import Any, Callable, Iterable, Mapping, Sequence

from vlagent.actions import ACTION_KINDS, Action

Asker = Callable[[Action], bool]
ConfirmSetting = str | Asker | None

# Modifier names as parsers emit them (lower-cased by `Action`). A `key`
# action that holds one of these plus another key is a "combo" and counts as
# risky: ctrl+w, alt+f4, super+l, shift+delete...
MODIFIER_KEYS: frozenset[str] = frozenset(
    {"ctrl", "control", "alt", "altgr", "option", "shift", "cmd", "command", "super", "meta", "win", "windows"}
)
# Kinds that never touch the screen: no reason to ask about them.
_NEVER_ASK: frozenset[str] = frozenset({"done", "answer", "wait"})

PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_.-]*)\s*\}\}")


def _combo(keys: Iterable[str]) -> str:
    return "+".join(k.lower() for k in keys)


def is_risky(action: Action, extra: Iterable[str] = ()) -> bool:
    """True for actions a cautious user wants to confirm.

    Built-in: `key` combos with a modifier, `type` text containing a newline
    (it submits forms, sends messages). `extra` adds action kinds
    (``"open_app"``) or exact key combos (``"ctrl+w"``).
    """
    extra = {e.lower() for e in extra}
    if action.kind in extra:
        return True
    if action.kind == "key" and action.keys:
        if _combo(action.keys) in extra:
            return True
        if len(action.keys) > 1 and any(k in MODIFIER_KEYS for k in action.keys):
            return True
    if action.kind == "type" and action.text and ("\n" in action.text or "\r" in action.text):
        return True
    return False


def terminal_asker(action: Action) -> bool:
    """Ask y/n on the terminal (rich). Shows the action with placeholders, never secret values."""
    from rich.prompt import Confirm

    return Confirm.ask(f"[bold yellow]Execute[/] {action.describe()} ?", default=False)


class ConfirmGate:
    """Decides whether the user must approve an action, and asks.

    `mode`: None, "all", "risky" or a callable (which is then the asker for
    every action). `asker` replaces the terminal prompt (tests, GUIs).
    `risky` lists extra kinds / key combos that count as risky.
    """

    def __init__(self, mode: ConfirmSetting = None, *, asker: Asker | None = None, risky: Iterable[str] = ()) -> None:
        if callable(mode):
            self.mode, self.asker = "all", mode
        elif mode in (None, "all", "risky"):
            self.mode, self.asker = mode, asker or terminal_asker
        else:
            raise ValueError(f"confirm must be None, 'all', 'risky' or a callable(action) -> bool, got {mode!r}")
        self.risky = tuple(r.lower() for r in risky)
        unknown = [r for r in self.risky if r not in ACTION_KINDS and "+" not in r]
        if unknown:
            raise ValueError(f"risky entries must be action kinds or key combos like 'ctrl+w', got {unknown}")

    @property
    def description(self) -> str | None:
        if self.mode is None:
            return None
        return self.mode if self.asker is terminal_asker else f"{self.mode} (custom asker)"

    def needs_confirmation(self, action: Action) -> bool:
        if self.mode is None or action.kind in _NEVER_ASK:
            return False
        if self.mode == "all":
            return True
        return is_risky(action, self.risky)

    def approve(self, action: Action) -> bool | None:
        """None when no confirmation was needed, else the user's answer."""
        if not self.needs_confirmation(action):
            return None
        return bool(self.asker(action))


class SecretError(ValueError):
    """A secret is missing (unknown placeholder, unset environment variable)."""


def secret_env_names(name: str) -> tuple[str, str]:
    """Environment variables searched for secret `name`, in order."""
    return (f"VLAGENT_SECRET_{name.upper()}", name)


def resolve_secrets(secrets: Mapping[str, str] | Sequence[str] | None) -> dict[str, str]:
    """Turn the `secrets` argument into name -> value.

    A mapping is used as is. A list of names reads each value from the
    environment: ``VLAGENT_SECRET_<NAME>`` (upper-cased) first, then
    ``<NAME>`` exactly as written.
    """
    if secrets is None:
        return {}
    if isinstance(secrets, str):
        raise TypeError("secrets must be a dict name -> value or a list of names, not a single string")
    if isinstance(secrets, Mapping):
        values = dict(secrets)
    else:
        values = {}
        for name in secrets:
            found = next((os.environ[v] for v in secret_env_names(name) if v in os.environ), None)
            if found is None:
                raise SecretError(
                    f"secret {name!r} is not set: export {secret_env_names(name)[0]} (or {name})"
                )
            values[name] = found
    for name, value in values.items():
        if not isinstance(name, str) or not PLACEHOLDER.fullmatch("{{" + name + "}}"):
            raise SecretError(f"secret name {name!r} must be letters, digits, '_', '.', '-' (starting with a letter)")
        if not isinstance(value, str) or not value:
            raise SecretError(f"secret {name!r} must be a non-empty string")
    return values


class SecretStore:
    """Holds secret values; substitutes placeholders and scrubs values out of text."""

    def __init__(self, secrets: Mapping[str, str] | Sequence[str] | None = None) -> None:
        self._values = resolve_secrets(secrets)
        # Longest first so a secret containing another is scrubbed whole.
        self._by_length = sorted(self._values.items(), key=lambda kv: -len(kv[1]))

    @property
    def names(self) -> list[str]:
        return sorted(self._values)

    def __bool__(self) -> bool:
        return bool(self._values)

    def placeholders(self, text: str) -> list[str]:
        return PLACEHOLDER.findall(text)

    def substitute(self, text: str) -> str:
        """Replace every ``{{name}}`` with its value; unknown names raise `SecretError`."""
        unknown = sorted({n for n in self.placeholders(text) if n not in self._values})
        if unknown:
            known = ", ".join(self.names) or "none"
            raise SecretError(
                f"unknown secret placeholder(s) {', '.join('{{' + n + '}}' for n in unknown)}; "
                f"known secrets: {known}. Nothing was typed."
            )
        return PLACEHOLDER.sub(lambda m: self._values[m.group(1)], text)

    def prepare(self, action: Action) -> Action:
        """The action to execute: `type` text with secrets substituted."""
        if action.kind != "type" or not action.text or not self.placeholders(action.text):
            return action
        return action.with_text(self.substitute(action.text))

    def redact(self, text: str) -> str:
        """Replace any secret value occurring in `text` by its placeholder."""
        for name, value in self._by_length:
            if value in text:
                text = text.replace(value, "{{" + name + "}}")
        return text

    def redact_obj(self, obj: Any) -> Any:
        """`redact` applied to every string inside dicts / lists / tuples."""
        if not self._values:
            return obj
        if isinstance(obj, str):
            return self.redact(obj)
        if isinstance(obj, dict):
            return {self.redact_obj(k): self.redact_obj(v) for k, v in obj.items()}
        if isinstance(obj, (list, tuple)):
            return type(obj)(self.redact_obj(v) for v in obj)
        return obj

    def redact_action(self, action: Action) -> Action:
        if action.text and self._values:
            clean = self.redact(action.text)
            if clean != action.text:
                return action.with_text(clean)
        return action


__all__ = [
    "Asker",
    "ConfirmGate",
    "MODIFIER_KEYS",
    "PLACEHOLDER",
    "SecretError",
    "SecretStore",
    "is_risky",
    "resolve_secrets",
    "secret_env_names",
    "terminal_asker",
]
