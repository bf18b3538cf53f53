"""Errors across the Temporal boundary: ours become non-retryable `ApplicationError`s named
after their class, and come back out of a workflow result as the same classes."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from temporalio.exceptions import ApplicationError

from ..errors import (
    AgentRuntimeError,
    DurableAwaitEventTimeoutError,
    DurableRunDivergenceError,
    DurableRunError,
    DurableRunInputMismatchError,
    DurableStepInputMismatchError,
    DurableTurnFailedError,
    DurableValueError,
    InvalidArgumentError,
    ValidationError,
)

__all__ = [
    "NON_RETRYABLE",
    "TemporalStepFailedError",
    "describe_error",
    "error_from_failure",
    "to_application_error",
]


class TemporalStepFailedError(DurableRunError):
    """A step's activity failed on Temporal after its retries; `error` is the last attempt's
    error (`{"type", "message", ...}`), `intent` and `step_index` say which step."""

    code = "step_failed"

    def __init__(
        self,
        message: str,
        *,
        run_id: str | None = None,
        error: Mapping[str, Any] | None = None,
        intent: str | None = None,
        step_index: int | None = None,
    ) -> None:
        super().__init__(message, run_id=run_id)
        self.error = dict(error) if error is not None else None
        self.intent = intent
        self.step_index = step_index

    def to_dict(self) -> dict[str, Any]:
        data = super().to_dict()
        data.update(error=self.error, intent=self.intent, stepIndex=self.step_index)
        return data


# errors a task or step raises that mean "this will not get better by retrying"
NON_RETRYABLE = (
    DurableValueError,
    InvalidArgumentError,
    ValidationError,
    DurableRunInputMismatchError,
)

_PLAIN: dict[str, type[DurableRunError]] = {
    cls.__name__: cls
    for cls in (
        DurableRunDivergenceError,
        DurableStepInputMismatchError,
        DurableAwaitEventTimeoutError,
        DurableRunInputMismatchError,
        DurableRunError,
    )
}


def describe_error(exc: BaseException) -> dict[str, Any]:
    """`{"type", "message"[, "code"]}`: an error's JSON form as a failed step records it."""
    if isinstance(exc, AgentRuntimeError):
        return exc.to_dict()
    return {"type": type(exc).__name__, "message": str(exc)}


def to_application_error(exc: BaseException, *, non_retryable: bool = True) -> ApplicationError:
    """`exc` as the failure Temporal records: its class name as the type, its JSON form as
    the details."""
    data = describe_error(exc)
    if isinstance(exc, DurableValueError | InvalidArgumentError):
        data.update(path=exc.path, reason=exc.reason)
    message = exc.message if isinstance(exc, AgentRuntimeError) else str(exc)
    return ApplicationError(message, data, type=type(exc).__name__, non_retryable=non_retryable)


def _details(failure: ApplicationError) -> dict[str, Any]:
    details = failure.details
    if details and isinstance(details[0], Mapping):
        return dict(details[0])
    return {}


def error_from_failure(
    failure: BaseException, *, run_id: str | None = None
) -> AgentRuntimeError | None:
    """Our error for a Temporal failure that carries one (by type name), else None."""
    if not isinstance(failure, ApplicationError) or failure.type is None:
        return None
    data = _details(failure)
    kind = failure.type
    if kind == "DurableValueError":
        return DurableValueError(
            str(data.get("reason", failure.message)), path=str(data.get("path", "$"))
        )
    if kind == "InvalidArgumentError":
        return InvalidArgumentError(
            str(data.get("reason", failure.message)), path=str(data.get("path", "$"))
        )
    if kind == "TemporalStepFailedError":
        error = data.get("error")
        index = data.get("stepIndex")
        return TemporalStepFailedError(
            failure.message,
            run_id=run_id,
            error=error if isinstance(error, Mapping) else None,
            intent=data.get("intent") if isinstance(data.get("intent"), str) else None,
            step_index=index if type(index) is int else None,
        )
    if kind == "DurableTurnFailedError":
        error = data.get("error")
        return DurableTurnFailedError(
            failure.message, run_id=run_id, error=error if isinstance(error, dict) else None
        )
    cls = _PLAIN.get(kind)
    if cls is None:
        return None
    code = data.get("code")
    if cls is DurableRunError:
        return DurableRunError(failure.message, code=str(code) if code else None, run_id=run_id)
    return cls(failure.message, run_id=run_id)
