"""Retry policy for backend requests: exponential backoff with jitter, Retry-After honoured.

Retries happen only before the first byte of a response body; once streaming has begun a
failure is reported, never replayed, so no output is duplicated.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

from ..errors import ConfigurationError

__all__ = ["NEVER_RETRY_STATUSES", "BackendRetryPolicy", "parse_retry_after"]

NEVER_RETRY_STATUSES: frozenset[int] = frozenset((400, 401, 403, 404, 422))
_RETRY_STATUSES: frozenset[int] = frozenset((408, 409, 429))


@dataclass(frozen=True, slots=True)
class BackendRetryPolicy:
    """How often and how long to wait before re-sending a request that failed before streaming.

    Delay before retry n (1-based): `initial_delay_s * multiplier**(n-1)`, capped at
    `max_delay_s`, then spread by +/- `jitter` (a fraction). A `Retry-After` header replaces
    the computed delay, capped at `max_retry_after_s`.
    """

    max_retries: int = 2
    initial_delay_s: float = 0.5
    multiplier: float = 2.0
    max_delay_s: float = 8.0
    jitter: float = 0.25
    max_retry_after_s: float = 60.0

    def __post_init__(self) -> None:
        if type(self.max_retries) is not int or self.max_retries < 0:
            raise ConfigurationError("BackendRetryPolicy.max_retries must be an int >= 0")
        for name in ("initial_delay_s", "multiplier", "max_delay_s", "max_retry_after_s"):
            v = getattr(self, name)
            if not isinstance(v, int | float) or not math.isfinite(v) or v < 0:
                raise ConfigurationError(f"BackendRetryPolicy.{name} must be a number >= 0")
        if not isinstance(self.jitter, int | float) or not 0 <= self.jitter <= 1:
            raise ConfigurationError("BackendRetryPolicy.jitter must be within [0, 1]")

    @staticmethod
    def is_retryable_status(status: int) -> bool:
        """408, 409, 429 and 5xx are transient; every other status (400/401/403/404/422...) is
        final."""
        if status in NEVER_RETRY_STATUSES:
            return False
        return status in _RETRY_STATUSES or 500 <= status <= 599

    def delay_s(
        self,
        retry_number: int,
        retry_after_s: float | None = None,
        rng: random.Random | None = None,
    ) -> float:
        """Seconds to wait before retry `retry_number` (1-based)."""
        if retry_after_s is not None:
            return max(0.0, min(retry_after_s, self.max_retry_after_s))
        try:
            grown = self.initial_delay_s * self.multiplier ** (retry_number - 1)
        except OverflowError:  # a very late retry: the schedule reached its cap long ago
            grown = math.inf if self.initial_delay_s > 0 else 0.0
        base = min(grown, self.max_delay_s)
        spread = (rng or random).uniform(-self.jitter, self.jitter)
        return max(0.0, min(base * (1 + spread), self.max_delay_s))


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or HTTP-date); None when absent/bad."""
    if value is None:
        return None
    value = value.strip()
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - (now or datetime.now(UTC))).total_seconds()
        return max(0.0, seconds)
    if not math.isfinite(seconds) or seconds < 0:
        return None
    return seconds
