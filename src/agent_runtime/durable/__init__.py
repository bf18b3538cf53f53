"""The durable-run substrate: checkpointed steps, replay, leases, events and a stream log."""

from ._filesystem import FileSystemDurableRunStore
from ._manifest import DurableRunManifest, derive_worker_id, manifest_hash, step_id
from ._memory import InMemoryDurableRunStore
from ._migrations import DURABLE_SCHEMA_VERSION
from ._open import check_store_url, open_store
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
from ._run import DurableContext, EmitOutcome, RunDurableResult, RunOutcome, run_durable
from ._sqlite import SQLiteDurableRunStore
from ._sqlite_schema import DURABLE_SCHEMA_SQL
from ._store import DEFAULT_LEASE_MS, DurableRunStore
from ._workflow_step import (
    WorkflowStepConfig,
    WorkflowStepContext,
    WorkflowStepLike,
    WorkflowStepRetries,
    run_on_workflow_step,
)

__all__ = [
    "DEFAULT_LEASE_MS",
    "DURABLE_SCHEMA_SQL",
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
    "RunOutcome",
    "RunRecord",
    "RunStatus",
    "SQLiteDurableRunStore",
    "StartOrResumeResult",
    "StepKind",
    "StepRecord",
    "StepStatus",
    "StreamEventRecord",
    "WorkflowStepConfig",
    "WorkflowStepContext",
    "WorkflowStepLike",
    "WorkflowStepRetries",
    "check_store_url",
    "derive_worker_id",
    "manifest_hash",
    "open_store",
    "run_durable",
    "run_on_workflow_step",
    "step_id",
]

# durable chat turns live in `agent_runtime.chat` (they speak its event vocabulary); they are
# re-exported here because they are part of the durable substrate's surface
# isort: split
from ..chat._durable_turn import DurableTurn, run_durable_turn
from ..chat._engine import DurableChatTurnEngine
from ..chat._supervised import (
    SandboxReconnectAdapter,
    SubstrateEvent,
    SupervisedStart,
    SupervisedTurn,
    run_supervised_turn,
)
from ..chat._supervisor import SweepTarget, TurnSupervisor

__all__ += [
    "DurableChatTurnEngine",
    "DurableTurn",
    "SandboxReconnectAdapter",
    "SubstrateEvent",
    "SupervisedStart",
    "SupervisedTurn",
    "SweepTarget",
    "TurnSupervisor",
    "run_durable_turn",
    "run_supervised_turn",
]
