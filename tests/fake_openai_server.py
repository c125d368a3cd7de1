"""A stand-in OpenAI-compatible server speaking real HTTP on 127.0.0.1.

    with FakeOpenAIServer(["<tool_call>...</tool_call>"]) as server:
        policy = OpenAIPolicy("fake-model", base_url=server.base_url)
        ...
        server.requests[0]["messages"]   # what the client sent

It answers POST /v1/chat/completions with scripted replies (strings, or
callables taking the request body and returning a string) and GET
/v1/models with its model list. Every chat request is checked the way a
real vision server would see it (model known, messages well-formed, images
present as decodable base64 data URLs, the tool prompt in the system
message); a failed check answers HTTP 400 and is kept in `problems`.
Failure injection: `fail_first=N` answers the first N chat requests with
`fail_status` (500, 429, 503...), `status=401/403/404` answers every chat
request with that error, `api_key=` requires that bearer token.
"""

from __future__ import annotations

import base64
import io
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable, Sequence

from PIL import Image

# A reply is the assistant's text, a callable(request body) -> text, or a dict
# used as the whole assistant message (e.g. with structured "tool_calls").
Reply = str | dict | Callable[[dict[str, Any]], str]


class FakeOpenAIServer:
    def __init__(
        self,
        replies: Sequence[Reply] = (),
        *,
        models: Sequence[str] = ("fake-model",),
        fail_first: int = 0,
        fail_status: int = 500,
        status: int | None = None,
        api_key: str | None = None,
        require_tools: bool = True,
        require_image: bool = True,
    ) -> None:
        self.replies: list[Reply] = list(replies)
        self.models = list(models)
        self.fail_first = fail_first
        self.fail_status = fail_status
        self.status = status
        self.api_key = api_key
        self.require_tools = require_tools
        self.require_image = require_image
        self.requests: list[dict[str, Any]] = []  # parsed bodies of chat requests that passed the checks
        self.raw_bodies: list[bytes] = []  # every chat request body, as received
        self.image_sizes: list[list[tuple[int, int]]] = []  # per accepted request, decoded image sizes
        self.problems: list[str] = []  # checks that failed
        self.chat_calls = 0
        self._lock = threading.Lock()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._port: int | None = None

    # ------------------------------------------------------------------ lifecycle

    @property
    def port(self) -> int:
        assert self._port is not None, "server not started"
        return self._port

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def start(self) -> "FakeOpenAIServer":
        server = self

        class Handler(_Handler):
            owner = server

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self._port = self._httpd.server_address[1]
        self._thread = threading.Thread(target=self._httpd.serve_forever, name="fake-openai", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None

    def __enter__(self) -> "FakeOpenAIServer":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ------------------------------------------------------------------ helpers for tests

    def texts(self, request: dict[str, Any]) -> list[str]:
        """Every text of a request's messages, in order (system first)."""
        out = []
        for message in request["messages"]:
            content = message.get("content")
            if isinstance(content, str):
                out.append(content)
            elif isinstance(content, list):
                out += [p["text"] for p in content if p.get("type") == "text"]
        return out

    # ------------------------------------------------------------------ request handling

    def _check_chat(self, body: dict[str, Any]) -> tuple[list[str], list[tuple[int, int]]]:
        problems: list[str] = []
        sizes: list[tuple[int, int]] = []
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages:
            return ["'messages' must be a non-empty list"], sizes
        for i, message in enumerate(messages):
            role, content = message.get("role"), message.get("content")
            if role not in ("system", "user", "assistant", "tool"):
                problems.append(f"message {i}: bad role {role!r}")
            if isinstance(content, str):
                continue
            if not isinstance(content, list):
                problems.append(f"message {i}: content must be a string or a list of parts")
                continue
            for part in content:
                kind = part.get("type")
                if kind == "text":
                    if not isinstance(part.get("text"), str):
                        problems.append(f"message {i}: text part without text")
                elif kind == "image_url":
                    url = (part.get("image_url") or {}).get("url", "")
                    try:
                        sizes.append(_decode_data_url(url))
                    except ValueError as exc:
                        problems.append(f"message {i}: {exc}")
                else:
                    problems.append(f"message {i}: unknown part type {kind!r}")
        if self.require_tools:
            system = messages[0].get("content") if messages[0].get("role") == "system" else None
            if not isinstance(system, str) or "<tools>" not in system or "<tool_call>" not in system:
                problems.append("the first message is not a system prompt declaring <tools> and <tool_call>")
        if self.require_image and not sizes:
            problems.append("no image in the request")
        return problems, sizes

    def _next_reply(self, body: dict[str, Any]) -> str | dict | None:
        with self._lock:
            if not self.replies:
                return None
            reply = self.replies.pop(0)
        return reply(body) if callable(reply) else reply


def _decode_data_url(url: str) -> tuple[int, int]:
    if not url.startswith("data:image/"):
        raise ValueError(f"image is not a data URL: {url[:40]!r}")
    header, _, payload = url.partition(",")
    if not header.endswith(";base64"):
        raise ValueError("image data URL is not base64")
    try:
        image = Image.open(io.BytesIO(base64.b64decode(payload, validate=True)))
        image.load()
    except Exception as exc:  # noqa: BLE001 - any decode failure is the finding
        raise ValueError(f"image does not decode: {exc}") from None
    return image.size


def _error_body(message: str, kind: str, code: str | None = None) -> dict[str, Any]:
    return {"error": {"message": message, "type": kind, "param": None, "code": code}}


class _Handler(BaseHTTPRequestHandler):
    owner: FakeOpenAIServer
    protocol_version = "HTTP/1.1"

    def log_message(self, *args: Any) -> None:  # keep test output clean
        pass

    def _send(self, status: int, payload: dict[str, Any], headers: dict[str, str] | None = None) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(data)

    def _authorized(self) -> bool:
        want = self.owner.api_key
        if want is None:
            return True
        if self.headers.get("Authorization") == f"Bearer {want}":
            return True
        self._send(401, _error_body("Incorrect API key provided.", "invalid_request_error", "invalid_api_key"))
        return False

    def do_GET(self) -> None:
        if not self._authorized():
            return
        if self.path.rstrip("/") == "/v1/models":
            data = [{"id": m, "object": "model", "created": 0, "owned_by": "fake"} for m in self.owner.models]
            self._send(200, {"object": "list", "data": data})
        else:
            self._send(404, _error_body(f"no route GET {self.path}", "not_found"))

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length)
        if self.path.rstrip("/") != "/v1/chat/completions":
            self._send(404, _error_body(f"no route POST {self.path}", "not_found"))
            return
        owner = self.owner
        with owner._lock:
            owner.raw_bodies.append(raw)
            owner.chat_calls += 1
            call = owner.chat_calls
        if not self._authorized():
            return
        if owner.status is not None:
            messages = {
                401: "Incorrect API key provided.",
                403: "You are not allowed to use this model.",
                404: "The model does not exist.",
            }
            self._send(owner.status, _error_body(messages.get(owner.status, "scripted error"), "scripted"))
            return
        if call <= owner.fail_first:
            headers = {"Retry-After": "0"} if owner.fail_status == 429 else None
            self._send(owner.fail_status, _error_body(f"scripted failure {call}", "server_error"), headers)
            return
        try:
            body = json.loads(raw)
        except json.JSONDecodeError as exc:
            owner.problems.append(f"request {call}: body is not JSON: {exc}")
            self._send(400, _error_body("body is not JSON", "invalid_request_error"))
            return
        if body.get("model") not in owner.models:
            self._send(
                404,
                _error_body(f"The model `{body.get('model')}` does not exist.", "invalid_request_error", "model_not_found"),
            )
            return
        problems, sizes = owner._check_chat(body)
        if problems:
            owner.problems += [f"request {call}: {p}" for p in problems]
            self._send(400, _error_body("; ".join(problems), "invalid_request_error"))
            return
        with owner._lock:
            owner.requests.append(body)
            owner.image_sizes.append(sizes)
        reply = owner._next_reply(body)
        if reply is None:
            owner.problems.append(f"request {call}: no scripted reply left")
            self._send(500, _error_body("no scripted reply left", "server_error"))
            return
        message = {"role": "assistant", **reply} if isinstance(reply, dict) else {"role": "assistant", "content": reply}
        text = message.get("content") or ""
        self._send(
            200,
            {
                "id": f"chatcmpl-fake-{call}",
                "object": "chat.completion",
                "created": int(time.time()),
                "model": body["model"],
                "choices": [
                    {
                        "index": 0,
                        "message": message,
                        "finish_reason": "stop",
                    }
                ],
                "usage": {"prompt_tokens": len(raw) // 4, "completion_tokens": len(text) // 4, "total_tokens": 0},
            },
        )


def tool_call(action: str, tool: str = "computer_use", **arguments: Any) -> str:
    """A Qwen <tool_call> block, as the model would write it."""
    payload = {"name": tool, "arguments": {"action": action, **arguments}}
    return f"<tool_call>\n{json.dumps(payload, ensure_ascii=False)}\n</tool_call>"


def tool_call_xml(action: str, tool: str = "computer_use", **arguments: Any) -> str:
    """The same call in Qwen3.5's XML layout."""
    params = "".join(
        f"<parameter={key}>\n{value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)}\n</parameter>\n"
        for key, value in {"action": action, **arguments}.items()
    )
    return f"<tool_call>\n<function={tool}>\n{params}</function>\n</tool_call>"


__all__ = ["FakeOpenAIServer", "tool_call", "tool_call_xml"]
