"""durable-agent-runtime: streamed, durable and accountable chat turns and agent tasks."""

from .durable import (
    DURABLE_SCHEMA_VERSION,
    DurableContext,
    DurableRunManifest,
    DurableRunStore,
    InMemoryDurableRunStore,
    RunDurableResult,
    RunHandle,
    SQLiteDurableRunStore,
    derive_worker_id,
    manifest_hash,
    run_durable,
    step_id,
)
from .errors import (
    AgentRuntimeError,
    BackendTransportError,
    ConfigurationError,
    DurableAwaitEventTimeoutError,
    DurableRunDivergenceError,
    DurableRunError,
    DurableRunInputMismatchError,
    DurableRunLeaseHeldError,
    DurableRunLeaseLostError,
    DurableRunNotFoundError,
    DurableStepInputMismatchError,
    DurableValueError,
    EventParseError,
    RuntimeRunStateError,
    SessionMismatchError,
    StoreUnavailableError,
)
from .jsoncanon import canonical_hash, canonical_json

# -- section: tasks, backends, events (types.py, backends/, runtime.py, knowledge.py, events.py,
#    tracing.py) ---------------------------------------------------------------------------------

# -- section: sessions, sse, telemetry, models, intent, profiles --------------------------------

# -- section: stores beyond the embedded default (postgres, filesystem, open_store) --------------

__version__ = "0.1.0"

__all__ = [
    "DURABLE_SCHEMA_VERSION",
    "AgentRuntimeError",
    "BackendTransportError",
    "ConfigurationError",
    "DurableAwaitEventTimeoutError",
    "DurableContext",
    "DurableRunDivergenceError",
    "DurableRunError",
    "DurableRunInputMismatchError",
    "DurableRunLeaseHeldError",
    "DurableRunLeaseLostError",
    "DurableRunManifest",
    "DurableRunNotFoundError",
    "DurableRunStore",
    "DurableStepInputMismatchError",
    "DurableValueError",
    "EventParseError",
    "InMemoryDurableRunStore",
    "RunDurableResult",
    "RunHandle",
    "RuntimeRunStateError",
    "SQLiteDurableRunStore",
    "SessionMismatchError",
    "StoreUnavailableError",
    "__version__",
    "canonical_hash",
    "canonical_json",
    "derive_worker_id",
    "manifest_hash",
    "run_durable",
    "step_id",
]
