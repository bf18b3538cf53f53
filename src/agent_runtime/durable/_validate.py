"""Boundary checks shared by every store: ids, positions, kinds, leases."""

from __future__ import annotations

from typing import Any

from ..errors import DurableValueError
from ._records import RUN_STATUSES, STEP_KINDS, RunStatus, StepKind

MAX_ID_LENGTH = 512


def check_id(value: Any, name: str) -> str:
    """A non-empty string without NUL, at most 512 characters."""
    if not isinstance(value, str) or not value:
        raise DurableValueError(f"{name} must be a non-empty string", path=name)
    if len(value) > MAX_ID_LENGTH:
        raise DurableValueError(f"{name} is longer than {MAX_ID_LENGTH} characters", path=name)
    if "\x00" in value:
        raise DurableValueError(f"{name} contains a NUL character", path=name)
    return value


def check_index(value: Any) -> int:
    if type(value) is not int or value < 0:
        raise DurableValueError("step_index must be an int >= 0", path="step_index")
    return value


def check_lease_ms(value: Any) -> int:
    if type(value) is not int or value <= 0:
        raise DurableValueError("lease_ms must be a positive int", path="lease_ms")
    return value


def check_kind(value: Any) -> StepKind:
    if value not in STEP_KINDS:
        raise DurableValueError(
            f"kind must be one of {sorted(STEP_KINDS)}, got {value!r}", path="kind"
        )
    return value  # type: ignore[no-any-return]


def check_status(value: Any) -> RunStatus:
    if value not in RUN_STATUSES:
        raise DurableValueError(
            f"status must be one of {sorted(RUN_STATUSES)}, got {value!r}", path="status"
        )
    return value  # type: ignore[no-any-return]


def check_error(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict) or not isinstance(value.get("message"), str):
        raise DurableValueError("error must be a dict with a string `message`", path="error")
    return value


def error_to_dict(exc: BaseException) -> dict[str, Any]:
    """The JSON form of an exception stored on a failed step or run."""
    to_dict = getattr(exc, "to_dict", None)
    if callable(to_dict):
        data = to_dict()
        if isinstance(data, dict) and isinstance(data.get("message"), str):
            return data
    return {"type": type(exc).__name__, "message": str(exc) or type(exc).__name__}
