"""`BackendRetryPolicy`: when and how long to wait before re-sending a backend request
(ORIGINAL §7.5), plus our `Retry-After` handling.

Retries happen only before the first byte of a response body; once streaming has begun a
failure is reported, never replayed, so no output is duplicated.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

from ..errors import ValidationError

__all__ = ["DEFAULT_RETRY_STATUSES", "BackendRetryPolicy", "parse_retry_after"]

DEFAULT_RETRY_STATUSES: frozenset[int] = frozenset((408, 425, 429, 500, 502, 503, 504))


def _number(owner: object, name: str) -> None:
    v = getattr(owner, name)
    if type(v) not in (int, float) or not math.isfinite(v) or v < 0:
        raise ValidationError(f"BackendRetryPolicy.{name} must be a finite number >= 0")


@dataclass(frozen=True, slots=True)
class BackendRetryPolicy:
    """The original's retry defaults: 5 attempts in all (1 disables retries), a backoff of
    1000 ms doubling to 30000 ms with ±25 % jitter, the retried statuses, and a per-attempt
    deadline of 120000 ms for the response headers (0 disables it).

    Ours: a `Retry-After` header replaces the computed delay, capped at `max_retry_after_ms`.
    """

    max_attempts: int = 5
    initial_backoff_ms: float = 1000
    max_backoff_ms: float = 30000
    jitter: float = 0.25
    retry_statuses: frozenset[int] = DEFAULT_RETRY_STATUSES
    request_timeout_ms: float = 120000
    max_retry_after_ms: float = 60000

    def __post_init__(self) -> None:
        if type(self.max_attempts) is not int or self.max_attempts < 1:
            raise ValidationError("BackendRetryPolicy.max_attempts must be an int >= 1")
        for name in (
            "initial_backoff_ms",
            "max_backoff_ms",
            "request_timeout_ms",
            "max_retry_after_ms",
        ):
            _number(self, name)
        if type(self.jitter) not in (int, float) or not 0 <= self.jitter <= 1:
            raise ValidationError("BackendRetryPolicy.jitter must be a number within [0, 1]")
        statuses = self.retry_statuses
        if isinstance(statuses, str | bytes) or not isinstance(statuses, Iterable):
            raise ValidationError("BackendRetryPolicy.retry_statuses must be HTTP status ints")
        frozen = frozenset(statuses)
        if not all(type(s) is int and 100 <= s <= 599 for s in frozen):
            raise ValidationError("BackendRetryPolicy.retry_statuses must be HTTP status ints")
        object.__setattr__(self, "retry_statuses", frozen)

    def is_retryable_status(self, status: int) -> bool:
        """Whether an answer with this HTTP status is tried again."""
        return status in self.retry_statuses

    def delay_ms(
        self,
        retry_number: int,
        retry_after_ms: float | None = None,
        rng: random.Random | None = None,
    ) -> int:
        """Milliseconds to wait before retry `retry_number` (1-based): `min(initial * 2^(n-1),
        max)` plus uniform jitter of ±`jitter` * that, rounded, floored at 0; a server's
        `Retry-After` (capped at `max_retry_after_ms`) replaces it."""
        if retry_after_ms is not None:
            return round(max(0.0, min(retry_after_ms, self.max_retry_after_ms)))
        exponent = max(0, retry_number - 1)
        if exponent > 1023 or self.initial_backoff_ms == 0:  # the cap was reached long ago
            grown = self.max_backoff_ms if self.initial_backoff_ms > 0 else 0.0
        else:
            grown = self.initial_backoff_ms * 2.0**exponent
        base = min(grown, self.max_backoff_ms)
        spread = (rng or random).uniform(-self.jitter, self.jitter) * base
        return max(0, round(base + spread))


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Milliseconds from a `Retry-After` header (delta-seconds or HTTP-date); None when
    absent or unreadable."""
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
        return max(0.0, seconds) * 1000
    if not math.isfinite(seconds) or seconds < 0:
        return None
    return seconds * 1000
