"""The `AgentExecutionBackend` protocol every backend implements."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Protocol, runtime_checkable

from ..types import AgentBackendContext, AgentBackendInput, RuntimeStreamEvent

__all__ = ["AgentExecutionBackend"]


@runtime_checkable
class AgentExecutionBackend(Protocol):
    """Executes one task turn as a stream of runtime events.

    Backends never raise on model output (they yield `error` events); transport failures raise
    `BackendTransportError`. Closing the returned iterator must release the connection.
    """

    @property
    def kind(self) -> str: ...

    def stream(
        self, input: AgentBackendInput, context: AgentBackendContext
    ) -> AsyncIterator[RuntimeStreamEvent]: ...
