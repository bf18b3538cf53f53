"""`HttpSandboxClient` (ours): `stream_prompt` for a sandbox orchestrator's
`POST /agents/run/stream`, resuming a dropped stream with `Last-Event-ID`.

The request carries `X-Execution-ID`, which selects or reattaches one buffered execution
(ORIGINAL §21), and the JSON body `{"identifier": "default", "message", "sessionId"}`. The
answer is SSE whose events carry ids and whose data are raw backend events (`{"type":
"message.part.updated", ...}`). After a dropped connection the client posts again with the
same execution id and `Last-Event-ID`, so nothing is lost and nothing is delivered twice.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx2
import orjson

from ..errors import BackendTransportError, ValidationError
from ..types import AbortSignal, AgentBackendContext
from ._abort import AbortGuard
from ._http import open_stream, request_headers
from ._retry import BackendRetryPolicy
from ._sse_decode import SSEDecoder

__all__ = ["TERMINAL_RAW_TYPES", "HttpSandboxClient", "SandboxEvent"]

TERMINAL_RAW_TYPES: frozenset[str] = frozenset(
    ("result", "final", "done", "error", "task_complete", "execution.completed")
)
"""Raw types after which the execution is over: a close-delimited body that ends after one
of them has ended, one that ends before has been cut."""
_DEFAULT_TIMEOUT = httpx2.Timeout(connect=10.0, read=300.0, write=30.0, pool=10.0)


@dataclass(frozen=True, slots=True)
class SandboxEvent:
    """One raw event of an execution with its SSE id (None when the orchestrator sent none)."""

    id: str | None
    data: dict[str, Any]


def _single_line(value: Any, what: str, *, empty_ok: bool = False) -> str:
    if (
        not isinstance(value, str)
        or (not value and not empty_ok)
        or any(c in value for c in "\r\n\x00")
    ):
        raise ValidationError(f"{what} must be a non-empty single-line string")
    return value


def _raw_event(data: str, sse_event: str) -> dict[str, Any]:
    """The raw record an SSE event's data stands for; its SSE event name is the `type` when
    the data has none."""
    try:
        obj: Any = orjson.loads(data)
    except orjson.JSONDecodeError:
        return {"type": sse_event, "data": data}
    if not isinstance(obj, dict):
        return {"type": sse_event, "data": obj}
    record: dict[str, Any] = obj
    if "type" not in record and sse_event != "message":
        record = {"type": sse_event, **record}
    return record


class HttpSandboxClient:
    """Streams prompts to a sandbox orchestrator over HTTP and SSE.

    A connection that fails before its first byte is retried under `retry`; a stream cut
    after events arrived is resumed (same execution id, `Last-Event-ID`) up to `max_resumes`
    times in a row without progress. `execution_id(box, ctx)` names the execution; by default
    it is the session id (so a resumed session reattaches), else the task id.
    """

    def __init__(
        self,
        base_url: str,
        *,
        api_key: str | None = None,
        headers: Mapping[str, str] | None = None,
        retry: BackendRetryPolicy | None = None,
        max_resumes: int = 3,
        http_client: httpx2.AsyncClient | None = None,
        execution_id: Callable[[Any, AgentBackendContext], str] | None = None,
        kind: str = "sandbox",
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        parts = urlsplit(base_url) if isinstance(base_url, str) else None
        if parts is None or parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValidationError(f"sandbox base_url must be an http(s) URL, got {base_url!r}")
        if type(max_resumes) is not int or max_resumes < 0:
            raise ValidationError("max_resumes must be an int >= 0")
        if retry is not None and not isinstance(retry, BackendRetryPolicy):
            raise ValidationError("retry must be a BackendRetryPolicy")
        if http_client is not None and not isinstance(http_client, httpx2.AsyncClient):
            raise ValidationError("http_client must be an httpx2.AsyncClient")
        if execution_id is not None and not callable(execution_id):
            raise ValidationError("execution_id must be callable or None")
        if not isinstance(kind, str) or not kind:
            raise ValidationError("kind must be a non-empty string")
        self.url = base_url.rstrip("/") + "/agents/run/stream"
        self._headers = request_headers(
            {"accept": "text/event-stream", "content-type": "application/json"}, api_key, headers
        )
        self.retry = retry or BackendRetryPolicy()
        self.max_resumes = max_resumes
        self.kind = kind
        self._client = http_client
        self._owns_client = http_client is None
        self._execution_id = execution_id
        self._sleep = sleep

    def _http(self) -> httpx2.AsyncClient:
        if self._client is None:
            self._client = httpx2.AsyncClient(timeout=_DEFAULT_TIMEOUT)
        return self._client

    async def aclose(self) -> None:
        """Close the HTTP client this object created (a given one is left open)."""
        if self._owns_client and self._client is not None:
            await self._client.aclose()
            self._client = None

    async def stream_prompt(
        self, box: Any, message: str, ctx: AgentBackendContext
    ) -> AsyncIterator[dict[str, Any]]:
        """The `stream_prompt(box, message, ctx)` of `create_sandbox_prompt_backend`: the raw
        events of the execution `execution_id(box, ctx)` names, honouring `ctx.signal`."""
        if self._execution_id is not None:
            execution_id = self._execution_id(box, ctx)
        else:
            execution_id = ctx.session.id if ctx.session is not None else ctx.task.id
        events = self.stream_events(
            message,
            execution_id=execution_id,
            session_id=ctx.session.id if ctx.session is not None else None,
            signal=ctx.signal,
        )
        try:
            async for event in events:
                yield event.data
        finally:
            await events.aclose()

    async def stream_events(
        self,
        message: str,
        *,
        execution_id: str,
        after_event_id: str | None = None,
        session_id: str | None = None,
        signal: AbortSignal | None = None,
    ) -> AsyncGenerator[SandboxEvent, None]:
        """Yield the execution's events with their ids, after `after_event_id` when given."""
        if not isinstance(message, str):
            raise ValidationError("message must be a string")
        _single_line(execution_id, "execution_id")
        if after_event_id is not None:
            _single_line(after_event_id, "after_event_id", empty_ok=True)
        if session_id is not None and not isinstance(session_id, str):
            raise ValidationError("session_id must be a string or None")
        if signal is not None and not isinstance(signal, AbortSignal):
            raise ValidationError("signal must be an AbortSignal or None")
        guard = AbortGuard(signal)
        try:
            async for event in self._events(
                message, execution_id, after_event_id, session_id, guard
            ):
                yield event
        finally:
            guard.close()

    async def _events(
        self,
        message: str,
        execution_id: str,
        after_event_id: str | None,
        session_id: str | None,
        guard: AbortGuard,
    ) -> AsyncIterator[SandboxEvent]:
        client = self._http()
        body: dict[str, Any] = {"identifier": "default", "message": message}
        if session_id is not None:
            body["sessionId"] = session_id
        payload = orjson.dumps(body)
        last_id = after_event_id
        seen: set[str] = set()  # ids delivered by this call: a replaying server is deduplicated
        delivered = 0
        resumes_left = self.max_resumes
        attempts = 0
        while True:
            headers = dict(self._headers)
            headers["x-execution-id"] = execution_id
            if last_id is not None:
                headers["last-event-id"] = last_id

            def make(h: dict[str, str] = headers) -> httpx2.Request:
                return client.build_request("POST", self.url, content=payload, headers=h)

            opened = await open_stream(
                client,
                make,
                self.retry,
                backend=self.kind,
                what="sandbox orchestrator",
                guard=guard,
                sleep=self._sleep,
            )
            attempts += opened.attempts
            decoder = SSEDecoder()
            progressed = False
            terminal = False
            cut: str | None = None
            try:
                chunk = opened.first
                while True:
                    for msg in decoder.feed(chunk):
                        if not msg.data:
                            continue
                        if msg.id is not None and (msg.id == last_id or msg.id in seen):
                            continue  # a server that replays events already delivered
                        data = _raw_event(msg.data, msg.event)
                        if msg.id is not None:
                            last_id = msg.id
                            seen.add(msg.id)
                        progressed = True
                        delivered += 1
                        terminal = data.get("type") in TERMINAL_RAW_TYPES
                        yield SandboxEvent(id=msg.id, data=data)
                    try:
                        chunk = await guard.run(opened.chunks.__anext__())
                    except StopAsyncIteration:
                        if not opened.framed and not terminal:
                            cut = "the connection closed before the execution ended"
                        break
                    except httpx2.HTTPError as exc:
                        cut = f"{type(exc).__name__}: {exc}"
                        break
            finally:
                await opened.aclose()
            if cut is None:
                return
            if progressed:
                resumes_left = self.max_resumes
            if resumes_left <= 0 or (last_id is None and delivered):
                raise BackendTransportError(
                    self.kind,
                    f"sandbox stream of execution {execution_id!r} was cut: {cut}"
                    + ("" if last_id is not None else " (no event id to resume from)"),
                    status=0,
                    retryable=False,
                    attempts=attempts,
                )
            resumes_left -= 1
