"""`vlagent mcp`: the SDK's own client over stdio drives the practice app on Xvfb through our server."""
from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path

import pytest

from android_fixtures import adb_server, phone  # noqa: F401
from display_fixtures import _skip_without_binaries, combo_app, long_list_app, practice_session, sliders_app, tooltip_app
from vlagent.environments.xserver import start_virtual_display
from vlagent.recorder import load_trajectory

mcp = pytest.importorskip("mcp", reason="the mcp SDK is part of vlagent[mcp]")

@pytest.fixture(scope="module")
def practice(tmp_path_factory):
    _skip_without_binaries()
    with start_virtual_display(1280, 720) as display:
        with practice_session(display, tmp_path_factory.mktemp("practice"), "800x560+200+80") as session:
            yield session


def _server_params(extra_env: dict, run_dir: Path, *extra: str, where: str = "desktop"):
    from mcp.client.stdio import StdioServerParameters

    env = {k: v for k, v in os.environ.items()}
    env.update(extra_env)
    env["VLAGENT_SECRET_PASSWORD"] = "hunter2-sekrit"
    return StdioServerParameters(command=sys.executable,
                                 args=["-m", "vlagent", "mcp", "--env", where, "--run-dir", str(run_dir), *extra],
                                 env=env)


async def _session(params, body, elicitation_callback=None):
    from mcp import ClientSession
    from mcp.client.stdio import stdio_client

    kw = {} if elicitation_callback is None else {"elicitation_callback": elicitation_callback}
    async with stdio_client(params) as (read, write):
        async with ClientSession(read, write, **kw) as client:
            await client.initialize()
            return await body(client)


def _text(result) -> str:
    return " ".join(c.text for c in result.content if getattr(c, "type", "") == "text")


@pytest.mark.display
def test_tools_drive_the_practice_app_and_the_session_is_recorded(practice, tmp_path):
    run_dir = tmp_path / "run"

    async def body(client):
        tools = {t.name: t for t in (await client.list_tools()).tools}
        assert {"screenshot", "click", "double_click", "right_click", "move", "drag", "scroll", "type", "key"} <= set(tools)
        assert "back" not in tools  # phone verbs only for android
        assert "units" in json.dumps(tools["click"].input_schema)

        shot = await client.call_tool("screenshot", {})
        assert not shot.is_error
        image = [c for c in shot.content if c.type == "image"][0]
        assert image.mime_type == "image/png" and len(image.data) > 1000
        assert "1280x720" in _text(shot)

        practice.observe()
        # a button by normalized point
        bx, by = practice.point(next(k for k in practice.state()["boxes"] if k.startswith("button_")))
        res = await client.call_tool("click", {"x": bx, "y": by})
        assert not res.is_error, _text(res)
        practice.wait(lambda s: s["clicks"], "a button click")

        # the text field by screenshot pixels, then non-ASCII text and a secret placeholder
        ex, ey = practice.point("entry")
        res = await client.call_tool("click", {"x": ex * 1280, "y": ey * 720, "units": "pixels"})
        assert not res.is_error, _text(res)
        res = await client.call_tool("type", {"text": "Grüße, 你好 {{PASSWORD}}"})
        assert not res.is_error, _text(res)
        assert "hunter2" not in _text(res)
        practice.wait(lambda s: s["text"].endswith("Grüße, 你好 hunter2-sekrit"), "typed text")

        # bad arguments come back as tool errors, and the server keeps serving
        bad = await client.call_tool("click", {"x": 1.7, "y": 0.5})
        assert bad.is_error and "normalized" in _text(bad)
        bad = await client.call_tool("key", {"keys": []})
        assert bad.is_error
        again = await client.call_tool("screenshot", {"format": "jpeg", "scale": 0.5})
        assert not again.is_error and [c for c in again.content if c.type == "image"][0].mime_type == "image/jpeg"

    asyncio.run(_session(_server_params(practice.display.env, run_dir, "--secret", "PASSWORD"), body))

    header, steps, result = load_trajectory(run_dir)
    assert header["policy"].startswith("session") and result is not None
    executed = [s for s in steps if s["outcomes"] and s["outcomes"][0]["status"] == "executed"]
    assert [s["actions"][0]["kind"] for s in executed] == ["click", "click", "type"]
    assert any(s["error"] for s in steps)  # the refused click is recorded with its error
    everything = "".join(p.read_text(errors="ignore") for p in run_dir.iterdir() if p.suffix in (".jsonl", ".html"))
    assert "hunter2-sekrit" not in everything and "{{PASSWORD}}" in everything
    assert (run_dir / "report.html").exists()


@pytest.mark.display
def test_dry_run_and_action_limit(practice, tmp_path):
    before = practice.state()["clicks"]

    async def body(client):
        bx, by = practice.point(next(k for k in practice.state()["boxes"] if k.startswith("button_")))
        first = await client.call_tool("click", {"x": bx, "y": by})
        assert not first.is_error and "dry run" in _text(first)
        second = await client.call_tool("click", {"x": bx, "y": by})
        assert second.is_error and "limit of 1 actions" in _text(second)

    asyncio.run(_session(_server_params(practice.display.env, tmp_path / "run", "--dry-run", "--max-actions", "1"), body))
    assert practice.settle()["clicks"] == before  # nothing was clicked


@pytest.mark.display
def test_confirmation_is_refused_where_the_client_cannot_ask(practice, tmp_path):
    before = practice.state()["clicks"]

    async def body(client):
        bx, by = practice.point("button_delete")
        res = await client.call_tool("click", {"x": bx, "y": by})
        assert res.is_error and "cannot be asked" in _text(res)
        shot = await client.call_tool("screenshot", {})  # looking needs no confirmation
        assert not shot.is_error

    asyncio.run(_session(_server_params(practice.display.env, tmp_path / "run", "--confirm", "all"), body))
    assert practice.settle()["clicks"] == before
    _, steps, _ = load_trajectory(tmp_path / "run")
    assert "not approved" in steps[0]["raw_output"] and not steps[0]["actions"]


@pytest.mark.display
@pytest.mark.parametrize("answer", [True, False])
def test_confirmation_is_asked_through_the_client(practice, tmp_path, answer):
    """--confirm all with a client that supports elicitation: the user's answer decides."""
    import mcp.types as types

    asked = []

    async def on_elicit(context, params):
        asked.append(params.message)
        return types.ElicitResult(action="accept", content={"approve": answer})

    before = practice.settle()["clicks"]

    async def body(client):
        bx, by = practice.point("button_delete")
        return await client.call_tool("click", {"x": bx, "y": by})

    res = asyncio.run(_session(_server_params(practice.display.env, tmp_path / "run", "--confirm", "all"), body,
                               elicitation_callback=on_elicit))
    assert len(asked) == 1 and "click" in asked[0]
    if answer:
        assert not res.is_error, _text(res)
        practice.wait(lambda s: s["last_clicked"] == "delete", "the approved click")
    else:
        assert res.is_error and "did not approve" in _text(res)
        assert practice.settle()["clicks"] == before


def test_http_transport_refuses_remote_hosts_and_needs_a_token(capsys):
    from vlagent.cli import main

    assert main(["mcp", "--http", "0.0.0.0:8765", "--token", "t"]) == 2
    assert "only loopback" in capsys.readouterr().err
    os.environ.pop("VLAGENT_MCP_TOKEN", None)
    assert main(["mcp", "--http", "127.0.0.1:8765"]) == 2
    assert "bearer token" in capsys.readouterr().err


def test_phone_tools_over_the_real_adb_server(phone, tmp_path):  # noqa: F811
    async def body(client):
        tools = {t.name for t in (await client.list_tools()).tools}
        assert {"back", "home", "open_app", "long_press", "swipe", "click", "type", "screenshot"} <= tools
        shot = await client.call_tool("screenshot", {})
        assert not shot.is_error and "1080x2400" in _text(shot)
        res = await client.call_tool("click", dict(zip("xy", phone.point("Notes"))))
        assert not res.is_error, _text(res)
        assert phone.state()["app"] == "notes"
        res = await client.call_tool("home", {})
        assert not res.is_error and phone.state()["app"] != "notes"
        res = await client.call_tool("open_app", {"package": "com.android.settings"})
        assert not res.is_error, _text(res)
        assert phone.state()["app"] == "settings"
        bad = await client.call_tool("open_app", {"package": ""})
        assert bad.is_error
        res = await client.call_tool("back", {})
        assert not res.is_error

    env = {"ANDROID_ADB_SERVER_PORT": str(phone.adb.port)}
    asyncio.run(_session(_server_params(env, tmp_path / "run", where=f"android:{phone.serial}"), body))
    _, steps, _ = load_trajectory(tmp_path / "run")
    assert [s["actions"][0]["kind"] for s in steps if s["actions"]] == ["click", "home", "open_app", "back"]
    assert any("open_app needs text" in (s["error"] or "") for s in steps)  # the refused call is on record too


def test_http_transport_serves_with_the_token_only(practice, tmp_path):
    """Streamable HTTP on 127.0.0.1: a request without the bearer token gets 401, the SDK client with it works."""
    import subprocess
    import time
    import urllib.error
    import urllib.request

    from android_fixtures import free_port

    port, token = free_port(), "s3cret-token"
    env = dict(os.environ, **practice.display.env)
    proc = subprocess.Popen([sys.executable, "-m", "vlagent", "mcp", "--http", f"127.0.0.1:{port}", "--token", token,
                             "--run-dir", str(tmp_path / "run")], env=env, stderr=subprocess.PIPE, text=True)
    url = f"http://127.0.0.1:{port}/mcp"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(urllib.request.Request(url, data=b"{}", method="POST"), timeout=2)
            except urllib.error.HTTPError as e:
                assert e.code == 401
                break
            except OSError:
                assert proc.poll() is None, proc.stderr.read()
                assert time.monotonic() < deadline, "the HTTP server did not come up"
                time.sleep(0.2)

        async def main():
            import httpx2 as httpx
            from mcp import ClientSession
            from mcp.client.streamable_http import streamable_http_client

            async with httpx.AsyncClient(headers={"Authorization": f"Bearer {token}"}) as http:
                async with streamable_http_client(url, http_client=http) as streams:
                    async with ClientSession(streams[0], streams[1]) as client:
                        await client.initialize()
                        shot = await client.call_tool("screenshot", {"scale": 0.25})
                        assert not shot.is_error
                        return {t.name for t in (await client.list_tools()).tools}

        assert "click" in asyncio.run(main())
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.mark.display
def test_grounding_tools_find_and_click_by_description(practice, tmp_path):
    """locate / click_target through the OCR grounder on the practice app; a description of nothing on
    screen is a TargetNotFound tool error and clicks nothing."""
    async def body(client):
        tools = {t.name for t in (await client.list_tools()).tools}
        assert {"locate", "click_target", "type_into", "select", "read"} <= tools
        box = practice.state()["boxes"]["button_open"]  # a label no status line repeats
        found = json.loads(_text(await client.call_tool("locate", {"description": "the Open button"})))
        practice.observe()
        x0, y0 = practice.point_of(box, at=(0.0, 0.0))
        x1, y1 = practice.point_of(box, at=(1.0, 1.0))
        assert x0 <= found["point"][0] <= x1 and y0 <= found["point"][1] <= y1 and found["grounder"] == "ocr-match"
        res = await client.call_tool("click_target", {"description": "click the Open button"})
        assert not res.is_error, _text(res)
        practice.wait(lambda s: s["last_clicked"] == "open", "Open clicked by description")
        before = practice.settle()["clicks"]
        missing = await client.call_tool("click_target", {"description": "the purple elephant button"})
        assert missing.is_error and "TargetNotFound" in _text(missing)
        assert practice.settle()["clicks"] == before
        # reading: the screen's text a row per line, or the text inside one element
        assert "Save Open Delete" in _text(await client.call_tool("read", {}))
        assert _text(await client.call_tool("read", {"description": "the Delete button"})) == "Delete"

    asyncio.run(_session(_server_params(practice.display.env, tmp_path / "run", "--grounder", "ocr"), body))
    _, steps, _ = load_trajectory(tmp_path / "run")
    assert any("not found" in s["raw_output"] for s in steps)


@pytest.mark.display
def test_type_into_clicks_the_found_element_then_types(practice, tmp_path):
    async def body(client):
        res = await client.call_tool("type_into", {"description": "the Delete button", "text": "héllo"})
        assert not res.is_error and "would run" in _text(res)
        # Text for a password field is typed as a secret: the run folder keeps a placeholder.
        res = await client.call_tool("type_into", {"description": "the 'Name' password", "text": "pw-7Zq!x"})
        assert not res.is_error and "pw-7Zq!x" not in _text(res)

    asyncio.run(_session(_server_params(practice.display.env, tmp_path / "run", "--grounder", "ocr", "--dry-run"), body))
    _, steps, _ = load_trajectory(tmp_path / "run")
    acted = [s["actions"][0] for s in steps if s["actions"]]
    assert [a["kind"] for a in acted] == ["click", "type", "click", "type"] and acted[1]["text"] == "héllo"
    assert acted[3]["text"] == "{{typed_1}}"
    assert not [p for p in (tmp_path / "run").rglob("*") if p.is_file() and b"pw-7Zq!x" in p.read_bytes()]
    practice.observe()
    x, y = acted[0]["point"]
    box = practice.state()["boxes"]["button_delete"]
    (x0, y0), (x1, y1) = practice.point_of(box, at=(0.0, 0.0)), practice.point_of(box, at=(1.0, 1.0))
    assert x0 <= x <= x1 and y0 <= y <= y1


@pytest.mark.display
def test_select_chooses_from_a_drop_down_through_the_default_grounder(tmp_path):
    """The select tool opens a Tk combo box found beside its label, clicks the option in its list and
    returns once the list has closed; an option the list lacks is a TargetNotFound tool error."""
    _skip_without_binaries()

    async def body(client):
        res = await client.call_tool("select", {"description": "the Size dropdown", "option": "Large"})
        assert not res.is_error and "done" in _text(res), _text(res)
        app.wait(lambda s: s["size"] == "Large", "Large chosen")
        res = await client.call_tool("select", {"description": "the Colour drop-down", "option": "Purple",
                                                "timeout": 1})
        assert res.is_error and "TargetNotFound: 'Purple' is not on the screen (not in the list within 1 s" in _text(res)

    with start_virtual_display(1280, 720) as display, combo_app(display, tmp_path / "combo.json") as app:
        asyncio.run(_session(_server_params(display.env, tmp_path / "run", "--grounder", "default"), body))
    _, steps, _ = load_trajectory(tmp_path / "run")
    assert [s["raw_output"] for s in steps if s["actions"]] == [
        "select('the Size dropdown', 'Large'): open", "select('the Size dropdown', 'Large')",
        "select('the Colour drop-down', 'Purple'): open"]


@pytest.mark.display
def test_grounding_tools_look_again_as_a_scripts_calls_do(tmp_path):
    """The grounding tools are a script's calls (vlagent.scripting.Bot) in the server's session: after
    click_target("the Undo button") its tooltip covers Redo, and click_target("the Redo button") failed at
    once. It now looks again for up to 3 s and moves the resting pointer aside, as a script does; a key
    pressed with the pointer aside (outside every window: no keyboard focus without a window manager)
    has it moved back first."""
    _skip_without_binaries()

    async def body(client):
        res = await client.call_tool("click_target", {"description": "the Undo button"})
        assert not res.is_error, _text(res)
        res = await client.call_tool("click_target", {"description": "the Redo button"})
        assert not res.is_error and "done" in _text(res), _text(res)
        await client.call_tool("click_target", {"description": "the Undo button"})
        res = await client.call_tool("locate", {"description": "the Redo button"})  # the pointer moved aside
        assert not res.is_error, _text(res)
        res = await client.call_tool("key", {"keys": ["ctrl", "s"]})  # so it goes back first: keys follow it
        assert not res.is_error, _text(res)
        app.wait_for("ctrl+s")

    with start_virtual_display(1280, 720) as display, tooltip_app(display, tmp_path / "clicked") as app:
        from vlagent.environments.desktop import DesktopEnv
        from vlagent.grounding.grounders.ocr_match import OcrMatchGrounder

        with DesktopEnv(display=display.name) as env:  # the window is up before the client starts
            _wait(lambda: OcrMatchGrounder().ground(env.observe().image, "the Redo button").found, "the window")
        asyncio.run(_session(_server_params(display.env, tmp_path / "run", "--grounder", "ocr"), body))
        app.wait_for_redo()
    _, steps, _ = load_trajectory(tmp_path / "run")
    assert [s["actions"][0]["kind"] for s in steps if s["actions"]] == ["click", "move", "click", "click", "move",
                                                                        "move", "key"]


def _wait(check, what: str, timeout: float = 20.0) -> None:
    import time

    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"{what}: not within {timeout:g} s"
        time.sleep(0.3)


def test_video_ask_goes_to_the_configured_backend(tmp_path):
    import video_fixtures as vf
    from fake_openai_server import FakeOpenAIServer

    from vlagent.mcp_server import build_server
    from vlagent.session import Session

    made = vf.write_video(str(tmp_path / "clip.mp4"), codec="libx264", width=64, height=48, num_frames=30)

    class NoScreen:
        name = "none"

        def observe(self):
            raise AssertionError("video_ask needs no screen")

    async def main(server):
        from mcp import Client

        async with Client(server) as client:
            ok = await client.call_tool("video_ask", {"path": made.path, "question": "what number?", "max_frames": 4})
            bad = await client.call_tool("video_ask", {"path": str(tmp_path / "missing.mp4"), "question": "x"})
            return ok, bad

    from vlagent.video.qa import OpenAIVideoBackend

    with FakeOpenAIServer(["It shows 7."], require_tools=False) as api:
        backend = OpenAIVideoBackend("fake-model", base_url=api.base_url, max_retries=0)
        session = Session(NoScreen(), run_dir=tmp_path / "run")
        ok, bad = asyncio.run(main(build_server(session, grounder=None, video_backend=backend)))
        session.close()
    assert not ok.is_error and _text(ok) == "It shows 7."
    assert bad.is_error and "missing.mp4" in _text(bad)


@pytest.mark.display
def test_scroll_to_scrolls_a_list_until_the_target_shows(tmp_path):
    """The scroll_to tool: an order 60 rows down a list is scrolled into view and its place returned; one
    that is not in the list is a TargetNotFound tool error once the list's end is reached."""
    _skip_without_binaries()

    async def body(client):
        res = await client.call_tool("scroll_to", {"description": "Order 1063", "within": "Order 1005"})
        assert not res.is_error, _text(res)
        x, y = json.loads(_text(res))["point"]
        await client.call_tool("click", {"x": x, "y": y})
        app.wait(lambda s: s["selected"] == ["Order 1063"], "Order 1063 selected")
        res = await client.call_tool("scroll_to", {"description": "Order 2000", "max_scrolls": 40})
        assert res.is_error and "TargetNotFound: 'Order 2000' is not on the screen (scrolled down to the end" in _text(res)

    with start_virtual_display(1280, 720) as display, long_list_app(display, tmp_path / "list.json") as app:
        asyncio.run(_session(_server_params(display.env, tmp_path / "run", "--grounder", "default"), body))


@pytest.mark.display
def test_set_slider_drags_a_knob_through_the_tool(tmp_path):
    """The set_slider tool: Tk's Volume scale set to 0.4 (the app says 40); a level outside 0..1 is a tool
    error and drags nothing."""
    _skip_without_binaries()

    async def body(client):
        res = await client.call_tool("set_slider", {"description": "the Volume slider", "level": 0.4})
        assert not res.is_error and _text(res).startswith("done: the knob is at "), _text(res)
        assert abs(float(_text(res).split(" at ")[1].split()[0]) - 0.4) <= 0.03
        app.wait_near(volume=40, brightness=50)
        res = await client.call_tool("set_slider", {"description": "the Volume slider", "level": 40})
        assert res.is_error and "from 0 to 1" in _text(res)

    with start_virtual_display(1280, 720) as display, sliders_app(display, tmp_path / "sliders.json") as app:
        asyncio.run(_session(_server_params(display.env, tmp_path / "run", "--grounder", "default"), body))
    app.wait_near(volume=40, brightness=50)
