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

import asyncio
import hashlib
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import DurableValueError, StoreUnavailableError
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
    StepRecord,
    StreamEventRecord,
    appended,
    ms_to_dt,
    new_step,
    new_stream_event,
    now_ms,
)
from ._retention import files_prune, files_usage
from ._steps import StepState, StepWrite, next_step
from ._validate import lease_held, lease_lost, mismatch, not_found

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
    return new_step(
        run_id,
        d["i"],
        d["intent"],
        d["kind"],
        d["input_hash"],
        d["status"],
        d["attempts"],
        detach(d["result"]),
        detach(d["error"]),
        ms_to_dt(d["started"]),
        ms_to_dt(d["completed"]),
    )


def _state(d: dict[str, Any]) -> StepState:
    """A step line as the transition rule reads it."""
    return StepState(
        d["intent"],
        d["kind"],
        d["input_hash"],
        d["status"],
        d["attempts"],
        d["started"],
        d["completed"],
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
            raise not_found(run_id)
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

    async def _claim(
        self, run_id: str, manifest: DurableRunManifest, worker_id: str, lease_ms: int
    ) -> StartOrResumeResult:
        files = self._run_files(run_id, create=True)
        assert files is not None
        with flocked(files.lock):
            now = now_ms()
            run = self._read_run(files)
            if run is None:
                run = {
                    "run_id": run_id,
                    "manifest_hash": manifest.digest,
                    "manifest": loads_json(manifest.encoded),
                    "project_id": manifest.project_id,
                    "scenario_id": manifest.scenario_id,
                    "status": "running",
                    "created_at_ms": now,
                    "updated_at_ms": now,
                    "outcome": None,
                    "handle": None,
                }
                self._write_run(files, run)
            elif run["manifest_hash"] != manifest.digest:
                raise mismatch(run_id)
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
                raise lease_held(run_id, holder, expires)
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

    async def _renew(
        self, run_id: str, worker_id: str, lease_ms: int, lease_epoch: int | None
    ) -> bool:
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

    async def _load_run(self, run_id: str) -> RunRecord | None:
        files = self._run_files(run_id, create=False)
        if files is None:
            return None
        run = self._read_run(files)
        return self._record(files, run, self._read_lease(files)) if run else None

    async def _list_runs(self, limit: int, status: RunStatus | None) -> list[RunRecord]:
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

    async def _end(
        self,
        run_id: str,
        worker_id: str | None,
        status: RunStatus,
        outcome: str,
        lease_epoch: int | None,
    ) -> RunRecord:
        files, _ = self._existing(run_id)
        with flocked(files.lock):
            files, run = self._existing(run_id)
            lease = self._read_lease(files)
            self._fence(run_id, lease, worker_id, lease_epoch)
            run.update(status=status, outcome=loads_json(outcome), updated_at_ms=now_ms())
            self._write_run(files, run)
            lease = {"holder": None, "expires_at_ms": None, "epoch": lease["epoch"]}
            self._write_lease(files, lease)
            return self._record(files, run, lease)

    async def _set_handle(self, run_id: str, handle: RunHandle | None, encoded: str | None) -> None:
        files, _ = self._existing(run_id)
        with flocked(files.lock):
            files, run = self._existing(run_id)
            run.update(
                handle=None if encoded is None else loads_json(encoded), updated_at_ms=now_ms()
            )
            self._write_run(files, run)

    # -- steps -------------------------------------------------------------------------------

    async def _load_steps(self, run_id: str) -> list[StepRecord]:
        files = self._run_files(run_id, create=False)
        if files is None:
            return []
        return [_step_record(run_id, d) for _, d in sorted(files.step_map().items())]

    async def _load_step(self, run_id: str, step_index: int) -> StepRecord | None:
        files = self._run_files(run_id, create=False)
        if files is None:
            return None
        d = files.step_map().get(step_index)
        return _step_record(run_id, d) if d is not None else None

    async def _write_step(self, write: StepWrite) -> StepRecord:
        run_id = write.run_id
        files, _ = self._existing(run_id)
        with flocked(files.lock):
            self._existing(run_id)
            self._fence(run_id, self._read_lease(files), write.worker_id, write.lease_epoch)
            now = now_ms()
            prev = files.step_map().get(write.step_index)
            state = next_step(write, None if prev is None else _state(prev), now)
            line = {
                "i": write.step_index,
                "intent": state.intent,
                "kind": state.kind,
                "input_hash": state.input_hash,
                "status": state.status,
                "attempts": state.attempts,
                "result": None if write.result is None else loads_json(write.result),
                "error": None if write.error is None else loads_json(write.error),
                "started": state.started_ms,
                "completed": state.completed_ms,
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

    async def _emit(self, run_id: str, key: str, payload: str) -> EmitEventResult:
        value = loads_json(payload)
        files, _ = self._existing(run_id)
        with flocked(files.lock):
            existing = self._find_event(files, run_id, key)
            if existing is not None:
                return EmitEventResult(False, existing)
            now = now_ms()
            files.events.append([{"key": key, "payload": value, "t": now}], fsync=self.fsync)
        return EmitEventResult(True, EventRecord(run_id, key, detach(value), _dt(now)))

    async def _load_event(self, run_id: str, key: str) -> EventRecord | None:
        files = self._run_files(run_id, create=False)
        return self._find_event(files, run_id, key) if files is not None else None

    # -- stream log --------------------------------------------------------------------------

    async def _append(
        self, run_id: str, event_ids: list[str], payloads: list[str]
    ) -> list[AppendStreamResult]:
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
            for event_id, payload in zip(event_ids, payloads, strict=True):
                seq = index.get(event_id)
                if seq is not None:
                    d = items[seq]
                    rec = new_stream_event(run_id, seq, event_id, detach(d["payload"]), _dt(d["t"]))
                    out.append(appended(False, rec))
                elif event_id in pending:
                    out.append(appended(False, pending[event_id]))
                else:
                    seq = len(items) + len(lines)
                    value = loads_json(payload)
                    lines.append({"seq": seq, "id": event_id, "payload": value, "t": now})
                    rec = new_stream_event(run_id, seq, event_id, loads_json(payload), created)
                    pending[event_id] = rec
                    out.append(appended(True, rec))
            if lines:
                files.stream.append(lines, fsync=self.fsync)
                files.stream_index()
        return out

    async def _read(
        self, run_id: str, after_seq: int, limit: int | None
    ) -> list[StreamEventRecord]:
        files = self._run_files(run_id, create=False)
        if files is None:
            return []
        items = files.stream.refresh()
        start = after_seq + 1
        end = None if limit is None else start + limit
        return [
            new_stream_event(run_id, d["seq"], d["id"], detach(d["payload"]), _dt(d["t"]))
            for d in items[start:end]
        ]

    async def _stream_length(self, run_id: str) -> int:
        files = self._run_files(run_id, create=False)
        return len(files.stream.refresh()) if files is not None else 0

    # -- retention: in a worker thread (a prune may delete many folders) ----------------------

    async def _prune(self, prefix: str, age_ms: int, at_ms: int | None, dry_run: bool) -> list[str]:
        cutoff = (now_ms() if at_ms is None else at_ms) - age_ms
        return await asyncio.to_thread(
            files_prune, self._runs_dir, self._forget, prefix, cutoff, dry_run
        )

    def _forget(self, run_id: str) -> None:
        self._files.pop(run_id, None)

    async def _usage(self, prefix: str) -> int:
        return await asyncio.to_thread(files_usage, self._runs_dir, prefix)

    async def close(self) -> None:
        self._files.clear()

    # -- restarting a failed run -------------------------------------------------------------

    async def _restart_failed(
        self, run_id: str, manifest: DurableRunManifest, entry: tuple[str, str] | None
    ) -> RunRecord | None:
        files = self._run_files(run_id, create=False)
        if files is None:
            return None
        with flocked(files.lock):
            run = self._read_run(files)
            if run is None or run["status"] != "failed":
                return None
            # in an order a crash anywhere can only repeat: the marker first (a second
            # restart appends the next one), the steps and events next, the run file last
            # (until it is rewritten the run is still failed)
            if entry is not None:
                await self._append(run_id, [entry[0]], [entry[1]])
            for log in (files.steps, files.events):
                log.path.unlink(missing_ok=True)
                log.refresh()
            lease = self._read_lease(files)
            lease = {"holder": None, "expires_at_ms": None, "epoch": lease["epoch"]}
            self._write_lease(files, lease)
            run.update(
                manifest_hash=manifest.digest,
                manifest=loads_json(manifest.encoded),
                project_id=manifest.project_id,
                scenario_id=manifest.scenario_id,
                status="running",
                updated_at_ms=now_ms(),
                outcome=None,
                handle=None,
            )
            self._write_run(files, run)
            return self._record(files, run, lease)
