"""`FileSystemDurableRunStore`: durable runs as plain files, one folder per run.

`<root>/runs/<run>/` holds `run.json` and `lease.json` (replaced atomically: temp file,
fsync, rename) and three append-only JSON-lines logs: `steps.jsonl` (a line per step write,
the last line of a position wins), `events.jsonl` (first line of a key wins) and
`stream.jsonl` (line n has seq n). Writers of a run take an `flock` on the run's `.lock`
(`.stream.lock` for the stream log), so several processes on one host share a root safely.
A step commit is one appended line: it is either entirely there or, torn by a crash,
ignored and cut off by the next writer.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import (
    DurableRunError,
    DurableRunInputMismatchError,
    DurableRunLeaseHeldError,
    DurableRunNotFoundError,
    DurableValueError,
    StoreUnavailableError,
)
from ..jsoncanon import dumps_json, loads_json
from ._base import StoreBase, detach
from ._fsio import JsonlLog, atomic_write, flocked, read_json
from ._manifest import DurableRunManifest
from ._records import (
    AppendStreamResult,
    EmitEventResult,
    EventRecord,
    RunHandle,
    RunRecord,
    RunStatus,
    StartOrResumeResult,
    StepKind,
    StepRecord,
    StepStatus,
    StreamEventRecord,
    ms_to_dt,
    now_ms,
)
from ._store import DEFAULT_LEASE_MS
from ._validate import (
    check_end_status,
    check_epoch,
    check_id,
    check_index,
    check_lease_ms,
    check_start,
    check_status,
    diverged,
    lease_lost,
)

__all__ = ["FILESYSTEM_FORMAT_VERSION", "FileSystemDurableRunStore"]

FILESYSTEM_FORMAT_VERSION = 1
_SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,79}")


def _dir_name(run_id: str) -> str:
    """A run's folder: the id itself when it is a safe file name, else `~` + its sha256."""
    if _SAFE_NAME.fullmatch(run_id):
        return run_id
    return "~" + hashlib.sha256(run_id.encode()).hexdigest()[:40]


def _dt(ms: int) -> Any:
    return ms_to_dt(ms)


def _step_record(run_id: str, d: dict[str, Any]) -> StepRecord:
    return StepRecord(
        run_id=run_id,
        step_index=d["i"],
        intent=d["intent"],
        kind=d["kind"],
        input_hash=d["input_hash"],
        status=d["status"],
        attempts=d["attempts"],
        result=detach(d["result"]),
        error=detach(d["error"]),
        started_at=ms_to_dt(d["started"]),
        completed_at=ms_to_dt(d["completed"]),
    )


@dataclass
class _RunFiles:
    """Paths and parse caches of one run's folder."""

    dir: Path
    steps: JsonlLog
    events: JsonlLog
    stream: JsonlLog
    stream_ids: dict[str, int] = field(default_factory=dict)
    stream_generation: int = -1

    @property
    def run_json(self) -> Path:
        return self.dir / "run.json"

    @property
    def lease_json(self) -> Path:
        return self.dir / "lease.json"

    @property
    def lock(self) -> Path:
        return self.dir / ".lock"

    @property
    def stream_lock(self) -> Path:
        return self.dir / ".stream.lock"

    def step_map(self) -> dict[int, dict[str, Any]]:
        out: dict[int, dict[str, Any]] = {}
        for d in self.steps.refresh():
            out[d["i"]] = d
        return out

    def stream_index(self) -> dict[str, int]:
        items = self.stream.refresh()
        if self.stream_generation != self.stream.generation:
            self.stream_ids = {}
            self.stream_generation = self.stream.generation
        for seq in range(len(self.stream_ids), len(items)):
            self.stream_ids[items[seq]["id"]] = seq
        return self.stream_ids


class FileSystemDurableRunStore(StoreBase):
    """A `DurableRunStore` in a folder tree; several processes on one host may share `root`.

    `fsync=False` skips fsyncs (survives a process crash, not a power loss), for tests and
    scratch runs.
    """

    def __init__(self, root: str | os.PathLike[str], *, fsync: bool = True) -> None:
        if not isinstance(root, (str, os.PathLike)) or not str(root):
            raise DurableValueError("root must be a path", path="root")
        self.root = Path(root)
        self.fsync = fsync
        self._runs_dir = self.root / "runs"
        self._files: dict[str, _RunFiles] = {}
        try:
            self._runs_dir.mkdir(parents=True, exist_ok=True)
            self._check_format()
        except OSError as exc:
            raise StoreUnavailableError(f"cannot open file store {self.root}: {exc}") from exc

    def _check_format(self) -> None:
        path = self.root / "format.json"
        with flocked(self.root / ".lock"):
            info = read_json(path)
            if info is None:
                data = {"format": "durable-agent-runtime", "version": FILESYSTEM_FORMAT_VERSION}
                atomic_write(path, dumps_json(data), fsync=self.fsync)
            elif not isinstance(info, dict) or info.get("version") != FILESYSTEM_FORMAT_VERSION:
                raise StoreUnavailableError(
                    f"{path}: unsupported store format {info!r}, this library writes "
                    f"version {FILESYSTEM_FORMAT_VERSION}"
                )

    def schema_version(self) -> int:
        """The on-disk format version of this root."""
        return FILESYSTEM_FORMAT_VERSION

    # -- plumbing ----------------------------------------------------------------------------

    def _run_files(self, run_id: str, *, create: bool) -> _RunFiles | None:
        files = self._files.get(run_id)
        if files is None:
            d = self._runs_dir / _dir_name(run_id)
            if not d.is_dir():
                if not create:
                    return None
                d.mkdir(exist_ok=True)
            files = _RunFiles(
                d,
                JsonlLog(d / "steps.jsonl"),
                JsonlLog(d / "events.jsonl"),
                JsonlLog(d / "stream.jsonl"),
            )
            self._files[run_id] = files
        return files

    def _read_run(self, files: _RunFiles) -> dict[str, Any] | None:
        data = read_json(files.run_json)
        return data if isinstance(data, dict) else None

    def _read_lease(self, files: _RunFiles) -> dict[str, Any]:
        data = read_json(files.lease_json)
        if not isinstance(data, dict):
            return {"holder": None, "expires_at_ms": None, "epoch": 0}
        return data

    def _write_run(self, files: _RunFiles, run: dict[str, Any]) -> None:
        atomic_write(files.run_json, dumps_json(run), fsync=self.fsync)

    def _write_lease(self, files: _RunFiles, lease: dict[str, Any]) -> None:
        atomic_write(files.lease_json, dumps_json(lease), fsync=self.fsync)

    def _record(self, files: _RunFiles, run: dict[str, Any], lease: dict[str, Any]) -> RunRecord:
        steps = files.steps.refresh()
        step_count = max((d["i"] + 1 for d in steps), default=0)
        updated = max([run["updated_at_ms"], *(d["t"] for d in steps[-1:])])
        handle = run.get("handle")
        return RunRecord(
            run_id=run["run_id"],
            manifest_hash=run["manifest_hash"],
            manifest=run["manifest"],
            project_id=run["project_id"],
            scenario_id=run["scenario_id"],
            status=run["status"],
            created_at=_dt(run["created_at_ms"]),
            updated_at=_dt(updated),
            lease_holder=lease["holder"],
            lease_expires_at=ms_to_dt(lease["expires_at_ms"]),
            lease_epoch=lease["epoch"],
            outcome=run.get("outcome"),
            step_count=step_count,
            handle=RunHandle.from_dict(handle) if handle is not None else None,
        )

    def _existing(self, run_id: str) -> tuple[_RunFiles, dict[str, Any]]:
        files = self._run_files(run_id, create=False)
        run = self._read_run(files) if files is not None else None
        if files is None or run is None:
            raise DurableRunNotFoundError(f"run {run_id!r} does not exist", run_id=run_id)
        return files, run

    def _fence(
        self,
        run_id: str,
        lease: dict[str, Any],
        worker_id: str | None,
        lease_epoch: int | None = None,
    ) -> None:
        if worker_id is None:
            return
        if lease["holder"] != worker_id or (
            lease_epoch is not None and lease["epoch"] != lease_epoch
        ):
            raise lease_lost(run_id, worker_id, lease_epoch, lease["holder"], lease["epoch"])

    # -- runs and leases ---------------------------------------------------------------------

    async def start_or_resume(
        self,
        run_id: str,
        manifest: DurableRunManifest,
        worker_id: str,
        lease_ms: int = DEFAULT_LEASE_MS,
    ) -> StartOrResumeResult:
        check_start(run_id, manifest, worker_id, lease_ms)
        mhash = manifest.digest
        manifest_data = loads_json(manifest.encoded)
        files = self._run_files(run_id, create=True)
        assert files is not None
        with flocked(files.lock):
            now = now_ms()
            run = self._read_run(files)
            if run is None:
                run = {
                    "run_id": run_id,
                    "manifest_hash": mhash,
                    "manifest": manifest_data,
                    "project_id": manifest.project_id,
                    "scenario_id": manifest.scenario_id,
                    "status": "running",
                    "created_at_ms": now,
                    "updated_at_ms": now,
                    "outcome": None,
                    "handle": None,
                }
                self._write_run(files, run)
            elif run["manifest_hash"] != mhash:
                raise DurableRunInputMismatchError(
                    f"run {run_id!r} exists with another manifest", run_id=run_id
                )
            lease = self._read_lease(files)
            completed = [
                _step_record(run_id, d)
                for _, d in sorted(files.step_map().items())
                if d["status"] == "completed"
            ]
            if run["status"] == "completed":
                return StartOrResumeResult(self._record(files, run, lease), completed, None)
            holder, expires = lease["holder"], lease["expires_at_ms"]
            if holder is not None and holder != worker_id and expires is not None and expires > now:
                raise DurableRunLeaseHeldError(
                    f"run {run_id!r} is leased by {holder!r}",
                    run_id=run_id,
                    holder=holder,
                    expires_at_ms=expires,
                )
            lease = {
                "holder": worker_id,
                "expires_at_ms": now + lease_ms,
                "epoch": lease["epoch"] + 1,
            }
            self._write_lease(files, lease)
            if run["status"] != "running" or run["updated_at_ms"] != now:
                run["status"] = "running"
                run["updated_at_ms"] = now
                self._write_run(files, run)
            record = self._record(files, run, lease)
        return StartOrResumeResult(record, completed, record.lease_expires_at)

    async def renew_lease(
        self,
        run_id: str,
        worker_id: str,
        lease_ms: int = DEFAULT_LEASE_MS,
        *,
        lease_epoch: int | None = None,
    ) -> bool:
        check_id(run_id, "run_id")
        check_id(worker_id, "worker_id")
        check_lease_ms(lease_ms)
        check_epoch(lease_epoch)
        files = self._run_files(run_id, create=False)
        if files is None:
            return False
        with flocked(files.lock):
            lease = self._read_lease(files)
            if lease["holder"] != worker_id:
                return False
            if lease_epoch is not None and lease["epoch"] != lease_epoch:
                return False
            lease["expires_at_ms"] = now_ms() + lease_ms
            self._write_lease(files, lease)
        return True

    async def load_run(self, run_id: str) -> RunRecord | None:
        check_id(run_id, "run_id")
        files = self._run_files(run_id, create=False)
        if files is None:
            return None
        run = self._read_run(files)
        return self._record(files, run, self._read_lease(files)) if run else None

    async def list_runs(
        self, *, limit: int = 100, status: RunStatus | None = None
    ) -> list[RunRecord]:
        if type(limit) is not int or limit < 0:
            raise DurableValueError("limit must be an int >= 0", path="limit")
        if status is not None:
            check_status(status)
        records: list[RunRecord] = []
        for d in self._runs_dir.iterdir():
            run = read_json(d / "run.json") if d.is_dir() else None
            if not isinstance(run, dict) or (status is not None and run["status"] != status):
                continue
            files = self._run_files(run["run_id"], create=False)
            if files is not None:
                records.append(self._record(files, run, self._read_lease(files)))
        records.sort(key=lambda r: (r.created_at, r.run_id), reverse=True)
        return records[:limit]

    async def end_run(
        self,
        run_id: str,
        worker_id: str | None,
        status: RunStatus,
        outcome: Any = None,
        *,
        lease_epoch: int | None = None,
    ) -> RunRecord:
        check_id(run_id, "run_id")
        check_end_status(status)
        check_epoch(lease_epoch)
        if worker_id is not None:
            check_id(worker_id, "worker_id")
        encoded = loads_json(dumps_json(outcome, root="outcome"))
        files, _ = self._existing(run_id)
        with flocked(files.lock):
            files, run = self._existing(run_id)
            lease = self._read_lease(files)
            self._fence(run_id, lease, worker_id, lease_epoch)
            run.update(status=status, outcome=encoded, updated_at_ms=now_ms())
            self._write_run(files, run)
            lease = {"holder": None, "expires_at_ms": None, "epoch": lease["epoch"]}
            self._write_lease(files, lease)
            return self._record(files, run, lease)

    async def set_run_handle(self, run_id: str, handle: RunHandle | None) -> None:
        check_id(run_id, "run_id")
        if handle is not None and not isinstance(handle, RunHandle):
            raise DurableRunError("handle must be a RunHandle or None", run_id=run_id)
        data = loads_json(dumps_json(handle.to_dict(), root="handle")) if handle else None
        files, _ = self._existing(run_id)
        with flocked(files.lock):
            files, run = self._existing(run_id)
            run.update(handle=data, updated_at_ms=now_ms())
            self._write_run(files, run)

    # -- steps -------------------------------------------------------------------------------

    async def load_steps(self, run_id: str) -> list[StepRecord]:
        check_id(run_id, "run_id")
        files = self._run_files(run_id, create=False)
        if files is None:
            return []
        return [_step_record(run_id, d) for _, d in sorted(files.step_map().items())]

    async def load_step(self, run_id: str, step_index: int) -> StepRecord | None:
        check_id(run_id, "run_id")
        check_index(step_index)
        files = self._run_files(run_id, create=False)
        if files is None:
            return None
        d = files.step_map().get(step_index)
        return _step_record(run_id, d) if d is not None else None

    async def _write_step(
        self,
        run_id: str,
        step_index: int,
        status: StepStatus,
        worker_id: str | None,
        intent: str | None,
        kind: StepKind,
        input_hash: str | None,
        result: str | None,
        error: str | None,
        lease_epoch: int | None = None,
    ) -> StepRecord:
        files, _ = self._existing(run_id)
        with flocked(files.lock):
            self._existing(run_id)
            self._fence(run_id, self._read_lease(files), worker_id, lease_epoch)
            now = now_ms()
            prev = files.step_map().get(step_index)
            if prev is not None and intent is not None and prev["intent"] != intent:
                raise diverged(run_id, step_index, prev["intent"], intent)
            if prev is not None and prev["status"] == "completed":
                raise DurableRunError(
                    f"step {step_index} of run {run_id!r} is already completed",
                    code="step_completed",
                    run_id=run_id,
                )
            if prev is None:
                if intent is None:
                    raise DurableRunError(
                        f"step {step_index} of run {run_id!r} was not begun; pass its intent",
                        code="step_not_begun",
                        run_id=run_id,
                    )
                attempts, started = 1, now
            else:
                if intent is None:
                    intent, kind = prev["intent"], prev["kind"]
                input_hash = prev["input_hash"] if input_hash is None else input_hash
                running = prev["status"] == "running"
                attempts = (
                    prev["attempts"] if running and status != "running" else prev["attempts"] + 1
                )
                started = prev["started"] if running else now
            line = {
                "i": step_index,
                "intent": intent,
                "kind": kind,
                "input_hash": input_hash,
                "status": status,
                "attempts": attempts,
                "result": loads_json(result) if result is not None else None,
                "error": loads_json(error) if error is not None else None,
                "started": started,
                "completed": None if status == "running" else now,
                "t": now,
            }
            files.steps.append([line], fsync=self.fsync)
        return _step_record(run_id, line)

    # -- events ------------------------------------------------------------------------------

    def _find_event(self, files: _RunFiles, run_id: str, key: str) -> EventRecord | None:
        for d in files.events.refresh():
            if d["key"] == key:
                return EventRecord(run_id, key, detach(d["payload"]), _dt(d["t"]))
        return None

    async def emit_event(self, run_id: str, key: str, payload: Any) -> EmitEventResult:
        check_id(run_id, "run_id")
        check_id(key, "key")
        value = loads_json(dumps_json(payload, root="payload"))
        files, _ = self._existing(run_id)
        with flocked(files.lock):
            existing = self._find_event(files, run_id, key)
            if existing is not None:
                return EmitEventResult(False, existing)
            now = now_ms()
            files.events.append([{"key": key, "payload": value, "t": now}], fsync=self.fsync)
        return EmitEventResult(True, EventRecord(run_id, key, detach(value), _dt(now)))

    async def load_event(self, run_id: str, key: str) -> EventRecord | None:
        check_id(run_id, "run_id")
        check_id(key, "key")
        files = self._run_files(run_id, create=False)
        return self._find_event(files, run_id, key) if files is not None else None

    # -- stream log --------------------------------------------------------------------------

    async def append_stream_events(
        self, run_id: str, events: Sequence[tuple[str, Any]]
    ) -> list[AppendStreamResult]:
        check_id(run_id, "run_id")
        values: list[tuple[str, Any]] = []
        for i, (event_id, payload) in enumerate(events):
            check_id(event_id, "event_id")
            values.append((event_id, loads_json(dumps_json(payload, root=f"events[{i}].payload"))))
        if not values:
            return []
        files = self._run_files(run_id, create=True)
        assert files is not None
        out: list[AppendStreamResult] = []
        with flocked(files.stream_lock):
            index = files.stream_index()
            items = files.stream.items
            now = now_ms()
            created = _dt(now)
            lines: list[dict[str, Any]] = []
            pending: dict[str, StreamEventRecord] = {}
            for event_id, value in values:
                seq = index.get(event_id)
                if seq is not None:
                    d = items[seq]
                    rec = StreamEventRecord(
                        run_id, seq, event_id, detach(d["payload"]), _dt(d["t"])
                    )
                    out.append(AppendStreamResult(False, rec))
                elif event_id in pending:
                    out.append(AppendStreamResult(False, pending[event_id]))
                else:
                    seq = len(items) + len(lines)
                    lines.append({"seq": seq, "id": event_id, "payload": value, "t": now})
                    rec = StreamEventRecord(run_id, seq, event_id, detach(value), created)
                    pending[event_id] = rec
                    out.append(AppendStreamResult(True, rec))
            if lines:
                files.stream.append(lines, fsync=self.fsync)
                files.stream_index()
        return out

    async def read_stream_events(
        self, run_id: str, after_seq: int | None = None, limit: int | None = None
    ) -> list[StreamEventRecord]:
        check_id(run_id, "run_id")
        if after_seq is not None and type(after_seq) is not int:
            raise DurableValueError("after_seq must be an int or None", path="after_seq")
        if limit is not None and (type(limit) is not int or limit < 0):
            raise DurableValueError("limit must be an int >= 0 or None", path="limit")
        files = self._run_files(run_id, create=False)
        if files is None:
            return []
        items = files.stream.refresh()
        start = 0 if after_seq is None else max(after_seq + 1, 0)
        end = None if limit is None else start + limit
        return [
            StreamEventRecord(run_id, d["seq"], d["id"], detach(d["payload"]), _dt(d["t"]))
            for d in items[start:end]
        ]

    async def stream_length(self, run_id: str) -> int:
        """How many entries the run's stream log holds."""
        check_id(run_id, "run_id")
        files = self._run_files(run_id, create=False)
        return len(files.stream.refresh()) if files is not None else 0

    async def close(self) -> None:
        self._files.clear()
