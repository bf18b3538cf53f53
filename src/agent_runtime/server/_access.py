"""The access log: one line per request when its response ends (streamed turns included),
with method, path, status, duration, execution id, tenant and, for an error, its code."""

from __future__ import annotations

import logging
import time
from typing import Any

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ._logging import log_fields

__all__ = ["ACCESS_LOGGER", "AccessLog"]

ACCESS_LOGGER = logging.getLogger("agent_runtime.server.access")
_ERROR_BODY_MAX = 4096


def _error_code(body: bytes) -> str | None:
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    error = doc.get("error") if isinstance(doc, dict) else None
    code = error.get("code") if isinstance(error, dict) else None
    return code if isinstance(code, str) else None


class AccessLog:
    """ASGI middleware logging each HTTP request on `agent_runtime.server.access`."""

    def __init__(self, app: ASGIApp, logger: logging.Logger = ACCESS_LOGGER) -> None:
        self.app = app
        self.logger = logger

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not self.logger.isEnabledFor(logging.INFO):
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        seen: dict[str, Any] = {"status": None, "execution_id": None, "error_body": b""}

        async def logged_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                seen["status"] = message["status"]
                for name, value in message.get("headers", ()):
                    if name == b"x-execution-id":
                        seen["execution_id"] = value.decode("latin-1")
            elif message["type"] == "http.response.body" and (seen["status"] or 0) >= 400:
                body: bytes = seen["error_body"]
                if len(body) < _ERROR_BODY_MAX:
                    seen["error_body"] = body + message.get("body", b"")[:_ERROR_BODY_MAX]
            await send(message)

        try:
            await self.app(scope, receive, logged_send)
        finally:
            status = seen["status"]
            state = scope.get("state") or {}
            code = _error_code(seen["error_body"]) if (status or 0) >= 400 else None
            client = scope.get("client")
            log_fields(
                self.logger,
                logging.INFO,
                "request",
                method=scope.get("method"),
                path=scope.get("path"),
                status=status if status is not None else 499,
                duration_ms=round((time.perf_counter() - started) * 1000, 1),
                execution_id=seen["execution_id"],
                tenant=state.get("tenant_id"),
                code=code,
                client=client[0] if client else None,
            )
