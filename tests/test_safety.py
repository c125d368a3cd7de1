"""Confirmation rules and secret handling (vlagent.safety)."""

from __future__ import annotations

import builtins

import pytest

from vlagent.actions import Action
from vlagent.safety import (ConfirmGate, SecretError, SecretStore, is_risky, names_a_secret, resolve_secrets,
                            terminal_asker)


@pytest.mark.parametrize(
    "action, risky",
    [
        (Action("key", keys=("ctrl", "w")), True),
        (Action("key", keys=("alt", "f4")), True),
        (Action("key", keys=("super", "l")), True),
        (Action("key", keys=("shift", "delete")), True),
        (Action("key", keys=("enter",)), False),
        (Action("key", keys=("ctrl",)), False),  # a lone modifier does nothing
        (Action("type", text="hello"), False),
        (Action("type", text="hello\n"), True),
        (Action("type", text="a\r"), True),
        (Action("click", point=(0.5, 0.5)), False),
        (Action("open_app", text="Terminal"), False),
    ],
)
def test_builtin_risky_rules(action, risky):
    assert is_risky(action) is risky


def test_user_listed_risky_kinds_and_combos():
    assert is_risky(Action("open_app", text="x"), ["open_app"])
    assert is_risky(Action("key", keys=("f5",)), ["f5+"]) is False  # not a combo match
    assert is_risky(Action("key", keys=("ctrl", "s")), ["CTRL+S"])
    gate = ConfirmGate("risky", asker=lambda a: True, risky=["click"])
    assert gate.needs_confirmation(Action("click", point=(0.1, 0.1)))
    with pytest.raises(ValueError, match="risky entries"):
        ConfirmGate("risky", risky=["clik"])


def test_confirm_modes():
    asked = []
    ask = lambda a: asked.append(a) or False  # noqa: E731
    click, done, combo = Action("click", point=(0.1, 0.1)), Action("done"), Action("key", keys=("ctrl", "q"))
    assert ConfirmGate(None, asker=ask).approve(combo) is None
    assert ConfirmGate("risky", asker=ask).approve(click) is None
    assert ConfirmGate("risky", asker=ask).approve(combo) is False
    assert ConfirmGate("all", asker=ask).approve(click) is False
    assert ConfirmGate("all", asker=ask).approve(done) is None  # ending the run is never asked
    assert ConfirmGate(lambda a: True).approve(click) is True
    assert asked == [combo, click]
    with pytest.raises(ValueError, match="confirm must be"):
        ConfirmGate("yes")


def test_terminal_asker_reads_yes_no(monkeypatch):
    answers = iter(["maybe", "y", "n"])
    prompts = []
    monkeypatch.setattr(builtins, "input", lambda prompt="": prompts.append(prompt) or next(answers))
    action = Action("type", text="{{password}}\n")
    assert terminal_asker(action) is True  # "maybe" is rejected and asked again
    assert terminal_asker(action) is False


def test_substitution_and_unknown_placeholders():
    store = SecretStore({"password": "pw1", "user.name": "alice"})
    assert store.substitute("{{ user.name }}:{{password}}") == "alice:pw1"
    typed = store.prepare(Action("type", text="{{password}}\n"))
    assert typed == Action("type", text="pw1\n")
    click = Action("click", point=(0.2, 0.2))
    assert store.prepare(click) is click
    with pytest.raises(SecretError, match=r"\{\{pin\}\}.*known secrets: password, user.name.*--secret pin with "
                                          r"VLAGENT_SECRET_PIN set"):
        store.prepare(Action("type", text="{{pin}} {{password}}"))


def test_redaction_covers_nested_values_and_overlapping_secrets():
    store = SecretStore({"short": "abc", "long": "xxabcxx"})
    assert store.redact("1 xxabcxx 2 abc") == "1 {{long}} 2 {{short}}"
    record = {"raw": "typed abc", "list": ["abc", ("abc", 3)], "n": 3, "abc": None}
    assert store.redact_obj(record) == {"raw": "typed {{short}}", "list": ["{{short}}", ("{{short}}", 3)], "n": 3, "{{short}}": None}
    assert store.redact_action(Action("type", text="abc")) == Action("type", text="{{short}}")
    assert SecretStore().redact_obj(record) is record


def test_resolve_secrets_from_environment(monkeypatch):
    monkeypatch.setenv("VLAGENT_SECRET_PASSWORD", "from-prefixed")
    monkeypatch.setenv("password", "from-plain")
    monkeypatch.setenv("otp", "123")
    assert resolve_secrets(["password", "otp"]) == {"password": "from-prefixed", "otp": "123"}
    with pytest.raises(SecretError, match="VLAGENT_SECRET_MISSING"):
        resolve_secrets(["missing"])
    with pytest.raises(SecretError, match="must be letters"):
        resolve_secrets({"bad name": "x"})
    with pytest.raises(SecretError, match="non-empty"):
        resolve_secrets({"empty": ""})
    with pytest.raises(TypeError):
        resolve_secrets("password")


@pytest.mark.parametrize("description, secret", [
    ("the Password field", True), ("Confirm password", True), ("the PIN box", True), ("card security code", True),
    ("CVV", True), ("the API key field", True), ("access token", True), ("one-time code", True),
    ("the 2FA code field", True), ("Passwort", True), ("密码输入框", True), ("the passphrase", True),
    ("new_password", True), ("passwd", True), ("the Pincode field", True), ("API keys", True),
    ("the verification code", True), ("SMS code", True), ("Recovery key", True), ("Passkey", True),
    ("the Name field", False), ("the search box", False), ("the Pinned notes list", False),
    ("the Spinner", False), ("Passenger name", False), ("the Compass field", False), ("", False),
    ("Tokens per minute", False), ("Number of pins", False), ("Pin to taskbar", False),
    ("Secret Santa name", False), ("Token ring settings", False), ("Pinterest", False),
])
def test_descriptions_that_name_a_secret_field(description, secret):
    assert names_a_secret(description) is secret


def test_a_hidden_value_is_typed_and_scrubbed_like_a_named_secret():
    store = SecretStore({"password": "s3cret!"})
    placeholder = store.hide("hunter2 pw")
    assert placeholder == "{{typed_1}}" and store.hide("hunter2 pw") == placeholder   # once per value
    assert store.hide("s3cret!") == "{{password}}"                                    # a known one keeps its name
    assert store.hide("other") == "{{typed_2}}" and store.names == ["password", "typed_1", "typed_2"]
    typed = store.prepare(Action("type", text=placeholder))
    assert typed.text == "hunter2 pw"
    assert store.redact('{"note": "typed hunter2 pw, hunter2%20pw"}') == '{"note": "typed {{typed_1}}, {{typed_1}}"}'
    with pytest.raises(SecretError, match="non-empty"):
        store.hide("")


def test_a_short_secret_never_garbles_the_run_folders_own_file_names(tmp_path):
    """A PIN "5" scrubbed from every string turned step-005.png into step-00{{pin}}.png."""
    from vlagent.recorder import RunRecorder, load_trajectory

    store = SecretStore({"pin": "5"})
    with RunRecorder(tmp_path, scrub=store.redact_obj) as recorder:
        recorder.write_step({"index": 5, "screenshot": "step-005.png", "raw_output": "typed 5"})
    _, steps, _ = load_trajectory(tmp_path)
    assert steps[0]["screenshot"] == "step-005.png" and steps[0]["raw_output"] == "typed {{pin}}"
