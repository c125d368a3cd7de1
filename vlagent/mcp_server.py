"""vlagent as an MCP server: the desktop or a phone as tools for any agent client.

    vlagent mcp --env desktop                        # stdio, the way clients launch local servers
    vlagent mcp --env android:SERIAL --http 127.0.0.1:8765 --token SECRET

Every call runs inside one recorded Session (vlagent/session.py): the same safety gate as
`vlagent run` (dry-run, confirmation, `{{secret}}` placeholders, limits) and a run folder with
trajectory.jsonl, screenshots and report.html. Points are normalized [0, 1] of the latest screenshot
by default, or that screenshot's pixels with units="pixels". Errors come back as tool errors; the
server keeps serving.
"""
from __future__ import annotations

import io
import json
from typing import Any, Callable, Literal

from vlagent.actions import Action, ActionError
from vlagent.environments.base import EnvironmentLost
from vlagent.session import Session, SessionLimit

Units = Literal["normalized", "pixels"]

INSTRUCTIONS = """Operate a {platform} screen. Call `screenshot` first: points are normalized [0, 1] of the
latest screenshot (x right, y down) unless you pass units="pixels" (that screenshot's pixels). Type
secrets as {{{{name}}}} placeholders; their values are never shown."""


def build_server(session: Session, platform: str = "desktop", grounder: Any = None, video_backend: Any = None):
    """An MCPServer whose tools act through `session` ("desktop" or "android" tool set). `grounder` (any
    object with ground(image, instruction, platform=)) adds locate / click_target / type_into;
    `video_backend` (anything vlagent.video.ask takes) adds video_ask."""
    from mcp.server.mcpserver import Image, MCPServer
    from mcp.server.mcpserver.exceptions import ToolError

    server = MCPServer(name="vlagent", instructions=INSTRUCTIONS.format(platform=platform))

    def point(x: float, y: float, units: Units) -> tuple[float, float]:
        if units == "normalized":
            return (x, y)
        if units != "pixels":
            raise ToolError(f"units must be 'normalized' or 'pixels'; got {units!r}")
        width, height = (session.last or session.observe()).image_size
        if not (0 <= x <= width and 0 <= y <= height):
            raise ToolError(f"({x:g}, {y:g}) lies outside the {width}x{height} screenshot")
        return (min(x / width, 1.0), min(y / height, 1.0))

    def act(note: str, make: Callable[[], Action]) -> str:
        try:
            action = make()
        except ActionError as e:
            session.note(f"{note}: refused", error=str(e))
            raise ToolError(str(e)) from None
        try:
            outcome = session.act(action, note)
        except (SessionLimit, EnvironmentLost) as e:
            raise ToolError(str(e)) from None
        if outcome.status == "declined":
            raise ToolError(f"{action.describe()} needs confirmation (--confirm), and this server cannot ask the user; "
                            "it was not executed")
        if outcome.status == "failed":
            raise ToolError(outcome.error or outcome.status)
        return f"{'would run (dry run)' if outcome.status == 'dry_run' else 'done'}: {action.describe()}"

    @server.tool()
    def screenshot(format: Literal["png", "jpeg"] = "png", scale: float = 1.0) -> list:
        """The current screen as an image, and its size in pixels. Later points refer to this screenshot."""
        if not 0.05 <= scale <= 1.0:
            raise ToolError(f"scale must be in [0.05, 1]; got {scale:g}")
        try:
            image = session.observe().image
        except EnvironmentLost as e:
            raise ToolError(str(e)) from None
        width, height = image.size
        if scale < 1.0:
            image = image.resize((max(1, round(width * scale)), max(1, round(height * scale))))
        buf = io.BytesIO()
        image.convert("RGB").save(buf, format="PNG" if format == "png" else "JPEG", quality=85)
        return [Image(data=buf.getvalue(), format=format),
                f"screenshot {width}x{height} pixels" + (f" (sent at {image.size[0]}x{image.size[1]})" if scale < 1 else "")]

    def pointer_tool(kind: str, doc: str) -> None:
        def tool(x: float, y: float, units: Units = "normalized") -> str:
            return act(f"{kind}(x={x:g}, y={y:g}, units={units})", lambda: Action(kind, point=point(x, y, units)))
        tool.__name__, tool.__doc__ = kind, doc
        server.tool(name=kind)(tool)

    pointer_tool("click", "Left-click at (x, y).")
    pointer_tool("double_click", "Double-click at (x, y).")
    pointer_tool("right_click", "Right-click at (x, y).")
    pointer_tool("move", "Move the pointer to (x, y) without clicking.")

    @server.tool()
    def drag(x: float, y: float, to_x: float, to_y: float, units: Units = "normalized") -> str:
        """Press at (x, y), move to (to_x, to_y), release."""
        return act(f"drag({x:g}, {y:g} -> {to_x:g}, {to_y:g}, units={units})",
                   lambda: Action("drag", point=point(x, y, units), end=point(to_x, to_y, units)))

    @server.tool()
    def scroll(direction: Literal["up", "down", "left", "right"], amount: float = 3.0, x: float | None = None,
               y: float | None = None, units: Units = "normalized") -> str:
        """Scroll by `amount` notches, over (x, y) when given."""
        at = None if x is None or y is None else point(x, y, units)
        return act(f"scroll({direction}, {amount:g})", lambda: Action("scroll", direction=direction, amount=amount, point=at))

    @server.tool(name="type")
    def type_text(text: str) -> str:
        """Type text into the focused element (any language; {{name}} placeholders type a secret)."""
        return act("type(…)", lambda: Action("type", text=text))

    @server.tool()
    def key(keys: list[str]) -> str:
        """Press a key or a combination, e.g. ["ctrl", "s"] or ["enter"]."""
        return act(f"key({'+'.join(keys)})", lambda: Action("key", keys=tuple(keys)))

    if platform == "android":
        _android_tools(server, act, point)
    if grounder is not None:
        _grounding_tools(server, session, grounder, act, platform)
    if video_backend is not None:
        _video_tool(server, video_backend)
    return server


def _android_tools(server: Any, act: Callable, point: Callable) -> None:
    @server.tool()
    def back() -> str:
        """Press the phone's Back button."""
        return act("back()", lambda: Action("back"))

    @server.tool()
    def home() -> str:
        """Go to the home screen."""
        return act("home()", lambda: Action("home"))

    @server.tool()
    def open_app(package: str) -> str:
        """Open an app by its package name, e.g. com.android.settings."""
        return act(f"open_app({package})", lambda: Action("open_app", text=package))

    @server.tool()
    def long_press(x: float, y: float, units: Units = "normalized") -> str:
        """Touch and hold at (x, y)."""
        return act(f"long_press({x:g}, {y:g})", lambda: Action("long_press", point=point(x, y, units)))

    @server.tool()
    def swipe(x: float, y: float, to_x: float, to_y: float, units: Units = "normalized") -> str:
        """Swipe from (x, y) to (to_x, to_y)."""
        return act(f"swipe({x:g}, {y:g} -> {to_x:g}, {to_y:g})",
                   lambda: Action("swipe", point=point(x, y, units), end=point(to_x, to_y, units)))


def _grounding_tools(server: Any, session: Session, grounder: Any, act: Callable, platform: str) -> None:
    from mcp.server.mcpserver.exceptions import ToolError

    where = {"android": "android"}.get(platform, "desktop")

    def find(description: str) -> dict:
        """Ground `description` on a fresh screenshot; TargetNotFound (a tool error) below the confidence."""
        try:
            image = session.observe().image
        except EnvironmentLost as e:
            raise ToolError(str(e)) from None
        result = grounder.ground(image, description, platform=where)
        found = {"point": list(result.point) if result.found else None, "confidence": round(result.confidence, 4),
                 "box": list(result.box) if result.box else None, "grounder": grounder.name,
                 "candidates": [{"point": list(c.point), "score": round(c.score, 4)} for c in result.candidates[:5]]}
        if not result.found:
            session.note(f"locate({description!r}): not found", error=result.error)
            raise ToolError(f"TargetNotFound: {description!r} is not on the screen ({result.error}); "
                            f"candidates: {json.dumps(found['candidates'])}")
        return found

    @server.tool()
    def locate(description: str) -> str:
        """Where is the element this describes ("the Save button", "the field under Email")? Returns the
        normalized point, confidence, box and candidates as JSON; a tool error when it is not on screen."""
        found = find(description)
        session.note(f"locate({description!r}) -> {found['point']}")
        return json.dumps(found)

    @server.tool()
    def click_target(description: str) -> str:
        """Find the element this describes and click it (nothing is clicked when it is not found)."""
        found = find(description)
        x, y = found["point"]
        return act(f"click_target({description!r})", lambda: Action("click", point=(x, y))) + \
            f" (confidence {found['confidence']:.2f})"

    @server.tool()
    def type_into(description: str, text: str) -> str:
        """Click the field this describes, then type text into it ({{name}} placeholders type a secret)."""
        found = find(description)
        x, y = found["point"]
        act(f"type_into({description!r}): click", lambda: Action("click", point=(x, y)))
        return act(f"type_into({description!r}): type", lambda: Action("type", text=text))


def _video_tool(server: Any, backend: Any) -> None:
    from mcp.server.mcpserver.exceptions import ToolError

    @server.tool()
    def video_ask(path: str, question: str, max_frames: int = 64) -> str:
        """Ask a question about a video file on this machine (frames are sampled over its whole length)."""
        from vlagent.video.qa import ask

        try:
            reply = ask(path, question, backend=backend, max_frames=max_frames)
        except Exception as e:  # noqa: BLE001 - a bad file or a failing backend is the caller's tool error
            raise ToolError(f"{type(e).__name__}: {e}") from None
        return reply.answer


def serve_http(server: Any, host: str, port: int, token: str) -> None:
    """Streamable HTTP on host:port; every request must carry `Authorization: Bearer <token>`."""
    import hmac

    import uvicorn

    app = server.streamable_http_app()
    expected = f"Bearer {token}".encode()

    async def guarded(scope, receive, send):
        if scope["type"] == "http":
            given = dict(scope.get("headers") or []).get(b"authorization", b"")
            if not hmac.compare_digest(given, expected):
                await send({"type": "http.response.start", "status": 401,
                            "headers": [(b"content-type", b"text/plain"), (b"www-authenticate", b"Bearer")]})
                await send({"type": "http.response.body", "body": b"missing or wrong bearer token\n"})
                return
        await app(scope, receive, send)

    uvicorn.run(guarded, host=host, port=port, log_level="warning")


LOOPBACK = ("127.0.0.1", "localhost", "::1")


# ---------------------------------------------------------------- command line

def register(sub: Any) -> None:
    """`vlagent mcp`: added to the CLI's subcommands."""
    import argparse

    p = sub.add_parser("mcp", help="serve the desktop or a phone as MCP tools (stdio, or --http)",
                       description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--env", default="desktop", metavar="desktop|android[:SERIAL]", help="what to serve (default desktop)")
    p.add_argument("--monitor", type=int, default=1, help="desktop monitor (1 = first, 0 = all; default 1)")
    p.add_argument("--http", default=None, metavar="HOST:PORT", help="streamable HTTP instead of stdio (needs --token)")
    p.add_argument("--token", default=None, help="bearer token HTTP clients must send (default $VLAGENT_MCP_TOKEN)")
    p.add_argument("--allow-remote", action="store_true", help="with --http: allow a non-loopback HOST")
    p.add_argument("--dry-run", action="store_true", help="record every call, execute nothing")
    p.add_argument("--confirm", nargs="?", const="risky", choices=["risky", "all"], default=None,
                   help="actions that need confirmation are refused (this server cannot ask the user)")
    p.add_argument("--secret", action="append", metavar="NAME", help="a secret typed as {{NAME}} (repeatable)")
    p.add_argument("--max-actions", type=int, default=None, help="actions per session")
    p.add_argument("--max-seconds", type=float, default=None, help="session time limit")
    p.add_argument("--run-dir", default=None, help="run folder (default runs/<time>-mcp-session)")
    p.add_argument("--grounder", default="default", metavar="SPEC",
                   help="grounder for locate / click_target / type_into (default: the best offline one; 'none' to leave "
                        "them out)")
    p.add_argument("--video-api-base", default=None, metavar="URL", help="with --video-model: add the video_ask tool")
    p.add_argument("--video-model", default=None, help="the served model that answers video_ask")
    p.set_defaults(func=cmd_mcp)


def cmd_mcp(args: Any) -> int:
    import os

    from vlagent.cli import EXIT_USAGE, CliError, make_env, parse_env_spec
    from vlagent.safety import ConfirmGate, SecretError, SecretStore

    kind, _ = parse_env_spec(args.env)
    host = port = token = None
    if args.http:
        host, _, port_text = args.http.rpartition(":")
        if not host or not port_text.isdigit():
            raise CliError(f"--http wants HOST:PORT, e.g. 127.0.0.1:8765; got {args.http!r}", EXIT_USAGE)
        port = int(port_text)
        if host not in LOOPBACK and not args.allow_remote:
            raise CliError(f"refusing to serve on {host}: only loopback addresses unless --allow-remote", EXIT_USAGE)
        token = args.token or os.environ.get("VLAGENT_MCP_TOKEN")
        if not token:
            raise CliError("--http needs a bearer token: --token or $VLAGENT_MCP_TOKEN", EXIT_USAGE)
    try:
        secrets = SecretStore(args.secret or None)
    except SecretError as exc:
        raise CliError(str(exc), EXIT_USAGE) from None
    grounder = None
    if args.grounder.lower() != "none":
        from vlagent.grounding.grounders import GrounderSpecError, make_grounder

        try:
            grounder = make_grounder(args.grounder)
        except (GrounderSpecError, FileNotFoundError, ValueError) as exc:
            raise CliError(f"grounder {args.grounder!r}: {exc}", EXIT_USAGE) from None
    video = None
    if args.video_model:
        from vlagent.video.qa import OpenAIVideoBackend

        video = OpenAIVideoBackend(args.video_model, base_url=args.video_api_base)
    gate = ConfirmGate(args.confirm, asker=lambda action: False)  # no way to ask here: refuse, with the reason
    env = make_env(args.env, monitor=args.monitor)
    session = Session(env, task="mcp session", run_dir=args.run_dir, dry_run=args.dry_run, confirm=gate,
                      secrets=secrets, max_actions=args.max_actions, max_seconds=args.max_seconds)
    server = build_server(session, platform=kind, grounder=grounder, video_backend=video)
    try:
        if args.http:
            serve_http(server, host, port, token)
        else:
            server.run("stdio")
    finally:
        report = session.close()
        env.close()
        import sys

        print(f"vlagent mcp: session recorded in {session.run_dir} (report: {report})", file=sys.stderr)
    return 0
