"""Task and step functions the Temporal tests run: module-level, so workers import them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from agent_runtime.durable import DurableContext


def record(path: str, index: int) -> int:
    """A blocking step: append one line per call, so a test counts how often each ran."""
    with Path(path).open("a") as f:
        f.write(f"{index}\n")
    return index * index


async def fingerprint(values: list[Any]) -> list[Any]:
    return values


async def twenty_steps(ctx: DurableContext, path: str) -> dict[str, Any]:
    """20 steps, then the clock and a UUID fed into a step's input fingerprint: a replay that
    saw another time or UUID would be an input mismatch."""
    total = 0
    for i in range(20):
        total += await ctx.step(f"square-{i}", record, args=(path, i))
    now = await ctx.now()
    ident = await ctx.uuid()
    seen = [now.isoformat(), ident]
    await ctx.step("seen", fingerprint, args=(seen,), input_fingerprint=seen)
    return {"total": total, "now": seen[0], "uuid": ident, "replayed": ctx.replayed}


async def wait_for(ctx: DurableContext, key: str, timeout_ms: int) -> Any:
    return await ctx.await_event(key, timeout_ms=timeout_ms)


async def emit_then_wait(ctx: DurableContext) -> list[Any]:
    first = await ctx.emit_event("k", {"n": 1})
    second = await ctx.emit_event("k", {"n": 2})
    got = await ctx.await_event("k", timeout_ms=1000)
    return [list(first), list(second), got]


async def with_closure(ctx: DurableContext) -> Any:
    return await ctx.step("closure", lambda: 1)


def _not_registered() -> int:
    return 1


async def with_unregistered_step(ctx: DurableContext) -> Any:
    return await ctx.step("unregistered", _not_registered)


def flaky(path: str, failures: int) -> str:
    """Fails `failures` times (counted in `path`), then answers."""
    p = Path(path)
    calls = int(p.read_text()) if p.exists() else 0
    p.write_text(str(calls + 1))
    if calls < failures:
        raise ValueError(f"attempt {calls + 1} fails")
    return f"ok after {calls + 1}"


async def flaky_task(ctx: DurableContext, path: str, failures: int) -> Any:
    return await ctx.step("flaky", flaky, args=(path, failures))


async def caught_failure(ctx: DurableContext, path: str) -> dict[str, Any]:
    from agent_runtime.temporal import TemporalStepFailedError

    try:
        await ctx.step("always", flaky, args=(path, 99))
    except TemporalStepFailedError as exc:
        return {"error": exc.error, "intent": exc.intent, "index": exc.step_index}
    return {}


def not_json() -> Any:
    return {1, 2}


async def bad_result(ctx: DurableContext) -> Any:
    return await ctx.step("set", not_json)


async def echo_args(ctx: DurableContext, value: Any) -> Any:
    return await ctx.step("echo", fingerprint, args=([value],))


STEPS = [record, fingerprint, flaky, not_json]
TASKS = [
    twenty_steps,
    wait_for,
    emit_then_wait,
    with_closure,
    with_unregistered_step,
    flaky_task,
    caught_failure,
    bad_result,
    echo_args,
]
