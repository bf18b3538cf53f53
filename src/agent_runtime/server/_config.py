"""Server defaults: where runs are stored and which backend answers, from the environment.

`OPENAI_BASE_URL` (+ `OPENAI_API_KEY`, `OPENAI_MODEL`) selects an OpenAI-compatible endpoint;
the URL includes its version path as the OpenAI SDK's does (`https://api.openai.com/v1`:
requests go to `<base>/chat/completions`). Without it the server answers with the `echo`
backend, so it works on a fresh clone.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..backends import AgentExecutionBackend, create_echo_backend
from ..errors import AgentRuntimeError, ConfigurationError
from ..sanitize import sanitize_text

if TYPE_CHECKING:
    import httpx2

    from ._turns import TurnRunner

__all__ = ["DEFAULT_MODEL", "DEFAULT_STORE_URL", "BackendConfig", "backend_from_env"]

DEFAULT_STORE_URL = "sqlite:///./.agent-runtime/runs.db"
DEFAULT_MODEL = "gpt-4o-mini"


@dataclass(frozen=True, slots=True)
class BackendConfig:
    """A backend plus what `/api/models` needs to list the endpoint's models.

    `for_model(model_id)` gives the backend that answers a turn asking for another model than
    `model` (None: the request's model is ignored); `http_client` is the connection pool those
    backends share, closed by `aclose()`. `runner`, when set, builds the service's
    `TurnRunner` instead (`AGENT_RUNTIME_ENGINE=temporal`: Temporal workers drive turns)."""

    backend: AgentExecutionBackend
    model: str
    base_url: str | None = None
    api_key: str | None = None
    for_model: Callable[[str], AgentExecutionBackend] | None = None
    http_client: httpx2.AsyncClient | None = None
    runner: Callable[..., TurnRunner] | None = None

    def backend_for(self, model: str | None) -> AgentExecutionBackend:
        """The backend for a turn that asked for `model` (None: the default one)."""
        if model is None or model == self.model or self.for_model is None:
            return self.backend
        return self.for_model(model)

    async def aclose(self) -> None:
        """Release the connections: the shared client, else the backend's own (`aclose`)."""
        if self.http_client is not None:
            await self.http_client.aclose()
            return
        close: Any = getattr(self.backend, "aclose", None)
        if callable(close):
            await close()


def backend_from_env(env: Mapping[str, str] | None = None) -> BackendConfig:
    """The OpenAI-compatible endpoint named by `OPENAI_BASE_URL`, else the echo backend."""
    values = os.environ if env is None else env
    runner = engine_runner(values)
    base_url = values.get("OPENAI_BASE_URL", "").strip()
    if not base_url:
        return BackendConfig(backend=create_echo_backend(), model="echo", runner=runner)
    api_key = values.get("OPENAI_API_KEY") or None
    model = values.get("OPENAI_MODEL", "").strip() or DEFAULT_MODEL
    import httpx2  # only a server with an endpoint loads the HTTP client

    from ..backends.openai_compatible import create_openai_compatible_backend

    client = httpx2.AsyncClient(timeout=httpx2.Timeout(30.0, read=None))

    def for_model(model_id: str) -> AgentExecutionBackend:
        return create_openai_compatible_backend(
            api_key=api_key or "", base_url=base_url, model=model_id, http_client=client
        )

    try:
        backend = for_model(model)
    except AgentRuntimeError as exc:  # the message may quote the URL: never its password
        raise ConfigurationError(
            sanitize_text(f"OPENAI_BASE_URL/OPENAI_MODEL: {exc.message}")
        ) from None
    return BackendConfig(
        backend=backend,
        model=model,
        base_url=base_url,
        api_key=api_key,
        for_model=for_model,
        http_client=client,
        runner=runner,
    )


def engine_runner(values: Mapping[str, str]) -> Callable[..., TurnRunner] | None:
    """`AGENT_RUNTIME_ENGINE`: `local` (None: this process drives its turns) or `temporal`
    (`agent_runtime.temporal.server`: workers on `TEMPORAL_ADDRESS` drive them)."""
    engine = values.get("AGENT_RUNTIME_ENGINE", "").strip() or "local"
    if engine == "local":
        return None
    if engine != "temporal":
        raise ConfigurationError(f"AGENT_RUNTIME_ENGINE must be local or temporal, not {engine!r}")
    try:
        from ..temporal.server import temporal_runner_from_env
    except ImportError as exc:  # the `temporal` extra is not installed
        raise ConfigurationError(
            f"AGENT_RUNTIME_ENGINE=temporal needs the temporal extra: {exc}"
        ) from None
    return temporal_runner_from_env(values)
