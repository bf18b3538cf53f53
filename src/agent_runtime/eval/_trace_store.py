"""Where a control loop's trace goes: the `TraceStore` protocol (a run id out, `TraceEvent`s
and the final `ControlRunResult` in) and `InMemoryTraceStore`, the store tests and single
processes use.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from ..errors import NotFoundError, ValidationError
from ._records import ControlRunResult, TraceEvent

__all__ = ["InMemoryTraceStore", "TraceRun", "TraceStore", "check_trace_store"]


@runtime_checkable
class TraceStore(Protocol):
    """The trace sink of `run_agent_control_loop`; each method may be sync or async.

    `start_run(*, intent, scenario_id, project_id, variant_id)` returns the new run's id (the
    result's `run_id`); `append_event(event)` receives each `TraceEvent` of that run, in order;
    `end_run(run_id, result)` receives the `ControlRunResult` once the loop ends.
    """

    def start_run(
        self,
        *,
        intent: str,
        scenario_id: str | None,
        project_id: str | None,
        variant_id: str | None,
    ) -> Any: ...

    def append_event(self, event: TraceEvent) -> Any: ...

    def end_run(self, run_id: str, result: ControlRunResult) -> Any: ...


def check_trace_store(store: Any, where: str) -> None:
    """`ValidationError` unless `store` is None or has callable start_run/append_event/end_run."""
    if store is None:
        return
    for name in ("start_run", "append_event", "end_run"):
        if not callable(getattr(store, name, None)):
            raise ValidationError(f"{where}: store must be a TraceStore (no callable {name})")


@dataclass(frozen=True, slots=True)
class TraceRun:
    """One run as `InMemoryTraceStore` reports it: its labels, its events in order and, once
    ended, its result."""

    run_id: str
    intent: str
    scenario_id: str | None = None
    project_id: str | None = None
    variant_id: str | None = None
    events: tuple[TraceEvent, ...] = ()
    result: ControlRunResult | None = None


@dataclass(slots=True)
class _Entry:
    run_id: str
    intent: str
    scenario_id: str | None
    project_id: str | None
    variant_id: str | None
    events: list[TraceEvent] = field(default_factory=list)
    result: ControlRunResult | None = None


def _opt_str(value: Any, name: str) -> None:
    if value is not None and not isinstance(value, str):
        raise ValidationError(f"InMemoryTraceStore.start_run: {name} must be a string or None")


class InMemoryTraceStore:
    """A `TraceStore` in a dict: run ids from `new_run_id` (default a random UUID), events
    appended to their run, one result per run. Synchronous; the getters return snapshots."""

    __slots__ = ("_new_run_id", "_runs")

    def __init__(self, *, new_run_id: Callable[[], str] | None = None) -> None:
        if new_run_id is not None and not callable(new_run_id):
            raise ValidationError("InMemoryTraceStore: new_run_id must be callable")
        self._new_run_id = new_run_id or (lambda: str(uuid.uuid4()))
        self._runs: dict[str, _Entry] = {}

    def start_run(
        self,
        *,
        intent: str,
        scenario_id: str | None = None,
        project_id: str | None = None,
        variant_id: str | None = None,
    ) -> str:
        """Open a run and return its id."""
        if not isinstance(intent, str):
            raise ValidationError("InMemoryTraceStore.start_run: intent must be a string")
        _opt_str(scenario_id, "scenario_id")
        _opt_str(project_id, "project_id")
        _opt_str(variant_id, "variant_id")
        run_id = self._new_run_id()
        if not isinstance(run_id, str) or not run_id:
            raise ValidationError("InMemoryTraceStore: new_run_id must return a non-empty string")
        if run_id in self._runs:
            raise ValidationError(f"InMemoryTraceStore: run id {run_id!r} is already taken")
        self._runs[run_id] = _Entry(run_id, intent, scenario_id, project_id, variant_id)
        return run_id

    def _open(self, run_id: str, where: str) -> _Entry:
        entry = self._runs.get(run_id)
        if entry is None:
            raise NotFoundError(f"InMemoryTraceStore.{where}: unknown run {run_id!r}")
        if entry.result is not None:
            raise ValidationError(f"InMemoryTraceStore.{where}: run {run_id!r} has ended")
        return entry

    def append_event(self, event: TraceEvent) -> None:
        """Append `event` to its run (`NotFoundError` for an unknown run id)."""
        if not isinstance(event, TraceEvent):
            raise ValidationError("InMemoryTraceStore.append_event: event must be a TraceEvent")
        self._open(event.run_id, "append_event").events.append(event)

    def end_run(self, run_id: str, result: ControlRunResult) -> None:
        """Record the run's result; a run ends once."""
        if not isinstance(result, ControlRunResult):
            raise ValidationError("InMemoryTraceStore.end_run: result must be a ControlRunResult")
        self._open(run_id, "end_run").result = result

    def get_run(self, run_id: str) -> TraceRun | None:
        """A snapshot of the run, or None when unknown."""
        e = self._runs.get(run_id)
        if e is None:
            return None
        return TraceRun(
            e.run_id, e.intent, e.scenario_id, e.project_id, e.variant_id, tuple(e.events), e.result
        )

    def list_events(self, run_id: str) -> tuple[TraceEvent, ...]:
        """The run's events in append order (empty for an unknown run)."""
        e = self._runs.get(run_id)
        return () if e is None else tuple(e.events)

    def list_runs(
        self,
        *,
        scenario_id: str | None = None,
        project_id: str | None = None,
        variant_id: str | None = None,
    ) -> tuple[TraceRun, ...]:
        """Every run in start order, filtered by the labels given."""
        out = []
        for e in self._runs.values():
            if scenario_id is not None and e.scenario_id != scenario_id:
                continue
            if project_id is not None and e.project_id != project_id:
                continue
            if variant_id is not None and e.variant_id != variant_id:
                continue
            run = self.get_run(e.run_id)
            assert run is not None
            out.append(run)
        return tuple(out)
