"""`create_openai_compatible_backend` (ORIGINAL §7.5): a streamed `POST /chat/completions`.

Request: `<base_url minus one trailing slash>/chat/completions` with a bearer key and the body
`{model, stream: true, messages, stream_options: {include_usage: true}}`, retried under a
`BackendRetryPolicy` only before the first body byte. Response: SSE or NDJSON payloads read
by `ChatStreamReader`; usage is reported as one `llm_call` (with `costUsd` when a
`ModelPrice` is given). A stream cut mid-way raises `BackendTransportError`.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from functools import partial
from typing import Any
from urllib.parse import urlsplit

import httpx2
import orjson

from ..errors import BackendTransportError, ValidationError
from ..jsoncanon import ensure_json
from ..types import (
    AgentBackendContext,
    AgentBackendInput,
    LlmCallEvent,
    RuntimeSession,
    RuntimeStreamEvent,
    now_iso,
)
from ._abort import AbortGuard
from ._chat_chunks import ChatChunkSplitter
from ._chat_stream import ChatStreamReader
from ._http import OpenedStream, open_stream, request_headers, scrub_credentials
from ._retry import BackendRetryPolicy
from .pricing import ModelPrice

__all__ = ["OpenAICompatibleBackend", "create_openai_compatible_backend"]

DEFAULT_TIMEOUT = httpx2.Timeout(connect=10.0, read=300.0, write=30.0, pool=10.0)
"""Our own client's timeouts; `read` is the longest silence tolerated inside a stream."""


class OpenAICompatibleBackend:
    """Streams chat completions of one model from one endpoint; see the module docstring."""

    __slots__ = (
        "_client",
        "_extra",
        "_headers",
        "_owns_client",
        "_sleep",
        "kind",
        "model",
        "price",
        "retry",
        "url",
    )

    def __init__(
        self,
        *,
        kind: str,
        url: str,
        api_key: str,
        model: str,
        retry: BackendRetryPolicy,
        http_client: httpx2.AsyncClient | None,
        price: ModelPrice | None,
        extra_body: Mapping[str, Any] | None,
        headers: Mapping[str, str] | None,
        sleep: Callable[[float], Awaitable[None]],
    ) -> None:
        self.kind = kind
        self.url = url
        self.model = model
        self.retry = retry
        self.price = price
        self._headers = request_headers(
            {"accept": "text/event-stream", "content-type": "application/json"}, api_key, headers
        )
        self._extra = dict(extra_body or {})
        self._client = http_client
        self._owns_client = http_client is None
        self._sleep = sleep

    def start(self, input: AgentBackendInput, ctx: AgentBackendContext) -> RuntimeSession:
        """A new session with the requested id (a random UUID when none was asked for)."""
        return RuntimeSession.new(self.kind, ctx.requested_session_id)

    def request_body(self, input: AgentBackendInput) -> dict[str, Any]:
        """The JSON body sent for `input`: its messages, else one user message of
        `input.message` or the task's intent."""
        if input.messages:
            messages: list[dict[str, Any]] = []
            for m in input.messages:
                item: dict[str, Any] = {"role": m.role, "content": m.content}
                if m.name is not None:
                    item["name"] = m.name
                if m.tool_call_id is not None:
                    item["tool_call_id"] = m.tool_call_id
                messages.append(item)
        else:
            content = input.message if input.message is not None else input.task.intent
            messages = [{"role": "user", "content": content}]
        return {
            **self._extra,
            "model": self.model,
            "stream": True,
            "messages": messages,
            "stream_options": {"include_usage": True},
        }

    def _http(self) -> httpx2.AsyncClient:
        if self._client is None:
            self._client = httpx2.AsyncClient(timeout=DEFAULT_TIMEOUT)
        return self._client

    async def aclose(self) -> None:
        """Close the HTTP client this backend created (a given one is left open)."""
        if self._owns_client and self._client is not None:
            await self._client.aclose()
            self._client = None

    async def stream(
        self, input: AgentBackendInput, ctx: AgentBackendContext
    ) -> AsyncIterator[RuntimeStreamEvent]:
        guard = AbortGuard(ctx.signal)
        try:
            guard.check()
            client = self._http()
            payload = orjson.dumps(self.request_body(input))
            opened = await open_stream(
                client,
                lambda: client.build_request(
                    "POST", self.url, content=payload, headers=self._headers
                ),
                self.retry,
                backend=self.kind,
                what="chat backend",
                guard=guard,
                sleep=self._sleep,
            )
            try:
                async for event in self._read(opened, ctx, guard):
                    yield event
            finally:
                await opened.aclose()
        finally:
            guard.close()

    async def _read(
        self, opened: OpenedStream, ctx: AgentBackendContext, guard: AbortGuard
    ) -> AsyncIterator[RuntimeStreamEvent]:
        scrub = partial(scrub_credentials, request=opened.response.request)
        reader = ChatStreamReader(self.kind, ctx, scrub)
        ctype = opened.response.headers.get("content-type", "").lower()
        if "json" in ctype and "ndjson" not in ctype and "jsonl" not in ctype:
            # a server that ignored `stream: true` and sent one JSON completion
            body = bytearray(opened.first)
            while True:
                try:
                    body += await guard.run(opened.chunks.__anext__())
                except StopAsyncIteration:
                    break
                except httpx2.HTTPError as exc:
                    raise self._cut(f"{type(exc).__name__}: {exc}", opened) from exc
            for event in reader.payload(body.decode("utf-8", "replace").strip()):
                yield event
        else:
            splitter = ChatChunkSplitter()
            chunk = opened.first
            while True:
                for text in splitter.feed(chunk):
                    for event in reader.payload(text):
                        yield event
                try:
                    chunk = await guard.run(opened.chunks.__anext__())
                except StopAsyncIteration:
                    break
                except httpx2.HTTPError as exc:
                    raise self._cut(f"{type(exc).__name__}: {exc}", opened) from exc
            rest, unterminated = splitter.finish()
            close_delimited = splitter.saw_data and not opened.framed
            for i, text in enumerate(rest):
                if close_delimited and unterminated and i == len(rest) - 1 and not _complete(text):
                    raise self._cut("the connection closed inside an event", opened)
                for event in reader.payload(text):
                    yield event
            if close_delimited and not reader.done and reader.finish_reason is None:
                raise self._cut("the connection closed before [DONE]", opened)
        for event in reader.end():
            yield event
        if reader.usage_reported:
            yield self._llm_call(reader, opened, ctx)

    def _llm_call(
        self, reader: ChatStreamReader, opened: OpenedStream, ctx: AgentBackendContext
    ) -> LlmCallEvent:
        cost = None
        if self.price is not None:
            cost = self.price.cost_usd(reader.tokens_in or 0, reader.tokens_out or 0)
        return LlmCallEvent(
            model=self.model,
            tokens_in=reader.tokens_in,
            tokens_out=reader.tokens_out,
            cost_usd=cost,
            latency_ms=round((time.monotonic() - opened.started) * 1000, 3),
            finish_reason=reader.finish_reason,
            task=ctx.task,
            session=ctx.session,
            timestamp=now_iso(),
        )

    def _cut(self, reason: str, opened: OpenedStream) -> BackendTransportError:
        return BackendTransportError(
            self.kind,
            scrub_credentials(f"chat backend stream was cut: {reason}", opened.response.request),
            status=0,
            retryable=False,
            attempts=opened.attempts,
        )

    def __repr__(self) -> str:
        return (
            f"OpenAICompatibleBackend(kind={self.kind!r}, url={self.url!r}, model={self.model!r})"
        )


def _complete(payload: str) -> bool:
    """Whether an unterminated last payload is whole (`[DONE]` or a JSON value)."""
    if payload == "[DONE]":
        return True
    try:
        orjson.loads(payload)
    except orjson.JSONDecodeError:
        return False
    return True


def create_openai_compatible_backend(
    *,
    api_key: str,
    base_url: str,
    model: str,
    kind: str = "tcloud",
    retry: BackendRetryPolicy | None = None,
    http_client: httpx2.AsyncClient | None = None,
    price: ModelPrice | None = None,
    extra_body: Mapping[str, Any] | None = None,
    headers: Mapping[str, str] | None = None,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> OpenAICompatibleBackend:
    """A backend of `kind` for `model` at `base_url` (usually ending in `/v1`).

    Ours beyond the original: `price` adds `costUsd` to the `llm_call`; `extra_body` adds
    request fields (tools, temperature...); `headers` adds request headers; `sleep` replaces
    the backoff sleep (it is still interrupted by an abort); `http_client` shares a pool.
    """
    if not isinstance(api_key, str):
        raise ValidationError("api_key must be a string")
    if not isinstance(base_url, str):
        raise ValidationError("base_url must be an http(s) URL")
    parts = urlsplit(base_url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValidationError(f"base_url must be an http(s) URL, got {base_url!r}")
    if not isinstance(model, str) or not model.strip():
        raise ValidationError("model must be a non-empty string")
    if not isinstance(kind, str) or not kind:
        raise ValidationError("kind must be a non-empty string")
    if retry is not None and not isinstance(retry, BackendRetryPolicy):
        raise ValidationError("retry must be a BackendRetryPolicy")
    if http_client is not None and not isinstance(http_client, httpx2.AsyncClient):
        raise ValidationError("http_client must be an httpx2.AsyncClient")
    if price is not None and not isinstance(price, ModelPrice):
        raise ValidationError("price must be a ModelPrice")
    if extra_body is not None:
        if not isinstance(extra_body, Mapping):
            raise ValidationError("extra_body must be a mapping")
        try:
            ensure_json(dict(extra_body), root="extra_body")
        except ValueError as exc:
            raise ValidationError(str(exc)) from None
    if not callable(sleep):
        raise ValidationError("sleep must be callable")
    url = (base_url[:-1] if base_url.endswith("/") else base_url) + "/chat/completions"
    return OpenAICompatibleBackend(
        kind=kind,
        url=url,
        api_key=api_key,
        model=model,
        retry=retry or BackendRetryPolicy(),
        http_client=http_client,
        price=price,
        extra_body=extra_body,
        headers=headers,
        sleep=sleep,
    )
