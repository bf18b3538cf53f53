"""`run_chat_turn`: one chat turn POSTed to a sandbox runtime, its SSE lines yielded as JSON
(ORIGINAL §16). Events are not normalized: what the sandbox sends is what the caller gets.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import orjson

from ..errors import ChatTurnError, ValidationError
from ..profiles import ChatTurnOverlay, compose_turn_profile
from ..types import AbortSignal

if TYPE_CHECKING:  # loaded by the first sandbox turn, not by every importer of chat
    import httpx2

__all__ = [
    "DEFAULT_SANDBOX_BACKEND_TYPE",
    "MAX_SANDBOX_LINE_BYTES",
    "ChatTurnMessage",
    "ChatTurnSandbox",
    "run_chat_turn",
    "sandbox_as_chat_turn_target",
]

DEFAULT_SANDBOX_BACKEND_TYPE = "claude-code"
#: one SSE line longer than this is refused (a runaway or hostile sandbox), not buffered
MAX_SANDBOX_LINE_BYTES = 8 * 1024 * 1024
_ROLES = ("user", "assistant", "system")


@dataclass(frozen=True, slots=True)
class ChatTurnMessage:
    """One message of the conversation: `role` user, assistant or system."""

    role: Literal["user", "assistant", "system"]
    content: str
    metadata: Mapping[str, Any] | None = None

    def __post_init__(self) -> None:
        if self.role not in _ROLES:
            raise ValidationError(f"ChatTurnMessage.role must be one of {', '.join(_ROLES)}")
        if not isinstance(self.content, str):
            raise ValidationError("ChatTurnMessage.content must be a string")
        if self.metadata is not None and not isinstance(self.metadata, Mapping):
            raise ValidationError("ChatTurnMessage.metadata must be a mapping or None")

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"role": self.role, "content": self.content}
        if self.metadata is not None:
            out["metadata"] = dict(self.metadata)
        return out


@dataclass(frozen=True, slots=True)
class ChatTurnSandbox:
    """Where a turn runs: the sandbox id, its runtime URL and an optional auth header
    `{"name": ..., "value": ...}` (for example `X-Tangle-Token`)."""

    id: str
    runtime_url: str
    auth_header: Mapping[str, str] | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.runtime_url, str) or not self.runtime_url.startswith(
            ("http://", "https://")
        ):
            raise ValidationError("ChatTurnSandbox.runtime_url must be an http(s) URL")
        header = self.auth_header
        if header is not None and (
            not isinstance(header, Mapping)
            or not isinstance(header.get("name"), str)
            or not isinstance(header.get("value"), str)
            or not header["name"]
        ):
            raise ValidationError('ChatTurnSandbox.auth_header must be {"name", "value"}')


def _attr(obj: Any, name: str) -> Any:
    if isinstance(obj, Mapping):
        return obj.get(name)
    return getattr(obj, name, None)


def sandbox_as_chat_turn_target(
    instance: Any, *, auth_header: Mapping[str, str] | None = None
) -> ChatTurnSandbox:
    """A `ChatTurnSandbox` from a sandbox SDK instance: its `url`, else its
    `connection.runtime_url` (`runtimeUrl` too), trailing slashes removed."""
    connection = _attr(instance, "connection")
    base = _attr(instance, "url") or (
        (_attr(connection, "runtime_url") or _attr(connection, "runtimeUrl"))
        if connection is not None
        else None
    )
    if not base:
        raise ChatTurnError(
            "sandboxAsChatTurnTarget: SandboxInstance has neither .url nor "
            ".connection.runtimeUrl set"
        )
    return ChatTurnSandbox(
        id=str(_attr(instance, "id")), runtime_url=str(base).rstrip("/"), auth_header=auth_header
    )


def _message(m: Any) -> dict[str, Any]:
    if isinstance(m, ChatTurnMessage):
        return m.to_dict()
    if isinstance(m, Mapping):
        return ChatTurnMessage(
            role=m.get("role"),  # type: ignore[arg-type]
            content=m.get("content"),  # type: ignore[arg-type]
            metadata=m.get("metadata"),
        ).to_dict()
    raise ValidationError("prior_messages must be ChatTurnMessage or {role, content} objects")


def _request_body(
    profile: Mapping[str, Any],
    overlay: ChatTurnOverlay | Mapping[str, Any] | None,
    message: str,
    prior_messages: Iterable[Any],
    model_override: str | None,
) -> dict[str, Any]:
    composed = compose_turn_profile(profile, overlay) if overlay is not None else dict(profile)
    meta = composed.get("metadata")
    backend_meta = meta.get("backend") if isinstance(meta, Mapping) else None
    backend_type = backend_meta.get("type") if isinstance(backend_meta, Mapping) else None
    backend: dict[str, Any] = {
        "type": backend_type or DEFAULT_SANDBOX_BACKEND_TYPE,
        "profile": composed,
    }
    if model_override:
        backend["model"] = {"default": model_override}
    messages = [_message(m) for m in prior_messages]
    messages.append({"role": "user", "content": message})
    return {"backend": backend, "messages": messages}


def _parse_line(raw: bytes) -> tuple[bool, Any]:
    """(True, value) for a JSON payload line; (False, None) for anything to skip."""
    line = raw.decode("utf-8", errors="replace")
    if line.endswith("\r"):
        line = line[:-1]
    line = line.strip()
    if not line:
        return False, None
    if line.startswith("data:"):
        line = line[5:].strip()
    if not line or line == "[DONE]":
        return False, None
    try:
        return True, orjson.loads(line)
    except orjson.JSONDecodeError:  # heartbeats, comments, `event:` lines
        return False, None


async def run_chat_turn(
    *,
    profile: Mapping[str, Any],
    message: str,
    sandbox: ChatTurnSandbox,
    prior_messages: Iterable[ChatTurnMessage | Mapping[str, Any]] = (),
    overlay: ChatTurnOverlay | Mapping[str, Any] | None = None,
    model_override: str | None = None,
    signal: AbortSignal | None = None,
    http_client: httpx2.AsyncClient | None = None,
) -> AsyncIterator[Any]:
    """POST the turn to `<runtime_url>/runtime/agents/run/stream` and yield each JSON line of
    the SSE answer as is. A non-2xx answer raises `ChatTurnError` with the status and the
    first 500 characters of the body; an abort of `signal` closes the request."""
    if not isinstance(profile, Mapping):
        raise ValidationError("run_chat_turn: profile must be an object")
    if not isinstance(message, str):
        raise ValidationError("run_chat_turn: message must be a string")
    if not isinstance(sandbox, ChatTurnSandbox):
        raise ValidationError("run_chat_turn: sandbox must be a ChatTurnSandbox")
    if model_override is not None and not isinstance(model_override, str):
        raise ValidationError("run_chat_turn: model_override must be a string")
    body = orjson.dumps(_request_body(profile, overlay, message, prior_messages, model_override))
    headers = {"Content-Type": "application/json", "Accept": "text/event-stream"}
    if sandbox.auth_header is not None:
        headers[sandbox.auth_header["name"]] = sandbox.auth_header["value"]
    url = f"{sandbox.runtime_url}/runtime/agents/run/stream"
    _check_aborted(signal)
    own = http_client is None
    if http_client is None:
        import httpx2
    client = http_client or httpx2.AsyncClient(timeout=httpx2.Timeout(30.0, read=None))
    try:
        request = client.stream("POST", url, content=body, headers=headers)
        response = await _abortable(request.__aenter__(), signal)
        try:
            if not 200 <= response.status_code < 300:
                text = (await _abortable(response.aread(), signal)).decode(
                    "utf-8", errors="replace"
                )
                raise ChatTurnError(
                    f"runChatTurn: sandbox returned {response.status_code} "
                    f"{response.reason_phrase}: {text[:500]}",
                    status=response.status_code,
                )
            chunks = response.aiter_bytes()
            pending = b""
            while True:
                try:
                    chunk = await _abortable(chunks.__anext__(), signal)
                except StopAsyncIteration:
                    break
                pending += chunk
                *lines, pending = pending.split(b"\n")
                if len(pending) > MAX_SANDBOX_LINE_BYTES:
                    raise ChatTurnError(
                        f"runChatTurn: a sandbox line exceeds {MAX_SANDBOX_LINE_BYTES} bytes"
                    )
                for raw in lines:
                    ok, value = _parse_line(raw)
                    if ok:
                        yield value
            ok, value = _parse_line(pending)
            if ok:
                yield value
        finally:
            await request.__aexit__(None, None, None)
    finally:
        if own:
            with contextlib.suppress(Exception):
                await client.aclose()


def _check_aborted(signal: AbortSignal | None) -> None:
    if signal is not None and signal.aborted:
        reason = signal.reason
        if isinstance(reason, BaseException):
            raise reason
        raise ChatTurnError(f"runChatTurn: aborted ({reason})")


async def _abortable(awaitable: Any, signal: AbortSignal | None) -> Any:
    """Await `awaitable`, or stop it when `signal` aborts first (the request is closed)."""
    if signal is None:
        return await awaitable
    _check_aborted(signal)
    job = asyncio.ensure_future(awaitable)
    stop = asyncio.ensure_future(signal.wait())
    try:
        await asyncio.wait((job, stop), return_when=asyncio.FIRST_COMPLETED)
    finally:
        stop.cancel()
        if not job.done():
            job.cancel()
            with contextlib.suppress(BaseException):
                await job
    if job.cancelled() or not job.done():
        _check_aborted(signal)
    return job.result()
