"""The durable-run substrate: checkpointed steps, replay, leases, events and a stream log."""

from typing import TYPE_CHECKING

from .._lazy import lazy_exports
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

# Durable chat turns live in `agent_runtime.chat` (they speak its event vocabulary) and are part
# of the durable substrate's surface, so they are reachable from here too -- resolved on first
# use, so that importing the durable core never imports chat.
_CHAT_EXPORTS: dict[str, tuple[str, ...]] = {
    "..chat._durable_turn": ("DurableTurn", "run_durable_turn"),
    "..chat._engine": ("DurableChatTurnEngine",),
    "..chat._supervised": (
        "SandboxReconnectAdapter",
        "SubstrateEvent",
        "SupervisedStart",
        "SupervisedTurn",
        "run_supervised_turn",
    ),
    "..chat._supervisor": ("SweepTarget", "TurnSupervisor"),
}
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

if TYPE_CHECKING:
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

__getattr__, __dir__ = lazy_exports(__name__, _CHAT_EXPORTS, globals())
