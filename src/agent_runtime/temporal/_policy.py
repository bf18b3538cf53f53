"""A `WorkflowStepConfig` (the original's step retry and timeout shape) as Temporal activity
options: `retries.limit` retries after the first attempt, `delay` before the first retry,
`constant` or `exponential` growth as Temporal's own retry policy, `linear` by the workflow
(Temporal's policy has no linear backoff), `timeout` as the start-to-close timeout."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..errors import DurableValueError

__all__ = ["DEFAULT_STEP_CONFIG", "StepOptions", "parse_duration_ms", "step_options"]

DEFAULT_STEP_CONFIG: Mapping[str, Any] = {
    "retries": {"limit": 5, "delay": "1 second", "backoff": "exponential"},
    "timeout": "10 minutes",
    "heartbeat": "10 seconds",
}
"""Used when a task has no `step_config`: Cloudflare Workflows' defaults (5 retries,
exponential, 10 minute timeout) with a 1 s first delay and a 10 s heartbeat timeout."""

_UNITS_MS = {
    "ms": 1,
    "millisecond": 1,
    "s": 1000,
    "second": 1000,
    "m": 60_000,
    "minute": 60_000,
    "h": 3_600_000,
    "hour": 3_600_000,
    "d": 86_400_000,
    "day": 86_400_000,
    "w": 604_800_000,
    "week": 604_800_000,
}
_DURATION = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([a-z]+)\s*")
_BACKOFFS = ("constant", "linear", "exponential")
_KEYS = frozenset(("retries", "timeout", "heartbeat"))
_RETRY_KEYS = frozenset(("limit", "delay", "backoff"))


def parse_duration_ms(value: Any, path: str) -> int:
    """Milliseconds from an int (ms) or a label: `"5 seconds"`, `"1 minute"`, `"250ms"`."""
    if type(value) is int:
        if value < 0:
            raise DurableValueError("a duration must be >= 0", path=path)
        return value
    match = _DURATION.fullmatch(value.lower()) if isinstance(value, str) else None
    if match is not None:
        unit = match.group(2)
        if unit not in _UNITS_MS and unit.endswith("s"):
            unit = unit[:-1]  # plurals: "5 seconds"
        if unit in _UNITS_MS:
            return math.ceil(float(match.group(1)) * _UNITS_MS[unit])
    raise DurableValueError(
        "a duration is an int of milliseconds or a label like '5 seconds'", path=path
    )


@dataclass(frozen=True, slots=True)
class StepOptions:
    """What every step activity of a task is scheduled with."""

    attempts: int
    delay_ms: int
    backoff: str
    timeout_ms: int
    heartbeat_ms: int

    @property
    def native_retries(self) -> bool:
        """Temporal's retry policy expresses the backoff (all but `linear`)."""
        return self.backoff != "linear"

    def retry_delay_ms(self, attempt: int) -> int:
        """The wait before attempt `attempt + 1` when the workflow retries (`linear`)."""
        return self.delay_ms * attempt

    def to_dict(self) -> dict[str, Any]:
        return {
            "attempts": self.attempts,
            "delayMs": self.delay_ms,
            "backoff": self.backoff,
            "timeoutMs": self.timeout_ms,
            "heartbeatMs": self.heartbeat_ms,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> StepOptions:
        return cls(
            attempts=int(data["attempts"]),
            delay_ms=int(data["delayMs"]),
            backoff=str(data["backoff"]),
            timeout_ms=int(data["timeoutMs"]),
            heartbeat_ms=int(data["heartbeatMs"]),
        )


def step_options(config: Mapping[str, Any] | None) -> StepOptions:
    """Check a step config (None: `DEFAULT_STEP_CONFIG`) and resolve it; a malformed one
    raises `DurableValueError` naming the field."""
    if config is None:
        config = DEFAULT_STEP_CONFIG
    if not isinstance(config, Mapping):
        raise DurableValueError("step_config must be a mapping", path="step_config")
    unknown = set(config) - _KEYS
    if unknown:
        raise DurableValueError(f"unknown keys {sorted(unknown)}", path="step_config")
    retries = config.get("retries", {"limit": 0, "delay": 0})
    if not isinstance(retries, Mapping) or set(retries) - _RETRY_KEYS:
        raise DurableValueError(
            "retries must be a mapping of limit, delay and backoff", path="step_config.retries"
        )
    limit = retries.get("limit", 0)
    if type(limit) is not int or limit < 0:
        raise DurableValueError("must be an int >= 0", path="step_config.retries.limit")
    backoff = retries.get("backoff", "constant")
    if backoff not in _BACKOFFS:
        raise DurableValueError(
            "must be constant, linear or exponential", path="step_config.retries.backoff"
        )
    delay = parse_duration_ms(retries.get("delay", 0), "step_config.retries.delay")
    timeout = parse_duration_ms(
        config.get("timeout", DEFAULT_STEP_CONFIG["timeout"]), "step_config.timeout"
    )
    heartbeat = parse_duration_ms(
        config.get("heartbeat", DEFAULT_STEP_CONFIG["heartbeat"]), "step_config.heartbeat"
    )
    if timeout < 1 or heartbeat < 1:
        raise DurableValueError("timeout and heartbeat must be >= 1 ms", path="step_config")
    return StepOptions(
        attempts=limit + 1,
        delay_ms=max(delay, 1),
        backoff=str(backoff),
        timeout_ms=timeout,
        heartbeat_ms=min(heartbeat, timeout),
    )
