"""Errors a policy raises when its backend, not the model's output, is the problem.

(Unparseable model output is `vlagent.actions.ActionParseError`, which the
agent shows to the model; these errors end the run.)
"""

from __future__ import annotations


class PolicyError(RuntimeError):
    """The policy cannot produce a decision (backend down, misconfigured, ...)."""


class BackendAuthError(PolicyError):
    """The backend refused the credentials (HTTP 401 / 403)."""


class ModelNotFoundError(PolicyError):
    """The backend does not serve the requested model (HTTP 404)."""


class BackendUnavailable(PolicyError):
    """The backend kept failing (timeouts, 429, 5xx, connection errors) after all retries."""


class BackendRequestError(PolicyError):
    """The backend rejected the request itself (HTTP 400/413/422: too long, bad image, ...)."""


__all__ = ["PolicyError", "BackendAuthError", "ModelNotFoundError", "BackendUnavailable", "BackendRequestError"]
