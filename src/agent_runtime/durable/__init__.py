"""The durable-run substrate: checkpointed steps, replay, leases, events and a stream log."""

from ._filesystem import FileSystemDurableRunStore
from ._manifest import DurableRunManifest, derive_worker_id, manifest_hash, step_id
from ._memory import InMemoryDurableRunStore
from ._migrations import DURABLE_SCHEMA_VERSION
from ._open import open_store
from ._postgres import PostgresDurableRunStore
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
)
from ._run import DurableContext, EmitOutcome, RunDurableResult, run_durable
from ._sqlite import SQLiteDurableRunStore
from ._store import DEFAULT_LEASE_MS, DurableRunStore

__all__ = [
    "DEFAULT_LEASE_MS",
    "DURABLE_SCHEMA_VERSION",
    "AppendStreamResult",
    "DurableContext",
    "DurableRunManifest",
    "DurableRunStore",
    "EmitEventResult",
    "EmitOutcome",
    "EventRecord",
    "FileSystemDurableRunStore",
    "InMemoryDurableRunStore",
    "PostgresDurableRunStore",
    "RunDurableResult",
    "RunHandle",
    "RunRecord",
    "RunStatus",
    "SQLiteDurableRunStore",
    "StartOrResumeResult",
    "StepKind",
    "StepRecord",
    "StepStatus",
    "StreamEventRecord",
    "derive_worker_id",
    "manifest_hash",
    "open_store",
    "run_durable",
    "step_id",
]
