"""Backend for any OpenAI-compatible `/v1/chat/completions` endpoint, streamed over SSE.

Maps content deltas, tool-call fragments (assembled by index), usage
(`stream_options.include_usage`) and the finish reason to runtime events. Requests are retried
only before the first body byte; a cut or malformed stream raises `BackendTransportError` with
code `backend.stream_interrupted`, and an in-band error object becomes an `error` event.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import httpx2
import orjson

from ..errors import BackendTransportError, ConfigurationError
from ..jsoncanon import ensure_json
from ..types import (
    AgentBackendContext,
    AgentBackendInput,
    AgentMessage,
    DoneEvent,
    ErrorEvent,
    RuntimeStreamEvent,
    TextDeltaEvent,
    ToolCallEvent,
    UsageEvent,
)
from ._http import open_stream, request_headers
from ._retry import BackendRetryPolicy
from ._sse_decode import SSEDecoder

__all__ = [
    "STREAM_INTERRUPTED",
    "OpenAICompatibleBackend",
    "create_openai_compatible_backend",
]

STREAM_INTERRUPTED = "backend.stream_interrupted"
UPSTREAM_ERROR = "backend.upstream_error"
DEFAULT_TIMEOUT = httpx2.Timeout(connect=10.0, read=120.0, write=30.0, pool=10.0)


@dataclass(slots=True)
class _ToolCallParts:
    call_id: str = ""
    name: str = ""
    arguments: list[str] = field(default_factory=list)


class _ChunkMapper:
    """Turns parsed chat-completion chunks into events, assembling tool calls by index."""

    __slots__ = ("finish_reason", "model", "open_unindexed", "tools", "usage_seen")

    def __init__(self) -> None:
        self.tools: dict[tuple[int, int], _ToolCallParts] = {}
        self.open_unindexed: dict[int, int] = {}  # choice -> slot of its last index-less call
        self.finish_reason: str | None = None
        self.model: str | None = None
        self.usage_seen = False

    def chunk(self, obj: Any) -> list[RuntimeStreamEvent]:
        if not isinstance(obj, dict):
            raise ValueError("chunk is not a JSON object")
        out: list[RuntimeStreamEvent] = []
        if isinstance(obj.get("model"), str):
            self.model = obj["model"]
        choices = obj.get("choices") or []
        if not isinstance(choices, list):
            raise ValueError("choices is not a list")
        for choice in choices:
            if not isinstance(choice, dict):
                raise ValueError("choice is not an object")
            index = choice.get("index", 0)
            if type(index) is not int or index < 0:
                raise ValueError("choice index is not a non-negative integer")
            delta = choice.get("delta")
            if delta is None:
                delta = choice.get("message") or {}
            if not isinstance(delta, dict):
                raise ValueError("delta is not an object")
            content = delta.get("content")
            if isinstance(content, str) and content:
                out.append(TextDeltaEvent(text=content, index=index))
            elif content is not None and not isinstance(content, str):
                raise ValueError("delta content is not a string")
            calls = delta.get("tool_calls")
            if calls:
                self._tool_fragments(index, calls)
            reason = choice.get("finish_reason")
            if isinstance(reason, str):
                self.finish_reason = reason
        usage = obj.get("usage")
        if isinstance(usage, dict):
            out.append(self._usage(usage))
        return out

    def _tool_fragments(self, choice: int, calls: Any) -> None:
        if not isinstance(calls, list):
            raise ValueError("tool_calls is not a list")
        for pos, call in enumerate(calls):
            if not isinstance(call, dict):
                raise ValueError("tool call fragment is not an object")
            idx = call.get("index")
            if idx is None:
                idx = self._unindexed_slot(choice, call.get("id"), new=pos > 0)
            elif type(idx) is not int:
                raise ValueError("tool call index is not an integer")
            parts = self.tools.setdefault((choice, idx), _ToolCallParts())
            if isinstance(call.get("id"), str) and call["id"]:
                parts.call_id = call["id"]
            fn = call.get("function") or {}
            if not isinstance(fn, dict):
                raise ValueError("tool call function is not an object")
            if isinstance(fn.get("name"), str) and fn["name"] and not parts.name:
                parts.name = fn["name"]
            args = fn.get("arguments")
            if isinstance(args, str):
                parts.arguments.append(args)
            elif args is not None:
                parts.arguments.append(orjson.dumps(args).decode())

    def _unindexed_slot(self, choice: int, call_id: Any, *, new: bool) -> int:
        """Slot of a fragment without `index` (some servers omit it): it continues the open
        call unless it is another entry of the same list or carries another call's id."""
        slot = self.open_unindexed.get(choice)
        if slot is not None and not new:
            known = self.tools[(choice, slot)].call_id
            if not (isinstance(call_id, str) and call_id and known and call_id != known):
                return slot
        slot = 1 + max((i for c, i in self.tools if c == choice), default=-1)
        self.open_unindexed[choice] = slot
        return slot

    def _usage(self, usage: dict[str, Any]) -> UsageEvent:
        def count(key: str) -> int:
            v = usage.get(key, 0)
            if type(v) is not int or v < 0:
                raise ValueError(f"usage.{key} is not a non-negative integer")
            return v

        self.usage_seen = True
        prompt, completion = count("prompt_tokens"), count("completion_tokens")
        total = usage.get("total_tokens")
        return UsageEvent(
            input_tokens=prompt,
            output_tokens=completion,
            total_tokens=total if type(total) is int and total >= 0 else prompt + completion,
            model=self.model,
        )

    def finish(self) -> list[RuntimeStreamEvent]:
        out: list[RuntimeStreamEvent] = []
        for (choice, idx), parts in sorted(self.tools.items()):
            out.append(
                ToolCallEvent(
                    call_id=parts.call_id or f"call_{choice}_{idx}",
                    name=parts.name,
                    arguments="".join(parts.arguments),
                )
            )
        self.tools.clear()
        out.append(DoneEvent(finish_reason=self.finish_reason))
        return out


def _interrupted(message: str, attempts: int, status: int | None = None) -> BackendTransportError:
    return BackendTransportError(
        message, status=status, retryable=False, attempts=attempts, code=STREAM_INTERRUPTED
    )


def _in_band_error(obj: dict[str, Any]) -> ErrorEvent:
    err = obj.get("error")
    message = "upstream reported an error"
    details: dict[str, Any] = {}
    if isinstance(err, dict):
        if isinstance(err.get("message"), str):
            message = err["message"]
        details = {k: v for k, v in err.items() if k != "message"}
    elif isinstance(err, str):
        message = err
    try:
        ensure_json(details)
    except ValueError:
        details = {}
    return ErrorEvent(code=UPSTREAM_ERROR, message=message, details=details or None)


class OpenAICompatibleBackend:
    """Streams chat completions from one endpoint and model; see module docstring."""

    def __init__(
        self,
        base_url: str,
        api_key: str | None,
        model: str,
        *,
        retry: BackendRetryPolicy,
        client: httpx2.AsyncClient | None = None,
        timeout: httpx2.Timeout = DEFAULT_TIMEOUT,
        extra_body: Mapping[str, Any] | None = None,
        tools: Sequence[Mapping[str, Any]] | None = None,
        headers: Mapping[str, str] | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.model = model
        self.retry = retry
        self._url = (
            self.base_url + "/chat/completions"
            if self.base_url.endswith("/v1")
            else self.base_url + "/v1/chat/completions"
        )
        self._headers = request_headers(
            {"accept": "text/event-stream", "content-type": "application/json"}, api_key, headers
        )
        self._extra = dict(extra_body or {})
        self._tools = [dict(t) for t in tools] if tools else None
        self._client = client
        self._owns_client = client is None
        self._timeout = timeout
        self._sleep = sleep

    @property
    def kind(self) -> str:
        return "openai_compatible"

    def _http(self) -> httpx2.AsyncClient:
        if self._client is None:
            self._client = httpx2.AsyncClient(timeout=self._timeout)
        return self._client

    async def aclose(self) -> None:
        """Close the HTTP client this backend created (an injected client is left open)."""
        if self._owns_client and self._client is not None:
            await self._client.aclose()
            self._client = None

    def request_body(self, input: AgentBackendInput) -> dict[str, Any]:
        """The JSON body sent for `input` (exposed for inspection and tests)."""
        messages = input.messages or (AgentMessage(role="user", content=input.task.intent),)
        body: dict[str, Any] = {
            **self._extra,
            "model": input.model or self.model,
            "messages": [m.to_dict() for m in messages],
            "stream": True,
            "stream_options": {"include_usage": True},
        }
        if self._tools:
            body["tools"] = self._tools
        return body

    async def stream(
        self, input: AgentBackendInput, context: AgentBackendContext
    ) -> AsyncIterator[RuntimeStreamEvent]:
        client = self._http()
        payload = orjson.dumps(self.request_body(input))
        opened = await open_stream(
            client,
            lambda: client.build_request("POST", self._url, content=payload, headers=self._headers),
            self.retry,
            what=f"POST {self._url}",
            sleep=self._sleep,
        )
        attempts = opened.attempts
        try:
            ctype = opened.response.headers.get("content-type", "")
            if "text/event-stream" not in ctype:
                async for event in self._whole_body(opened.first, opened.chunks, attempts):
                    yield event
                return
            decoder = SSEDecoder()
            mapper = _ChunkMapper()
            done = False
            chunk: bytes = opened.first
            chunks = opened.chunks
            while True:
                for msg in decoder.feed(chunk):
                    data = msg.data
                    if data == "[DONE]":
                        done = True
                        break
                    if not data:
                        continue
                    try:
                        obj = orjson.loads(data)
                    except orjson.JSONDecodeError:
                        raise _interrupted(
                            f"malformed stream chunk (not JSON): {data[:120]!r}", attempts
                        ) from None
                    if isinstance(obj, dict) and "error" in obj and obj["error"]:
                        yield _in_band_error(obj)
                        return
                    try:
                        events = mapper.chunk(obj)
                    except ValueError as exc:
                        raise _interrupted(f"malformed stream chunk: {exc}", attempts) from None
                    for event in events:
                        yield event
                if done:
                    break
                try:
                    chunk = await chunks.__anext__()
                except StopAsyncIteration:
                    break
                except httpx2.HTTPError as exc:
                    raise _interrupted(
                        f"stream cut mid-response: {type(exc).__name__}: {exc}", attempts
                    ) from None
            if not done:
                # The body ended: an event still being received was cut, unless it is [DONE]
                # missing only its blank line.
                for msg in decoder.feed(b"\n\n"):
                    if msg.data == "[DONE]":
                        done = True
                    elif msg.data:
                        raise _interrupted("stream cut inside an event", attempts)
            decoder.flush()
            if not done and mapper.finish_reason is None:
                raise _interrupted("stream ended before [DONE] or a finish reason", attempts)
            for event in mapper.finish():
                yield event
        finally:
            await opened.aclose()

    async def _whole_body(
        self, first: bytes, chunks: AsyncIterator[bytes], attempts: int
    ) -> AsyncIterator[RuntimeStreamEvent]:
        """A server that ignored `stream: true` and sent one JSON completion."""
        buf = bytearray(first)
        try:
            async for chunk in chunks:
                buf += chunk
        except httpx2.HTTPError as exc:
            raise _interrupted(f"response cut: {type(exc).__name__}: {exc}", attempts) from None
        try:
            obj = orjson.loads(buf)
        except orjson.JSONDecodeError:
            raise _interrupted("response body is neither SSE nor JSON", attempts) from None
        if isinstance(obj, dict) and obj.get("error"):
            yield _in_band_error(obj)
            return
        mapper = _ChunkMapper()
        try:
            events = mapper.chunk(obj)
        except ValueError as exc:
            raise _interrupted(f"malformed completion: {exc}", attempts) from None
        for event in events:
            yield event
        for event in mapper.finish():
            yield event


def create_openai_compatible_backend(
    base_url: str,
    api_key: str | None,
    model: str,
    retry: BackendRetryPolicy | None = None,
    *,
    client: httpx2.AsyncClient | None = None,
    timeout: httpx2.Timeout = DEFAULT_TIMEOUT,
    extra_body: Mapping[str, Any] | None = None,
    tools: Sequence[Mapping[str, Any]] | None = None,
    headers: Mapping[str, str] | None = None,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> OpenAICompatibleBackend:
    """A backend for `base_url` (with or without a trailing `/v1`) and `model`.

    `extra_body` adds request fields (temperature, max_tokens...); `tools` are sent as the
    OpenAI `tools` list; `client` lets several backends share one connection pool.
    """
    if not isinstance(base_url, str) or urlsplit(base_url).scheme not in ("http", "https"):
        raise ConfigurationError(f"base_url must be an http(s) URL, got {base_url!r}")
    if not urlsplit(base_url).netloc:
        raise ConfigurationError(f"base_url has no host: {base_url!r}")
    if not isinstance(model, str) or not model.strip():
        raise ConfigurationError("model must be a non-empty string")
    if api_key is not None and not isinstance(api_key, str):
        raise ConfigurationError("api_key must be a string or None")
    if retry is not None and not isinstance(retry, BackendRetryPolicy):
        raise ConfigurationError("retry must be a BackendRetryPolicy")
    if extra_body is not None:
        if not isinstance(extra_body, Mapping):
            raise ConfigurationError("extra_body must be a mapping")
        try:
            ensure_json(dict(extra_body), root="extra_body")
        except ValueError as exc:
            raise ConfigurationError(str(exc)) from None
    if tools is not None:
        if isinstance(tools, str | bytes | Mapping) or not isinstance(tools, Sequence):
            raise ConfigurationError("tools must be a list of tool objects")
        try:
            ensure_json([dict(t) for t in tools], root="tools")
        except (TypeError, ValueError) as exc:
            raise ConfigurationError(f"tools must be JSON tool objects: {exc}") from None
    return OpenAICompatibleBackend(
        base_url,
        api_key,
        model,
        retry=retry or BackendRetryPolicy(),
        client=client,
        timeout=timeout,
        extra_body=extra_body,
        tools=tools,
        headers=headers,
        sleep=sleep,
    )
