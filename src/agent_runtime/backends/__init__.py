"""Execution backends: the protocol, scripted/echo, OpenAI-compatible and sandbox backends."""

from ._protocol import AgentExecutionBackend
from ._retry import NEVER_RETRY_STATUSES, BackendRetryPolicy, parse_retry_after
from .iterable import IterableBackend, create_echo_backend, create_iterable_backend
from .openai_compatible import (
    STREAM_INTERRUPTED,
    OpenAICompatibleBackend,
    create_openai_compatible_backend,
)
from .sandbox import (
    HttpSandboxClient,
    SandboxClient,
    SandboxEvent,
    SandboxPromptBackend,
    create_sandbox_prompt_backend,
)

__all__ = [
    "NEVER_RETRY_STATUSES",
    "STREAM_INTERRUPTED",
    "AgentExecutionBackend",
    "BackendRetryPolicy",
    "HttpSandboxClient",
    "IterableBackend",
    "OpenAICompatibleBackend",
    "SandboxClient",
    "SandboxEvent",
    "SandboxPromptBackend",
    "create_echo_backend",
    "create_iterable_backend",
    "create_openai_compatible_backend",
    "create_sandbox_prompt_backend",
    "parse_retry_after",
]
