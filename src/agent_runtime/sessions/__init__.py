"""Chat sessions scoped by tenant and user: the `RuntimeSessionStore` protocol and its
memory, SQLite and PostgreSQL implementations (tables `runtime_session*`)."""

from ._memory import InMemoryRuntimeSessionStore
from ._postgres import PostgresRuntimeSessionStore
from ._records import RuntimeSession
from ._sqlite import SQLiteRuntimeSessionStore
from ._store import RuntimeSessionStore

__all__ = [
    "InMemoryRuntimeSessionStore",
    "PostgresRuntimeSessionStore",
    "RuntimeSession",
    "RuntimeSessionStore",
    "SQLiteRuntimeSessionStore",
]
