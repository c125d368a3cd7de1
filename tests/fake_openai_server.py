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

Fault modes (`faults=[...]`: the i-th chat request gets the i-th fault, None
= answered normally; `fault_always=` gives every request that fault), each a
way real servers and proxies misbehave, done for real on the socket:

    http500 / http503    an error status (503 with Retry-After: 0)
    http429              rate limited, with Retry-After: `retry_after` seconds
    hang                 reads the request, then answers nothing for `hang_s`
                         seconds (past the client's timeout)
    reset                sends the status line and half the headers, then a TCP
                         reset (SO_LINGER 0) mid-response
    truncated            a 200 whose body stops halfway (Content-Length promises more)
    not_json             a 200 with an HTML page (a proxy's error page) as the body
    bad_json             a 200 labelled application/json whose JSON is cut short
    empty_choices        a well-formed completion with "choices": []
    no_message           a completion whose one choice has no message

Faulted requests consume no scripted reply. `fault_log` lists (request number,
fault) as they were served.
"""

from __future__ import annotations

import base64
import io
import json
import socket
import struct
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable, Sequence

from PIL import Image

# A reply is the assistant's text, a callable(request body) -> text, or a dict
# used as the whole assistant message (e.g. with structured "tool_calls").
Reply = str | dict | Callable[[dict[str, Any]], str]

FAULTS = ("http500", "http503", "http429", "hang", "reset", "truncated", "not_json", "bad_json", "empty_choices",
          "no_message")


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
        faults: Sequence[str | None] = (),
        fault_always: str | None = None,
        retry_after: float = 0,
        hang_s: float = 30.0,
    ) -> None:
        for fault in [*faults, fault_always]:
            if fault is not None and fault not in FAULTS:
                raise ValueError(f"unknown fault {fault!r}; expected one of {FAULTS}")
        self.faults: list[str | None] = list(faults)
        self.fault_always = fault_always
        self.retry_after = retry_after
        self.hang_s = hang_s
        self.fault_log: list[tuple[int, str]] = []
        self._stopping = threading.Event()  # releases hanging handlers on stop()
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
        self.call_times: list[float] = []  # time.monotonic() of each chat request's arrival
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
        self._stopping.set()
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

    def _next_fault(self, call: int) -> str | None:
        with self._lock:
            fault = self.faults.pop(0) if self.faults else self.fault_always
            if fault is not None:
                self.fault_log.append((call, fault))
        return fault

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
            owner.call_times.append(time.monotonic())
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
        fault = owner._next_fault(call)
        if fault is not None:
            self._serve_fault(fault, call)
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


    # ------------------------------------------------------------------ faults

    def _serve_fault(self, fault: str, call: int) -> None:
        owner = self.owner
        if fault in ("http500", "http503", "http429"):
            status = int(fault[4:])
            headers = {"Retry-After": f"{owner.retry_after:g}"} if status == 429 else (
                {"Retry-After": "0"} if status == 503 else None)
            kind = "rate_limit_exceeded" if status == 429 else "server_error"
            self._send(status, _error_body(f"injected {fault} on request {call}", kind), headers)
        elif fault == "hang":
            owner._stopping.wait(owner.hang_s)
            self.close_connection = True
        elif fault == "reset":
            self.wfile.write(b"HTTP/1.1 200 OK\r\nContent-Type: applic")
            self.wfile.flush()
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.close_connection = True
            self.connection.close()  # linger 0: the peer gets a RST, not a FIN
        elif fault == "truncated":
            data = json.dumps(_completion(call, "fake-model", {"role": "assistant", "content": "half"})).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data[: len(data) // 2])
            self.wfile.flush()
            self.close_connection = True
        elif fault in ("not_json", "bad_json"):
            if fault == "not_json":
                data, kind = b"<html><body><h1>502 Bad Gateway</h1>nginx</body></html>", "text/html"
            else:
                whole = json.dumps(_completion(call, "fake-model", {"role": "assistant", "content": "cut"}))
                data, kind = whole[: len(whole) // 2].encode(), "application/json"
            self.send_response(200)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        elif fault == "empty_choices":
            self._send(200, {**_completion(call, "fake-model", None), "choices": []})
        elif fault == "no_message":
            completion = _completion(call, "fake-model", None)
            completion["choices"] = [{"index": 0, "finish_reason": "stop"}]
            self._send(200, completion)
        else:  # pragma: no cover - checked in __init__
            raise ValueError(fault)


def _completion(call: int, model: str, message: dict[str, Any] | None, usage: dict[str, int] | None = None) -> dict[str, Any]:
    return {
        "id": f"chatcmpl-fake-{call}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [] if message is None else [{"index": 0, "message": message, "finish_reason": "stop"}],
        "usage": usage or {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0},
    }


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
