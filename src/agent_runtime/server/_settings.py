"""`ServerSettings`: what a deployment decides about browsers, limits, models, redaction and
retention, validated once when the app is built."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Literal

from ..errors import ConfigurationError
from ..models import clean_model_id, is_well_formed_model_id
from ..sanitize import RuntimeTelemetryOptions

__all__ = ["ServerSettings"]

LogFormat = Literal["text", "json"]


def _positive_int(name: str, value: object, *, optional: bool = False) -> None:
    if value is None and optional:
        return
    if type(value) is not int or value < 1:
        raise ConfigurationError(f"{name} must be a positive int{' or None' if optional else ''}")


def _seconds(name: str, value: object) -> None:
    if not isinstance(value, int | float) or isinstance(value, bool):
        raise ConfigurationError(f"{name} must be a positive number of seconds")
    if not math.isfinite(value) or value <= 0:
        raise ConfigurationError(f"{name} must be a positive number of seconds")


def _strings(name: str, value: object) -> tuple[str, ...]:
    if isinstance(value, str) or not isinstance(value, Sequence):
        raise ConfigurationError(f"{name} must be a sequence of strings")
    out = tuple(v.strip() for v in value if isinstance(v, str) and v.strip())
    if len(out) != len(value):
        raise ConfigurationError(f"{name} must hold non-blank strings only")
    return out


@dataclass(frozen=True, slots=True)
class ServerSettings:
    """Deployment choices of the chat service (every default is the safe one).

    Browsers: `allowed_origins` may call the API besides the page's own origin (CORS is
    answered for them only; `*` allows any); `allowed_hosts` may appear in `Host` besides the
    address the request arrived on (`*.example.com` matches subdomains; `*` any host).
    Limits: `max_body_bytes` and `max_message_chars` (413 beyond), `max_messages`,
    `max_turns_per_tenant` running at once (429 beyond), `quota_bytes` stored per tenant
    (None: no quota), `retention` (None: keep runs; else runs idle longer are pruned every
    `retention_interval_s`), `body_timeout_s` to receive a whole body (408 after).
    Models and prompts: `models` is the allowlist (None: the configured model only);
    `allow_client_system` admits `system` messages from clients.
    Redaction: clients always get sanitized events (`telemetry`'s projections plus secret
    scrubbing); `store_raw` keeps the turn's input and final text unscrubbed in the store.
    Health: `/readyz` fails while the disk of a file-backed store has less than
    `min_free_bytes` free. `log_format` is `text` or `json` (one line per request or
    failure)."""

    allowed_origins: tuple[str, ...] = ()
    allowed_hosts: tuple[str, ...] = ()
    models: tuple[str, ...] | None = None
    allow_client_system: bool = False
    store_raw: bool = False
    telemetry: RuntimeTelemetryOptions = field(default_factory=RuntimeTelemetryOptions)
    max_body_bytes: int = 1024 * 1024
    max_message_chars: int = 100_000
    max_messages: int = 200
    max_turns_per_tenant: int = 8
    quota_bytes: int | None = 256 * 1024 * 1024
    retention: timedelta | None = None
    retention_interval_s: float = 3600.0
    body_timeout_s: float = 15.0
    min_free_bytes: int = 8 * 1024 * 1024
    log_format: LogFormat = "text"

    def __post_init__(self) -> None:
        object.__setattr__(
            self, "allowed_origins", _strings("allowed_origins", self.allowed_origins)
        )
        for origin in self.allowed_origins:
            if origin != "*" and not origin.startswith(("http://", "https://")):
                raise ConfigurationError(
                    f"allowed origin {origin!r} must be scheme://host[:port] or *"
                )
        object.__setattr__(self, "allowed_hosts", _strings("allowed_hosts", self.allowed_hosts))
        if self.models is not None:
            models = _strings("models", self.models)
            for model in models:
                cleaned = clean_model_id(model)
                if cleaned is None or not is_well_formed_model_id(cleaned):
                    raise ConfigurationError(f"model id {model!r} is malformed")
            if not models:
                raise ConfigurationError("models must name at least one model (or be None)")
            object.__setattr__(self, "models", models)
        for flag in ("allow_client_system", "store_raw"):
            if type(getattr(self, flag)) is not bool:
                raise ConfigurationError(f"{flag} must be a bool")
        if not isinstance(self.telemetry, RuntimeTelemetryOptions):
            raise ConfigurationError("telemetry must be RuntimeTelemetryOptions")
        for name in ("max_body_bytes", "max_message_chars", "max_messages"):
            _positive_int(name, getattr(self, name))
        _positive_int("max_turns_per_tenant", self.max_turns_per_tenant)
        _positive_int("min_free_bytes", self.min_free_bytes)
        _positive_int("quota_bytes", self.quota_bytes, optional=True)
        if self.retention is not None and (
            not isinstance(self.retention, timedelta) or self.retention <= timedelta(0)
        ):
            raise ConfigurationError("retention must be a positive timedelta or None")
        _seconds("retention_interval_s", self.retention_interval_s)
        _seconds("body_timeout_s", self.body_timeout_s)
        if self.log_format not in ("text", "json"):
            raise ConfigurationError("log_format must be text or json")
