"""Open a streamed HTTP response with retries that stop at the first body byte.

Connect errors, timeouts and transient statuses (408/409/429/5xx) are retried under a
`BackendRetryPolicy`; once a body byte has arrived the response belongs to the caller and any
later failure is the caller's to report as an interrupted stream.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass

import httpx2
import orjson

from ..errors import BackendTransportError, ConfigurationError
from ..sanitize import redaction_marker, sanitize_text
from ._retry import BackendRetryPolicy, parse_retry_after

__all__ = ["OpenedStream", "open_stream", "read_error_message", "request_headers"]

_ERROR_BODY_LIMIT = 8192


@dataclass(slots=True)
class OpenedStream:
    """A 2xx response whose first (non-empty) body chunk has been read."""

    response: httpx2.Response
    chunks: AsyncIterator[bytes]
    first: bytes
    attempts: int

    async def aclose(self) -> None:
        await self.response.aclose()


def request_headers(
    base: Mapping[str, str], api_key: str | None, extra: Mapping[str, str] | None
) -> dict[str, str]:
    """`base`, a bearer `api_key` and `extra`, refused with `ConfigurationError` when a name or
    value is not a string or holds CR, LF or NUL (which no HTTP client can send)."""
    if api_key is not None and not isinstance(api_key, str):
        raise ConfigurationError("api_key must be a string or None")
    if extra is not None and not isinstance(extra, Mapping):
        raise ConfigurationError("headers must be a mapping of strings")
    out = dict(base)
    if api_key:
        out["authorization"] = f"Bearer {api_key}"
    out.update(extra or {})
    for name, value in out.items():
        if not isinstance(name, str) or not isinstance(value, str):
            raise ConfigurationError("header names and values must be strings")
        if any(c in name or c in value for c in "\r\n\x00"):
            what = "api_key" if name == "authorization" and api_key else f"header {name!r}"
            raise ConfigurationError(f"{what} must not contain CR, LF or NUL")
    return out


_CREDENTIAL_HEADERS = ("authorization", "proxy-authorization", "x-api-key", "api-key")


def scrub_credentials(message: str, request: httpx2.Request) -> str:
    """`message` without the credentials this request carried (servers echo a rejected key
    in their error body) and without any other recognisable secret."""
    secrets: list[str] = []
    for name in _CREDENTIAL_HEADERS:
        value = request.headers.get(name)
        if value:
            secrets.append(value)
            token = value.partition(" ")[2].strip()
            if token:
                secrets.append(token)
    for secret in sorted(secrets, key=len, reverse=True):
        if len(secret) >= 4:
            message = message.replace(secret, redaction_marker(secret))
    return sanitize_text(message)


def read_error_message(body: bytes) -> str:
    """The `error.message` of a JSON error body, else the start of the body text."""
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        return body[:300].decode("utf-8", "replace").strip()
    if isinstance(data, dict):
        err = data.get("error", data)
        if isinstance(err, dict) and isinstance(err.get("message"), str):
            return str(err["message"])
        if isinstance(err, str):
            return err
    return body[:300].decode("utf-8", "replace").strip()


async def _read_limited(response: httpx2.Response) -> bytes:
    buf = bytearray()
    try:
        async for chunk in response.aiter_bytes():
            buf += chunk
            if len(buf) >= _ERROR_BODY_LIMIT:
                break
    except httpx2.HTTPError:
        pass
    return bytes(buf[:_ERROR_BODY_LIMIT])


async def open_stream(
    client: httpx2.AsyncClient,
    make_request: Callable[[], httpx2.Request],
    policy: BackendRetryPolicy,
    *,
    what: str,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> OpenedStream:
    """Send `make_request()` until a 2xx response yields its first body byte, or give up with
    `BackendTransportError` (status, retryable, attempts)."""
    attempt = 0
    while True:
        attempt += 1
        retry_after: float | None = None
        response: httpx2.Response | None = None
        try:
            request = make_request()
            response = await client.send(request, stream=True)
            if response.status_code >= 300:
                body = await _read_limited(response)
                await response.aclose()
                status = response.status_code
                retryable = BackendRetryPolicy.is_retryable_status(status)
                detail = scrub_credentials(read_error_message(body), request)
                err = BackendTransportError(
                    f"{what} answered HTTP {status}: {detail or 'no body'}",
                    status=status,
                    retryable=retryable,
                    attempts=attempt,
                )
                retry_after = parse_retry_after(response.headers.get("retry-after"))
            else:
                chunks = response.aiter_bytes()
                try:
                    first = await chunks.__anext__()
                except StopAsyncIteration:
                    # closed before the first body byte: nothing was streamed, so it is retried
                    await response.aclose()
                    status = response.status_code
                    err = BackendTransportError(
                        f"{what} answered HTTP {status} with an empty body",
                        status=status,
                        retryable=True,
                        attempts=attempt,
                    )
                else:
                    return OpenedStream(response, chunks, first, attempt)
        except httpx2.TransportError as exc:
            if response is not None:
                await response.aclose()
            kind = "timed out" if isinstance(exc, httpx2.TimeoutException) else "failed"
            err = BackendTransportError(
                f"{what} {kind} before streaming began: {type(exc).__name__}: {exc}",
                status=None,
                retryable=True,
                attempts=attempt,
            )
        except BaseException:
            if response is not None:
                await asyncio.shield(response.aclose())
            raise
        if not err.retryable or attempt > policy.max_retries:
            raise err
        await sleep(policy.delay_s(attempt, retry_after))
