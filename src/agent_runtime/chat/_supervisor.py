"""`TurnSupervisor`: the host a server keeps per process for durable turns (the role the
original's `SessionSupervisorDO` plays on Cloudflare).

It serves a turn's stream by run id (re-attached, resumed or replayed, through
`run_durable_turn`; an unknown run id is `DurableRunNotFoundError`, the DO's 404) and runs an
orphan sweeper every `sweep_interval_ms`: a turn whose worker died mid-stream (status
`running`, lease lapsed) and that no client comes back for is re-driven headless to
completion, so its answer is checkpointed (and persisted) and a later request replays it.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import NamedTuple

from ..durable._manifest import DurableRunManifest, derive_worker_id
from ..durable._records import RunRecord, now_ms
from ..durable._store import DEFAULT_LEASE_MS, DurableRunStore, is_durable_store
from ..durable._validate import check_id, check_lease_ms
from ..errors import DurableRunLeaseHeldError, DurableRunNotFoundError, DurableValueError
from ._durable_turn import DurableTurn, Finish, Produce, RestartEvent, run_durable_turn

__all__ = ["SweepTarget", "TurnSupervisor", "manifest_from_record"]

_log = logging.getLogger("agent_runtime.chat")


class SweepTarget(NamedTuple):
    """How to drive a turn known by its run id: its producer and, optionally, its finish step
    and the restart marker it announces (see `run_durable_turn`)."""

    produce: Produce
    finish: Finish | None = None
    restart_event: RestartEvent | None = None


Resolver = Callable[
    [RunRecord, DurableRunManifest], "SweepTarget | Awaitable[SweepTarget | None] | None"
]


def manifest_from_record(run: RunRecord) -> DurableRunManifest:
    """Rebuild the manifest a run was started with from its stored copy (same hash)."""
    data = run.manifest
    if not isinstance(data, dict):
        raise DurableValueError(f"run {run.run_id!r} has no stored manifest", path="manifest")
    return DurableRunManifest(
        data["project_id"],
        data["task"],
        data.get("input"),
        scenario_id=data.get("scenario_id"),
        tags=data.get("tags"),
    )


class TurnSupervisor:
    """Serves durable turns by run id and re-drives orphans. `resolve(run, manifest)` tells
    the sweeper how to re-drive a run (a `SweepTarget`), or None for runs it must leave
    alone (another application's, or not a turn)."""

    def __init__(
        self,
        store: DurableRunStore,
        resolve: Resolver,
        *,
        worker_id: str | None = None,
        lease_ms: int = DEFAULT_LEASE_MS,
        heartbeat_ms: int | None = None,
        sweep_interval_ms: int = 5_000,
        sweep_limit: int = 100,
        concurrency: int = 4,
    ) -> None:
        if not is_durable_store(store):
            raise DurableValueError("store must be a DurableRunStore", path="store")
        if not callable(resolve):
            raise DurableValueError("resolve must be callable", path="resolve")
        check_lease_ms(lease_ms)
        for name, value in (
            ("sweep_interval_ms", sweep_interval_ms),
            ("sweep_limit", sweep_limit),
            ("concurrency", concurrency),
        ):
            if type(value) is not int or value < 1:
                raise DurableValueError(f"{name} must be an int >= 1", path=name)
        self.store = store
        self.resolve = resolve
        self.worker_id = check_id(worker_id, "worker_id") if worker_id else derive_worker_id()
        self.lease_ms = lease_ms
        self.heartbeat_ms = heartbeat_ms
        self.sweep_interval_ms = sweep_interval_ms
        self.sweep_limit = sweep_limit
        self._slots = asyncio.Semaphore(concurrency)

    def drive(
        self,
        run_id: str,
        manifest: DurableRunManifest,
        produce: Produce,
        *,
        finish: Finish | None = None,
        restart_event: RestartEvent | None = None,
        after_seq: int | None = None,
    ) -> DurableTurn:
        """A turn's client-visible stream (see `run_durable_turn`), driven by this host;
        starts the run when the store has none."""
        return run_durable_turn(
            self.store,
            run_id,
            manifest,
            produce,
            finish=finish,
            restart_event=restart_event,
            worker_id=self.worker_id,
            lease_ms=self.lease_ms,
            heartbeat_ms=self.heartbeat_ms,
            after_seq=after_seq,
        )

    async def serve(self, run_id: str, *, after_seq: int | None = None) -> DurableTurn:
        """The stream of the run `run_id` from `after_seq` (attached, resumed or replayed),
        with the producer `resolve` gives for it. `DurableRunNotFoundError` (the DO's 404)
        when the store has no such run or `resolve` declines it; nothing is written then."""
        check_id(run_id, "run_id")
        run = await self.store.load_run(run_id)
        target = None if run is None else await self._resolve(run)
        if run is None or target is None:
            raise DurableRunNotFoundError(f"no run for {run_id!r}", run_id=run_id)
        return self.drive(
            run_id,
            target[0],
            target[1].produce,
            finish=target[1].finish,
            restart_event=target[1].restart_event,
            after_seq=after_seq,
        )

    async def _resolve(self, run: RunRecord) -> tuple[DurableRunManifest, SweepTarget] | None:
        manifest = manifest_from_record(run)
        target = self.resolve(run, manifest)
        if inspect.isawaitable(target):
            target = await target
        if target is None:
            return None
        if not isinstance(target, SweepTarget):
            raise DurableValueError("resolve must return a SweepTarget or None", path="resolve")
        return manifest, target

    async def orphans(self) -> list[RunRecord]:
        """Runs marked running whose lease has lapsed: their worker is gone."""
        now = now_ms()
        runs = await self.store.list_runs(limit=self.sweep_limit, status="running")
        return [
            r
            for r in runs
            if r.lease_expires_at is None or r.lease_expires_at.timestamp() * 1000 <= now
        ]

    async def sweep_once(self) -> list[str]:
        """Re-drive every orphan the resolver claims, headless, to its end; returns the ids
        of the runs this call completed. A failure of one run is logged, not raised."""
        jobs = []
        for run in await self.orphans():
            try:
                resolved = await self._resolve(run)
            except Exception as exc:  # one unreadable run must not stop the sweep
                _log.warning("cannot re-drive orphaned run %s: %s", run.run_id, exc)
                continue
            if resolved is not None:
                jobs.append(self._redrive(run.run_id, *resolved))
        done = await asyncio.gather(*jobs)
        return [run_id for run_id in done if run_id is not None]

    async def _redrive(
        self, run_id: str, manifest: DurableRunManifest, target: SweepTarget
    ) -> str | None:
        async with self._slots:
            turn = self.drive(
                run_id,
                manifest,
                target.produce,
                finish=target.finish,
                restart_event=target.restart_event,
            )
            try:
                async for _ in turn:
                    pass
            except DurableRunLeaseHeldError:
                return None  # another host took it first
            except Exception as exc:
                _log.warning("re-driving orphaned turn %s failed: %s", run_id, exc)
                return None
            return run_id if turn.mode in ("resumed", "fresh") else None

    @asynccontextmanager
    async def running(self) -> AsyncIterator[TurnSupervisor]:
        """Run the sweeper every `sweep_interval_ms` while the block runs."""
        task = asyncio.get_running_loop().create_task(self._sweep_forever())
        try:
            yield self
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    async def _sweep_forever(self) -> None:
        while True:
            try:
                redriven = await self.sweep_once()
                if redriven:
                    _log.info("re-drove %d orphaned turns: %s", len(redriven), redriven)
            except Exception as exc:  # a store outage: try again next round
                _log.warning("orphan sweep failed: %s", exc)
            await asyncio.sleep(self.sweep_interval_ms / 1000)
