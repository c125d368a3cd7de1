"""The safety gate between a decided action and the screen.

Three independent guards live here (the step and wall-clock limits are plain
counters in the agent loop):

- **confirmation**: ask the user before executing actions. `confirm` is None
  (never ask), ``"all"`` (every action that touches the screen), ``"risky"``
  (only risky ones, see `is_risky`) or a callable ``(action) -> bool`` that
  decides itself. The default asker reads y/n on the terminal.
- **secrets**: the model writes ``{{name}}`` placeholders in `type` text; the
  real values are substituted only at execution time and are scrubbed from
  everything written or shown to the model (`SecretStore.redact`). A secret
  given as ``name@GLOB`` is bound to its place: it is typed only while the
  keyboard focus is on a window whose title matches GLOB (desktop) or an app
  whose package matches it (Android), as the environment's ``focus()``
  reports just before the keys are sent (`SecretStore.check_scope`).
- **dry run** is handled by the agent (decide and record, execute nothing).
"""

from __future__ import annotations

import html
import json
import os
import re
from fnmatch import fnmatchcase
from typing import Any, Callable, Iterable, Mapping, Sequence
from urllib.parse import quote, quote_plus

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

# Descriptions of fields whose contents a recording must not keep: `type_into("the Password field",
# ...)` types its text as a secret unless told otherwise (`names_a_secret`). Word edges count "_" as a
# break ("new_password"); a token, PIN or secret counted or pinned is no field's secret ("Tokens per
# minute", "Pin to taskbar", "Number of pins").
_SECRET_FIELD = re.compile(
    r"(?<![^\W_])(?:"
    r"pass(?:word|code|phrase|key)s?|passwd|pwd|pass phrase|pin ?(?:code|number)s?|cvv2?|cvc|csc|"
    r"(?:security|verification|auth(?:entication|orization)?|sms|one[- ]time|2fa|mfa|otp) ?-?codes?|"
    r"one[- ]time passwords?|otp|2fa|api[ _-]?keys?|(?:access|secret|private|recovery) keys?|"
    r"(?:(?:access|auth|bearer|api|refresh) )?tokens?(?! (?:per|count|limit|usage|ring)\b)|"
    r"(?<!of )pins?(?! (?:to|it|this|icon|button)\b)|secrets?(?! (?:santa|manager)\b)|"
    r"passwort|kennwort|contraseña|mot de passe|senha|пароль"
    r")(?![^\W_])"
    r"|密码|口令|パスワード|비밀번호",
    re.IGNORECASE,
)
MIN_HIDDEN = 4  # characters: shorter text typed into such a field is hidden only when the script says so


def names_a_secret(description: str) -> bool:
    """True when `description` names a field for a password, PIN, security or one-time code, key or token."""
    return bool(_SECRET_FIELD.search(description or ""))


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


class SecretScopeError(SecretError):
    """A scoped secret was about to be typed outside its place (or where its place cannot be told)."""


def split_scope(spec: str) -> tuple[str, str | None]:
    """``"password@*Login*"`` -> ``("password", "*Login*")``; ``"password"`` -> ``("password", None)``."""
    if not isinstance(spec, str):
        raise SecretError(f"a secret name must be a string, got {type(spec).__name__}")
    name, sep, scope = spec.partition("@")
    if sep and not scope.strip():
        raise SecretError(f"secret {spec!r}: nothing after '@'; write NAME@GLOB, e.g. password@'*Login*'")
    return name.strip(), (scope.strip() if sep else None)


def _split_specs(
    secrets: Mapping[str, str] | Sequence[str] | None,
) -> tuple[Mapping[str, str] | Sequence[str] | None, dict[str, tuple[str, ...]]]:
    """Names (or name -> value) without their scopes, and the scopes: name -> globs."""
    if secrets is None or isinstance(secrets, str):
        return secrets, {}
    scopes: dict[str, list[str]] = {}
    unscoped: set[str] = set()
    specs: list[tuple[str, str | None]] = []
    if isinstance(secrets, Mapping):
        plain: dict[str, str] | list[str] = {}
        for spec, value in secrets.items():
            name, scope = split_scope(spec)
            if name in plain and plain[name] != value:
                raise SecretError(f"secret {name!r} is given twice with different values")
            plain[name] = value
            specs.append((name, scope))
    else:
        plain = []
        for spec in secrets:
            name, scope = split_scope(spec)
            if name not in plain:
                plain.append(name)
            specs.append((name, scope))
    for name, scope in specs:
        if scope:
            scopes.setdefault(name, []).append(scope)
        else:
            unscoped.add(name)
    both = sorted(unscoped & set(scopes))
    if both:
        raise SecretError(f"secret {both[0]!r} is given both with a scope ({both[0]}@{scopes[both[0]][0]}) and "
                          "without one (anywhere): give it one way")
    return plain, {name: tuple(dict.fromkeys(globs)) for name, globs in scopes.items()}


def secret_env_names(name: str) -> tuple[str, str]:
    """Environment variables searched for secret `name`, in order."""
    return (f"VLAGENT_SECRET_{name.upper()}", name)


def resolve_secrets(secrets: Mapping[str, str] | Sequence[str] | None) -> dict[str, str]:
    """Turn the `secrets` argument into name -> value.

    A mapping is used as is. A list of names reads each value from the
    environment: ``VLAGENT_SECRET_<NAME>`` (upper-cased) first, then
    ``<NAME>`` exactly as written. A ``NAME@GLOB`` scope is dropped here
    (`SecretStore` keeps it).
    """
    secrets, _ = _split_specs(secrets)
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


def written_forms(value: str) -> set[str]:
    """`value` and the ways text carries it escaped: JSON (non-ASCII as is or as \\uXXXX, '/' as is or
    as \\/, and JSON inside JSON, like a server's tool-call arguments), Python repr() and ascii(),
    percent-encoding (path, query value with '+' for spaces, upper- or lower-case hex), HTML."""
    j, ja = json.dumps(value, ensure_ascii=False)[1:-1], json.dumps(value)[1:-1]
    forms = {value, j, ja, j.replace("/", "\\/"), ja.replace("/", "\\/"),
             json.dumps(j, ensure_ascii=False)[1:-1], json.dumps(ja)[1:-1],
             repr(value)[1:-1], ascii(value)[1:-1], html.escape(value), html.escape(value, quote=False)}
    for encoded in (quote(value, safe=""), quote(value), quote_plus(value)):
        forms |= {encoded, re.sub(r"%[0-9A-F]{2}", lambda m: m.group().lower(), encoded)}
    return {f for f in forms if f}


class SecretStore:
    """Holds secret values; substitutes placeholders, keeps scoped ones in their place, scrubs values out of text.

    `secrets`: name -> value, or names read from the environment (`resolve_secrets`). Any name may
    carry a scope, ``"password@*Login*"`` (repeat the name for several places): a glob, matched
    without regard to case against the focused window's title (desktop) or the foreground app's
    package (Android).
    """

    def __init__(self, secrets: Mapping[str, str] | Sequence[str] | None = None) -> None:
        plain, self._scopes = _split_specs(secrets)
        self._values = resolve_secrets(plain)
        self._index()

    def _index(self) -> None:
        # Every written form of every value, longest first so a secret containing another is scrubbed whole.
        self._forms = {form: name for name, value in sorted(self._values.items(), key=lambda kv: len(kv[1]))
                       for form in written_forms(value)}
        self._pattern = re.compile("|".join(re.escape(f) for f in sorted(self._forms, key=len, reverse=True)))

    def hide(self, value: str, stem: str = "typed") -> str:
        """Keep `value` as a secret from now on and return its placeholder: text a caller types through it
        (a password given to a script) is typed as it is and recorded as ``{{typed_1}}``. The same value
        twice gets the same placeholder."""
        if not isinstance(value, str) or not value:
            raise SecretError("only a non-empty string can be kept secret")
        for name, known in self._values.items():
            if known == value:
                return "{{" + name + "}}"
        n = 1
        while f"{stem}_{n}" in self._values:
            n += 1
        name = f"{stem}_{n}"
        self._values[name] = value
        self._index()
        return "{{" + name + "}}"

    @property
    def names(self) -> list[str]:
        return sorted(self._values)

    @property
    def scopes(self) -> dict[str, list[str]]:
        """name -> the globs it may be typed into (scoped secrets only); no values."""
        return {name: list(globs) for name, globs in sorted(self._scopes.items())}

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
                f"known secrets: {known}. Nothing was typed. Give its value as a secret: --secret {unknown[0]} "
                f"with {secret_env_names(unknown[0])[0]} set (a script: secrets=[{unknown[0]!r}])."
            )
        return PLACEHOLDER.sub(lambda m: self._values[m.group(1)], text)

    def prepare(self, action: Action) -> Action:
        """The action to execute: `type` text with secrets substituted."""
        if action.kind != "type" or not action.text or not self.placeholders(action.text):
            return action
        return action.with_text(self.substitute(action.text))

    def check_scope(self, action: Action, env: Any) -> None:
        """Raise SecretScopeError unless every scoped secret `action` types may go where the keys would go now.

        Asks `env.focus()` (a `Focus`: name, kind) only when the action types a scoped secret; an
        environment that cannot tell, or a focus it cannot name, is refused too. Call it right before
        the keys are sent. EnvironmentLost from `focus()` propagates.
        """
        if action.kind != "type" or not action.text or not self._scopes:
            return
        scoped = sorted({n for n in self.placeholders(action.text) if n in self._scopes})
        if not scoped:
            return
        reader = getattr(env, "focus", None)
        if reader is None:
            raise SecretScopeError(
                f"{{{{{scoped[0]}}}}} may only be typed into {self._place(scoped[0], None)}, and this environment "
                f"({getattr(env, 'name', type(env).__name__)}) cannot tell where the keyboard focus is. Nothing was typed."
            )
        try:
            focus = reader()
        except Exception as e:
            from vlagent.environments.base import EnvironmentLost

            if isinstance(e, EnvironmentLost):
                raise
            raise SecretScopeError(
                f"{{{{{scoped[0]}}}}} may only be typed into {self._place(scoped[0], None)}, and reading where the "
                f"keyboard focus is failed ({type(e).__name__}: {e}). Nothing was typed."
            ) from None
        name, kind = getattr(focus, "name", None), getattr(focus, "kind", None)
        for secret in scoped:
            if name is None or not any(fnmatchcase(name.casefold(), g.casefold()) for g in self._scopes[secret]):
                where = focus.describe() if hasattr(focus, "describe") else repr(name)
                raise SecretScopeError(
                    f"{{{{{secret}}}}} may only be typed into {self._place(secret, kind)}; the keyboard focus is on "
                    f"{where}. Nothing was typed."
                )

    def _place(self, name: str, kind: str | None) -> str:
        globs = " or ".join(repr(g) for g in self._scopes[name])
        return {"window": f"a window titled {globs}", "app": f"the app {globs}"}.get(
            kind or "", f"a window titled / an app matching {globs}")

    def redact(self, text: str) -> str:
        """Replace every occurrence of a secret value in `text`, plain or escaped (`written_forms`), by its
        placeholder, in one pass (a placeholder put in is never scrubbed again)."""
        if not self._forms:
            return text
        return self._pattern.sub(lambda m: "{{" + self._forms[m.group()] + "}}", text)

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
    "SecretScopeError",
    "SecretStore",
    "is_risky",
    "names_a_secret",
    "resolve_secrets",
    "secret_env_names",
    "split_scope",
    "terminal_asker",
]
