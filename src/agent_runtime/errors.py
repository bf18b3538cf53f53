"""The error hierarchy: every error the package raises derives from `AgentRuntimeError`.

Each error carries a stable machine-readable `code` so HTTP layers and logs can branch on it
without matching message text.
"""

from __future__ import annotations

from typing import Any, Literal

__all__ = [
    "AGENT_EVAL_ERROR_CODES",
    "AgentEvalError",
    "AgentEvalErrorCode",
    "AgentRuntimeError",
    "BackendTransportError",
    "CaptureIntegrityError",
    "ChatTurnError",
    "ConfigError",
    "ConfigurationError",
    "ConversationOwnerError",
    "DurableAwaitEventTimeoutError",
    "DurableRunDivergenceError",
    "DurableRunError",
    "DurableRunInputMismatchError",
    "DurableRunLeaseHeldError",
    "DurableRunLeaseLostError",
    "DurableRunNotFoundError",
    "DurableStepInputMismatchError",
    "DurableTurnFailedError",
    "DurableValueError",
    "EventParseError",
    "InvalidArgumentError",
    "JudgeError",
    "ModelCatalogError",
    "NotFoundError",
    "ReplayError",
    "RuntimeRunStateError",
    "SessionMismatchError",
    "StoreUnavailableError",
    "ValidationError",
    "VerificationError",
]


class AgentRuntimeError(Exception):
    """Root of every error raised by `agent_runtime`."""

    code: str = "agent_runtime_error"

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe description used when an error crosses a store or the wire."""
        return {"type": type(self).__name__, "code": self.code, "message": self.message}


class ConfigurationError(AgentRuntimeError):
    """A setting, URL or option is missing or malformed."""

    code = "configuration_error"


class StoreUnavailableError(AgentRuntimeError):
    """A store could not be reached or opened (connection refused, unreadable file)."""

    code = "store_unavailable"


# --- durable-run substrate -------------------------------------------------------------------


class DurableRunError(AgentRuntimeError):
    """Base class of durable-run errors; `code` tells which rule was broken."""

    code = "durable_run_error"

    def __init__(self, message: str, *, code: str | None = None, run_id: str | None = None) -> None:
        super().__init__(message, code=code)
        self.run_id = run_id


class DurableRunNotFoundError(DurableRunError):
    """The run id is unknown to the store."""

    code = "run_not_found"


class DurableRunLeaseHeldError(DurableRunError):
    """Another live worker holds the run's lease."""

    code = "lease_held"

    def __init__(
        self,
        message: str,
        *,
        run_id: str | None = None,
        holder: str | None = None,
        expires_at_ms: int | None = None,
    ) -> None:
        super().__init__(message, run_id=run_id)
        self.holder = holder
        self.expires_at_ms = expires_at_ms


class DurableRunLeaseLostError(DurableRunError):
    """This worker's lease was taken over; its commits are refused (fencing)."""

    code = "lease_lost"


class DurableRunInputMismatchError(DurableRunError):
    """The run id exists with a different manifest hash."""

    code = "manifest_mismatch"


class DurableRunDivergenceError(DurableRunError):
    """The task asked for a different step than the one recorded at this position."""

    code = "step_divergence"


class DurableStepInputMismatchError(DurableRunError):
    """The step at this position was recorded with a different input fingerprint."""

    code = "step_input_mismatch"


class DurableAwaitEventTimeoutError(DurableRunError):
    """`ctx.await_event` saw no event for its key before the timeout."""

    code = "await_event_timeout"


class DurableValueError(DurableRunError, ValueError):
    """A value is not strict JSON; `path` names where (`input.items[3].price`)."""

    code = "invalid_value"

    def __init__(self, message: str, *, path: str = "$") -> None:
        super().__init__(f"{path}: {message}")
        self.path = path
        self.reason = message


# --- the agent-eval family (ORIGINAL §8): contract errors with the original's codes -----------

AgentEvalErrorCode = Literal[
    "validation", "not_found", "config", "capture_integrity", "judge", "verification", "replay"
]
AGENT_EVAL_ERROR_CODES: frozenset[str] = frozenset(
    ("validation", "not_found", "config", "capture_integrity", "judge", "verification", "replay")
)


class AgentEvalError(AgentRuntimeError):
    """A contract error of the original's agent-eval family: `code` is one of
    `AGENT_EVAL_ERROR_CODES`; `cause` is the underlying error, when there is one."""

    code = "validation"

    def __init__(
        self, code: AgentEvalErrorCode | str, message: str, *, cause: BaseException | None = None
    ) -> None:
        if code not in AGENT_EVAL_ERROR_CODES:
            raise ValueError(f"unknown agent-eval error code {code!r}")
        super().__init__(message, code=code)
        self.cause = cause
        if cause is not None:
            self.__cause__ = cause

    @property
    def name(self) -> str:
        """The class name, as the original's `error.name`."""
        return type(self).__name__


class _CodedEvalError(AgentEvalError):
    """A member of the family whose code is fixed by its class."""

    def __init__(self, message: str, *, cause: BaseException | None = None) -> None:
        super().__init__(type(self).code, message, cause=cause)


class ValidationError(_CodedEvalError):
    """An argument or record breaks a rule of the contract."""

    code = "validation"


class NotFoundError(_CodedEvalError):
    """A referenced record does not exist."""

    code = "not_found"


class ConfigError(_CodedEvalError):
    """A configuration or a backend it names is unusable."""

    code = "config"


class CaptureIntegrityError(_CodedEvalError):
    """A captured trace or record is inconsistent."""

    code = "capture_integrity"


class JudgeError(_CodedEvalError):
    """An evaluator (judge) failed."""

    code = "judge"


class VerificationError(_CodedEvalError):
    """A verification step failed."""

    code = "verification"


class ReplayError(_CodedEvalError):
    """A recorded run could not be replayed."""

    code = "replay"


# --- tasks, backends, sessions, telemetry ------------------------------------------------------


class BackendTransportError(ConfigError):
    """A backend could not be reached or answered with an error status (code `config`, as the
    original). `status` is the HTTP status (0 when no response arrived), `body` the upstream
    body cut to 2 KiB (diagnostic only); `retryable`/`attempts` are ours."""

    def __init__(
        self,
        backend: str,
        message: str,
        *,
        status: int | None = None,
        body: str | None = None,
        cause: BaseException | None = None,
        retryable: bool = False,
        attempts: int = 1,
    ) -> None:
        super().__init__(message, cause=cause)
        self.backend = backend
        self.status = status
        self.body = body[:2048] if isinstance(body, str) else None
        self.retryable = retryable
        self.attempts = attempts

    def to_dict(self) -> dict[str, Any]:
        data = super().to_dict()
        data.update(
            backend=self.backend,
            status=self.status,
            retryable=self.retryable,
            attempts=self.attempts,
        )
        return data


class SessionMismatchError(ValidationError):
    """A session is resumed with a backend of another kind than the one that created it."""

    def __init__(self, session_backend: str, requested_backend: str) -> None:
        super().__init__(
            f"Cannot resume {session_backend} session with {requested_backend} backend"
        )
        self.session_backend = session_backend
        self.requested_backend = requested_backend


class RuntimeRunStateError(ValidationError):
    """A runtime-run handle was asked for a transition its state does not allow."""


class ChatTurnError(AgentRuntimeError):
    """A sandbox chat turn failed (`run_chat_turn`, `sandbox_as_chat_turn_target`); `status`
    is the sandbox's HTTP status when it answered. Not an agent-eval error, as the original."""

    code = "chat_turn"

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class ConversationOwnerError(AgentRuntimeError):
    """A conversation id of the server's history is owned by another tenant or user."""

    code = "conversation_owner_mismatch"


class EventParseError(AgentRuntimeError, ValueError):
    """A serialized event is not valid (unknown type, missing or mistyped field)."""

    code = "event_parse_error"


class InvalidArgumentError(AgentRuntimeError, ValueError):
    """A public function got a malformed argument; `path` names which one."""

    code = "invalid_argument"

    def __init__(self, message: str, *, path: str = "$") -> None:
        super().__init__(f"{path}: {message}")
        self.path = path
        self.reason = message


class ModelCatalogError(AgentRuntimeError):
    """A router's model list is malformed, or a model id is unusable for chat."""

    code = "model_catalog"


# --- durable chat turns ------------------------------------------------------------------------


class DurableTurnFailedError(DurableRunError):
    """The durable turn a caller re-attached to ended failed; `error` is the recorded error."""

    code = "turn_failed"

    def __init__(
        self, message: str, *, run_id: str | None = None, error: dict[str, Any] | None = None
    ) -> None:
        super().__init__(message, run_id=run_id)
        self.error = error
