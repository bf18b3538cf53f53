"""Open a streamed HTTP response with retries that stop at the first body byte.

Connect errors, timeouts, an empty body and the policy's statuses are retried under a
`BackendRetryPolicy` (honouring `Retry-After`); once a body byte has arrived the response
belongs to the caller, and any later failure is the caller's to report. The caller's abort
interrupts the request or the backoff sleep at once (`AbortGuard`).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass

import httpx2

from ..errors import BackendTransportError, ValidationError
from ..sanitize import redaction_marker, sanitize_text
from ._abort import AbortGuard
from ._retry import BackendRetryPolicy, parse_retry_after

__all__ = [
    "ERROR_BODY_LIMIT",
    "OpenedStream",
    "open_stream",
    "request_headers",
    "scrub_credentials",
]

ERROR_BODY_LIMIT = 2048
_READ_LIMIT = 8192
_CREDENTIAL_HEADERS = ("authorization", "proxy-authorization", "x-api-key", "api-key")


@dataclass(slots=True)
class OpenedStream:
    """A 2xx response whose first (non-empty) body chunk has been read; `started` is the
    monotonic time its attempt was sent."""

    response: httpx2.Response
    chunks: AsyncIterator[bytes]
    first: bytes
    attempts: int
    started: float

    @property
    def framed(self) -> bool:
        """Whether the body's end is marked (length, chunked, HTTP/2), so a cut connection
        shows as a read error rather than as a normal end."""
        h = self.response.headers
        return (
            "content-length" in h
            or "chunked" in h.get("transfer-encoding", "").lower()
            or not self.response.http_version.startswith("HTTP/1")
        )

    async def aclose(self) -> None:
        await self.response.aclose()


def request_headers(
    base: Mapping[str, str], api_key: str | None, extra: Mapping[str, str] | None
) -> dict[str, str]:
    """`base`, a bearer `api_key` and `extra`, refused with `ValidationError` when a name or
    value is not a string or holds CR, LF or NUL (which no HTTP client can send)."""
    if api_key is not None and not isinstance(api_key, str):
        raise ValidationError("api_key must be a string or None")
    if extra is not None and not isinstance(extra, Mapping):
        raise ValidationError("headers must be a mapping of strings")
    out = dict(base)
    if api_key:
        out["authorization"] = f"Bearer {api_key}"
    out.update(extra or {})
    for name, value in out.items():
        if not isinstance(name, str) or not isinstance(value, str):
            raise ValidationError("header names and values must be strings")
        if any(c in name or c in value for c in "\r\n\x00"):
            what = "api_key" if name == "authorization" and api_key else f"header {name!r}"
            raise ValidationError(f"{what} must not contain CR, LF or NUL")
    return out


def scrub_credentials(text: str, request: httpx2.Request) -> str:
    """`text` without the credentials this request carried (servers echo a rejected key in
    their error body) and without any other recognisable secret."""
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
            text = text.replace(secret, redaction_marker(secret))
    return sanitize_text(text)


async def _read_limited(response: httpx2.Response) -> bytes:
    buf = bytearray()
    try:
        async for chunk in response.aiter_bytes():
            buf += chunk
            if len(buf) >= _READ_LIMIT:
                break
    except httpx2.HTTPError:
        pass
    return bytes(buf[:_READ_LIMIT])


async def _send(
    client: httpx2.AsyncClient, request: httpx2.Request, deadline_ms: float
) -> httpx2.Response:
    if deadline_ms <= 0:
        return await client.send(request, stream=True)
    async with asyncio.timeout(deadline_ms / 1000):
        return await client.send(request, stream=True)


async def open_stream(
    client: httpx2.AsyncClient,
    make_request: Callable[[], httpx2.Request],
    policy: BackendRetryPolicy,
    *,
    backend: str,
    what: str,
    guard: AbortGuard,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> OpenedStream:
    """Send `make_request()` until a 2xx response yields its first body byte. Gives up with
    `BackendTransportError(backend, "<what> returned <status>")` when the last answer was an
    error status, else `"<what> unreachable after <n> attempts: <reason>"` (status 0)."""
    attempt = 0
    last_status: int | None = None
    last_body = ""
    reason = ""
    cause: BaseException | None = None
    while True:
        attempt += 1
        retry_after: float | None = None
        response: httpx2.Response | None = None
        failed_status = False
        request = make_request()
        started = time.monotonic()
        try:
            response = await guard.run(_send(client, request, policy.request_timeout_ms))
            if response.status_code >= 300:
                raw = await guard.run(_read_limited(response))
                await response.aclose()  # the failed body is cancelled before any retry
                last_status = response.status_code
                last_body = scrub_credentials(raw.decode("utf-8", "replace"), request)
                failed_status = True
                retry_after = parse_retry_after(response.headers.get("retry-after"))
            else:
                chunks = response.aiter_bytes()
                try:
                    first = b""
                    while not first:
                        first = await guard.run(chunks.__anext__())
                except StopAsyncIteration:
                    # closed before the first body byte: nothing was streamed, so it is retried
                    await response.aclose()
                    reason = f"the response body was empty (HTTP {response.status_code})"
                else:
                    return OpenedStream(response, chunks, first, attempt, started)
        except (httpx2.TransportError, TimeoutError) as exc:
            if response is not None:
                await response.aclose()
            cause = exc
            if isinstance(exc, TimeoutError):
                reason = f"no response within {policy.request_timeout_ms:g} ms"
            else:
                reason = scrub_credentials(f"{type(exc).__name__}: {exc}", request)
        except BaseException:
            if response is not None:
                await asyncio.shield(response.aclose())
            raise
        if failed_status:
            assert last_status is not None
            if not policy.is_retryable_status(last_status) or attempt >= policy.max_attempts:
                raise BackendTransportError(
                    backend,
                    f"{what} returned {last_status}",
                    status=last_status,
                    body=last_body[:ERROR_BODY_LIMIT],
                    retryable=policy.is_retryable_status(last_status),
                    attempts=attempt,
                )
        elif attempt >= policy.max_attempts:
            if last_status is not None:  # an earlier attempt did get an answer
                raise BackendTransportError(
                    backend,
                    f"{what} returned {last_status}",
                    status=last_status,
                    body=last_body[:ERROR_BODY_LIMIT],
                    retryable=True,
                    attempts=attempt,
                )
            raise BackendTransportError(
                backend,
                f"{what} unreachable after {attempt} attempts: {reason}",
                status=0,
                cause=cause,
                retryable=True,
                attempts=attempt,
            )
        await guard.run(sleep(policy.delay_ms(attempt, retry_after) / 1000))
