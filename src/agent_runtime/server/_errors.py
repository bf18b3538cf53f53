"""The service's HTTP errors and the one table mapping every error to a status.

Every error answer is JSON `{"error": {"type", "code", "message", ...}}`; its message passes
through the secret scrubber, so an upstream URL or key inside an exception text never reaches
a client.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from starlette.responses import JSONResponse

from ..errors import (
    AgentRuntimeError,
    BackendTransportError,
    ConfigurationError,
    DurableRunInputMismatchError,
    DurableValueError,
    InvalidArgumentError,
    StoreUnavailableError,
)
from ..sanitize import sanitize_json

__all__ = [
    "BodyTooLargeError",
    "HTTPRequestError",
    "HostNotAllowedError",
    "MethodNotAllowedError",
    "OriginNotAllowedError",
    "QuotaExceededError",
    "RequestJSONError",
    "RequestTimeoutError",
    "RouteNotFoundError",
    "TooManyTurnsError",
    "UnauthorizedError",
    "UnsupportedMediaTypeError",
    "error_response",
    "status_for",
]


class HTTPRequestError(AgentRuntimeError):
    """A request the service refuses before anything runs; `status` is its HTTP status."""

    code = "bad_request"
    status = 400


class RequestJSONError(InvalidArgumentError):
    """The request body is not a JSON object at all (answered 400, not 422)."""

    code = "invalid_json"


class UnauthorizedError(HTTPRequestError):
    """No credentials, or credentials no key or hook accepts (401)."""

    code = "unauthorized"
    status = 401


class OriginNotAllowedError(HTTPRequestError):
    """A browser request from a page on an origin that is not allowed (403)."""

    code = "origin_not_allowed"
    status = 403


class HostNotAllowedError(HTTPRequestError):
    """A `Host` header naming neither the bound address nor an allowed host: a DNS-rebinding
    page or a misrouted request (400)."""

    code = "host_not_allowed"
    status = 400


class RouteNotFoundError(HTTPRequestError):
    """No route or file at this path (404)."""

    code = "not_found"
    status = 404


class MethodNotAllowedError(HTTPRequestError):
    """The route exists but not for this method (405)."""

    code = "method_not_allowed"
    status = 405


class RequestTimeoutError(HTTPRequestError):
    """The body did not arrive within the body-read deadline (408)."""

    code = "request_timeout"
    status = 408


class BodyTooLargeError(HTTPRequestError):
    """The body, or one message in it, is over the configured limit (413)."""

    code = "body_too_large"
    status = 413


class UnsupportedMediaTypeError(HTTPRequestError):
    """A POST whose `Content-Type` is not `application/json` (415)."""

    code = "unsupported_media_type"
    status = 415


class TooManyTurnsError(HTTPRequestError):
    """The tenant already has its maximum number of turns running (429)."""

    code = "too_many_turns"
    status = 429


class QuotaExceededError(HTTPRequestError):
    """The tenant's stored runs are over its storage quota (429, as OpenAI answers an
    exhausted quota); retention or deleting runs frees it."""

    code = "quota_exceeded"
    status = 429


_STATUS: Mapping[type[AgentRuntimeError], int] = {
    RequestJSONError: 400,
    InvalidArgumentError: 422,
    DurableValueError: 422,
    DurableRunInputMismatchError: 409,
    StoreUnavailableError: 503,
    BackendTransportError: 502,
    ConfigurationError: 500,
}


def status_for(exc: AgentRuntimeError) -> int:
    """The HTTP status of an error: its own for `HTTPRequestError`, else the table's entry
    for the nearest class in its MRO, else 500."""
    if isinstance(exc, HTTPRequestError):
        return exc.status
    for cls in type(exc).__mro__:
        status = _STATUS.get(cls)
        if status is not None:
            return status
    return 500


def error_response(
    exc: AgentRuntimeError, *, headers: Mapping[str, str] | None = None
) -> JSONResponse:
    """The JSON error answer for `exc`, scrubbed of secrets."""
    body: dict[str, Any] = {"error": sanitize_json(exc.to_dict())}
    extra = dict(headers or {})
    if isinstance(exc, UnauthorizedError):
        extra.setdefault("www-authenticate", 'Bearer realm="agent-runtime"')
    return JSONResponse(body, status_code=status_for(exc), headers=extra)
