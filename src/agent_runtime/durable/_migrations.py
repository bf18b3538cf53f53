"""Versioned schema migrations: shared bookkeeping for the SQL stores.

A migration is never rewritten once released: each applied migration's checksum is recorded
and checked when a store opens, so an edited past migration is caught instead of silently
diverging between databases.
"""

from __future__ import annotations

import hashlib
from typing import NamedTuple

from ..errors import StoreUnavailableError

__all__ = ["DURABLE_SCHEMA_VERSION", "Migration", "check_applied"]

DURABLE_SCHEMA_VERSION = 5
"""The durable schema version this library writes and reads (its migration count)."""


class Migration(NamedTuple):
    version: int
    description: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()[:16]


def check_applied(
    migrations: tuple[Migration, ...], applied: dict[int, str], where: str
) -> list[Migration]:
    """Validate recorded migrations against ours and return the ones still to apply."""
    known = {m.version: m for m in migrations}
    ours = max(known, default=0)
    newest = max(applied, default=0)
    if newest > ours:
        raise StoreUnavailableError(
            f"{where} has schema version {newest}, newer than this library's "
            f"{ours}; upgrade durable-agent-runtime"
        )
    for version, checksum in applied.items():
        m = known.get(version)
        if m is not None and checksum and m.checksum != checksum:
            raise StoreUnavailableError(
                f"{where}: migration {version} ({m.description}) was applied with checksum "
                f"{checksum}, this library has {m.checksum}; past migrations must not change"
            )
    return [m for m in migrations if m.version not in applied]
