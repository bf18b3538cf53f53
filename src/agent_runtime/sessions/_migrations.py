"""Bookkeeping of the session stores' migrations: the table that records them. Which are still
to apply is the durable store's rule (`durable._migrations.check_applied`)."""

from __future__ import annotations

__all__ = ["SCHEMA_INFO_TABLE"]

SCHEMA_INFO_TABLE = "backend_sessions_schema_info"
