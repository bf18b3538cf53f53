"""`agent-runtime temporal ...`: a Temporal worker for durable tasks and chat turns, and a
way to send a run its event from a shell (extra `temporal`).

`worker` polls a task queue until SIGINT/SIGTERM, running chat turns and agent tasks on
`--store` (their events stream into its log, where `serve` reads them) plus any `--task`
and `--step` functions named `module:function`. `emit` signals a run. Errors are one line
on stderr; exit codes as the rest of the CLI: 1 what was asked failed, 2 a wrong option.
"""

from __future__ import annotations

import asyncio
import importlib
import signal
import sys
from collections.abc import Callable
from typing import Annotated, Any

import orjson
import typer

from .errors import (
    AgentRuntimeError,
    ConfigurationError,
    DurableValueError,
    InvalidArgumentError,
)

__all__ = ["DEFAULT_ADDRESS", "DEFAULT_TASK_QUEUE", "temporal_app"]

DEFAULT_ADDRESS = "127.0.0.1:7233"
DEFAULT_TASK_QUEUE = "agent-runtime"

temporal_app = typer.Typer(
    help="Run durable tasks and chat turns on Temporal (extra `temporal`).",
    no_args_is_help=True,
    rich_markup_mode=None,
)

AddressOpt = Annotated[
    str, typer.Option("--address", envvar="TEMPORAL_ADDRESS", help="Temporal frontend host:port.")
]
NamespaceOpt = Annotated[
    str, typer.Option("--namespace", envvar="TEMPORAL_NAMESPACE", help="Temporal namespace.")
]
QueueOpt = Annotated[
    str,
    typer.Option("--task-queue", envvar="AGENT_RUNTIME_TASK_QUEUE", help="Task queue to poll."),
]


def _fail(message: str, code: int) -> typer.Exit:
    sys.stderr.write(f"error: {message}\n")
    return typer.Exit(code)


def _import(ref: str, what: str) -> Callable[..., Any]:
    """`module:function` imported; `InvalidArgumentError` when it does not resolve."""
    module, sep, name = ref.partition(":")
    if not sep or not module or not name:
        raise InvalidArgumentError(f"{ref!r} is not module:function", path=what)
    try:
        target: Any = importlib.import_module(module)
        for part in name.split("."):
            target = getattr(target, part)
    except (ImportError, AttributeError) as exc:
        raise InvalidArgumentError(f"cannot import {ref!r}: {exc}", path=what) from None
    if not callable(target):
        raise InvalidArgumentError(f"{ref!r} is not a function", path=what)
    return target  # type: ignore[no-any-return]


def _modules() -> Any:
    try:
        import temporalio.client  # noqa: F401

        from . import temporal
    except ImportError as exc:
        raise _fail(
            f"needs the temporal extra (pip install 'durable-agent-runtime[temporal]'): {exc}", 2
        ) from None
    return temporal


async def _connect(address: str, namespace: str) -> Any:
    from temporalio.client import Client

    try:
        return await Client.connect(address, namespace=namespace)
    except RuntimeError as exc:
        raise ConfigurationError(f"cannot reach Temporal at {address}: {exc}") from None


async def _serve_worker(
    address: str,
    namespace: str,
    task_queue: str,
    store_url: str,
    tasks: list[str],
    steps: list[str],
    project: str,
    lease_ms: int,
) -> None:
    from .durable import open_store

    temporal = _modules()
    task_fns = [_import(ref, "--task") for ref in tasks]
    step_fns = [_import(ref, "--step") for ref in steps]
    store = await open_store(store_url)
    try:
        client = await _connect(address, namespace)
        worker = temporal.create_worker(
            client,
            task_queue=task_queue,
            tasks=task_fns,
            steps=step_fns,
            store=store,
            project_id=project,
            lease_ms=lease_ms,
        )
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        async with worker:
            sys.stderr.write(
                f"worker polling {task_queue!r} on {address} (namespace {namespace})\n"
            )
            sys.stderr.flush()
            await stop.wait()
    finally:
        await store.close()


@temporal_app.command("worker")
def worker(
    address: AddressOpt = DEFAULT_ADDRESS,
    namespace: NamespaceOpt = "default",
    task_queue: QueueOpt = DEFAULT_TASK_QUEUE,
    store: Annotated[
        str,
        typer.Option("--store", envvar="AGENT_RUNTIME_STORE", help="Durable store URL."),
    ] = "sqlite:///./.agent-runtime/runs.db",
    task: Annotated[
        list[str] | None, typer.Option("--task", help="A task function, module:function.")
    ] = None,
    step: Annotated[
        list[str] | None, typer.Option("--step", help="A step function, module:function.")
    ] = None,
    project: Annotated[str, typer.Option(help="Project id of the chat turns.")] = "chat",
    lease_ms: Annotated[
        int, typer.Option(min=1000, help="Store lease of a turn this worker drives (ms).")
    ] = 5_000,
) -> None:
    """Run a worker: chat turns, agent tasks and the given tasks and steps."""
    try:
        asyncio.run(
            _serve_worker(
                address, namespace, task_queue, store, task or [], step or [], project, lease_ms
            )
        )
    except AgentRuntimeError as exc:
        code = (
            2
            if isinstance(exc, ConfigurationError | InvalidArgumentError | DurableValueError)
            else 1
        )
        raise _fail(exc.message, code) from None


async def _emit(address: str, namespace: str, run_id: str, key: str, payload: Any) -> None:
    temporal = _modules()
    client = await _connect(address, namespace)
    await temporal.emit_event(client, run_id, key, payload)


@temporal_app.command("emit")
def emit(
    run_id: Annotated[str, typer.Argument(help="The run (workflow id).")],
    key: Annotated[str, typer.Argument(help="The event key the task awaits.")],
    payload: Annotated[str, typer.Argument(help="The event payload, as JSON.")] = "null",
    address: AddressOpt = DEFAULT_ADDRESS,
    namespace: NamespaceOpt = "default",
) -> None:
    """Send a run the event `key` (its `ctx.await_event(key)` returns the payload)."""
    try:
        value = orjson.loads(payload)
    except orjson.JSONDecodeError as exc:
        raise _fail(f"payload is not JSON: {exc}", 2) from None
    try:
        asyncio.run(_emit(address, namespace, run_id, key, value))
    except AgentRuntimeError as exc:
        code = (
            2
            if isinstance(exc, ConfigurationError | InvalidArgumentError | DurableValueError)
            else 1
        )
        raise _fail(exc.message, code) from None
    sys.stderr.write(f"sent {key!r} to {run_id}\n")
