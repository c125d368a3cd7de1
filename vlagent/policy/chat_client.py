"""The one transport to an OpenAI-compatible chat-completions server (vLLM,
SGLang, llama.cpp server, a hosted endpoint, ...), shared by the agent's
`OpenAIPolicy` and the video Q&A backend.

Transient failures (timeouts, connection errors, 429, 5xx, a body that is
not a chat completion at all: a proxy's HTML page, JSON cut short) are
retried here with exponential backoff and jitter, honouring Retry-After; a
completion without choices or without a message is not retried. The openai
client's own retries are switched off so the behaviour is the same for every
server and testable (`sleep` is injectable). Everything else becomes one of
the clear errors of `vlagent.policy.errors`.
"""

from __future__ import annotations

import json
import os
import random
import time
from typing import Any, Callable

from vlagent.policy.errors import (
    BackendAuthError,
    BackendRequestError,
    BackendUnavailable,
    ModelNotFoundError,
    PolicyError,
)

FALLBACK_KEY_ENV = "VLAGENT_API_KEY"
OFFICIAL_ENDPOINT = "https://api.openai.com/v1"
# Longest single wait between retries, whatever Retry-After or the backoff say.
MAX_RETRY_WAIT_S = 30.0


def resolve_api_key(api_key: str | None, api_key_env: str, base_url: str | None) -> str:
    """Explicit key, else $api_key_env, else $VLAGENT_API_KEY, else "EMPTY" for
    a custom server (a local vLLM needs none); the official API needs a key."""
    if api_key:
        return api_key
    for name in (api_key_env, FALLBACK_KEY_ENV):
        if name and os.environ.get(name):
            return os.environ[name]
    if base_url is None:
        raise BackendAuthError(
            f"no API key: set {api_key_env} (or {FALLBACK_KEY_ENV}), or give a base URL for a local server"
        )
    return "EMPTY"


def check_base_url(url: str) -> None:
    """ValueError unless `url` is an http(s) address with a host ("http://localhost:8000/v1"): a typo would
    otherwise be retried as a connection error."""
    from urllib.parse import urlsplit

    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"the API base {url!r} is not an http(s) URL with a host, e.g. http://localhost:8000/v1")


class ChatClient:
    """Chat completions for one `model` at one endpoint, with retries and clear errors.

    `client` injects a ready openai-compatible client (anything with
    `chat.completions.create` and `models.list`); then no key is resolved and
    its own settings (timeout, retries) apply as built.
    """

    def __init__(
        self,
        model: str,
        *,
        base_url: str | None = None,
        api_key: str | None = None,
        api_key_env: str = "OPENAI_API_KEY",
        temperature: float = 0.0,
        max_tokens: int = 1024,
        timeout: float = 120.0,
        max_retries: int = 3,
        backoff_s: float = 1.0,
        extra_body: dict[str, Any] | None = None,
        sleep: Callable[[float], None] = time.sleep,
        client: Any = None,
    ) -> None:
        if not isinstance(model, str) or not model.strip():
            raise ValueError("model must be a non-empty model name")
        if max_retries < 0:
            raise ValueError(f"max_retries must be >= 0, got {max_retries}")
        if base_url is not None:
            check_base_url(base_url)
        try:
            import openai
        except ImportError as exc:  # pragma: no cover - depends on the install
            raise PolicyError("the 'openai' package is not installed: pip install 'vlagent[api]'") from exc

        self.model = model
        self.base_url = base_url.rstrip("/") if base_url else None
        self.api_key_env = api_key_env
        self._explicit_key = bool(api_key)
        self.temperature = temperature
        self.max_tokens = max_tokens
        self.timeout = timeout
        self.max_retries = max_retries
        self.backoff_s = backoff_s
        self.extra_body = extra_body
        self._sleep = sleep
        self._openai = openai
        if client is None:
            client = openai.OpenAI(
                api_key=resolve_api_key(api_key, api_key_env, self.base_url),
                base_url=self.base_url,
                timeout=timeout,
                max_retries=0,
            )
        self.client = client

    @property
    def endpoint(self) -> str:
        return self.base_url or OFFICIAL_ENDPOINT

    def __repr__(self) -> str:
        return f"ChatClient(model={self.model!r}, base_url={self.endpoint!r})"

    # ------------------------------------------------------------------ completion

    def complete(self, messages: list[dict[str, Any]]) -> tuple[Any, int]:
        """One chat completion with retries; returns (response, attempts used)."""
        openai = self._openai
        kwargs: dict[str, Any] = {
            "model": self.model,
            "messages": messages,
            "temperature": self.temperature,
            "max_tokens": self.max_tokens,
        }
        if self.extra_body:
            kwargs["extra_body"] = self.extra_body
        last: Exception | None = None
        for attempt in range(self.max_retries + 1):
            try:
                response = self.client.chat.completions.create(**kwargs)
                problem = _not_a_completion(response)
                if problem is None:
                    self._check_choices(response)
                    return response, attempt + 1
                last = MalformedReply(problem)
            except json.JSONDecodeError as exc:  # labelled JSON, but not (e.g. cut short by a proxy)
                last = MalformedReply(f"the body is not valid JSON ({exc})")
            except (openai.AuthenticationError, openai.PermissionDeniedError) as exc:
                raise BackendAuthError(
                    f"{self.endpoint} refused the credentials for model {self.model!r} "
                    f"(HTTP {exc.status_code}): check {self._key_source()}. Server said: {_server_message(exc)}"
                ) from None
            except openai.NotFoundError as exc:
                raise ModelNotFoundError(
                    f"{self.endpoint}: model {self.model!r} not found (HTTP 404)"
                    f"{self._available_models_hint()}. Server said: {_server_message(exc)}"
                ) from None
            except (openai.APITimeoutError, openai.APIConnectionError, openai.RateLimitError) as exc:
                last = exc
            except openai.APIStatusError as exc:
                if exc.status_code < 500:
                    raise BackendRequestError(
                        f"{self.endpoint} rejected the request for model {self.model!r} "
                        f"(HTTP {exc.status_code}): {_server_message(exc)}"
                    ) from None
                last = exc
            if attempt < self.max_retries:
                self._sleep(self._retry_wait(attempt, last))
        raise BackendUnavailable(
            f"{self.endpoint} (model {self.model!r}) failed {self.max_retries + 1} time(s); last error: {_describe(last)}"
        ) from last

    def _check_choices(self, response: Any) -> None:
        """A completion the server meant (so not retried) that holds no answer to read."""
        choices = response.choices
        if not choices:
            raise PolicyError(f"{self.endpoint} returned a completion without choices for model {self.model!r}")
        if getattr(choices[0], "message", None) is None:
            raise PolicyError(f"{self.endpoint} returned a completion whose first choice has no message "
                              f"(model {self.model!r}, finish_reason {getattr(choices[0], 'finish_reason', None)!r})")

    def _key_source(self) -> str:
        if self._explicit_key:
            return "the API key given"
        return f"the API key (from ${self.api_key_env} or ${FALLBACK_KEY_ENV})"

    def _retry_wait(self, attempt: int, error: Exception | None) -> float:
        """Retry-After if the server sent one, else backoff·2^attempt with jitter."""
        response = getattr(error, "response", None)
        header = response.headers.get("retry-after") if response is not None else None
        if header:
            try:
                return min(max(float(header), 0.0), MAX_RETRY_WAIT_S)
            except ValueError:
                pass
        return min(self.backoff_s * (2**attempt) * (1.0 + 0.1 * random.random()), MAX_RETRY_WAIT_S)

    def _available_models_hint(self) -> str:
        try:
            names = [m.id for m in self.client.models.list()]
        except Exception:  # the hint is best-effort; the 404 is the error
            return ""
        if not names:
            return ""
        shown = ", ".join(names[:10]) + (" ..." if len(names) > 10 else "")
        return f"; it serves: {shown}"

    # ------------------------------------------------------------------ probing

    def list_models(self) -> list[str]:
        """Model ids the endpoint serves (GET /models); raises PolicyError if unreachable."""
        try:
            return [m.id for m in self.client.models.list()]
        except self._openai.APIError as exc:
            raise PolicyError(f"{self.endpoint}: cannot list models: {_describe(exc)}") from None


class MalformedReply(Exception):
    """A reply that is not a chat completion (kept as the last error while retrying)."""


def _not_a_completion(response: Any) -> str | None:
    """Why `response` is not a chat completion, or None when it is one.

    The openai client hands back the body as text when it is not JSON (an HTML error page a proxy answered
    with 200), and a JSON body of another shape as an object without `choices`."""
    if isinstance(response, (str, bytes)):
        text = response.decode(errors="replace") if isinstance(response, bytes) else response
        snippet = " ".join(text.split())[:120]
        return f"the body is not JSON: {snippet!r}" + ("..." if len(text) > 120 else "")
    choices = getattr(response, "choices", None)
    if not isinstance(choices, (list, tuple)):
        return f"the body is not a chat completion (no 'choices' list; got {type(response).__name__})"
    return None


def _server_message(exc: Exception) -> str:
    body = getattr(exc, "body", None)
    if isinstance(body, dict):
        inner = body.get("error", body)
        if isinstance(inner, dict) and inner.get("message"):
            return str(inner["message"])
        if isinstance(inner, str):
            return inner
    return str(getattr(exc, "message", None) or exc)


def _describe(exc: Exception | None) -> str:
    if exc is None:
        return "none"
    status = getattr(exc, "status_code", None)
    prefix = f"HTTP {status}: " if status else ""
    return f"{type(exc).__name__}: {prefix}{_server_message(exc)}"


__all__ = ["ChatClient", "check_base_url", "resolve_api_key", "FALLBACK_KEY_ENV", "MAX_RETRY_WAIT_S"]
