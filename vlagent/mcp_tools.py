"""The MCP tools of `vlagent mcp`: the screen, pointer and keys, phone verbs, grounding and video.

Every tool that acts goes through the session's gate. An action that needs confirmation (--confirm)
is put to the user through the client (MCP elicitation) when the client can ask; otherwise it is
refused with the reason. This module imports the `mcp` SDK; vlagent.mcp_server loads it only to serve.
"""
import io
import json
from typing import Any, Callable, Literal

import anyio.from_thread
from mcp.server.mcpserver import Context, Image, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from pydantic import BaseModel, Field

from vlagent.actions import Action, ActionError
from vlagent.environments.base import EnvironmentLost
from vlagent.grounding.locate import TargetNotFound
from vlagent.scripting import MAX_SCROLLS, ActionFailed, Bot, pointer_back
from vlagent.session import Session, SessionLimit

Units = Literal["normalized", "pixels"]

INSTRUCTIONS = """Operate a {platform} screen. Call `screenshot` first: points are normalized [0, 1] of the
latest screenshot (x right, y down) unless you pass units="pixels" (that screenshot's pixels). Type
secrets as {{{{name}}}} placeholders; their values are never shown."""


class Approval(BaseModel):
    """What the user is asked before a gated action runs."""
    approve: bool = Field(description="run this action now?")


def _ask_user(ctx: Context, action: Action) -> tuple[bool, str | None]:
    """(approved, why not) for a gated action, asked through the client from this worker thread."""
    caps = ctx.client_capabilities
    if caps is None or getattr(caps, "elicitation", None) is None:
        return False, (f"{action.describe()} needs confirmation (--confirm), and this client cannot be asked "
                       "(no elicitation support); it was not executed")
    reply = anyio.from_thread.run(ctx.elicit, f"vlagent wants to run: {action.describe()}. Allow it?", Approval)
    if getattr(reply, "action", None) == "accept" and getattr(reply, "data", None) is not None and reply.data.approve:
        return True, None
    return False, f"the user did not approve {action.describe()}; it was not executed"


def build_server(session: Session, platform: str = "desktop", grounder: Any = None, video_backend: Any = None):
    """An MCPServer whose tools act through `session` ("desktop" or "android" tool set). `grounder` (any
    object with ground(image, instruction, platform=)) adds locate / click_target / type_into;
    `video_backend` (anything vlagent.video.ask takes) adds video_ask."""
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

    def act(ctx: Context, note: str, make: Callable[[], Action], keyboard: bool = False) -> str:
        """Build the action (a bad one is the client's tool error) and run it; `keyboard`: typed or pressed
        keys, before which a pointer moved aside goes back (scripting.pointer_back)."""
        try:
            action = make()
        except ActionError as e:
            session.note(f"{note}: refused", error=str(e))
            raise ToolError(str(e)) from None
        if keyboard:
            pointer_back(session, lambda move, why: execute(ctx, move, why))
        outcome = execute(ctx, action, note)
        return f"{'would run (dry run)' if outcome.status == 'dry_run' else 'done'}: {action.describe()}"

    def execute(ctx: Context, action: Action, note: str) -> Any:
        """Run one action through the session (asking the user first where the gate says so): its outcome,
        or a ToolError when it was not approved, not executed or the session is over."""
        approved = None
        if not session.dry_run and session.gate.needs_confirmation(action):
            approved, why_not = _ask_user(ctx, action)
            if not approved:
                session.note(f"{note}: not approved", error=why_not)
                raise ToolError(why_not)
        try:
            outcome = session.act(action, note, approved=approved)
        except (SessionLimit, EnvironmentLost) as e:
            raise ToolError(str(e)) from None
        if outcome.status in ("declined", "failed"):
            raise ToolError(outcome.error or outcome.status)
        return outcome

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
        def tool(x: float, y: float, ctx: Context, units: Units = "normalized",
                 modifiers: list[str] | None = None) -> str:
            held = f", modifiers={'+'.join(modifiers)}" if modifiers else ""
            return act(ctx, f"{kind}(x={x:g}, y={y:g}, units={units}{held})",
                       lambda: Action(kind, point=point(x, y, units), keys=tuple(modifiers) if modifiers else None))
        tool.__name__, tool.__doc__ = kind, doc
        server.tool(name=kind)(tool)

    held = " modifiers: keys held down meanwhile (desktop), e.g. [\"ctrl\"] to add to a selection."
    pointer_tool("click", "Left-click at (x, y)." + held)
    pointer_tool("double_click", "Double-click at (x, y)." + held)
    pointer_tool("right_click", "Right-click at (x, y)." + held)

    @server.tool()
    def move(x: float, y: float, ctx: Context, units: Units = "normalized") -> str:
        """Move the pointer to (x, y) without clicking."""
        return act(ctx, f"move(x={x:g}, y={y:g}, units={units})", lambda: Action("move", point=point(x, y, units)))

    @server.tool()
    def drag(x: float, y: float, to_x: float, to_y: float, ctx: Context, units: Units = "normalized") -> str:
        """Press at (x, y), move to (to_x, to_y), release."""
        return act(ctx, f"drag({x:g}, {y:g} -> {to_x:g}, {to_y:g}, units={units})",
                   lambda: Action("drag", point=point(x, y, units), end=point(to_x, to_y, units)))

    @server.tool()
    def scroll(direction: Literal["up", "down", "left", "right"], ctx: Context, amount: float = 3.0, x: float | None = None,
               y: float | None = None, units: Units = "normalized") -> str:
        """Scroll by `amount` notches, over (x, y) when given."""
        at = None if x is None or y is None else point(x, y, units)
        return act(ctx, f"scroll({direction}, {amount:g})", lambda: Action("scroll", direction=direction, amount=amount, point=at))

    @server.tool(name="type")
    def type_text(text: str, ctx: Context, secret: bool = False) -> str:
        """Type text into the focused element (any language; {{name}} placeholders type a secret; secret=true
        keeps the text out of the recording)."""
        typed = session.typed(text, secret)
        return act(ctx, "type(…)", lambda: Action("type", text=typed), keyboard=True)

    @server.tool()
    def key(keys: list[str], ctx: Context) -> str:
        """Press a key or a combination, e.g. ["ctrl", "s"] or ["enter"]."""
        return act(ctx, f"key({'+'.join(keys)})", lambda: Action("key", keys=tuple(keys)), keyboard=True)

    if platform == "android":
        _android_tools(server, act, point)
    if grounder is not None:
        _grounding_tools(server, session, grounder, execute, platform)
    if video_backend is not None:
        _video_tool(server, video_backend)
    return server


def _android_tools(server: Any, act: Callable, point: Callable) -> None:
    @server.tool()
    def back(ctx: Context) -> str:
        """Press the phone's Back button."""
        return act(ctx, "back()", lambda: Action("back"))

    @server.tool()
    def home(ctx: Context) -> str:
        """Go to the home screen."""
        return act(ctx, "home()", lambda: Action("home"))

    @server.tool()
    def open_app(package: str, ctx: Context) -> str:
        """Open an app by its package name, e.g. com.android.settings."""
        return act(ctx, f"open_app({package})", lambda: Action("open_app", text=package))

    @server.tool()
    def long_press(x: float, y: float, ctx: Context, units: Units = "normalized") -> str:
        """Touch and hold at (x, y)."""
        return act(ctx, f"long_press({x:g}, {y:g})", lambda: Action("long_press", point=point(x, y, units)))

    @server.tool()
    def swipe(x: float, y: float, to_x: float, to_y: float, ctx: Context, units: Units = "normalized") -> str:
        """Swipe from (x, y) to (to_x, to_y)."""
        return act(ctx, f"swipe({x:g}, {y:g} -> {to_x:g}, {to_y:g})",
                   lambda: Action("swipe", point=point(x, y, units), end=point(to_x, to_y, units)))


def _grounding_tools(server: Any, session: Session, grounder: Any, execute: Callable, platform: str) -> None:
    """locate, scroll_to, set_slider, click_target, type_into, read and select: a script's calls (vlagent.scripting.Bot) inside this
    server's session, each looking for its target for up to FIND_TIMEOUT seconds as a script's do."""
    where = {"android": "android"}.get(platform, "desktop")

    def bot(ctx: Context | None = None) -> Bot:
        run = (lambda action, note: execute(ctx, action, note)) if ctx is not None else None
        return Bot(session.env, grounder, platform=where, session=session, execute=run)

    def call(do: Callable[[], Any]) -> Any:
        """`do()`, with a miss, an action not run or a lost screen turned into the client's tool error."""
        try:
            return do()
        except TargetNotFound as missing:
            candidates = [{"point": list(c.point), "score": round(c.score, 4)} for c in missing.candidates[:5]]
            raise ToolError(f"TargetNotFound: {missing}; candidates: {json.dumps(candidates)}") from None
        except (ActionFailed, SessionLimit, EnvironmentLost, ValueError) as e:  # ValueError: a bad argument
            raise ToolError(str(e)) from None

    def done(action: Action, found: Any) -> str:
        state = "would run (dry run)" if session.dry_run else "done"
        return f"{state}: {action.describe()} (confidence {found.confidence:.2f})"

    @server.tool()
    def locate(description: str) -> str:
        """Where is the element this describes ("the Save button", "the field under Email")? Returns the
        normalized point, confidence, box and candidates as JSON; a tool error when it is not on screen."""
        found = call(lambda: bot().locate(description))
        return json.dumps({"point": list(found.point), "confidence": round(found.confidence, 4),
                           "box": list(found.box) if found.box else None, "grounder": grounder.name,
                           "candidates": [{"point": list(c.point), "score": round(c.score, 4)}
                                          for c in found.candidates[:5]]})

    @server.tool()
    def scroll_to(description: str, ctx: Context, direction: Literal["down", "up", "right", "left"] = "down",
                  within: str | None = None, max_scrolls: int = MAX_SCROLLS) -> str:
        """Scroll until the element this describes is on the screen ("the switch for NFC", "Order 1063"),
        at the place of the element `within` describes (else where the pointer rests, else the middle).
        Returns what locate returns; a tool error once a scroll changes nothing (the end) or after
        max_scrolls."""
        found = call(lambda: bot(ctx).scroll_to(description, direction, within=within, max_scrolls=max_scrolls))
        return json.dumps({"point": list(found.point), "confidence": round(found.confidence, 4),
                           "box": list(found.box) if found.box else None})

    @server.tool()
    def set_slider(description: str, level: float, ctx: Context) -> str:
        """Drag the knob of the slider this describes ("the Volume slider") to `level` of its track, 0 to 1
        (from the left; a standing slider's from the bottom); returns the level the knob shows afterwards."""
        if not 0.0 <= level <= 1.0:
            raise ToolError(f"level is a fraction of the slider's track, from 0 to 1; got {level!r}")
        reached = call(lambda: bot(ctx).set_slider(description, level))
        return f"{'would run (dry run)' if session.dry_run else 'done'}: the knob is at {reached:.3f} of the track"

    @server.tool()
    def click_target(description: str, ctx: Context) -> str:
        """Find the element this describes and click it (nothing is clicked when it is not found)."""
        found = call(lambda: bot(ctx).click(description))
        return done(Action("click", point=found.point), found)

    @server.tool()
    def type_into(description: str, text: str, ctx: Context, secret: bool | None = None) -> str:
        """Click the field this describes, then type text into it ({{name}} placeholders type a secret). secret:
        keep the text out of the recording ({{typed_1}} there); by default for a password, PIN, code, key or
        token field."""
        found = call(lambda: bot(ctx).type_into(description, text, secret=secret))
        return done(Action("click", point=found.point), found) + ", then typed the text"

    @server.tool()
    def read(description: str | None = None) -> str:
        """The text written inside the element this describes ("the Total field", "the status bar"), read by
        OCR from a fresh screenshot; with no description, the whole screen's text, a row per line."""
        return call(lambda: bot().read(description))

    @server.tool()
    def select(description: str, option: str, ctx: Context, timeout: float = 10.0) -> str:
        """Open the drop-down this describes ("the Language dropdown") and click `option`, as its list writes
        it, in the list; waits up to `timeout` seconds for the option to appear, and returns once the list
        has closed. Nothing more is clicked when the drop-down or the option is not found."""
        if not option.strip():
            raise ToolError("select needs the option to choose, as its list writes it; got an empty one")
        chosen = call(lambda: bot(ctx).select(description, option, timeout=timeout))
        if chosen is None:
            return "would run (dry run): the drop-down's click; the list does not open in a dry run"
        return done(Action("click", point=chosen.point), chosen)


def _video_tool(server: Any, backend: Any) -> None:
    @server.tool()
    def video_ask(path: str, question: str, max_frames: int = 64) -> str:
        """Ask a question about a video file on this machine (frames are sampled over its whole length)."""
        from vlagent.video.qa import ask

        try:
            reply = ask(path, question, backend=backend, max_frames=max_frames)
        except Exception as e:  # noqa: BLE001 - a bad file or a failing backend is the caller's tool error
            raise ToolError(f"{type(e).__name__}: {e}") from None
        return reply.answer
