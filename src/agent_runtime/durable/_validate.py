"""Boundary checks shared by every store: ids, positions, kinds, leases."""

from __future__ import annotations

from typing import Any

from ..errors import (
    DurableRunDivergenceError,
    DurableRunError,
    DurableRunInputMismatchError,
    DurableRunLeaseHeldError,
    DurableRunLeaseLostError,
    DurableRunNotFoundError,
    DurableValueError,
)
from ..jsoncanon import ensure_json
from ._manifest import DurableRunManifest
from ._records import RUN_STATUSES, STEP_KINDS, RunStatus, StepKind

MAX_ID_LENGTH = 512
# positions (and step_count = position + 1) are 32-bit integer columns in PostgreSQL; every
# store holds the same bound
MAX_STEP_INDEX = 2**31 - 2
# a lease is renewed by a heartbeat, so it never needs to be long; this bound keeps
# `now + lease_ms` a representable time (datetime, 64-bit columns) in every store
MAX_LEASE_MS = 365 * 24 * 3600 * 1000


def check_id(value: Any, name: str) -> str:
    """A non-empty string of valid Unicode text without NUL, at most 512 characters."""
    if not isinstance(value, str) or not value:
        raise DurableValueError(f"{name} must be a non-empty string", path=name)
    if len(value) > MAX_ID_LENGTH:
        raise DurableValueError(f"{name} is longer than {MAX_ID_LENGTH} characters", path=name)
    if "\x00" in value:
        raise DurableValueError(f"{name} contains a NUL character", path=name)
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise DurableValueError(f"{name} contains a lone surrogate", path=name) from None
    return value


def check_index(value: Any) -> int:
    if type(value) is not int or not 0 <= value <= MAX_STEP_INDEX:
        raise DurableValueError(
            f"step_index must be an int in 0..{MAX_STEP_INDEX}", path="step_index"
        )
    return value


def check_lease_ms(value: Any) -> int:
    if type(value) is not int or not 0 < value <= MAX_LEASE_MS:
        raise DurableValueError(
            f"lease_ms must be a positive int of at most {MAX_LEASE_MS} (a year)", path="lease_ms"
        )
    return value


def check_after_seq(value: Any) -> int | None:
    """A stream cursor: None (from the start) or an int."""
    if value is not None and type(value) is not int:
        raise DurableValueError("after_seq must be an int or None", path="after_seq")
    return value


def check_limit(value: Any, *, optional: bool) -> int | None:
    """A result-count bound: an int >= 0 (or None where "no bound" is allowed)."""
    if value is None and optional:
        return None
    if type(value) is not int or value < 0:
        allowed = "an int >= 0 or None" if optional else "an int >= 0"
        raise DurableValueError(f"limit must be {allowed}", path="limit")
    return value


def check_kind(value: Any) -> StepKind:
    if type(value) is not str or value not in STEP_KINDS:
        raise DurableValueError(
            f"kind must be one of {sorted(STEP_KINDS)}, got {value!r}", path="kind"
        )
    return value  # type: ignore[return-value]


def check_step_call(intent: Any, args: Any, kind: Any) -> None:
    """The arguments of `ctx.step` every `DurableContext` takes: a non-empty intent, `args` a
    tuple or list, a known kind."""
    if type(intent) is not str or not intent:
        raise DurableValueError("step intent must be a non-empty string", path="intent")
    if not isinstance(args, tuple | list):
        raise DurableValueError("step args must be a tuple or a list", path="args")
    check_kind(kind)


def check_status(value: Any) -> RunStatus:
    if type(value) is not str or value not in RUN_STATUSES:
        raise DurableValueError(
            f"status must be one of {sorted(RUN_STATUSES)}, got {value!r}", path="status"
        )
    return value  # type: ignore[return-value]


END_STATUSES: frozenset[str] = frozenset(("completed", "failed", "suspended"))


def check_end_status(value: Any) -> RunStatus:
    """The status `end_run` may set: a run it releases is completed, failed or suspended."""
    if type(value) is not str or value not in END_STATUSES:
        raise DurableValueError(
            f"end_run status must be one of {sorted(END_STATUSES)}, got {value!r}",
            path="status",
        )
    return value  # type: ignore[return-value]


def check_error(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict) or not isinstance(value.get("message"), str):
        raise DurableValueError("error must be a dict with a string `message`", path="error")
    return value


def error_to_dict(exc: BaseException) -> dict[str, Any]:
    """The JSON form of an exception stored on a failed step or run.

    Never raises: an error that resists description (a failing `__str__` or `to_dict`, a
    lone surrogate from `surrogateescape`, non-JSON details) is still recorded, so the task's
    own exception is what propagates.
    """
    to_dict = getattr(exc, "to_dict", None)
    if callable(to_dict):
        try:
            data = to_dict()
            if isinstance(data, dict) and isinstance(data.get("message"), str):
                ensure_json(data, root="error")
                return data
        except Exception:  # fall back to the type and message below
            pass
    name = _valid_text(type(exc).__name__)
    try:
        message = str(exc)
    except Exception as err:
        message = f"<{name}: str() raised {type(err).__name__}>"
    return {"type": name, "message": _valid_text(message) or name}


def _valid_text(text: str) -> str:
    """`text` with lone surrogates escaped (`\\udcff`), so it can be stored as JSON."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-8", "backslashreplace").decode("utf-8")
    return text


def check_epoch(value: Any) -> int | None:
    """A lease epoch (fencing token) is None or an int >= 0."""
    if value is not None and (type(value) is not int or value < 0):
        raise DurableValueError("lease_epoch must be an int >= 0 or None", path="lease_epoch")
    return value


def check_start(run_id: Any, manifest: Any, worker_id: Any, lease_ms: Any) -> None:
    """The boundary of `start_or_resume`, the same on every store."""
    check_id(run_id, "run_id")
    check_id(worker_id, "worker_id")
    check_lease_ms(lease_ms)
    if not isinstance(manifest, DurableRunManifest):
        raise DurableRunError("manifest must be a DurableRunManifest", run_id=run_id)


def not_found(run_id: str) -> DurableRunNotFoundError:
    """The error every store raises when a write names a run that does not exist."""
    return DurableRunNotFoundError(f"run {run_id!r} does not exist", run_id=run_id)


def mismatch(run_id: str) -> DurableRunInputMismatchError:
    """`start_or_resume` of an existing run with another manifest."""
    return DurableRunInputMismatchError(
        f"run {run_id!r} exists with another manifest", run_id=run_id
    )


def lease_held(
    run_id: str, holder: str | None, expires_at_ms: int | None
) -> DurableRunLeaseHeldError:
    """`start_or_resume` of a run whose lease another live worker holds."""
    return DurableRunLeaseHeldError(
        f"run {run_id!r} is leased by {holder!r}",
        run_id=run_id,
        holder=holder,
        expires_at_ms=expires_at_ms,
    )


def step_completed(run_id: str, step_index: int) -> DurableRunError:
    """A write to a position whose step is completed: completed steps are final."""
    return DurableRunError(
        f"step {step_index} of run {run_id!r} is already completed",
        code="step_completed",
        run_id=run_id,
    )


def step_not_begun(run_id: str, step_index: int) -> DurableRunError:
    """A completion or failure without an intent at a position that holds no step."""
    return DurableRunError(
        f"step {step_index} of run {run_id!r} was not begun; pass its intent",
        code="step_not_begun",
        run_id=run_id,
    )


def lease_lost(
    run_id: str,
    worker_id: str | None,
    lease_epoch: int | None,
    holder: str | None,
    holder_epoch: int | None = None,
) -> DurableRunLeaseLostError:
    """The error every store raises when a fenced write finds another claim current."""
    current = f"holder: {holder!r}" + ("" if holder_epoch is None else f", epoch {holder_epoch}")
    return DurableRunLeaseLostError(
        f"worker {worker_id!r} (lease epoch {lease_epoch}) no longer holds the lease of "
        f"run {run_id!r} ({current})",
        run_id=run_id,
    )


def diverged(run_id: str, step_index: int, recorded: str, asked: str) -> DurableRunDivergenceError:
    """The error every store raises when a position recorded under one intent is written
    under another, whatever the recorded step's status (ORIGINAL §18.4 `beginStep`)."""
    return DurableRunDivergenceError(
        f"step {step_index}: intent changed ({recorded!r} -> {asked!r})", run_id=run_id
    )
