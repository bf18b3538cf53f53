"""The `AgentExecutionBackend` protocol every backend implements (ORIGINAL §2.5)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any, Protocol, runtime_checkable

from ..types import AgentBackendContext, AgentBackendInput, RuntimeSession, RuntimeStreamEvent

__all__ = ["AgentExecutionBackend", "SessionfulBackend"]


@runtime_checkable
class AgentExecutionBackend(Protocol):
    """Runs one task as a stream of `RuntimeStreamEvent`s.

    Required: `kind` and `stream(input, ctx)`. Optional (see `SessionfulBackend`):
    `start(input, ctx)` and `resume(session, input, ctx)` return a `RuntimeSession`;
    `stop(session, reason)` ends one after a failure. Each optional method may be sync or
    async. Transport failures raise `BackendTransportError`; closing the iterator returned by
    `stream` must release its connection.
    """

    @property
    def kind(self) -> str: ...

    def stream(
        self, input: AgentBackendInput, ctx: AgentBackendContext
    ) -> AsyncIterator[RuntimeStreamEvent]: ...


class SessionfulBackend(AgentExecutionBackend, Protocol):
    """A backend that also creates, resumes and stops its own sessions."""

    def start(self, input: AgentBackendInput, ctx: AgentBackendContext) -> Any:
        """A new `RuntimeSession` (or an awaitable of one); `ctx.requested_session_id` is the
        id the caller asked for, `ctx.session` is None."""
        ...

    def resume(
        self, session: RuntimeSession, input: AgentBackendInput, ctx: AgentBackendContext
    ) -> Any:
        """The resumed `RuntimeSession` (or an awaitable of one)."""
        ...

    def stop(self, session: RuntimeSession, reason: str) -> Any:
        """End `session` after a failure (may return an awaitable)."""
        ...
