"""Model catalog helpers for an OpenAI-compatible router: where it is, what it offers, and
which model a chat turn should use.

Resolution is explicit: a requested model that the router does not offer is an error naming
what it does offer, never a silent substitution.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import urlsplit

import httpx2
import orjson

from .errors import (
    BackendTransportError,
    ConfigurationError,
    InvalidArgumentError,
    ModelCatalogError,
)
from .sanitize import redaction_marker, sanitize_text

__all__ = [
    "DEFAULT_ROUTER_BASE_URL",
    "MODEL_ENV_VARS",
    "ROUTER_BASE_URL_ENV_VARS",
    "RouterModel",
    "clean_model_id",
    "get_models",
    "resolve_chat_model",
    "resolve_router_base_url",
    "validate_chat_model_id",
    "with_configured_models",
]

DEFAULT_ROUTER_BASE_URL = "https://openrouter.ai/api/v1"
ROUTER_BASE_URL_ENV_VARS = ("AGENT_RUNTIME_ROUTER_BASE_URL", "OPENAI_BASE_URL")
MODEL_ENV_VARS = ("AGENT_RUNTIME_MODEL", "OPENAI_MODEL")

_MAX_MODEL_ID = 200
_MODEL_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:/@+\-]*")
# ids of models that do not chat: embeddings, speech, images, moderation, reranking
_NON_CHAT = re.compile(
    r"(?:^|[/:_.\-])(?:text-embedding|embeddings?|embed|whisper|tts|dall-e|moderation|"
    r"rerank(?:er)?|transcribe)(?:$|[/:_.\-\d])",
    re.IGNORECASE,
)
_RETRYABLE = frozenset((408, 409, 425, 429))


@dataclass(frozen=True, slots=True)
class RouterModel:
    """One model offered by the router; `configured` marks models the deployment pins."""

    id: str
    owned_by: str | None = None
    created: int | None = None
    configured: bool = False
    raw: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "owned_by": self.owned_by,
            "created": self.created,
            "configured": self.configured,
        }


def _env(env: Mapping[str, str] | None) -> Mapping[str, str]:
    if env is None:
        return os.environ
    if not isinstance(env, Mapping):
        raise InvalidArgumentError("must be a mapping of environment variables", path="env")
    return env


def _check_base_url(url: str, where: str) -> str:
    if not isinstance(url, str):
        raise InvalidArgumentError(f"must be a URL string, got {type(url).__name__}", path=where)
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a port outside 0-65535
    except ValueError as exc:
        raise ConfigurationError(
            f"{where} is not a valid URL ({exc}): {sanitize_text(url)!r}"
        ) from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigurationError(
            f"{where} must be an http(s) URL with a host, got {sanitize_text(url)!r}"
        )
    return url.rstrip("/")


def _check_api_key(api_key: Any) -> str:
    """A key that can travel in an HTTP header: printable ASCII on one line."""
    if not isinstance(api_key, str) or not api_key:
        raise InvalidArgumentError("must be a non-empty string", path="api_key")
    if not api_key.isascii() or not api_key.isprintable():
        raise InvalidArgumentError(
            "must be printable ASCII on one line (check for pasted quotes or spaces)",
            path="api_key",
        )
    return api_key


def _without_key(text: str, api_key: str | None) -> str:
    """`text` with the caller's key (which some routers echo in errors) and any other
    recognisable secret redacted."""
    if api_key:
        text = text.replace(api_key, redaction_marker(api_key))
    return sanitize_text(text)


def resolve_router_base_url(env: Mapping[str, str] | None = None) -> str:
    """The router base URL from `AGENT_RUNTIME_ROUTER_BASE_URL`, then `OPENAI_BASE_URL`, else
    `DEFAULT_ROUTER_BASE_URL`; trailing slashes dropped, malformed URLs refused."""
    values = _env(env)
    for name in ROUTER_BASE_URL_ENV_VARS:
        value = values.get(name, "").strip()
        if value:
            return _check_base_url(value, name)
    return DEFAULT_ROUTER_BASE_URL


def _models_url(base_url: str) -> str:
    base = _check_base_url(base_url, "base_url")
    return f"{base}/models" if base.endswith("/v1") else f"{base}/v1/models"


def _parse_models(body: bytes) -> list[RouterModel]:
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise ModelCatalogError(f"/v1/models did not return JSON: {exc}") from None
    data = doc.get("data") if isinstance(doc, dict) else None
    if not isinstance(data, list):
        raise ModelCatalogError("/v1/models response has no `data` list")
    models: list[RouterModel] = []
    seen: set[str] = set()
    for i, item in enumerate(data):
        if not isinstance(item, dict) or not isinstance(item.get("id"), str) or not item["id"]:
            raise ModelCatalogError(f"/v1/models data[{i}] has no string `id`")
        if item["id"] in seen:
            continue
        seen.add(item["id"])
        owned_by, created = item.get("owned_by"), item.get("created")
        models.append(
            RouterModel(
                id=item["id"],
                owned_by=owned_by if isinstance(owned_by, str) else None,
                created=created if type(created) is int else None,
                raw=item,
            )
        )
    return models


async def get_models(
    base_url: str | None = None,
    api_key: str | None = None,
    *,
    timeout: float = 10.0,
    client: httpx2.AsyncClient | None = None,
) -> list[RouterModel]:
    """GET `{base}/v1/models` (or `{base}/models` when the base ends in `/v1`).

    Unreachable router or error status -> `BackendTransportError` (with status and whether a
    retry may help); a malformed body -> `ModelCatalogError`.
    """
    url = _models_url(base_url if base_url is not None else resolve_router_base_url())
    if type(timeout) not in (int, float) or not math.isfinite(timeout) or timeout <= 0:
        raise InvalidArgumentError("must be a finite number of seconds > 0", path="timeout")
    headers = {"Accept": "application/json"}
    if api_key is not None:
        headers["Authorization"] = f"Bearer {_check_api_key(api_key)}"
    own = client is None
    http = client if client is not None else httpx2.AsyncClient(timeout=timeout)
    try:
        response = await http.get(url, headers=headers)
    except httpx2.HTTPError as exc:
        raise BackendTransportError(
            _without_key(
                f"cannot reach model router at {url}: {type(exc).__name__}: {exc}", api_key
            ),
            retryable=True,
            code="models.unreachable",
        ) from exc
    finally:
        if own:
            await http.aclose()
    if response.status_code >= 400:
        snippet = response.text[:200]
        raise BackendTransportError(
            _without_key(f"GET {url} answered {response.status_code}: {snippet}", api_key),
            status=response.status_code,
            retryable=response.status_code in _RETRYABLE or response.status_code >= 500,
            code="models.http_status",
        )
    return _parse_models(response.content)


def clean_model_id(model_id: str) -> str:
    """Trim whitespace and wrapping quotes/backticks, drop a leading `models/` prefix."""
    if not isinstance(model_id, str):
        raise InvalidArgumentError("must be a string", path="model_id")
    cleaned = model_id.strip()
    while len(cleaned) >= 2 and cleaned[0] == cleaned[-1] and cleaned[0] in "\"'`":
        cleaned = cleaned[1:-1].strip()
    cleaned = cleaned.removeprefix("models/")
    if not cleaned:
        raise ModelCatalogError(f"model id {model_id!r} is empty")
    return cleaned


def validate_chat_model_id(model_id: str) -> str:
    """The cleaned id, if it is well formed and not an embedding/speech/image/moderation
    model; otherwise `ModelCatalogError` saying why."""
    cleaned = clean_model_id(model_id)
    if len(cleaned) > _MAX_MODEL_ID:
        raise ModelCatalogError(f"model id is longer than {_MAX_MODEL_ID} characters")
    if not _MODEL_ID.fullmatch(cleaned):
        raise ModelCatalogError(
            f"model id {cleaned!r} has characters outside letters, digits and ._:/@+-"
        )
    if _NON_CHAT.search(cleaned):
        raise ModelCatalogError(f"model {cleaned!r} is not a chat model")
    return cleaned


def _ids(available: Iterable[RouterModel | str]) -> list[str]:
    out: list[str] = []
    for i, m in enumerate(available):
        if isinstance(m, RouterModel):
            out.append(m.id)
        elif isinstance(m, str):
            out.append(m)
        else:
            raise InvalidArgumentError("must hold RouterModel or str", path=f"available[{i}]")
    return out


def resolve_chat_model(
    requested: str | None = None,
    *,
    available: Iterable[RouterModel | str] | None = None,
    env: Mapping[str, str] | None = None,
    default: str | None = None,
) -> str:
    """The model a chat turn uses: `requested`, else `AGENT_RUNTIME_MODEL`/`OPENAI_MODEL`,
    else `default`, else the first chat model of `available`.

    The chosen id must be a valid chat model id and, when a catalog is given, be in it.
    """
    ids = _ids(available) if available is not None else None
    values = _env(env)
    candidates = [
        (requested, "requested"),
        *((values.get(name), name) for name in MODEL_ENV_VARS),
        (default, "default"),
    ]
    for value, source in candidates:
        if value is None or (isinstance(value, str) and not value.strip()):
            continue
        model = validate_chat_model_id(value)
        if ids is not None and model not in ids:
            offered = ", ".join(ids[:10]) or "nothing"
            raise ModelCatalogError(
                f"model {model!r} ({source}) is not offered by the router (offers: {offered})"
            )
        return model
    for model_id in ids or ():
        try:
            return validate_chat_model_id(model_id)
        except ModelCatalogError:
            continue
    raise ConfigurationError(
        "no chat model: pass one, set AGENT_RUNTIME_MODEL or OPENAI_MODEL, "
        "or point at a router that offers one"
    )


def with_configured_models(
    models: Iterable[RouterModel], configured: Iterable[str]
) -> list[RouterModel]:
    """The catalog with the deployment's configured models first (in configured order, marked
    `configured=True`, added when the router does not list them), then the rest, no duplicates."""
    catalog: dict[str, RouterModel] = {}
    for i, m in enumerate(models):
        if not isinstance(m, RouterModel):
            raise InvalidArgumentError("must be a RouterModel", path=f"models[{i}]")
        catalog.setdefault(m.id, m)
    if isinstance(configured, str):
        raise InvalidArgumentError("must be a list of model ids, not one string", path="configured")
    out: list[RouterModel] = []
    pinned: set[str] = set()
    for model_id in configured:
        cleaned = validate_chat_model_id(model_id)
        if cleaned in pinned:
            continue
        pinned.add(cleaned)
        known = catalog.get(cleaned)
        out.append(
            replace(known, configured=True) if known else RouterModel(cleaned, configured=True)
        )
    out.extend(m for model_id, m in catalog.items() if model_id not in pinned)
    return out
