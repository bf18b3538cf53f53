"""Drive a sandboxed agent through a `SandboxClient`, plus the HTTP client for an orchestrator.

The orchestrator API: `POST {base}/agents/run/stream` with JSON `{"message": ...}` and the
header `X-Execution-ID`; the answer is SSE whose events carry ids and whose data is a runtime
stream event (`{"type": "text.delta", ...}`). The same execution id always lands on the same
execution, so after a dropped connection the client re-posts with `Last-Event-ID` and the
stream resumes after the last event it saw: nothing lost, nothing delivered twice.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Protocol, runtime_checkable
from urllib.parse import urlsplit

import httpx2
import orjson

from ..errors import BackendTransportError, ConfigurationError, EventParseError
from ..types import (
    AgentBackendContext,
    AgentBackendInput,
    DoneEvent,
    ErrorEvent,
    RuntimeStreamEvent,
    parse_runtime_stream_event,
)
from ._http import open_stream, request_headers
from ._retry import BackendRetryPolicy
from ._sse_decode import SSEDecoder

__all__ = [
    "HttpSandboxClient",
    "SandboxClient",
    "SandboxEvent",
    "SandboxPromptBackend",
    "create_sandbox_prompt_backend",
]

STREAM_INTERRUPTED = "backend.stream_interrupted"


@dataclass(frozen=True, slots=True)
class SandboxEvent:
    """A runtime stream event with the sandbox's event id (None when the sandbox sent none)."""

    id: str | None
    event: RuntimeStreamEvent


@runtime_checkable
class SandboxClient(Protocol):
    """Streams one prompt's events from a sandboxed agent; `execution_id` makes it idempotent."""

    def stream_prompt(self, message: str, *, execution_id: str) -> AsyncIterator[SandboxEvent]: ...


class HttpSandboxClient:
    """`SandboxClient` over HTTP+SSE for a sandbox orchestrator; resumes with `Last-Event-ID`.

    A connection that fails before its first byte is retried under `retry`; a stream cut after
    events arrived is resumed (same execution id, `Last-Event-ID`) up to `max_resumes` times in
    a row without progress. A stream must end with a `done` or `error` event; ending without one
    counts as a cut.
    """

    def __init__(
        self,
        base_url: str,
        *,
        api_key: str | None = None,
        retry: BackendRetryPolicy | None = None,
        max_resumes: int = 3,
        client: httpx2.AsyncClient | None = None,
        timeout: httpx2.Timeout | None = None,
        headers: Mapping[str, str] | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        parts = urlsplit(base_url) if isinstance(base_url, str) else None
        if parts is None or parts.scheme not in ("http", "https") or not parts.netloc:
            raise ConfigurationError(f"sandbox base_url must be an http(s) URL, got {base_url!r}")
        if type(max_resumes) is not int or max_resumes < 0:
            raise ConfigurationError("max_resumes must be an int >= 0")
        self._url = base_url.rstrip("/") + "/agents/run/stream"
        self._headers = request_headers(
            {"accept": "text/event-stream", "content-type": "application/json"}, api_key, headers
        )
        self.retry = retry or BackendRetryPolicy()
        self.max_resumes = max_resumes
        self._client = client
        self._owns_client = client is None
        self._timeout = timeout or httpx2.Timeout(connect=10.0, read=300.0, write=30.0, pool=10.0)
        self._sleep = sleep

    def _http(self) -> httpx2.AsyncClient:
        if self._client is None:
            self._client = httpx2.AsyncClient(timeout=self._timeout)
        return self._client

    async def aclose(self) -> None:
        if self._owns_client and self._client is not None:
            await self._client.aclose()
            self._client = None

    async def stream_prompt(
        self, message: str, *, execution_id: str, after_event_id: str | None = None
    ) -> AsyncIterator[SandboxEvent]:
        """Yield the execution's events, resuming after `after_event_id` when given."""
        if not isinstance(message, str):
            raise ConfigurationError("message must be a string")
        if (
            not isinstance(execution_id, str)
            or not execution_id
            or any(c in execution_id for c in "\r\n\x00")
        ):
            raise ConfigurationError("execution_id must be a non-empty single-line string")
        if after_event_id is not None and (
            not isinstance(after_event_id, str) or any(c in after_event_id for c in "\r\n\x00")
        ):
            raise ConfigurationError("after_event_id must be a single-line string or None")
        client = self._http()
        body = orjson.dumps({"message": message, "execution_id": execution_id})
        last_id = after_event_id
        seen: set[str] = set()  # ids delivered by this call: a replaying server is deduplicated
        resumes_left = self.max_resumes
        attempts = 0
        while True:
            headers = dict(self._headers)
            headers["x-execution-id"] = execution_id
            if last_id is not None:
                headers["last-event-id"] = last_id

            def make(h: dict[str, str] = headers) -> httpx2.Request:
                return client.build_request("POST", self._url, content=body, headers=h)

            opened = await open_stream(
                client, make, self.retry, what=f"POST {self._url}", sleep=self._sleep
            )
            attempts += opened.attempts
            decoder = SSEDecoder()
            progressed = False
            finished = False
            cut: str | None = None
            try:
                chunk = opened.first
                while True:
                    for msg in decoder.feed(chunk):
                        if not msg.data:
                            continue
                        if msg.id is not None and (msg.id == last_id or msg.id in seen):
                            continue  # a server that replays events already delivered
                        event = self._decode(msg.data, msg.event, attempts)
                        if msg.id is not None:
                            last_id = msg.id
                            seen.add(msg.id)
                        progressed = True
                        yield SandboxEvent(id=msg.id, event=event)
                        if isinstance(event, DoneEvent | ErrorEvent):
                            finished = True
                            break
                    if finished:
                        break
                    try:
                        chunk = await opened.chunks.__anext__()
                    except StopAsyncIteration:
                        cut = "stream ended without a done event"
                        break
                    except httpx2.HTTPError as exc:
                        cut = f"stream cut: {type(exc).__name__}: {exc}"
                        break
            finally:
                await opened.aclose()
            if finished:
                return
            if progressed:
                resumes_left = self.max_resumes
            if resumes_left <= 0 or last_id is None:
                raise BackendTransportError(
                    f"sandbox execution {execution_id!r}: {cut}"
                    + ("" if last_id is not None else " (no event id to resume from)"),
                    retryable=False,
                    attempts=attempts,
                    code=STREAM_INTERRUPTED,
                )
            resumes_left -= 1

    @staticmethod
    def _decode(data: str, sse_event: str, attempts: int) -> RuntimeStreamEvent:
        try:
            obj = orjson.loads(data)
            if isinstance(obj, dict) and "type" not in obj and sse_event != "message":
                obj = {"type": sse_event, **obj}
            return parse_runtime_stream_event(obj)
        except (orjson.JSONDecodeError, EventParseError) as exc:
            raise BackendTransportError(
                f"malformed sandbox event: {exc}",
                retryable=False,
                attempts=attempts,
                code=STREAM_INTERRUPTED,
            ) from None


def _default_execution_id(input: AgentBackendInput) -> str:
    return input.run_id


class SandboxPromptBackend:
    """Sends the task's prompt to a sandboxed agent and yields its events."""

    __slots__ = ("_execution_id", "_sandbox")

    def __init__(
        self, sandbox: SandboxClient, execution_id: Callable[[AgentBackendInput], str]
    ) -> None:
        self._sandbox = sandbox
        self._execution_id = execution_id

    @property
    def kind(self) -> str:
        return "sandbox"

    async def stream(
        self, input: AgentBackendInput, context: AgentBackendContext
    ) -> AsyncIterator[RuntimeStreamEvent]:
        events = self._sandbox.stream_prompt(input.prompt, execution_id=self._execution_id(input))
        try:
            async for item in events:
                yield item.event
        finally:
            aclose = getattr(events, "aclose", None)
            if aclose is not None:
                await aclose()


def create_sandbox_prompt_backend(
    sandbox: SandboxClient,
    *,
    execution_id: Callable[[AgentBackendInput], str] | None = None,
) -> SandboxPromptBackend:
    """A backend driving `sandbox`; the execution id defaults to the run id, so a retried run
    with the same run id lands on the same execution."""
    if not callable(getattr(sandbox, "stream_prompt", None)):
        raise ConfigurationError("sandbox must implement SandboxClient.stream_prompt")
    return SandboxPromptBackend(sandbox, execution_id or _default_execution_id)
