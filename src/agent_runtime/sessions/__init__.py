"""Backend sessions (ORIGINAL §6): the `RuntimeSessionStore` protocol `run_agent_task_stream`
writes to, and its memory, SQLite and PostgreSQL implementations (tables `backend_session*`).

The server's per-tenant conversation history is another store: `agent_runtime.history`.
"""

from ._memory import InMemoryRuntimeSessionStore
from ._postgres import PostgresRuntimeSessionStore
from ._sqlite import SQLiteRuntimeSessionStore
from ._store import RuntimeSessionEventLog, RuntimeSessionStore

__all__ = [
    "InMemoryRuntimeSessionStore",
    "PostgresRuntimeSessionStore",
    "RuntimeSessionEventLog",
    "RuntimeSessionStore",
    "SQLiteRuntimeSessionStore",
]
