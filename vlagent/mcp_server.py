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

from typing import Any

from vlagent.session import Session


def build_server(session: Session, platform: str = "desktop", grounder: Any = None, video_backend: Any = None):
    """The MCPServer with vlagent's tools (vlagent/mcp_tools.py, which imports the SDK)."""
    from vlagent.mcp_tools import build_server as build

    return build(session, platform=platform, grounder=grounder, video_backend=video_backend)


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
                   help="ask the user (through the client) before risky actions, or all; refused where it cannot ask")
    p.add_argument("--secret", action="append", metavar="NAME[@GLOB]",
                   help="a secret typed as {{NAME}} (repeatable); NAME@GLOB: only into a window titled / an app matching GLOB")
    p.add_argument("--max-actions", type=int, default=None, help="actions per session")
    p.add_argument("--max-seconds", type=float, default=None, help="session time limit")
    p.add_argument("--run-dir", default=None, help="run folder (default runs/<time>-mcp-session; $VLAGENT_RUNS sets the parent)")
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
        from vlagent.video.qa import OpenAIVideoBackend, VideoBackendError

        try:
            video = OpenAIVideoBackend(args.video_model, base_url=args.video_api_base)
        except VideoBackendError as exc:
            raise CliError(f"--video-model {args.video_model}: {exc}", EXIT_USAGE) from None
    gate = ConfirmGate(args.confirm, asker=lambda action: False)  # the tools ask through the client instead
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
