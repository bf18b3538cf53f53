"""`run_on_workflow_step` (ORIGINAL §18.11) over a recording fake shaped like `WorkflowStepLike`:
the step names, the config passed through, events as `wait_for_event`, `emit_event` refused."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime
from typing import Any

import pytest

from agent_runtime import WorkflowStepConfig, WorkflowStepLike, run_on_workflow_step
from agent_runtime.durable import DurableContext
from agent_runtime.errors import DurableRunError, DurableValueError


class RecordingStep:
    """A workflow engine's `step` in miniature: `do` runs a callback once per name and
    replays its result after; every call is recorded."""

    def __init__(self, events: Mapping[str, Any] | None = None) -> None:
        self.calls: list[tuple[Any, ...]] = []
        self.results: dict[str, Any] = {}
        self.events = dict(events or {})

    async def do(self, name: str, *args: Any) -> Any:
        if len(args) == 1:
            config, fn = None, args[0]
            self.calls.append(("do", name))
        else:
            config, fn = args
            self.calls.append(("do", name, config))
        if name not in self.results:
            self.results[name] = await fn()
        return self.results[name]

    async def sleep(self, name: str, duration: str | int) -> None:
        self.calls.append(("sleep", name, duration))

    async def wait_for_event(self, name: str, options: Mapping[str, Any]) -> Any:
        self.calls.append(("wait_for_event", name, dict(options)))
        return {"payload": self.events[options["type"]], "type": options["type"]}


def double(x: int) -> int:
    return 2 * x


async def add(a: int, b: int) -> int:
    return a + b


async def run(step: Any, task: Callable[[DurableContext], Awaitable[Any]], **kw: Any) -> Any:
    return await run_on_workflow_step(step, workflow_name="wf", task_fn=task, **kw)


def test_the_fake_has_the_shape() -> None:
    assert isinstance(RecordingStep(), WorkflowStepLike)


async def test_steps_are_named_by_workflow_position_and_intent() -> None:
    step = RecordingStep()
    seen: dict[str, Any] = {}

    async def task(ctx: DurableContext) -> int:
        seen["run_id"], seen["project"] = ctx.run_id, getattr(ctx, "project_id", None)
        a = await ctx.step("double", double, args=(4,))
        b = await ctx.step("add", add, args=[a, 1], kind="llm", input_fingerprint={"x": 1})
        return int(await ctx.step("lambda", lambda: b * 10))

    assert await run(step, task) == 90
    assert step.calls == [("do", "wf/0:double"), ("do", "wf/1:add"), ("do", "wf/2:lambda")]
    assert seen == {"run_id": "cf-workflow:wf", "project": "wf"}


async def test_step_config_is_passed_to_every_do() -> None:
    step = RecordingStep()
    config: WorkflowStepConfig = {
        "retries": {"limit": 3, "delay": "1 second", "backoff": "exponential"},
        "timeout": "30 seconds",
    }

    async def task(ctx: DurableContext) -> None:
        await ctx.step("a", double, args=(1,))
        await ctx.now()

    await run(step, task, step_config=config)
    assert step.calls == [("do", "wf/0:a", config), ("do", "wf/1:deterministic:now", config)]


async def test_now_and_uuid_are_steps_replayed_by_the_engine() -> None:
    step = RecordingStep()
    out: list[tuple[datetime, str]] = []

    async def task(ctx: DurableContext) -> None:
        out.append((await ctx.now(), await ctx.uuid()))

    await run(step, task)
    await run(step, task)  # the engine replays both by name
    assert out[0] == out[1]
    assert out[0][0].tzinfo is not None
    assert uuid.UUID(out[0][1]).version == 4
    assert [c[1] for c in step.calls] == ["wf/0:deterministic:now", "wf/1:deterministic:uuid"] * 2


async def test_await_event_waits_for_the_engine_event_with_a_seconds_timeout() -> None:
    step = RecordingStep(events={"approve": {"ok": True}, "later": 7})

    async def task(ctx: DurableContext) -> list[Any]:
        first = await ctx.await_event("approve", timeout_ms=1500)
        second = await ctx.await_event("later")
        return [first, second]

    assert await run(step, task) == [{"ok": True}, 7]
    assert step.calls == [
        ("wait_for_event", "wf/0:event:approve", {"type": "approve", "timeout": "2s"}),
        ("wait_for_event", "wf/1:event:later", {"type": "later"}),
    ]


async def test_emit_event_is_refused() -> None:
    step = RecordingStep()

    async def task(ctx: DurableContext) -> None:
        await ctx.emit_event("k", 1)

    with pytest.raises(DurableRunError) as info:
        await run(step, task)
    assert info.value.code == "emit_event_unsupported"
    assert step.calls == []


@pytest.mark.parametrize(
    ("kwargs", "path"),
    [
        ({"workflow_name": ""}, "workflow_name"),
        ({"task_fn": 3}, "task_fn"),
        ({"step_config": "fast"}, "step_config"),
        ({"now": 5}, "now"),
    ],
)
async def test_bad_arguments_raise_before_the_engine_is_called(
    kwargs: dict[str, Any], path: str
) -> None:
    step = RecordingStep()

    async def task(ctx: DurableContext) -> None:
        await ctx.step("a", double, args=(1,))

    options: dict[str, Any] = {"workflow_name": "wf", "task_fn": task, **kwargs}
    with pytest.raises(DurableValueError) as info:
        await run_on_workflow_step(step, **options)
    assert info.value.path == path
    assert step.calls == []


async def test_a_non_step_object_is_refused() -> None:
    async def task(ctx: DurableContext) -> None:
        return None

    with pytest.raises(DurableValueError):
        await run_on_workflow_step(object(), workflow_name="wf", task_fn=task)  # type: ignore[arg-type]


async def test_bad_step_arguments_raise_before_the_step_is_recorded() -> None:
    step = RecordingStep()

    async def task(ctx: DurableContext) -> None:
        await ctx.step("a", double, args=5)  # type: ignore[arg-type]

    with pytest.raises(DurableValueError):
        await run(step, task)

    async def bad_timeout(ctx: DurableContext) -> None:
        await ctx.await_event("k", timeout_ms=-1)

    with pytest.raises(DurableValueError):
        await run(step, bad_timeout)
    assert step.calls == []
