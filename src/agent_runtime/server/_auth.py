"""Who is asking: API keys (`AGENT_RUNTIME_API_KEYS`, a keys file) or a product's own
`authenticate(request)` hook. Identity comes only from here, never from a request body.

A key entry is `TOKEN=TENANT:USER` (comma-separated in the environment variable, one per line
in a file, `#` comments and blank lines ignored). Requests send `Authorization: Bearer TOKEN`;
the token is compared with every configured key in constant time. Without keys or a hook the
service is unauthenticated: every request is the `local` tenant's `local` user, and only
loopback peers are served.
"""

from __future__ import annotations

import hashlib
import hmac
import inspect
import ipaddress
import os
import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeAlias

from starlette.requests import Request

from ..errors import ConfigurationError
from ._errors import UnauthorizedError

__all__ = [
    "API_KEYS_ENV",
    "LOCAL_PRINCIPAL",
    "ApiKeys",
    "Authenticate",
    "Principal",
    "is_loopback",
]

API_KEYS_ENV = "AGENT_RUNTIME_API_KEYS"
_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@+\-]{0,127}")
_TOKEN = re.compile(r"[\x21-\x7e]{16,512}")
_MIN_TOKEN = 16


@dataclass(frozen=True, slots=True)
class Principal:
    """An authenticated caller: the tenant whose runs it sees and the user within it."""

    tenant_id: str
    user_id: str

    def __post_init__(self) -> None:
        for name in ("tenant_id", "user_id"):
            value = getattr(self, name)
            if not isinstance(value, str) or not _ID.fullmatch(value):
                raise ConfigurationError(
                    f"{name} must be 1-128 characters of letters, digits and . _ @ + - "
                    f"(starting with a letter or digit), got {value!r}"
                )


LOCAL_PRINCIPAL = Principal("local", "local")
"""The caller of an unauthenticated (loopback-only) service."""

Authenticate: TypeAlias = Callable[[Request], "Principal | Awaitable[Principal | None] | None"]
"""A product's authentication: the request's principal, or None (answered 401)."""


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


class ApiKeys:
    """Bearer API keys, each mapped to a principal; `lookup` compares in constant time."""

    def __init__(self, keys: Mapping[str, Principal]) -> None:
        entries: list[tuple[bytes, Principal]] = []
        for token, principal in keys.items():
            if not isinstance(token, str) or not _TOKEN.fullmatch(token):
                raise ConfigurationError(
                    f"an API key must be {_MIN_TOKEN}-512 printable ASCII characters without spaces"
                )
            if not isinstance(principal, Principal):
                raise ConfigurationError("each API key must map to a Principal")
            entries.append((_digest(token), principal))
        self._entries = tuple(entries)

    def __len__(self) -> int:
        return len(self._entries)

    @classmethod
    def parse(cls, text: str, *, source: str, separator: str | None = None) -> ApiKeys:
        """Entries `TOKEN=TENANT:USER` split by `separator` (None: lines, with `#` comments);
        `ConfigurationError` naming `source` and the entry's position, never the token."""
        if separator is None:
            raw = [line.split("#", 1)[0] for line in text.splitlines()]
        else:
            raw = text.split(separator)
        keys: dict[str, Principal] = {}
        for n, entry in enumerate(raw, 1):
            entry = entry.strip()
            if not entry:
                continue
            token, eq, who = entry.partition("=")
            tenant, colon, user = who.strip().partition(":")
            token = token.strip()
            where = f"{source}: entry {n}"
            if not eq or not colon or not token:
                raise ConfigurationError(f"{where} is not TOKEN=TENANT:USER")
            if token in keys:
                raise ConfigurationError(f"{where} repeats a key given before")
            try:
                keys[token] = Principal(tenant.strip(), user.strip())
            except ConfigurationError as exc:
                raise ConfigurationError(f"{where}: {exc.message}") from None
        try:
            return cls(keys)
        except ConfigurationError as exc:
            raise ConfigurationError(f"{source}: {exc.message}") from None

    @classmethod
    def load(cls, *, env: Mapping[str, str] | None = None, file: str | None = None) -> ApiKeys:
        """The keys of `AGENT_RUNTIME_API_KEYS` plus those of `file` (either may be absent)."""
        values = os.environ if env is None else env
        keys = cls.parse(values.get(API_KEYS_ENV, ""), source=API_KEYS_ENV, separator=",")
        entries = list(keys._entries)
        if file is not None:
            try:
                text = Path(file).read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as exc:
                raise ConfigurationError(f"cannot read API keys file {file}: {exc}") from None
            entries += cls.parse(text, source=str(file))._entries
        if len({d for d, _ in entries}) != len(entries):
            raise ConfigurationError(f"a key of {file} is also in {API_KEYS_ENV}")
        merged = cls({})
        merged._entries = tuple(entries)
        return merged

    def lookup(self, token: str) -> Principal | None:
        """The principal of `token`, comparing its digest with every key (no early exit)."""
        presented = _digest(token)
        found: Principal | None = None
        for digest, principal in self._entries:
            if hmac.compare_digest(digest, presented):
                found = principal
        return found


def bearer_token(request: Request) -> str | None:
    """The token of an `Authorization: Bearer TOKEN` header, else None."""
    header = request.headers.get("authorization")
    if header is None:
        return None
    scheme, _, token = header.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        return None
    return token


def is_loopback(host: str | None) -> bool:
    """Whether an address (or `localhost`) is a loopback one."""
    if not host:
        return False
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


class Authenticator:
    """The service's one authentication step: a product's hook, else API keys, else the
    loopback-only local principal."""

    def __init__(self, keys: ApiKeys | None, hook: Authenticate | None) -> None:
        if hook is not None and not callable(hook):
            raise ConfigurationError("authenticate must be callable")
        self.keys = keys if keys is not None and len(keys) else None
        self.hook = hook

    @property
    def open(self) -> bool:
        """True when nothing authenticates requests (the loopback-only local mode)."""
        return self.keys is None and self.hook is None

    async def __call__(self, request: Request) -> Principal:
        """The caller's principal; `UnauthorizedError` (the same message whatever was wrong,
        so a probe learns nothing about which keys exist)."""
        if self.hook is not None:
            found: Any = self.hook(request)
            if inspect.isawaitable(found):
                found = await found
            if found is None:
                raise UnauthorizedError("authentication required")
            if not isinstance(found, Principal):
                found = _coerce(found)
            return found  # type: ignore[no-any-return]
        if self.keys is not None:
            token = bearer_token(request)
            principal = self.keys.lookup(token) if token is not None else None
            if principal is None:
                raise UnauthorizedError("a valid API key is required (Authorization: Bearer <key>)")
            return principal
        client = request.client
        if client is None or not is_loopback(client.host):
            raise UnauthorizedError(
                "this server runs without API keys and serves loopback clients only"
            )
        return LOCAL_PRINCIPAL


def _coerce(found: Any) -> Principal:
    """A hook's ChatTurnIdentity-like answer (any object with `tenant_id` and `user_id`)."""
    tenant, user = getattr(found, "tenant_id", None), getattr(found, "user_id", None)
    if not isinstance(tenant, str) or not isinstance(user, str):
        raise ConfigurationError(
            "authenticate() must return a Principal (or an object with tenant_id and user_id)"
        )
    return Principal(tenant, user)
