"""The server's conversation history: chat messages per tenant, user and session id, with
owner checks (`ConversationOwnerError`), on memory, SQLite and PostgreSQL.

Not the runtime's `RuntimeSessionStore` (backend sessions of `run_agent_task_stream`, in
`agent_runtime.sessions`).
"""

from ._memory import InMemoryConversationHistory
from ._postgres import PostgresConversationHistory
from ._records import Conversation
from ._sqlite import SQLiteConversationHistory
from ._store import ConversationHistoryStore

__all__ = [
    "Conversation",
    "ConversationHistoryStore",
    "InMemoryConversationHistory",
    "PostgresConversationHistory",
    "SQLiteConversationHistory",
]
