"""Execution backends (ORIGINAL §7): the protocol, the iterable and echo backends, the
sandbox prompt backend with its HTTP orchestrator client, the OpenAI-compatible backend, and
the common raw-event mapping they share."""

from typing import TYPE_CHECKING

from .._lazy import lazy_exports

if TYPE_CHECKING:  # the names, for type checkers; at run time each loads on first use
    from ._protocol import AgentExecutionBackend, SessionfulBackend
    from ._retry import DEFAULT_RETRY_STATUSES, BackendRetryPolicy, parse_retry_after
    from .iterable import IterableBackend, create_echo_backend, create_iterable_backend
    from .mapping import map_raw_backend_event
    from .openai_compatible import OpenAICompatibleBackend, create_openai_compatible_backend
    from .pricing import ModelPrice
    from .sandbox import SandboxPromptBackend, create_sandbox_prompt_backend
    from .sandbox_http import HttpSandboxClient, SandboxEvent

# every name above, by the module it comes from (tests/core/test_lazy_exports.py checks both agree)
_EXPORTS: dict[str, tuple[str, ...]] = {
    "._protocol": ("AgentExecutionBackend", "SessionfulBackend"),
    "._retry": ("DEFAULT_RETRY_STATUSES", "BackendRetryPolicy", "parse_retry_after"),
    ".iterable": ("IterableBackend", "create_echo_backend", "create_iterable_backend"),
    ".mapping": ("map_raw_backend_event",),
    ".openai_compatible": ("OpenAICompatibleBackend", "create_openai_compatible_backend"),
    ".pricing": ("ModelPrice",),
    ".sandbox": ("SandboxPromptBackend", "create_sandbox_prompt_backend"),
    ".sandbox_http": ("HttpSandboxClient", "SandboxEvent"),
}

__all__ = [
    "DEFAULT_RETRY_STATUSES",
    "AgentExecutionBackend",
    "BackendRetryPolicy",
    "HttpSandboxClient",
    "IterableBackend",
    "ModelPrice",
    "OpenAICompatibleBackend",
    "SandboxEvent",
    "SandboxPromptBackend",
    "SessionfulBackend",
    "create_echo_backend",
    "create_iterable_backend",
    "create_openai_compatible_backend",
    "create_sandbox_prompt_backend",
    "map_raw_backend_event",
    "parse_retry_after",
]

if not TYPE_CHECKING:
    __getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())
