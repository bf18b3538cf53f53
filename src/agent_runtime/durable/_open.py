"""`open_store(url)`: one string picks and opens a durable store (CLI flags, server config).

    memory:                          InMemoryDurableRunStore
    sqlite:///rel/path.db            SQLite file relative to the working directory (as in
                                     SQLAlchemy; `sqlite:rel/path.db` is the same)
    sqlite:////abs/path.db           SQLite file at /abs/path.db
    sqlite:///:memory:               SQLite in memory
    file:///abs/root, file:rel       FileSystemDurableRunStore rooted there (RFC 8089)
    postgresql://..., postgres://... PostgresDurableRunStore (libpq URL)

`open_store(url, create=False)` refuses a SQLite file or store folder that does not exist
yet, so a mistyped path in a read-only command is an error instead of a new empty store.

Query options: `sqlite:...?durability=full`, `file:...?fsync=false`,
`postgresql://...?pool_min=1&pool_max=10` (other query parameters go to libpq).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from ..errors import ConfigurationError, StoreUnavailableError
from ._filesystem import FileSystemDurableRunStore
from ._memory import InMemoryDurableRunStore
from ._postgres import PostgresDurableRunStore
from ._sqlite import SQLiteDurableRunStore
from ._store import DurableRunStore

__all__ = ["SUPPORTED_SCHEMES", "check_store_url", "open_store", "store_path"]

SUPPORTED_SCHEMES = ("memory", "sqlite", "file", "postgresql", "postgres")
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def store_path(url: str) -> str:
    """The filesystem path named by a `sqlite:` or `file:` URL (see the module doc)."""
    scheme, rest = url.split(":", 1)
    rest = rest.split("?", 1)[0]
    if rest.startswith("////"):
        return rest[3:]  # sqlite:////abs/path, file:////abs/path
    if rest.startswith("///"):
        path = rest[3:]
        if scheme.lower() == "file":
            return "/" + path  # file:///abs/path (RFC 8089)
        return path  # sqlite:///rel/path (SQLAlchemy)
    if rest.startswith("//"):
        raise ConfigurationError(
            f"store URL {url!r} names a host; use three slashes for a local path ({scheme}:///path)"
        )
    return rest


def _existing(path: str, url: str, create: bool) -> str:
    if not create and path != ":memory:" and not Path(path).exists():
        raise StoreUnavailableError(f"no store at {path} (from {url!r})")
    return path


def _options(url: str) -> dict[str, str]:
    query = url.split("?", 1)[1] if "?" in url else ""
    return dict(parse_qsl(query, keep_blank_values=True))


def _flag(value: str, name: str, url: str) -> bool:
    if value.lower() in _TRUE:
        return True
    if value.lower() in _FALSE:
        return False
    raise ConfigurationError(f"store URL {url!r}: {name} must be true or false, got {value!r}")


def _unknown(opts: dict[str, str], url: str) -> None:
    if opts:
        raise ConfigurationError(f"store URL {url!r}: unknown option(s) {sorted(opts)}")


@dataclass(frozen=True, slots=True)
class _StoreSpec:
    """What a checked store URL names: its scheme and the arguments to open it with."""

    scheme: str
    path: str = ""
    options: dict[str, Any] = field(default_factory=dict)


def _parse(url: object) -> _StoreSpec:
    """The store a URL names, checked without touching it; `ConfigurationError` otherwise."""
    if not isinstance(url, str) or ":" not in url:
        raise ConfigurationError(
            f"store URL must look like scheme:..., one of {', '.join(SUPPORTED_SCHEMES)}; "
            f"got {url!r}"
        )
    scheme = url.split(":", 1)[0].lower()
    if scheme == "memory":
        if url.split(":", 1)[1] not in ("", "//"):
            raise ConfigurationError(f"store URL {url!r}: memory: takes no path")
        return _StoreSpec("memory")
    if scheme == "sqlite":
        opts = _options(url)
        durability = opts.pop("durability", "normal")
        if durability not in ("normal", "full"):
            raise ConfigurationError(f"store URL {url!r}: durability must be normal or full")
        _unknown(opts, url)
        path = store_path(url)
        if not path:
            raise ConfigurationError(f"store URL {url!r} has no path")
        return _StoreSpec("sqlite", path, {"durability": durability})
    if scheme == "file":
        opts = _options(url)
        fsync = _flag(opts.pop("fsync", "true"), "fsync", url)
        _unknown(opts, url)
        path = store_path(url)
        if not path:
            raise ConfigurationError(f"store URL {url!r} has no path")
        return _StoreSpec("file", path, {"fsync": fsync})
    if scheme in ("postgresql", "postgres"):
        parts = urlsplit(url)
        query = parse_qsl(parts.query, keep_blank_values=True)
        sizes = {"pool_min": 1, "pool_max": 10}
        rest = []
        for key, value in query:
            if key in sizes:
                if not value.isdigit() or int(value) < 1:
                    raise ConfigurationError(f"store URL: {key} must be a positive integer")
                sizes[key] = int(value)
            else:
                rest.append((key, value))
        if sizes["pool_min"] > sizes["pool_max"]:
            raise ConfigurationError("store URL: pool_min must not exceed pool_max")
        dsn = urlunsplit(parts._replace(query=urlencode(rest)))
        return _StoreSpec(
            "postgresql", dsn, {"min_size": sizes["pool_min"], "max_size": sizes["pool_max"]}
        )
    raise ConfigurationError(
        f"unknown store URL scheme {scheme!r} in {url!r}; use one of "
        f"{', '.join(s + ':' for s in SUPPORTED_SCHEMES)}"
    )


def check_store_url(url: str) -> None:
    """Refuse a store URL `open_store` would refuse for its form (`ConfigurationError`),
    without opening anything: for commands that check their settings before they start."""
    _parse(url)


async def open_store(
    url: str, *, create: bool = True, connect_timeout_s: float = 10.0
) -> DurableRunStore:
    """Open the store a URL names; `ConfigurationError` for an unknown scheme or option,
    `StoreUnavailableError` when the store cannot be reached (or, with `create=False`, when
    a SQLite file or store folder does not exist yet). A PostgreSQL server that refuses the
    connection is retried for `connect_timeout_s`."""
    spec = _parse(url)
    if spec.scheme == "memory":
        return InMemoryDurableRunStore()
    if spec.scheme == "sqlite":
        _existing(spec.path, url, create)
        full = spec.options["durability"] == "full"
        return SQLiteDurableRunStore(spec.path, durability="full" if full else "normal")
    if spec.scheme == "file":
        _existing(spec.path, url, create)
        return FileSystemDurableRunStore(spec.path, fsync=spec.options["fsync"])
    return await PostgresDurableRunStore.from_dsn(
        spec.path,
        min_size=spec.options["min_size"],
        max_size=spec.options["max_size"],
        connect_timeout_s=connect_timeout_s,
    )
