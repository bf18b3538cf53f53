"""Which migrations of a session store are still to apply (the durable store's rule: a newer
database is refused, an applied migration whose checksum changed is refused)."""

from __future__ import annotations

from ..durable._migrations import Migration
from ..errors import StoreUnavailableError

__all__ = ["SCHEMA_INFO_TABLE", "pending_migrations"]

SCHEMA_INFO_TABLE = "backend_sessions_schema_info"


def pending_migrations(
    migrations: tuple[Migration, ...], applied: dict[int, str], where: str
) -> list[Migration]:
    """The migrations of `migrations` not in `applied` ({version: checksum}), in order."""
    latest = migrations[-1].version
    newest = max(applied, default=0)
    if newest > latest:
        raise StoreUnavailableError(
            f"{where} has session schema version {newest}, newer than this library's "
            f"{latest}; upgrade durable-agent-runtime"
        )
    known = {m.version: m for m in migrations}
    for version, checksum in applied.items():
        m = known.get(version)
        if m is not None and m.checksum != checksum:
            raise StoreUnavailableError(
                f"{where}: session migration {version} ({m.description}) was applied with "
                f"checksum {checksum}, this library has {m.checksum}; past migrations must "
                "not change"
            )
    return [m for m in migrations if m.version not in applied]
