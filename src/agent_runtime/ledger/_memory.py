"""`InMemoryRuntimeRunPersistence`: ledger rows in a dict (tests, one-process tools)."""

from __future__ import annotations

import builtins

from ..errors import ValidationError
from ._records import RuntimeRunRow

__all__ = ["InMemoryRuntimeRunPersistence", "check_id", "check_list_args", "check_row"]


def check_row(row: object) -> RuntimeRunRow:
    """`row` when it is a `RuntimeRunRow`, else `ValidationError`."""
    if not isinstance(row, RuntimeRunRow):
        raise ValidationError(f"upsert: expected a RuntimeRunRow, got {type(row).__name__}")
    return row


def check_list_args(workspace_id: object, limit: object) -> None:
    """The arguments every persistence's `list` takes, checked the same way."""
    if workspace_id is not None and (not isinstance(workspace_id, str) or not workspace_id):
        raise ValidationError("list: workspace_id must be a non-empty string or None")
    if type(limit) is not int or limit <= 0:
        raise ValidationError("list: limit must be an int > 0")


def check_id(id: object) -> str:
    if not isinstance(id, str) or not id:
        raise ValidationError("get: id must be a non-empty string")
    return id


class InMemoryRuntimeRunPersistence:
    """Ledger rows by id; `upsert` replaces, `get` and `list` read (newest start first)."""

    def __init__(self) -> None:
        self._rows: dict[str, RuntimeRunRow] = {}

    async def upsert(self, row: RuntimeRunRow) -> None:
        """Insert or replace `row` by its id."""
        self._rows[check_row(row).id] = row

    async def get(self, id: str) -> RuntimeRunRow | None:
        """The row with this id, or None."""
        return self._rows.get(check_id(id))

    async def list(
        self, *, workspace_id: str | None = None, limit: int = 100
    ) -> builtins.list[RuntimeRunRow]:
        """Rows (of one workspace when given), newest start first, at most `limit`."""
        check_list_args(workspace_id, limit)
        rows = [r for r in self._rows.values() if workspace_id in (None, r.workspace_id)]
        rows.sort(key=lambda r: (r.started_at, r.id), reverse=True)
        return rows[:limit]

    async def close(self) -> None:
        """Nothing to release."""
