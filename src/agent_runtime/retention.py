"""Run retention and storage accounting over any durable store: delete runs idle for longer
than a period (`prune_runs`), and measure the bytes stored under a run-id prefix
(`storage_usage`), which the chat service uses for per-tenant quotas.

A run is pruned when its last update is older than the cutoff and no worker holds a live
lease on it (a running run whose worker died long ago goes too). The work is each store's own
(`StoreBase.prune_idle_runs`, `StoreBase.stored_bytes`): this module checks the arguments and
shapes the answer.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from .durable import DurableRunStore
from .errors import InvalidArgumentError

__all__ = ["PruneResult", "parse_byte_size", "parse_duration", "prune_runs", "storage_usage"]

_DURATION = re.compile(r"\s*(\d+(?:\.\d+)?)\s*(s|m|h|d|w)?\s*", re.IGNORECASE)
_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_SIZE = re.compile(r"\s*(\d+(?:\.\d+)?)\s*(b|kb|mb|gb|tb|kib|mib|gib|tib)?\s*", re.IGNORECASE)
_BYTES = {
    "b": 1,
    "kb": 10**3,
    "mb": 10**6,
    "gb": 10**9,
    "tb": 10**12,
    "kib": 2**10,
    "mib": 2**20,
    "gib": 2**30,
    "tib": 2**40,
}


def parse_duration(text: str) -> timedelta:
    """`30d`, `12h`, `90m`, `45s`, `2w` (a bare number is seconds) as a positive timedelta;
    `InvalidArgumentError` otherwise."""
    m = _DURATION.fullmatch(text) if isinstance(text, str) else None
    if m is None or float(m.group(1)) <= 0:
        raise InvalidArgumentError(
            "must be a positive duration such as 30d, 12h, 90m or 45s", path="duration"
        )
    return timedelta(seconds=float(m.group(1)) * _SECONDS[(m.group(2) or "s").lower()])


def parse_byte_size(text: str) -> int:
    """`256MB`, `1GiB`, `500kb`, `1048576` as a positive number of bytes; `InvalidArgumentError`
    otherwise."""
    m = _SIZE.fullmatch(text) if isinstance(text, str) else None
    size = int(float(m.group(1)) * _BYTES[(m.group(2) or "b").lower()]) if m else 0
    if size <= 0:
        raise InvalidArgumentError("must be a positive size such as 256MB or 1GiB", path="size")
    return size


@dataclass(frozen=True, slots=True)
class PruneResult:
    """What `prune_runs` deleted (or, with `dry_run`, would delete)."""

    run_ids: tuple[str, ...]
    cutoff: datetime
    dry_run: bool = False

    @property
    def count(self) -> int:
        return len(self.run_ids)

    def to_dict(self) -> dict[str, Any]:
        return {
            "pruned": self.count,
            "run_ids": list(self.run_ids),
            "cutoff": self.cutoff.isoformat(),
            "dry_run": self.dry_run,
        }


def _check_prefix(prefix: Any) -> str:
    if not isinstance(prefix, str) or "\x00" in prefix or len(prefix) > 512:
        raise InvalidArgumentError("must be a string of at most 512 characters", path="prefix")
    return prefix


async def prune_runs(
    store: DurableRunStore,
    *,
    older_than: timedelta,
    prefix: str = "",
    dry_run: bool = False,
    now: datetime | None = None,
) -> PruneResult:
    """Delete every run under `prefix` (all runs by default) whose last update is older than
    `older_than` before `now` (default: the store's clock) and that no worker holds a live
    lease on, with its steps, events and stream log. `dry_run` only lists them.
    `ConfigurationError` for a store that cannot prune."""
    if not isinstance(older_than, timedelta) or older_than <= timedelta(0):
        raise InvalidArgumentError("must be a positive timedelta", path="older_than")
    if now is not None and (not isinstance(now, datetime) or now.tzinfo is None):
        raise InvalidArgumentError("must be an aware datetime", path="now")
    _check_prefix(prefix)
    age_ms = max(int(older_than.total_seconds() * 1000), 1)
    base_ms = _now_ms() if now is None else int(now.timestamp() * 1000)
    cutoff_ms = base_ms - age_ms
    doomed = await store.prune_idle_runs(
        prefix, age_ms, now_ms=None if now is None else base_ms, dry_run=dry_run
    )
    cutoff = datetime.fromtimestamp(cutoff_ms / 1000, tz=UTC)
    return PruneResult(run_ids=tuple(doomed), cutoff=cutoff, dry_run=dry_run)


async def storage_usage(store: DurableRunStore, prefix: str) -> int:
    """Bytes of JSON stored for runs whose id starts with `prefix` (manifests, outcomes, step
    results, events and stream log): what a per-tenant quota counts."""
    if not _check_prefix(prefix):
        raise InvalidArgumentError("must not be empty", path="prefix")
    return await store.stored_bytes(prefix)


def _now_ms() -> int:
    return time.time_ns() // 1_000_000
