"""Chat turns: a framework-neutral turn handler streaming NDJSON with a lifecycle envelope."""

from ._turn import (
    ChatStreamEvent,
    ChatTurnHooks,
    ChatTurnIdentity,
    ChatTurnProducer,
    ChatTurnResult,
    derive_execution_id,
    handle_chat_turn,
)

__all__ = [
    "ChatStreamEvent",
    "ChatTurnHooks",
    "ChatTurnIdentity",
    "ChatTurnProducer",
    "ChatTurnResult",
    "derive_execution_id",
    "handle_chat_turn",
]
