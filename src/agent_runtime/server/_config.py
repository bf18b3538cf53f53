"""Server defaults: where runs are stored and which backend answers, from the environment.

`OPENAI_BASE_URL` (+ `OPENAI_API_KEY`, `OPENAI_MODEL`) selects an OpenAI-compatible endpoint;
without it the server answers with the `echo` backend, so it works on a fresh clone.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from ..backends import AgentExecutionBackend, create_echo_backend, create_openai_compatible_backend
from ..errors import ConfigurationError

__all__ = ["DEFAULT_MODEL", "DEFAULT_STORE_URL", "BackendConfig", "backend_from_env"]

DEFAULT_STORE_URL = "sqlite:///./.agent-runtime/runs.db"
DEFAULT_MODEL = "gpt-4o-mini"


@dataclass(frozen=True, slots=True)
class BackendConfig:
    """A backend plus what `/api/models` needs to list the endpoint's models."""

    backend: AgentExecutionBackend
    model: str
    base_url: str | None = None
    api_key: str | None = None


def backend_from_env(env: Mapping[str, str] | None = None) -> BackendConfig:
    """The OpenAI-compatible endpoint named by `OPENAI_BASE_URL`, else the echo backend."""
    values = os.environ if env is None else env
    base_url = values.get("OPENAI_BASE_URL", "").strip()
    if not base_url:
        return BackendConfig(backend=create_echo_backend(), model="echo")
    api_key = values.get("OPENAI_API_KEY") or None
    model = values.get("OPENAI_MODEL", "").strip() or DEFAULT_MODEL
    try:
        backend = create_openai_compatible_backend(base_url, api_key, model)
    except ConfigurationError as exc:
        raise ConfigurationError(f"OPENAI_BASE_URL/OPENAI_MODEL: {exc.message}") from None
    return BackendConfig(backend=backend, model=model, base_url=base_url, api_key=api_key)
