"""Readiness: can this process serve a turn now? The store must take a write and give it back,
a file-backed store must have room left, and the backend's reachability is reported.

The write goes to one completed health run per host (`agent-runtime.health:<host>`): each
probe records a fresh token as the run's handle and reads it back, so nothing grows. The
backend is probed (its `/models`) at most every `backend_every_s` seconds.
"""

from __future__ import annotations

import asyncio
import secrets
import shutil
import socket
import time
from pathlib import Path
from typing import Any

from ..durable import (
    DurableRunManifest,
    DurableRunStore,
    FileSystemDurableRunStore,
    RunHandle,
    SQLiteDurableRunStore,
)
from ..errors import AgentRuntimeError, DurableRunLeaseHeldError, DurableRunNotFoundError
from ..models import get_models
from ..sanitize import sanitize_text
from ._config import BackendConfig

__all__ = ["HEALTH_PROJECT", "Readiness"]

HEALTH_PROJECT = "agent-runtime.health"
_TIMEOUT_S = 3.0


def _store_dir(store: DurableRunStore) -> Path | None:
    if isinstance(store, SQLiteDurableRunStore) and store.path != ":memory:":
        return Path(store.path).resolve().parent
    if isinstance(store, FileSystemDurableRunStore):
        return Path(store.root).resolve()
    return None


class Readiness:
    """The `/readyz` checks of one app."""

    def __init__(
        self,
        config: BackendConfig,
        *,
        min_free_bytes: int = 8 * 1024 * 1024,
        backend_every_s: float = 15.0,
    ) -> None:
        host = socket.gethostname() or "host"
        self.run_id = f"{HEALTH_PROJECT}:{host}"
        self.worker_id = f"{HEALTH_PROJECT}:{host}"
        self.config = config
        self.min_free_bytes = min_free_bytes
        self.backend_every_s = backend_every_s
        self._created = False
        self._backend: dict[str, Any] | None = None
        self._backend_at = 0.0

    async def _ensure_run(self, store: DurableRunStore) -> None:
        if self._created:
            return
        if await store.load_run(self.run_id) is None:
            manifest = DurableRunManifest(HEALTH_PROJECT, {"id": "readyz"}, None)
            try:
                await store.start_or_resume(self.run_id, manifest, self.worker_id, lease_ms=5000)
                await store.end_run(self.run_id, self.worker_id, "completed", {"probe": True})
            except DurableRunLeaseHeldError:
                pass  # another process of this host is creating it
        self._created = True

    async def store(
        self, store: DurableRunStore | None, opening_error: str | None
    ) -> dict[str, Any]:
        """`{"ok": true, "latency_ms"}` or `{"ok": false, "error"}` for the store."""
        if store is None:
            return {"ok": False, "error": sanitize_text(opening_error or "the store is not open")}
        started = time.perf_counter()
        token = secrets.token_hex(8)
        try:
            async with asyncio.timeout(_TIMEOUT_S):
                handle = RunHandle(kind="remote", run_id=self.run_id, cursor=token)
                await self._ensure_run(store)
                try:
                    await store.set_run_handle(self.run_id, handle)
                except DurableRunNotFoundError:  # pruned meanwhile: create it again
                    self._created = False
                    await self._ensure_run(store)
                    await store.set_run_handle(self.run_id, handle)
                run = await store.load_run(self.run_id)
        except TimeoutError:
            return {"ok": False, "error": f"the store did not answer within {_TIMEOUT_S:g} s"}
        except AgentRuntimeError as exc:
            self._created = False
            return {"ok": False, "error": sanitize_text(f"{exc.code}: {exc.message}")}
        except OSError as exc:
            return {"ok": False, "error": sanitize_text(f"{type(exc).__name__}: {exc}")}
        if run is None or run.handle is None or run.handle.cursor != token:
            self._created = False
            return {"ok": False, "error": "the store did not return what was written"}
        report: dict[str, Any] = {
            "ok": True,
            "latency_ms": round((time.perf_counter() - started) * 1000, 1),
        }
        folder = _store_dir(store)
        if folder is not None:
            try:
                free = shutil.disk_usage(folder).free
            except OSError as exc:
                return {"ok": False, "error": f"cannot measure free space: {exc.strerror}"}
            report["free_bytes"] = free
            if free < self.min_free_bytes:
                report["ok"] = False
                report["error"] = (
                    f"only {free} bytes free for the store (below {self.min_free_bytes})"
                )
        return report

    async def backend(self) -> dict[str, Any]:
        """`{"kind", "reachable": true|false|null, "error"?}` (null: cannot be probed)."""
        kind = self.config.backend.kind
        if self.config.base_url is None:
            return {"kind": kind, "reachable": True if kind == "echo" else None}
        now = time.monotonic()
        if self._backend is not None and now - self._backend_at < self.backend_every_s:
            return self._backend
        report: dict[str, Any] = {"kind": kind, "reachable": True}
        try:
            await get_models(self.config.base_url, api_key=self.config.api_key, timeout=2.0)
        except AgentRuntimeError as exc:
            report = {"kind": kind, "reachable": False, "error": sanitize_text(exc.message)}
        self._backend, self._backend_at = report, now
        return report
