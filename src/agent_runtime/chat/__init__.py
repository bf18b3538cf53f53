"""Chat turns: a framework-neutral turn handler streaming NDJSON with a lifecycle envelope,
and its durable variants (checkpointed, re-attachable, replayable turns)."""

from typing import TYPE_CHECKING

from .._lazy import lazy_exports

if TYPE_CHECKING:  # the names, for type checkers; at run time each loads on first use
    from ._durable_turn import (
        FINISH_INTENT,
        PRODUCE_INTENT,
        DurableTurn,
        TurnMode,
        restarted_event,
        result_event,
        run_durable_turn,
    )
    from ._engine import CHAT_TURN_TASK, DurableChatTurnEngine
    from ._retry import latest_restart_seq, restart_failed_turn
    from ._sandbox_turn import (
        ChatTurnMessage,
        ChatTurnSandbox,
        run_chat_turn,
        sandbox_as_chat_turn_target,
    )
    from ._supervised import (
        SandboxReconnectAdapter,
        SubstrateEvent,
        SupervisedMode,
        SupervisedStart,
        SupervisedTurn,
        run_supervised_turn,
    )
    from ._supervisor import SweepTarget, TurnSupervisor, manifest_from_record
    from ._turn import (
        ChatStreamEvent,
        ChatTurnHooks,
        ChatTurnIdentity,
        ChatTurnLog,
        ChatTurnProducer,
        ChatTurnResult,
        PersistErrors,
        derive_execution_id,
        handle_chat_turn,
    )
    from ._turn_log import (
        TurnLogCursor,
        TurnLogId,
        parse_turn_event_id,
        turn_event_id,
        turn_restart_id,
    )

# every name above, by the module it comes from (tests/core/test_lazy_exports.py checks both agree)
_EXPORTS: dict[str, tuple[str, ...]] = {
    "._durable_turn": (
        "FINISH_INTENT",
        "PRODUCE_INTENT",
        "DurableTurn",
        "TurnMode",
        "restarted_event",
        "result_event",
        "run_durable_turn",
    ),
    "._engine": ("CHAT_TURN_TASK", "DurableChatTurnEngine"),
    "._retry": ("latest_restart_seq", "restart_failed_turn"),
    "._sandbox_turn": (
        "ChatTurnMessage",
        "ChatTurnSandbox",
        "run_chat_turn",
        "sandbox_as_chat_turn_target",
    ),
    "._supervised": (
        "SandboxReconnectAdapter",
        "SubstrateEvent",
        "SupervisedMode",
        "SupervisedStart",
        "SupervisedTurn",
        "run_supervised_turn",
    ),
    "._supervisor": ("SweepTarget", "TurnSupervisor", "manifest_from_record"),
    "._turn": (
        "ChatStreamEvent",
        "ChatTurnHooks",
        "ChatTurnIdentity",
        "ChatTurnLog",
        "ChatTurnProducer",
        "ChatTurnResult",
        "PersistErrors",
        "derive_execution_id",
        "handle_chat_turn",
    ),
    "._turn_log": (
        "TurnLogCursor",
        "TurnLogId",
        "parse_turn_event_id",
        "turn_event_id",
        "turn_restart_id",
    ),
}

__all__ = [
    "CHAT_TURN_TASK",
    "FINISH_INTENT",
    "PRODUCE_INTENT",
    "ChatStreamEvent",
    "ChatTurnHooks",
    "ChatTurnIdentity",
    "ChatTurnLog",
    "ChatTurnMessage",
    "ChatTurnProducer",
    "ChatTurnResult",
    "ChatTurnSandbox",
    "DurableChatTurnEngine",
    "DurableTurn",
    "PersistErrors",
    "SandboxReconnectAdapter",
    "SubstrateEvent",
    "SupervisedMode",
    "SupervisedStart",
    "SupervisedTurn",
    "SweepTarget",
    "TurnLogCursor",
    "TurnLogId",
    "TurnMode",
    "TurnSupervisor",
    "derive_execution_id",
    "handle_chat_turn",
    "latest_restart_seq",
    "manifest_from_record",
    "parse_turn_event_id",
    "restart_failed_turn",
    "restarted_event",
    "result_event",
    "run_chat_turn",
    "run_durable_turn",
    "run_supervised_turn",
    "sandbox_as_chat_turn_target",
    "turn_event_id",
    "turn_restart_id",
]

if not TYPE_CHECKING:
    __getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())
