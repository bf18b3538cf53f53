"""`start_runtime_run` and its handle (ORIGINAL §12): count the model calls of a production run,
complete it once with a terminal status, and persist its row."""

from __future__ import annotations

import inspect
import math
import secrets
import string
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from ..errors import EventParseError, RuntimeRunStateError, ValidationError
from ..jsoncanon import ensure_json
from ..types import AgentTaskSpec, LlmCallEvent, parse_event
from ._records import (
    RUNTIME_RUN_STATUSES,
    RuntimeRunCost,
    RuntimeRunPersistenceAdapter,
    RuntimeRunRow,
    RuntimeRunStatus,
    is_finite_number,
)

__all__ = ["RuntimeRunHandle", "start_runtime_run"]

_BASE36 = string.digits + string.ascii_lowercase
_COST_FIELDS = ("tokens_in", "tokens_out", "cost_usd", "llm_calls")


def _wall_clock_ms() -> int:
    return time.time_ns() // 1_000_000


def _iso(ms: float) -> str:
    """Epoch milliseconds as JavaScript's `toISOString()` writes them."""
    dt = datetime.fromtimestamp(math.floor(ms) / 1000, UTC)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"


def _num(value: int | float) -> int | float:
    """An integral float as an int, so counts stay integers on the wire."""
    return int(value) if isinstance(value, float) and value.is_integer() else value


def _need_str(value: Any, name: str) -> None:
    if value is not None and not isinstance(value, str):
        raise ValidationError(f"{name} must be a string or None")


def _json_mapping(value: Any, name: str) -> dict[str, Any] | None:
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise ValidationError(f"{name} must be a mapping or None")
    out = dict(value)
    try:
        ensure_json(out, root=name)
    except Exception as exc:  # DurableValueError names the bad path
        raise ValidationError(f"{name} is not JSON: {exc}") from None
    return out


class RuntimeRunHandle:
    """A live production run: `observe` model calls, read `cost()`, `complete` it once, then
    `to_row()` / `await persist()`. `status` is live."""

    __slots__ = (
        "_adapter",
        "_completed_at",
        "_cost_usd",
        "_error",
        "_llm_calls",
        "_metadata",
        "_now",
        "_result_summary",
        "_started_at",
        "_status",
        "_tokens_in",
        "_tokens_out",
        "agent_id",
        "id",
        "scenario_id",
        "session_id",
        "task_spec",
        "workspace_id",
    )

    def __init__(
        self,
        *,
        id: str,
        workspace_id: str,
        task_spec: AgentTaskSpec,
        session_id: str | None,
        agent_id: str | None,
        scenario_id: str | None,
        adapter: RuntimeRunPersistenceAdapter | None,
        now: Callable[[], float],
        started_at: float,
    ) -> None:
        self.id = id
        self.workspace_id = workspace_id
        self.task_spec = task_spec
        self.session_id = session_id
        self.agent_id = agent_id
        self.scenario_id = scenario_id
        self._adapter = adapter
        self._now = now
        self._started_at = started_at
        self._status: RuntimeRunStatus = "running"
        self._completed_at: float | None = None
        self._tokens_in: int | float = 0
        self._tokens_out: int | float = 0
        self._cost_usd: int | float = 0
        self._llm_calls = 0
        self._result_summary: str | None = None
        self._error: str | None = None
        self._metadata: dict[str, Any] | None = None

    @property
    def status(self) -> RuntimeRunStatus:
        """`running` until `complete()`, then the terminal status."""
        return self._status

    def _clock(self) -> float:
        value = self._now()
        if not is_finite_number(value):
            raise ValidationError("start_runtime_run: now() must return finite epoch ms")
        return value

    def observe(self, event: Any) -> None:
        """Count an `llm_call` event (its wire dict too): one more call, and its tokens and
        cost when each is a finite number. Every other event is ignored."""
        if isinstance(event, Mapping):
            if event.get("type") != "llm_call":
                return
            try:
                event = parse_event(event)
            except EventParseError as exc:
                raise ValidationError(f"observe: {exc.message}") from None
        if not isinstance(event, LlmCallEvent):
            return
        self._llm_calls += 1
        tokens_in, tokens_out, cost_usd = event.tokens_in, event.tokens_out, event.cost_usd
        if tokens_in is not None and is_finite_number(tokens_in):
            self._tokens_in = _num(self._tokens_in + tokens_in)
        if tokens_out is not None and is_finite_number(tokens_out):
            self._tokens_out = _num(self._tokens_out + tokens_out)
        if cost_usd is not None and is_finite_number(cost_usd):
            self._cost_usd = self._cost_usd + cost_usd

    def cost(self) -> RuntimeRunCost:
        """A snapshot; `wall_ms` runs until completion, then stays fixed."""
        end = self._completed_at if self._completed_at is not None else self._clock()
        return RuntimeRunCost(
            tokens_in=self._tokens_in,
            tokens_out=self._tokens_out,
            cost_usd=self._cost_usd,
            wall_ms=_num(end - self._started_at),
            llm_calls=self._llm_calls,
        )

    def complete(
        self,
        *,
        status: RuntimeRunStatus,
        result_summary: str | None = None,
        cost: RuntimeRunCost | Mapping[str, Any] | None = None,
        error: str | BaseException | None = None,
        metadata: Mapping[str, Any] | None = None,
    ) -> None:
        """End the run with a terminal status (`completed`, `failed`, `cancelled`). The same
        status again does nothing; another one is `RuntimeRunStateError`. `cost` replaces
        the counted tokens, USD and call count field by field where it holds a finite number."""
        if status not in RUNTIME_RUN_STATUSES:
            raise ValidationError(
                f"complete: status must be one of {', '.join(RUNTIME_RUN_STATUSES)}"
            )
        if status == "running":
            raise ValidationError("complete: status must be terminal, not running")
        _need_str(result_summary, "complete: result_summary")
        if error is not None and not isinstance(error, str | BaseException):
            raise ValidationError("complete: error must be a string, an exception or None")
        meta = _json_mapping(metadata, "complete: metadata")
        override = self._cost_override(cost)
        if self._status != "running":
            if self._status == status:
                return
            raise RuntimeRunStateError(
                f'Cannot transition runtime run from "{self._status}" to "{status}"'
            )
        completed_at = self._clock()
        for name, value in override.items():
            setattr(self, f"_{name}", _num(value))
        self._completed_at = completed_at
        self._status = status
        self._result_summary = result_summary
        if isinstance(error, BaseException):
            error = str(error) or type(error).__name__
        self._error = error
        self._metadata = meta

    @staticmethod
    def _cost_override(cost: Any) -> dict[str, int | float]:
        if cost is None:
            return {}
        if isinstance(cost, RuntimeRunCost):
            values: Mapping[str, Any] = {name: getattr(cost, name) for name in _COST_FIELDS}
        elif isinstance(cost, Mapping):
            unknown = sorted(set(cost) - {*_COST_FIELDS, "wall_ms"})
            if unknown:
                raise ValidationError(f"complete: unknown cost field(s): {', '.join(unknown)}")
            values = cost
        else:
            raise ValidationError("complete: cost must be a RuntimeRunCost or a mapping")
        out: dict[str, int | float] = {}
        for name in _COST_FIELDS:
            value = values.get(name)
            if value is None:
                continue
            if type(value) not in (int, float):
                raise ValidationError(f"complete: cost.{name} must be a number")
            if not math.isfinite(value):
                continue  # the original skips non-finite overrides
            if name == "llm_calls" and not float(value).is_integer():
                raise ValidationError("complete: cost.llm_calls must be an integer")
            out[name] = int(value) if name == "llm_calls" else value
        return out

    def to_row(self, metadata: Mapping[str, Any] | None = None) -> RuntimeRunRow:
        """The run's row now: completion metadata merged with `metadata` (which wins)."""
        extra = _json_mapping(metadata, "to_row: metadata")
        merged: dict[str, Any] | None = None
        if self._metadata is not None or extra is not None:
            merged = {**(self._metadata or {}), **(extra or {})}
        return RuntimeRunRow(
            id=self.id,
            workspace_id=self.workspace_id,
            session_id=self.session_id,
            agent_id=self.agent_id,
            domain=self.task_spec.domain,
            task_id=self.task_spec.id,
            scenario_id=self.scenario_id,
            status=self._status,
            result_summary=self._result_summary,
            error=self._error,
            cost=self.cost(),
            started_at=_iso(self._started_at),
            completed_at=_iso(self._completed_at) if self._completed_at is not None else None,
            metadata=merged,
        )

    async def persist(self, metadata: Mapping[str, Any] | None = None) -> None:
        """Write the row through the adapter (nothing without one); adapter errors propagate.
        Before `complete()` it is `RuntimeRunStateError`."""
        if self._status == "running":
            raise RuntimeRunStateError("Cannot persist a runtime run before complete() is called")
        row = self.to_row(metadata)
        if self._adapter is None:
            return
        result = self._adapter.upsert(row)
        if inspect.isawaitable(result):
            await result


def _random_suffix() -> str:
    return "".join(secrets.choice(_BASE36) for _ in range(8))


def start_runtime_run(
    *,
    workspace_id: str,
    task_spec: AgentTaskSpec,
    session_id: str | None = None,
    agent_id: str | None = None,
    scenario_id: str | None = None,
    adapter: RuntimeRunPersistenceAdapter | None = None,
    id: str | None = None,
    now: Callable[[], float] | None = None,
) -> RuntimeRunHandle:
    """A `running` ledger entry for one production run. `id` defaults to
    `<task_spec.id>:<8 random base-36 chars>`, `now` (epoch ms) to the wall clock."""
    if not isinstance(workspace_id, str) or not workspace_id:
        raise ValidationError("start_runtime_run: workspace_id is required")
    if not isinstance(task_spec, AgentTaskSpec) or not task_spec.id:
        raise ValidationError("start_runtime_run: task_spec with an id is required")
    for name, value in (("session_id", session_id), ("agent_id", agent_id)):
        _need_str(value, f"start_runtime_run: {name}")
    _need_str(scenario_id, "start_runtime_run: scenario_id")
    if id is not None and (not isinstance(id, str) or not id):
        raise ValidationError("start_runtime_run: id must be a non-empty string")
    if adapter is not None and not callable(getattr(adapter, "upsert", None)):
        raise ValidationError("start_runtime_run: adapter must have upsert(row)")
    if now is not None and not callable(now):
        raise ValidationError("start_runtime_run: now must be a callable returning epoch ms")
    clock = now if now is not None else _wall_clock_ms
    started_at = clock()
    if not is_finite_number(started_at):
        raise ValidationError("start_runtime_run: now() must return finite epoch ms")
    return RuntimeRunHandle(
        id=id if id is not None else f"{task_spec.id}:{_random_suffix()}",
        workspace_id=workspace_id,
        task_spec=task_spec,
        session_id=session_id,
        agent_id=agent_id,
        scenario_id=scenario_id,
        adapter=adapter,
        now=clock,
        started_at=started_at,
    )
