"""Request and tenant limits: the body read (size cap and deadline), turns running at once per
tenant, and the per-tenant storage quota.

Storage is counted from the store once per tenant (`storage_usage` over the tenant's run-id
prefix), then kept current by adding what each admitted turn writes, and counted again after
every retention sweep. A turn slot is held from admission until the turn's producer stops,
even when the client went away and the turn runs on headless.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict

from starlette.requests import ClientDisconnect, Request

from ..durable import DurableRunStore
from ..errors import AgentRuntimeError, ConfigurationError
from ..retention import storage_usage
from ._errors import BodyTooLargeError, QuotaExceededError, RequestTimeoutError, TooManyTurnsError

__all__ = ["StorageQuota", "TurnSlot", "TurnSlots", "read_body"]

_log = logging.getLogger("agent_runtime.server")


async def read_body(request: Request, *, max_bytes: int, timeout_s: float) -> bytes:
    """The whole body; `BodyTooLargeError` past `max_bytes` (declared or sent),
    `RequestTimeoutError` when it has not all arrived within `timeout_s`."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.strip().isdigit() and int(declared) > max_bytes:
        raise BodyTooLargeError(f"the body is larger than {max_bytes} bytes")
    chunks: list[bytes] = []
    size = 0
    try:
        async with asyncio.timeout(timeout_s):
            async for chunk in request.stream():
                size += len(chunk)
                if size > max_bytes:
                    raise BodyTooLargeError(f"the body is larger than {max_bytes} bytes")
                chunks.append(chunk)
    except TimeoutError:
        raise RequestTimeoutError(f"the body did not arrive within {timeout_s:g} s") from None
    except ClientDisconnect:
        raise RequestTimeoutError("the client went away while sending the body") from None
    return b"".join(chunks)


class TurnSlot:
    """One running turn of a tenant; `release()` frees it (once, whoever calls first)."""

    __slots__ = ("_owner", "_tenant", "released")

    def __init__(self, owner: TurnSlots, tenant: str) -> None:
        self._owner = owner
        self._tenant = tenant
        self.released = False

    def release(self) -> None:
        if not self.released:
            self.released = True
            self._owner._release(self._tenant)


class TurnSlots:
    """At most `per_tenant` turns running at once for each tenant."""

    def __init__(self, per_tenant: int) -> None:
        if type(per_tenant) is not int or per_tenant < 1:
            raise ConfigurationError("per_tenant must be a positive int")
        self.per_tenant = per_tenant
        self._running: defaultdict[str, int] = defaultdict(int)

    def running(self, tenant: str) -> int:
        return self._running.get(tenant, 0)

    def acquire(self, tenant: str) -> TurnSlot:
        """A slot, or `TooManyTurnsError` when the tenant's turns are all in use."""
        if self._running[tenant] >= self.per_tenant:
            raise TooManyTurnsError(
                f"this tenant already has {self.per_tenant} turns running; retry when one ends"
            )
        self._running[tenant] += 1
        return TurnSlot(self, tenant)

    def _release(self, tenant: str) -> None:
        left = self._running[tenant] - 1
        if left > 0:
            self._running[tenant] = left
        else:
            self._running.pop(tenant, None)


class StorageQuota:
    """Bytes stored per tenant against `quota_bytes` (None: unlimited, nothing counted)."""

    def __init__(self, store: DurableRunStore, quota_bytes: int | None, prefix_of: dict[str, str]):
        self.store = store
        self.quota_bytes = quota_bytes
        self._prefix_of = prefix_of  # tenant -> run-id prefix, filled by `check`
        self._used: dict[str, int] = {}
        self._lock = asyncio.Lock()

    async def used(self, tenant: str, prefix: str) -> int:
        """The tenant's stored bytes (counted from the store the first time)."""
        known = self._used.get(tenant)
        if known is not None:
            return known
        async with self._lock:
            known = self._used.get(tenant)
            if known is None:
                known = await storage_usage(self.store, prefix)
                self._used[tenant] = known
                self._prefix_of[tenant] = prefix
        return known

    async def check(self, tenant: str, prefix: str, incoming: int) -> None:
        """`QuotaExceededError` when the tenant is at its quota already."""
        if self.quota_bytes is None:
            return
        used = await self.used(tenant, prefix)
        if used + incoming > self.quota_bytes:
            raise QuotaExceededError(
                f"this tenant stores {used} bytes of runs, over its quota of "
                f"{self.quota_bytes}; delete runs or wait for retention to prune old ones"
            )

    def add(self, tenant: str, size: int) -> None:
        """Count `size` more bytes written for the tenant."""
        if self.quota_bytes is not None and tenant in self._used:
            self._used[tenant] += size

    async def recount(self) -> None:
        """Count every known tenant again from the store (after a prune)."""
        for tenant, prefix in list(self._prefix_of.items()):
            try:
                self._used[tenant] = await storage_usage(self.store, prefix)
            except AgentRuntimeError as exc:
                _log.warning("cannot count storage of tenant %s: %s", tenant, exc.message)
