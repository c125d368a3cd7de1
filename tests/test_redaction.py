"""Secret values never reach a file a run writes, whichever way they are written.

A secret shows up in text escaped as often as plain: a model writes it inside the JSON of a tool call
(quotes and backslashes escaped, non-ASCII as \\uXXXX), a server's tool-call arguments are JSON inside
JSON, an error message quotes it with repr(), a URL carries it percent-encoded. Every such form is
scrubbed, every occurrence of it, in every file: trajectory.jsonl, report.html, the screenshots, and
the video `vlagent report --video` exports. The files are searched as bytes for every encoded form.
"""

from __future__ import annotations

import html
import json
import re
from pathlib import Path
from urllib.parse import quote, quote_plus

import pytest
from PIL import Image, ImageDraw

from vlagent.actions import Action
from vlagent.agent import Agent
from vlagent.environments.base import BaseEnvironment, Observation
from vlagent.policy.scripted import ScriptedPolicy
from vlagent.recorder import load_trajectory
from vlagent.safety import SecretStore
from vlagent.session import Session

# Needs escaping in every encoding below: a quote and a backslash (JSON, repr), non-ASCII (JSON with
# ensure_ascii, percent-encoding), '/', '&', '<', ' ', '+' and '%' (URLs, HTML).
SECRET = 'pa"ss\\wörd/&<x> 1+1%'
PIN = "7294"


def _lower_hex(text: str) -> str:
    return re.sub(r"%[0-9A-F]{2}", lambda m: m.group().lower(), text)


def encoded_forms(value: str) -> dict[str, str]:
    """Each way `value` is written by the code paths above, by the name of the way."""
    j, ja = json.dumps(value, ensure_ascii=False)[1:-1], json.dumps(value)[1:-1]
    forms = {
        "raw": value,
        "json": j,
        "json-ascii": ja,
        "json in json": json.dumps(j, ensure_ascii=False)[1:-1],
        "json-ascii in json": json.dumps(ja)[1:-1],
        "repr": repr(value)[1:-1],
        "ascii": ascii(value)[1:-1],
        "url": quote(value, safe=""),
        "url path": quote(value),
        "url query": quote_plus(value),
        "url lower-case hex": _lower_hex(quote(value, safe="")),
        "html": html.escape(value),
    }
    return forms


def needles(value: str) -> dict[str, bytes]:
    out = {name: form.encode() for name, form in encoded_forms(value).items()}
    out["utf-16"] = value.encode("utf-16-le")
    return out


def assert_no_secret_in(files: list[Path], value: str = SECRET) -> None:
    assert files
    for path in files:
        data = path.read_bytes()
        leaked = [name for name, needle in needles(value).items() if needle in data]
        assert not leaked, f"{path.name} holds the secret as {leaked}"


# --------------------------------------------------------------------------- SecretStore.redact


def test_the_test_secret_really_needs_escaping():
    forms = encoded_forms(SECRET)
    # every form differs from the value, or the search below would not test that form
    assert len({forms[k] for k in forms if k != "raw"} - {SECRET}) == len(forms) - 1


def test_every_occurrence_is_scrubbed():
    store = SecretStore({"password": SECRET, "pin": PIN})
    text = f"{SECRET} and {SECRET}{SECRET}, pin {PIN}/{PIN}; again {SECRET}"
    clean = store.redact(text)
    assert clean == "{{password}} and {{password}}{{password}}, pin {{pin}}/{{pin}}; again {{password}}"
    assert store.redact_obj({"a": [text, (text,)], text: 1}) == {"a": [clean, (clean,)], clean: 1}
    assert store.redact_action(Action("type", text=f"{PIN}{PIN}")) == Action("type", text="{{pin}}{{pin}}")


@pytest.mark.parametrize("form", list(encoded_forms(SECRET)))
def test_each_encoded_form_is_scrubbed_every_time(form):
    store = SecretStore({"password": SECRET})
    written = encoded_forms(SECRET)[form]
    text = f"<tool_call>{{\"text\": \"{written}\"}}</tool_call> then {written} and {written}"
    clean = store.redact(text)
    assert clean.count("{{password}}") == 3, clean
    assert all(n.decode("utf-8", "replace") not in clean for n in needles(SECRET).values())
    assert clean.startswith("<tool_call>{\"text\": \"") and clean.endswith(" and {{password}}")  # the rest kept


def test_a_placeholder_is_not_scrubbed_again():
    """A value that is part of another secret's name must not eat into that name's placeholder."""
    store = SecretStore({"password": "a-much-longer-password-value", "pin": "pass"})
    assert store.redact("pass a-much-longer-password-value pass") == "{{pin}} {{password}} {{pin}}"


def test_text_without_secrets_is_left_alone():
    store = SecretStore({"password": SECRET})
    text = 'click(x=1, y=2) "quoted" \\ 100% a+b &amp; https://example.test/a?b=c%20d'
    assert store.redact(text) == text


# --------------------------------------------------------------------------- a whole run


class Screen(BaseEnvironment):
    """A plain screen; its errors quote what it was asked to type, with repr (as xdotool's do)."""

    name = "screen"

    def __init__(self) -> None:
        self.executed: list[Action] = []

    def observe(self) -> Observation:
        img = Image.new("RGB", (320, 200), (235, 238, 245))
        ImageDraw.Draw(img).rectangle((20, 20, 140, 60), fill=(40, 90 + 10 * len(self.executed), 200))
        return Observation(image=img, screen_size=(320, 200))

    def execute(self, action: Action) -> None:
        if action.kind == "type" and action.text.startswith("fail:"):
            raise RuntimeError(f"xdotool could not type {action.text!r}")
        self.executed.append(action)


def _tool_call(arguments_json: str) -> str:
    return f'<tool_call>\n{{"name": "computer_use", "arguments": {arguments_json}}}\n</tool_call>'


def _leaky_script() -> list:
    forms = encoded_forms(SECRET)
    url = f"https://accounts.example.test/login?user=alice&pw={forms['url query']}#{forms['url']}"
    return [
        # a model that read the value somewhere and typed it itself, JSON-escaped inside its tool call,
        # after saying it twice and opening a URL that carries it
        f"I will type {SECRET} (yes, {SECRET}) after visiting {url}.\n"
        + _tool_call(json.dumps({"action": "type", "text": SECRET})),
        # the same value in ASCII-only JSON, and the pin repeated
        f"pin {PIN} {PIN}\n" + _tool_call(json.dumps({"action": "type", "text": f"{PIN}{PIN} {SECRET}"}, ensure_ascii=True)),
        # a server's tool_calls: the arguments string is JSON inside the reply's JSON
        "\n<tool_call>\n" + json.dumps({"name": "computer_use",
                                        "arguments": json.dumps({"action": "type", "text": SECRET})}) + "\n</tool_call>",
        # the environment's error quotes the typed text with repr()
        Action("type", text="fail:{{password}}"),
        [Action("answer", text=f"done: {SECRET} / {html.escape(SECRET)} / {SECRET}")],
    ]


def test_no_file_of_a_run_holds_the_secret(tmp_path):
    from vlagent.run_export import export_run_video

    env = Screen()
    task = f"log in with {SECRET} at https://example.test/?pw={quote_plus(SECRET)}"
    result = Agent(ScriptedPolicy(_leaky_script()), env, run_dir=tmp_path / "run",
                   secrets={"password": SECRET, "pin": PIN}).run(task)
    assert result.status == "answered", result.error
    # the values were really typed: the secrets were in play, not just absent
    assert env.executed[0] == Action("type", text=SECRET)
    assert env.executed[1] == Action("type", text=f"{PIN}{PIN} {SECRET}")
    assert env.executed[2] == Action("type", text=SECRET)

    header, steps, final = load_trajectory(result.run_dir)
    assert header["task"].count("{{password}}") == 2
    assert steps[0]["raw_output"].count("{{password}}") == 5  # twice plain, twice in the URL, once in the call
    assert steps[0]["actions"] == [{"kind": "type", "text": "{{password}}"}]
    assert steps[1]["raw_output"].count("{{pin}}") == 4
    assert [s["error"] for s in steps[:3]] == [None] * 3 and steps[2]["raw_output"].count("{{password}}") == 1
    assert "xdotool could not type" in steps[3]["error"] and "{{password}}" in steps[3]["error"]
    assert final["answer"] == "done: {{password}} / {{password}} / {{password}}"
    assert PIN not in json.dumps([header, steps, final])

    video = export_run_video(result.run_dir, tmp_path / "run.mp4")
    files = [p for p in result.run_dir.rglob("*") if p.is_file()] + [video]
    assert {p.name for p in files} >= {"trajectory.jsonl", "report.html", "step-000.png", "step-004.png", "run.mp4"}
    assert_no_secret_in(files)
    assert_no_secret_in(files, PIN)
    # what the policy saw of earlier steps is scrubbed too
    assert_no_secret_in_text(repr(result.records))


def assert_no_secret_in_text(text: str) -> None:
    leaked = [name for name, form in encoded_forms(SECRET).items() if form in text]
    assert not leaked, leaked


def test_no_file_of_a_session_holds_the_secret(tmp_path):
    """vlagent.connect bots and the MCP server record through a Session: the same scrubbing."""
    env = Screen()
    with Session(env, task="session", run_dir=tmp_path / "s", secrets={"password": SECRET}) as session:
        session.act(Action("type", text="{{password}}"), note=f'type(text="{json.dumps(SECRET)[1:-1]}")')
        session.act(Action("type", text="fail:{{password}}"), note=f"visit ?pw={quote_plus(SECRET)}")
        session.note(f"looked up {SECRET!r} twice: {SECRET!r}")
    assert env.executed == [Action("type", text=SECRET)]
    _, steps, _ = load_trajectory(tmp_path / "s")
    assert [s["raw_output"].count("{{password}}") for s in steps] == [1, 1, 2]
    assert_no_secret_in([p for p in (tmp_path / "s").iterdir() if p.is_file()])
