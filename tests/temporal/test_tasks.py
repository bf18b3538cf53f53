"""Durable task functions on a real Temporal dev server: steps as activities, replay from the
recorded history, events as signals, and our error types out of a failed run."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from temporalio.client import Client
from temporalio.worker import Worker

from agent_runtime.errors import (
    DurableAwaitEventTimeoutError,
    DurableRunInputMismatchError,
    DurableValueError,
)
from agent_runtime.temporal import (
    create_worker,
    run_task,
    start_task,
    task_result,
)
from tests.temporal import tasks

FAST: dict[str, Any] = {
    "retries": {"limit": 2, "delay": 10, "backoff": "constant"},
    "timeout": "30 seconds",
    "heartbeat": "5 seconds",
}


@pytest.fixture
async def worker(temporal_client: Client) -> AsyncIterator[tuple[Client, str]]:
    queue = f"q-{uuid.uuid4().hex[:8]}"
    w: Worker = create_worker(
        temporal_client, task_queue=queue, tasks=tasks.TASKS, steps=tasks.STEPS
    )
    async with w:
        yield temporal_client, queue


def rid() -> str:
    return f"run-{uuid.uuid4().hex[:10]}"


async def test_twenty_steps_run_once_each(worker: tuple[Client, str], tmp_path: Path) -> None:
    client, queue = worker
    calls = tmp_path / "calls.txt"
    result = await run_task(
        client,
        tasks.twenty_steps,
        run_id=rid(),
        task_queue=queue,
        args=[str(calls)],
        step_config=FAST,
    )
    assert result["total"] == sum(i * i for i in range(20))
    assert sorted(int(x) for x in calls.read_text().split()) == list(range(20))
    assert uuid.UUID(result["uuid"]).version == 4


def _edit_activity_result(history: Any, index: int, edit: Any) -> Any:
    """The history with the recorded result of step `index` changed by `edit(envelope)`."""
    import base64
    import json

    from temporalio.client import WorkflowHistory

    data = json.loads(history.to_json())
    for event in data["events"]:
        attrs = event.get("activityTaskCompletedEventAttributes")
        if attrs is None:
            continue
        payload = attrs["result"]["payloads"][0]
        envelope = json.loads(base64.b64decode(payload["data"]))
        if envelope["index"] == index:
            edit(envelope)
            payload["data"] = base64.b64encode(json.dumps(envelope).encode()).decode()
            return WorkflowHistory.from_json(history.workflow_id, data)
    raise AssertionError(f"no recorded step {index}")


async def test_replay_from_the_recorded_history(worker: tuple[Client, str], tmp_path: Path) -> None:
    from agent_runtime.temporal import create_replayer

    client, queue = worker
    handle = await start_task(
        client,
        tasks.twenty_steps,
        run_id=rid(),
        task_queue=queue,
        args=[str(tmp_path / "c")],
        step_config=FAST,
    )
    await task_result(handle)
    history = await handle.fetch_history()
    replayer = create_replayer(tasks=tasks.TASKS, steps=tasks.STEPS)
    # the same code replays: now/uuid are the recorded ones (they feed the last step's fingerprint)
    result = await replayer.replay_workflow(history, raise_on_replay_failure=False)
    assert result.replay_failure is None

    def other_time(envelope: dict[str, Any]) -> None:
        envelope["inputHash"] = "0" * 64  # as if the replay saw another now/uuid

    changed = _edit_activity_result(history, 22, other_time)  # after 20 squares, now, uuid
    result = await replayer.replay_workflow(changed, raise_on_replay_failure=False)
    assert result.replay_failure is not None
    assert 'r#type: "DurableStepInputMismatchError"' in str(result.replay_failure)

    def other_intent(envelope: dict[str, Any]) -> None:
        envelope["intent"] = "square-renamed"

    diverged = _edit_activity_result(history, 3, other_intent)
    result = await replayer.replay_workflow(diverged, raise_on_replay_failure=False)
    assert 'r#type: "DurableRunDivergenceError"' in str(result.replay_failure)
    assert "intent changed across replays" in str(result.replay_failure)


async def test_await_event_gets_a_signal_sent_by_another_process(
    worker: tuple[Client, str], temporal_server: Any
) -> None:
    import asyncio
    import sys

    client, queue = worker
    run_id = rid()
    handle = await start_task(
        client, tasks.wait_for, run_id=run_id, task_queue=queue, args=["approve", 30_000]
    )
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "agent_runtime.cli",
        "temporal",
        "emit",
        run_id,
        "approve",
        '{"ok": true, "by": "ops"}',
        "--address",
        temporal_server.address,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    _, err = await proc.communicate()
    assert proc.returncode == 0, err.decode()
    assert await task_result(handle) == {"ok": True, "by": "ops"}


async def test_await_event_times_out(worker: tuple[Client, str]) -> None:
    client, queue = worker
    run_id = rid()
    with pytest.raises(DurableAwaitEventTimeoutError) as info:
        await run_task(client, tasks.wait_for, run_id=run_id, task_queue=queue, args=["never", 200])
    assert info.value.run_id == run_id
    assert "'never'" in info.value.message


async def test_emit_event_inside_the_run_first_one_wins(worker: tuple[Client, str]) -> None:
    client, queue = worker
    result = await run_task(client, tasks.emit_then_wait, run_id=rid(), task_queue=queue)
    assert result == [[True, {"n": 1}], [False, {"n": 1}], {"n": 1}]


async def test_a_closure_step_fails_the_run_at_once(worker: tuple[Client, str]) -> None:
    client, queue = worker
    with pytest.raises(DurableValueError, match="lambda or a nested function"):
        await run_task(client, tasks.with_closure, run_id=rid(), task_queue=queue)
    with pytest.raises(DurableValueError, match="not registered"):
        await run_task(client, tasks.with_unregistered_step, run_id=rid(), task_queue=queue)


def test_closures_are_refused_at_registration(temporal_client: Client) -> None:
    async def nested(ctx: Any) -> None:
        return None

    for bad in ({"tasks": [nested]}, {"steps": [lambda: 1]}, {"tasks": [tasks.record]}):
        with pytest.raises(DurableValueError):
            create_worker(temporal_client, task_queue="q", **bad)


async def test_starting_a_closure_task_is_refused_before_anything_is_sent(
    temporal_client: Client,
) -> None:
    async def nested(ctx: Any) -> None:
        return None

    with pytest.raises(DurableValueError, match="nested"):
        await start_task(temporal_client, nested, run_id=rid(), task_queue="q")
    with pytest.raises(DurableValueError):
        await start_task(temporal_client, tasks.echo_args, run_id=rid(), task_queue="q", args=[{1}])
    with pytest.raises(DurableValueError):
        await start_task(
            temporal_client,
            tasks.echo_args,
            run_id=rid(),
            task_queue="q",
            args=[1],
            step_config={"retries": {"limit": -1}},
        )


async def test_a_failing_step_is_retried_then_raises(
    worker: tuple[Client, str], tmp_path: Path
) -> None:
    client, queue = worker
    counter = tmp_path / "n"
    result = await run_task(
        client,
        tasks.caught_failure,
        run_id=rid(),
        task_queue=queue,
        args=[str(counter)],
        step_config=FAST,
    )
    assert result == {
        "error": {"type": "ValueError", "message": "attempt 3 fails"},
        "intent": "always",
        "index": 0,
    }
    assert counter.read_text() == "3"  # limit 2: three attempts


@pytest.mark.parametrize("backoff", ["constant", "linear", "exponential"])
async def test_retries_follow_the_step_config(
    worker: tuple[Client, str], tmp_path: Path, backoff: str
) -> None:
    client, queue = worker
    config = {**FAST, "retries": {"limit": 2, "delay": 5, "backoff": backoff}}
    counter = tmp_path / "n"
    result = await run_task(
        client,
        tasks.flaky_task,
        run_id=rid(),
        task_queue=queue,
        args=[str(counter), 2],
        step_config=config,
    )
    assert result == "ok after 3"


async def test_a_result_that_is_not_json_fails_without_retry(worker: tuple[Client, str]) -> None:
    client, queue = worker
    with pytest.raises(DurableValueError, match="result"):
        await run_task(client, tasks.bad_result, run_id=rid(), task_queue=queue, step_config=FAST)


async def test_a_run_id_answers_its_result_and_refuses_other_input(
    worker: tuple[Client, str],
) -> None:
    client, queue = worker
    run_id = rid()
    assert await run_task(client, tasks.echo_args, run_id=run_id, task_queue=queue, args=[5]) == [5]
    handle = await start_task(client, tasks.echo_args, run_id=run_id, task_queue=queue, args=[5])
    assert await task_result(handle) == [5]
    history = await handle.fetch_history()
    starts = [
        e for e in history.events if e.HasField("workflow_execution_started_event_attributes")
    ]
    assert len(starts) == 1  # attached to the completed run, not a second execution
    with pytest.raises(DurableRunInputMismatchError):
        await start_task(client, tasks.echo_args, run_id=run_id, task_queue=queue, args=[6])
