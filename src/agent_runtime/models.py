"""Chat-model resolution and admission against the Tangle Router catalog (ORIGINAL §13).

Admission fails closed: a model id is accepted only when it is well formed and either on the
allowlist or in the router's catalog; a catalog that cannot be loaded admits nothing.
Catalog entries (`ModelInfo`) and candidates stay JSON dicts in the original's shape.
"""

from __future__ import annotations

import inspect
import math
import re
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypedDict, cast

import orjson

from .errors import BackendTransportError, ValidationError
from .sanitize import sanitize_text

if TYPE_CHECKING:  # loaded when a catalog is fetched, not by every importer
    import httpx2

__all__ = [
    "DEFAULT_ROUTER_BASE_URL",
    "MAX_CATALOG_BYTES",
    "ChatModelCandidate",
    "ChatModelValidation",
    "ModelInfo",
    "ResolvedChatModel",
    "RouterEnv",
    "clean_model_id",
    "get_models",
    "is_well_formed_model_id",
    "resolve_chat_model",
    "resolve_router_base_url",
    "validate_chat_model_id",
    "with_configured_models",
]

DEFAULT_ROUTER_BASE_URL = "https://router.tangle.tools"
MAX_CATALOG_BYTES = 8 * 1024 * 1024
_MODEL_ID = re.compile(r"[A-Za-z0-9._/@:\-]+")
_MAX_MODEL_ID = 200
_TOKEN = re.compile(r"[\x21-\x7e]+")


class RouterEnv(TypedDict, total=False):
    """Where the router is: `TANGLE_ROUTER_URL`, else `TANGLE_ROUTER_BASE_URL`."""

    TANGLE_ROUTER_URL: str
    TANGLE_ROUTER_BASE_URL: str


class ModelInfo(TypedDict, total=False):
    """One catalog entry as the router lists it."""

    id: str
    name: str
    description: str
    provider: str
    _provider: str
    architecture: dict[str, Any]


class ChatModelCandidate(TypedDict):
    """A model id from somewhere (`source`: a telemetry label such as request, workspace or
    env); `model` may be None or blank."""

    source: str
    model: str | None


class ResolvedChatModel(TypedDict):
    source: str
    model: str


@dataclass(frozen=True, slots=True)
class ChatModelValidation:
    """`succeeded` with the cleaned id as `value`, or not, with an `error` sentence."""

    succeeded: bool
    value: str | None = None
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        if self.succeeded:
            return {"succeeded": True, "value": self.value}
        return {"succeeded": False, "error": self.error}


def resolve_router_base_url(env: Mapping[str, Any] | None = None) -> str:
    """`TANGLE_ROUTER_URL`, else `TANGLE_ROUTER_BASE_URL`, else the default, with one trailing
    `/v1` (or `/v1/`) and then one trailing slash removed. `env` is a mapping the caller
    passes (`os.environ` if it wants the process's)."""
    values = env if env is not None else {}
    base = DEFAULT_ROUTER_BASE_URL
    for key in ("TANGLE_ROUTER_URL", "TANGLE_ROUTER_BASE_URL"):
        value = values.get(key)
        if isinstance(value, str) and value:
            base = value
            break
    return _strip_base(base)


def _check_url(value: Any) -> str:
    if not isinstance(value, str):
        raise ValidationError("get_models: router_base_url must be a string")
    import httpx2

    try:
        url = httpx2.URL(value)
    except (httpx2.InvalidURL, ValueError) as exc:
        raise ValidationError(f"get_models: router_base_url is not a URL: {exc}") from None
    if url.port is not None and not 0 < url.port < 65536:
        raise ValidationError("get_models: router_base_url has an invalid port")
    if url.scheme not in ("http", "https") or not url.host:
        raise ValidationError("get_models: router_base_url must be an http(s) URL")
    return value


def _strip_base(base: str) -> str:
    if base.endswith("/v1/"):
        base = base[:-4]
    elif base.endswith("/v1"):
        base = base[:-3]
    return base[:-1] if base.endswith("/") else base


async def get_models(
    router_base_url: str = DEFAULT_ROUTER_BASE_URL,
    *,
    api_key: str | None = None,
    http_client: httpx2.AsyncClient | None = None,
    timeout: float = 10.0,
) -> list[ModelInfo]:
    """GET `<base>/v1/models` (`Accept: application/json`); `body.data` when it is a list
    (its object entries), else `[]`. A non-2xx status raises `BackendTransportError`
    `router /v1/models <status>`; an unreachable router, one with status 0. `api_key`
    (ours) is sent as a bearer token and scrubbed from every message."""
    import httpx2

    url = f"{_strip_base(_check_url(router_base_url))}/v1/models"
    if type(timeout) not in (int, float) or not math.isfinite(timeout) or timeout <= 0:
        raise ValidationError("get_models: timeout must be a finite number of seconds > 0")
    headers = {"Accept": "application/json"}
    if api_key is not None:
        if not isinstance(api_key, str) or not _TOKEN.fullmatch(api_key):
            raise ValidationError("get_models: api_key must be printable ASCII without spaces")
        headers["Authorization"] = f"Bearer {api_key}"
    secrets = [s for s in (api_key, httpx2.URL(url).password) if s]

    def scrub(text: str) -> str:
        for secret in secrets:
            text = text.replace(secret, "[REDACTED]")
        return sanitize_text(text)

    own = http_client is None
    client = http_client if http_client is not None else httpx2.AsyncClient(timeout=timeout)
    try:
        async with client.stream("GET", url, headers=headers) as response:
            if not 200 <= response.status_code < 300:
                raise BackendTransportError(
                    "router",
                    f"router /v1/models {response.status_code}",
                    status=response.status_code,
                    retryable=response.status_code >= 500 or response.status_code == 429,
                )
            body = bytearray()
            async for chunk in response.aiter_bytes():
                body += chunk
                if len(body) > MAX_CATALOG_BYTES:
                    raise BackendTransportError(
                        "router", f"router /v1/models answered more than {MAX_CATALOG_BYTES} bytes"
                    )
    except httpx2.HTTPError as exc:
        raise BackendTransportError(
            "router",
            scrub(f"router /v1/models unreachable: {type(exc).__name__}: {exc}"),
            status=0,
            retryable=True,
            cause=exc,
        ) from exc
    finally:
        if own:
            await client.aclose()
    try:
        parsed = orjson.loads(bytes(body))
    except orjson.JSONDecodeError:
        return []
    data = parsed.get("data") if isinstance(parsed, dict) else None
    if not isinstance(data, list):
        return []
    return [cast(ModelInfo, entry) for entry in data if isinstance(entry, dict)]


def clean_model_id(value: Any) -> str | None:
    """The trimmed string; None for a non-string or a blank one."""
    if not isinstance(value, str):
        return None
    cleaned = value.strip()
    return cleaned or None


def is_well_formed_model_id(value: str) -> bool:
    """At most 200 characters of letters, digits and `. _ / @ : -` (the admission's format)."""
    return len(value) <= _MAX_MODEL_ID and _MODEL_ID.fullmatch(value) is not None


def resolve_chat_model(
    candidates: Iterable[Mapping[str, Any]], fallback: Any
) -> ResolvedChatModel | Any:
    """The first candidate whose cleaned model is non-blank, as `{source, model}`; else
    `fallback` itself, unchanged."""
    for candidate in candidates:
        if not isinstance(candidate, Mapping):
            continue
        model = clean_model_id(candidate.get("model"))
        if model is not None:
            return {"source": candidate.get("source"), "model": model}
    return fallback


def _catalog_ids(catalog: Iterable[Any]) -> set[str]:
    ids: set[str] = set()
    for entry in catalog:
        if not isinstance(entry, Mapping):
            continue
        mid = clean_model_id(entry.get("id"))
        if mid is None:
            continue
        ids.add(mid)
        provider = clean_model_id(entry.get("_provider")) or clean_model_id(entry.get("provider"))
        if provider is not None and "/" not in mid:
            ids.add(f"{provider}/{mid}")
    return ids


async def validate_chat_model_id(
    model_id: Any,
    *,
    allowlist: Iterable[Any] = (),
    router_base_url: str = DEFAULT_ROUTER_BASE_URL,
    load_models: Callable[[str], Awaitable[Sequence[Any]] | Sequence[Any]] | None = None,
) -> ChatModelValidation:
    """Admit `model_id` or say why not; never raises. In order: clean it; refuse a malformed
    id (the catalog is not fetched); accept one on the allowlist; load the catalog
    (`load_models(router_base_url)`, default `get_models`) failing closed; accept an id the
    catalog lists (also as `<provider>/<id>`)."""
    cleaned = clean_model_id(model_id)
    if cleaned is None:
        return ChatModelValidation(False, error="Model id must be a non-empty string.")
    if not is_well_formed_model_id(cleaned):
        return ChatModelValidation(False, error=f"Model id is malformed: {cleaned}")
    allowed = {c for c in (clean_model_id(a) for a in allowlist) if c is not None}
    if cleaned in allowed:
        return ChatModelValidation(True, value=cleaned)
    loader = load_models if load_models is not None else get_models
    try:
        loaded = loader(router_base_url)
        catalog = await loaded if inspect.isawaitable(loaded) else loaded
        ids = _catalog_ids(catalog)
    except Exception as exc:
        message = exc.message if isinstance(exc, BackendTransportError) else str(exc)
        return ChatModelValidation(False, error=f"Could not validate model catalog: {message}")
    if cleaned not in ids:
        return ChatModelValidation(False, error=f"Model is not available: {cleaned}")
    return ChatModelValidation(True, value=cleaned)


def with_configured_models(catalog: list[Any], configured_ids: Iterable[Any]) -> list[Any]:
    """`catalog` with a minimal `{id}` entry first for each configured id it does not list
    (blank ids ignored, each added once); the same list object when nothing is new."""
    known = {clean_model_id(e.get("id")) for e in catalog if isinstance(e, Mapping)}
    added: list[dict[str, Any]] = []
    for raw in configured_ids:
        mid = clean_model_id(raw)
        if mid is None or mid in known:
            continue
        known.add(mid)
        added.append({"id": mid})
    if not added:
        return catalog
    return [*added, *catalog]
