"""Secrets bound to their place: `--secret password@'*Login*'` is typed only into a focused window whose title
matches (desktop) or the foreground app whose package does (Android); anywhere else it is refused before any
key is sent, recorded, and shown to the model. Unit level with an in-memory environment, then for real on
Xvfb with the practice app's "Notes" window (whose text tells the agent to type {{password}} into it) and on
the virtual phone over a real adb server."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image

from android_fixtures import adb_server, phone  # noqa: F401
from display_fixtures import x_display  # noqa: F401
from vlagent.actions import Action
from vlagent.agent import Agent, execute_gated
from vlagent.environments.base import BaseEnvironment, EnvironmentLost, Focus, Observation
from vlagent.policy.scripted import ScriptedPolicy
from vlagent.recorder import load_trajectory
from vlagent.safety import ConfirmGate, SecretError, SecretScopeError, SecretStore, split_scope

SECRET = "Hunter2-pw!42"


def _files_leaking(run_dir: Path, value: str = SECRET) -> list[Path]:
    return [p for p in run_dir.rglob("*") if p.is_file() and value.encode() in p.read_bytes()]


class FocusEnv(BaseEnvironment):
    """An in-memory screen whose keyboard focus is whatever `focused` says."""

    name = "focus-fake"

    def __init__(self, focused: str | None = "Login - Example", kind: str = "window") -> None:
        self.focused, self.kind = focused, kind
        self.executed: list[Action] = []
        self.focus_calls = 0

    def observe(self) -> Observation:
        return Observation(image=Image.new("RGB", (160, 100), (240, 240, 240)), screen_size=(160, 100))

    def execute(self, action: Action) -> None:
        self.executed.append(action)
        if action.kind == "key" and action.keys == ("alt", "tab"):  # switches windows, as on a desktop
            self.focused = "Notes"

    def focus(self) -> Focus:
        self.focus_calls += 1
        if self.focused == "gone":
            raise EnvironmentLost("display :99 went away")
        return Focus(self.focused, self.kind)


# -- the rules ----------------------------------------------------------------


def test_scope_specs_are_read_and_bad_ones_named():
    assert split_scope("password@*Login*") == ("password", "*Login*")
    assert split_scope("password") == ("password", None)
    assert split_scope("pin@com.example.*") == ("pin", "com.example.*")
    with pytest.raises(SecretError, match="nothing after '@'"):
        split_scope("password@")
    store = SecretStore({"password@*Login*": SECRET, "token": "t0k"})
    assert store.names == ["password", "token"] and store.scopes == {"password": ["*Login*"]}
    # Repeated with another scope: either place will do.
    both = SecretStore({"password@*Login*": SECRET, "password@*Sign in*": SECRET})
    assert both.scopes == {"password": ["*Login*", "*Sign in*"]}
    with pytest.raises(SecretError, match="with a scope .* and without"):
        SecretStore({"password@*Login*": SECRET, "password": SECRET})
    with pytest.raises(SecretError, match="different values"):
        SecretStore({"password@*Login*": SECRET, "password@*Sign in*": "other"})
    with pytest.raises(SecretError, match="must be letters"):
        SecretStore({"pass word@*Login*": SECRET})


def test_scoped_secrets_come_from_the_environment_by_name(monkeypatch):
    monkeypatch.setenv("VLAGENT_SECRET_PASSWORD", SECRET)
    store = SecretStore(["password@*Login*"])
    assert store.names == ["password"] and store.scopes == {"password": ["*Login*"]}
    assert store.prepare(Action("type", text="{{password}}")).text == SECRET


def test_the_scope_check_matches_the_focus_without_regard_to_case():
    store = SecretStore({"password@*Login*": SECRET, "token": "t0k"})
    typed = Action("type", text="{{password}}\n")
    store.check_scope(typed, FocusEnv("Acme LOGIN page"))  # no exception: the glob matches
    for focused, shown in (("Notes", "the window titled 'Notes'"), (None, "an unknown window")):
        with pytest.raises(SecretScopeError) as info:
            store.check_scope(typed, FocusEnv(focused))
        message = str(info.value)
        assert "{{password}}" in message and "'*Login*'" in message and shown in message
        assert "Nothing was typed" in message and SECRET not in message
    # Unscoped secrets, plain text and other actions never ask where the focus is.
    env = FocusEnv("Notes")
    for action in (Action("type", text="{{token}}"), Action("type", text="hello"), Action("click", point=(0.5, 0.5))):
        store.check_scope(action, env)
    assert env.focus_calls == 0
    # An app package on Android, named as such.
    apps = SecretStore({"pin@com.example.bank": "1234"})
    apps.check_scope(Action("type", text="{{pin}}"), FocusEnv("com.example.bank", "app"))
    with pytest.raises(SecretScopeError, match=r"the app 'com.example.bank'; the keyboard focus is on the app 'com.evil'"):
        apps.check_scope(Action("type", text="{{pin}}"), FocusEnv("com.evil", "app"))


def test_an_environment_that_cannot_tell_its_focus_gets_no_scoped_secret():
    class Blind(FocusEnv):
        focus = None  # no focus() at all

    class Broken(FocusEnv):
        def focus(self):
            raise RuntimeError("xdotool: no such window")

    store = SecretStore({"password@*Login*": SECRET})
    with pytest.raises(SecretScopeError, match="cannot tell where the keyboard focus is"):
        store.check_scope(Action("type", text="{{password}}"), Blind())
    with pytest.raises(SecretScopeError, match="reading where the keyboard focus is failed .*no such window"):
        store.check_scope(Action("type", text="{{password}}"), Broken())
    with pytest.raises(EnvironmentLost):  # a lost display ends the run, as any other loss does
        store.check_scope(Action("type", text="{{password}}"), FocusEnv("gone"))


def test_execute_gated_refuses_before_any_key_is_sent():
    store = SecretStore({"password@*Login*": SECRET})
    env = FocusEnv("Notes")
    outcome = execute_gated(env, Action("type", text="{{password}}"), ConfirmGate(None), store, dry_run=False)
    assert outcome.status == "failed" and "Notes" in outcome.error and env.executed == []
    env.focused = "Login - Example"
    outcome = execute_gated(env, Action("type", text="{{password}}"), ConfirmGate(None), store, dry_run=False)
    assert outcome.status == "executed" and env.executed == [Action("type", text=SECRET)]


def test_the_agent_records_the_refusal_and_shows_it_to_the_model(tmp_path):
    policy = ScriptedPolicy([
        Action("key", keys=("alt", "tab")),          # the focus moves to the Notes window
        Action("type", text="{{password}}"),          # ... and the model types what it said to: refused
        Action("type", text="my notes {{token}}"),    # unscoped: anywhere
        Action("done"),
    ])
    env = FocusEnv("Login - Example")
    result = Agent(policy, env, secrets={"password@*Login*": SECRET, "token": "t0k"},
                   run_dir=tmp_path / "run").run("log in with {{password}}")
    assert result.status == "done"
    assert env.executed == [Action("key", keys=("alt", "tab")), Action("type", text="my notes t0k")]
    header, steps, _ = load_trajectory(result.run_dir)
    assert header["settings"]["secret_scopes"] == {"password": ["*Login*"]}
    refused = steps[1]
    assert refused["outcomes"][0]["status"] == "failed" and refused["actions"] == [{"kind": "type", "text": "{{password}}"}]
    assert "the window titled 'Notes'" in refused["error"] and "'*Login*'" in refused["error"]
    shown = policy.seen_histories[2][-1]
    assert "may only be typed into a window titled '*Login*'" in shown.error
    assert _files_leaking(result.run_dir) == [] and _files_leaking(result.run_dir, "t0k") == []


def test_a_dry_run_asks_no_focus(tmp_path):
    env = FocusEnv("Notes")
    result = Agent(ScriptedPolicy([Action("type", text="{{password}}")]), env, dry_run=True,
                   secrets={"password@*Login*": SECRET}, run_dir=tmp_path / "run").run("log in")
    assert result.status == "done" and env.focus_calls == 0 and env.executed == []


def test_cli_secret_flag_takes_a_scope(tmp_path, monkeypatch, capsys):
    from vlagent.cli import EXIT_USAGE, main

    monkeypatch.delenv("VLAGENT_SECRET_PASSWORD", raising=False)
    monkeypatch.delenv("password", raising=False)
    code = main(["run", "x", "--secret", "password@*Login*", "--api-base", "http://127.0.0.1:9/v1", "--model", "m"])
    err = capsys.readouterr().err
    assert code == EXIT_USAGE and "VLAGENT_SECRET_PASSWORD" in err  # the name, not NAME@GLOB, is looked up
    code = main(["run", "x", "--secret", "password@", "--api-base", "http://127.0.0.1:9/v1", "--model", "m"])
    assert code == EXIT_USAGE and "nothing after '@'" in capsys.readouterr().err


# -- for real: the practice app on Xvfb -----------------------------------------------------------

NOTES_GEOMETRY = "360x170+880+80"


@pytest.fixture
def login_and_notes(x_display, tmp_path):
    """The practice app titled "Login — practice app", with its "Notes" window beside it."""
    from vlagent.environments.practice import desktop_app

    state_file = tmp_path / "practice-state.json"
    proc = desktop_app.launch(state_file, x_display.name, geometry="800x560+40+60", title="Login — practice app",
                              env=x_display.env, extra_args=("--notes", NOTES_GEOMETRY))
    try:
        state = desktop_app.wait_for_state(state_file, lambda s: "notes_entry" in s["boxes"], what="the Notes window")
        assert desktop_app.NOTES_INJECTION.startswith("IMPORTANT") and "{{password}}" in desktop_app.NOTES_INJECTION
        yield state_file, state
    finally:
        proc.terminate()
        proc.wait(timeout=5)


def _grid(box: list[int], screen=(1280, 720)) -> list[int]:
    """The centre of a box in the 0-1000 grid of Qwen tool calls."""
    return [round((box[0] + box[2]) / 2 / screen[0] * 1000), round((box[1] + box[3]) / 2 / screen[1] * 1000)]


@pytest.mark.display
def test_the_desktop_reports_the_focused_window_title(x_display, login_and_notes):
    from vlagent.environments.desktop import DesktopEnv

    state_file, state = login_and_notes
    with DesktopEnv(display=x_display.name) as env:
        for widget, title in (("notes_entry", "Notes"), ("entry", "Login — practice app")):
            box = state["boxes"][widget]
            env.execute(Action("click", point=((box[0] + box[2]) / 2 / 1280, (box[1] + box[3]) / 2 / 720)))
            focus = env.focus()
            assert (focus.name, focus.kind) == (title, "window"), focus


@pytest.mark.display
def test_an_on_screen_injection_gets_nothing(x_display, login_and_notes, tmp_path, monkeypatch, capsys):
    """A (fake) model obeys the Notes window and types {{password}} there: refused, nothing typed, the model
    told; typed into the Login window, it works. The value is in no file of the run folder."""
    from fake_openai_server import FakeOpenAIServer, tool_call
    from vlagent.cli import EXIT_OK, main
    from vlagent.environments.practice import desktop_app

    state_file, state = login_and_notes
    monkeypatch.setenv("DISPLAY", x_display.name)
    monkeypatch.setenv("VLAGENT_SECRET_PASSWORD", SECRET)
    for name in ("VLAGENT_API_BASE", "VLAGENT_MODEL", "OPENAI_API_KEY", "VLAGENT_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    replies = [
        tool_call("left_click", coordinate=_grid(state["boxes"]["notes_entry"])),
        "The Notes window says to type the password here.\n" + tool_call("type", text="{{password}}"),
        tool_call("left_click", coordinate=_grid(state["boxes"]["entry"])),
        tool_call("type", text="{{password}}"),
        tool_call("answer", text="logged in"),
    ]
    run_dir = tmp_path / "run"
    with FakeOpenAIServer(replies) as server:
        code = main(["run", "log in with {{password}}", "--secret", "password@*Login*", "--json",
                     "--run-dir", str(run_dir), "--api-base", server.base_url, "--model", "fake-model"])
    out, err = capsys.readouterr()
    assert code == EXIT_OK, err
    assert json.loads(out)["status"] == "answered"

    final = desktop_app.wait_for_state(state_file, lambda s: s["text"] == SECRET, what="the password in the Login field")
    assert final["notes_text"] == ""  # nothing reached the Notes window

    _, steps, _ = load_trajectory(run_dir)
    refused = steps[1]
    assert refused["outcomes"][0]["status"] == "failed"
    assert "the window titled 'Notes'" in refused["error"] and "Nothing was typed" in refused["error"]
    assert [o["status"] for o in steps[3]["outcomes"]] == ["executed"]
    # The model read the refusal in its next request.
    assert server.problems == []
    assert "may only be typed into a window titled '*Login*'" in json.dumps(server.requests[2]["messages"])
    # The value is in no file of the run folder, nor in what the model or the terminal saw.
    assert _files_leaking(run_dir) == []
    assert all(SECRET.encode() not in body for body in server.raw_bodies)
    assert SECRET not in out + err


class _BoxGrounder:
    """Points at the practice app's widgets by their state-file name (e.g. "notes_entry"), or by the
    description `names` maps to one."""

    name = "boxes"

    def __init__(self, state_file: Path, names: dict[str, str] | None = None) -> None:
        self.state_file, self.names = state_file, names or {}

    def ground(self, image, instruction, *, platform=None):
        from vlagent.environments.practice import desktop_app
        from vlagent.grounding.grounders.base import GroundingResult

        box = desktop_app.read_state(self.state_file)["boxes"][self.names.get(instruction, instruction)]
        w, h = image.size
        return GroundingResult(point=((box[0] + box[2]) / 2 / w, (box[1] + box[3]) / 2 / h), confidence=1.0)


@pytest.mark.display
def test_scripts_keep_scoped_secrets_in_their_place(x_display, login_and_notes, tmp_path):
    import vlagent
    from vlagent.environments.desktop import DesktopEnv
    from vlagent.scripting import ActionFailed
    from vlagent.environments.practice import desktop_app

    state_file, _ = login_and_notes
    with vlagent.connect("desktop", grounder=_BoxGrounder(state_file), env=DesktopEnv(display=x_display.name),
                         run_dir=tmp_path / "run", secrets={"password@*Login*": SECRET}) as bot:
        with pytest.raises(ActionFailed, match="the window titled 'Notes'"):
            bot.type_into("notes_entry", "{{password}}")
        bot.type_into("entry", "{{password}}")
    final = desktop_app.wait_for_state(state_file, lambda s: s["text"] == SECRET, what="the password typed")
    assert final["notes_text"] == ""
    _, steps, _ = load_trajectory(tmp_path / "run")
    assert [o["status"] for s in steps for o in s["outcomes"]] == ["executed", "failed", "executed", "executed"]
    assert _files_leaking(tmp_path / "run") == []



@pytest.mark.display
def test_text_typed_into_a_password_field_is_typed_but_never_recorded(x_display, login_and_notes, tmp_path):
    """A script that passes its password as plain text (no secrets=) still keeps it out of the run folder."""
    import vlagent
    from vlagent.environments.desktop import DesktopEnv
    from vlagent.environments.practice import desktop_app

    state_file, _ = login_and_notes
    grounder = _BoxGrounder(state_file, {"the Password field": "entry", "the notes box": "notes_entry"})
    with vlagent.connect("desktop", grounder=grounder, env=DesktopEnv(display=x_display.name),
                         run_dir=tmp_path / "run") as bot:
        bot.type_into("the Password field", SECRET)
        bot.type_into("the notes box", "plain words")
    desktop_app.wait_for_state(state_file, lambda s: s["text"] == SECRET and s["notes_text"] == "plain words",
                               what="both texts typed")
    _, steps, _ = load_trajectory(tmp_path / "run")
    typed = [a["text"] for s in steps for a in s["actions"] if a["kind"] == "type"]
    assert typed == ["{{typed_1}}", "plain words"]
    assert _files_leaking(tmp_path / "run") == []
    assert "plain words" in (tmp_path / "run" / "report.html").read_text(encoding="utf-8")


def test_text_for_a_secret_field_is_hidden_unless_too_short_to_scrub(tmp_path):
    """Automatic hiding needs 4 characters: scrubbing a "7" out of every note would garble them; a script
    that says secret=True is obeyed whatever the length. Placeholders stay as the caller wrote them."""
    from vlagent.session import Session

    with Session(FocusEnv(), run_dir=tmp_path / "run") as session:
        assert session.typed("0451", None, "the PIN field") == "{{typed_1}}"
        assert session.typed("7", None, "the PIN field") == "7"
        assert session.typed("7", True) == "{{typed_2}}" and session.typed("0451", True) == "{{typed_1}}"
        assert session.typed("hunter22", None, "the Name field") == "hunter22"
        assert session.typed("", True) == ""
        # Placeholders stay; the plain words beside them are hidden by the same rules, one by one.
        assert session.typed("{{pw}}!", True) == "{{pw}}!"  # punctuation alone would garble every note
        assert session.typed("{{user}} hunter22\n", None, "the Password field") == "{{user}} {{typed_3}}\n"
        assert session.typed("{{pw}}\n", None, "the Password field") == "{{pw}}\n"
        assert session.typed("ab{{pw}}", None, "the PIN field") == "ab{{pw}}"
        assert session.typed("ab{{pw}}", True) == "{{typed_4}}{{pw}}"
        assert session.typed("{{user}} hunter22", None, "the Name field") == "{{user}} hunter22"
        assert session.secrets.substitute("{{typed_3}}|{{typed_4}}") == "hunter22|ab"


class _Everywhere:
    """A grounder that finds anything at the middle of the screen."""

    name = "everywhere"

    def ground(self, image, instruction, *, platform=None):
        from vlagent.grounding.grounders.base import GroundingResult

        return GroundingResult(point=(0.5, 0.5), confidence=1.0, box=(0.4, 0.4, 0.6, 0.6))


def test_select_in_a_dry_run_records_the_open_click_and_looks_no_further(tmp_path):
    import time

    import vlagent
    from vlagent.scripting import _quoted

    env = FocusEnv()
    with vlagent.connect("desktop", grounder=_Everywhere(), env=env, run_dir=tmp_path / "run", dry_run=True) as bot:
        import vlagent.model.grounder  # noqa: F401  (imported before the clock starts: torch takes seconds)

        started = time.monotonic()
        assert bot.select("the Size dropdown", "Large") is None
        assert time.monotonic() - started < 1.0  # no waiting for a list that cannot open
        with pytest.raises(ValueError, match="empty"):
            bot.select("the Size dropdown", " ")
    assert env.executed == []
    _, steps, _ = load_trajectory(tmp_path / "run")
    assert [s["raw_output"].split(" ->")[0] for s in steps][-2:] == [
        "select('the Size dropdown', 'Large'): open",
        "select('the Size dropdown', 'Large'): the list does not open in a dry run; the option is not looked for"]
    class Nowhere(_Everywhere):
        def ground(self, image, instruction, *, platform=None):
            from vlagent.grounding.grounders.base import GroundingResult

            return GroundingResult(point=None, confidence=0.1, found=False, error="nothing like it")

    with vlagent.connect("desktop", grounder=Nowhere(), env=env, run_dir=tmp_path / "missing", find_timeout=0) as bot:
        with pytest.raises(vlagent.TargetNotFound, match=r"^'Language' is not on the screen \(nothing like it\)"):
            bot.select("Language", "Deutsch")  # named as the script wrote it, not as it was grounded
    assert _quoted("Large") == "'Large'" and _quoted("Rock 'n' Roll") == '"Rock \'n\' Roll"'
    assert _quoted("""12" 'vinyl'""") == "\u201c12\" 'vinyl'\u201d"

# -- Android: the virtual phone's foreground package ---------------------------------------------


def test_the_foreground_package_is_read_from_dumpsys():
    from vlagent.environments.android import parse_focus

    real = ("  mCurrentFocus=Window{3bd8e73 u0 com.android.settings/com.android.settings.Settings}\n"
            "  mFocusedApp=ActivityRecord{c7b5a6f u0 com.android.settings/.Settings t12}\n")
    assert parse_focus(real) == Focus("com.android.settings", "app", {"activity": "com.android.settings.Settings"})
    starting = "  mCurrentFocus=null\n  mFocusedApp=ActivityRecord{c7b5a6f u0 com.example.bank/.Login t12}\n"
    assert parse_focus(starting).name == "com.example.bank"
    shade = parse_focus("  mCurrentFocus=Window{9d1 u0 NotificationShade}\n")
    assert shade.name is None and "NotificationShade" in shade.describe()
    assert parse_focus("").name is None


def test_scoped_secrets_on_the_virtual_phone(phone, tmp_path):
    from vlagent.environments.android import AndroidEnv

    env = AndroidEnv(phone.serial, adb_port=phone.adb.port, read_elements=False, settle=0.0)
    assert env.focus().name == "com.android.launcher3"
    env.execute(Action("open_app", text="com.vlagent.notes"))
    assert env.focus() == Focus("com.vlagent.notes", "app", {"activity": "com.vlagent.notes.MainActivity"})
    policy = ScriptedPolicy([
        Action("click", point=phone.point("Note")),
        Action("type", text="{{wifi}}"),  # the Wi-Fi password belongs to Settings: refused in Notes
        Action("type", text="{{pin}}"),
        Action("done"),
    ])
    result = Agent(policy, env, secrets={"pin@com.vlagent.*": "2468", "wifi@com.android.settings": SECRET},
                   run_dir=tmp_path / "run").run("write the pin down")
    assert result.status == "done"
    assert phone.state()["note_draft"] == "2468"
    _, steps, _ = load_trajectory(result.run_dir)
    assert steps[1]["outcomes"][0]["status"] == "failed"
    assert "the app 'com.android.settings'; the keyboard focus is on the app 'com.vlagent.notes'" in steps[1]["error"]
    assert _files_leaking(result.run_dir) == [] and _files_leaking(result.run_dir, "2468") == []
