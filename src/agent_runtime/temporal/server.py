"""`agent-runtime serve --engine temporal`: the chat service starts each turn as a Temporal
run and streams it from the durable stream log the workers write.

`POST /api/chat` starts (or attaches to) the run `chat_turn` named by the turn's execution
id, then relays its log as the turn's NDJSON body; the events endpoint and every dialect
read the same log, so a reloaded page re-attaches as on our own stores. Workers
(`agent-runtime temporal worker --store <the same store>`) call the model; the server never
does, and the orphan sweeper leaves these turns to Temporal.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Mapping
from typing import TYPE_CHECKING, Any

from ..chat import ChatStreamEvent, ChatTurnIdentity, ChatTurnResult, handle_chat_turn
from ..durable import DurableRunManifest, DurableRunStore, RunRecord
from ..errors import ConfigurationError, DurableTurnFailedError
from ..server import TurnRunner
from ._chat import chat_turn, chat_turn_request
from ._client import start_task, task_result

if TYPE_CHECKING:
    from temporalio.client import Client, WorkflowHandle

    from ..backends import AgentExecutionBackend
    from ..chat import SweepTarget
    from ..server import ChatRequest

__all__ = ["DEFAULT_TASK_QUEUE", "TemporalTurnRunner", "temporal_runner_from_env"]

DEFAULT_ADDRESS = "127.0.0.1:7233"
DEFAULT_TASK_QUEUE = "agent-runtime"


class _Relay:
    """A turn's producer on the server: the log the Temporal worker writes, read from the
    start until the run ends; the stored text as the final text."""

    def __init__(self, runner: TemporalTurnRunner, handle: WorkflowHandle[Any, Any], run_id: str):
        self._runner = runner
        self._handle = handle
        self._run_id = run_id
        self._text = ""

    @property
    def stream(self) -> AsyncIterator[ChatStreamEvent]:
        return self._events()

    def final_text(self) -> str:
        return self._text

    async def _run(self) -> RunRecord | None:
        return await self._runner.store.load_run(self._run_id)

    async def _closed(self) -> bool:
        """Whether Temporal has ended the run (its workflow is no longer running)."""
        from temporalio.client import WorkflowExecutionStatus

        description = await self._handle.describe()
        return description.status != WorkflowExecutionStatus.RUNNING

    async def _events(self) -> AsyncIterator[ChatStreamEvent]:
        runner = self._runner
        after: int | None = None
        delay = 0.01
        while True:
            async for record in runner.tail(self._run_id, after):
                after = record.seq
                delay = 0.01
                yield record.payload
            run = await self._run()
            if run is not None and run.status == "completed":
                outcome = run.outcome if isinstance(run.outcome, Mapping) else {}
                text = outcome.get("text")
                self._text = text if isinstance(text, str) else ""
                return
            if await self._closed():  # retries exhausted, or cancelled or terminated
                await task_result(self._handle)  # raises the run's failure as our error
                raise DurableTurnFailedError(
                    f"turn {self._run_id!r} ended on Temporal without completing",
                    run_id=self._run_id,
                )
            # not started yet, or a worker died and Temporal has not retried it yet
            await asyncio.sleep(delay)
            delay = min(delay * 1.5, runner.poll_s)


class _RelayHooks:
    def __init__(self, relay: _Relay) -> None:
        self._relay = relay

    def produce(self) -> _Relay:
        return self._relay

    def persist_assistant_message(self, _identity: ChatTurnIdentity, _text: str) -> None:
        return None  # the worker's run records the text


class TemporalTurnRunner(TurnRunner):
    """A `TurnRunner` whose turns Temporal workers drive: `run_turn` starts the turn's run
    on `task_queue` and relays its stream log; reading logs is the base class's."""

    def __init__(
        self,
        store: DurableRunStore,
        backend: AgentExecutionBackend,
        *,
        address: str = DEFAULT_ADDRESS,
        namespace: str = "default",
        task_queue: str = DEFAULT_TASK_QUEUE,
        step_config: Mapping[str, Any] | None = None,
        **options: Any,
    ) -> None:
        super().__init__(store, backend, **options)
        self.address = address
        self.namespace = namespace
        self.task_queue = task_queue
        self.step_config = step_config
        self._client: Client | None = None
        self._lock = asyncio.Lock()

    async def client(self) -> Client:
        """The Temporal client, connected on first use."""
        from temporalio.client import Client

        async with self._lock:
            if self._client is None:
                try:
                    self._client = await Client.connect(self.address, namespace=self.namespace)
                except RuntimeError as exc:
                    raise ConfigurationError(
                        f"cannot reach Temporal at {self.address}: {exc}"
                    ) from None
            return self._client

    async def run_turn(self, request: ChatRequest) -> tuple[str, ChatTurnResult]:
        """Start (or attach to) the turn's Temporal run and stream its log as NDJSON;
        `DurableRunInputMismatchError` when the turn was asked with other input."""
        identity = request.identity
        run_id = self.execution_id(request)
        handle = await start_task(
            await self.client(),
            chat_turn,
            run_id=run_id,
            task_queue=self.task_queue,
            args=[chat_turn_request(request, run_id)],
            step_config=self.step_config,
        )
        hooks = _RelayHooks(_Relay(self, handle, run_id))
        return run_id, handle_chat_turn(identity, hooks)

    def resolve(self, run: RunRecord, manifest: DurableRunManifest) -> SweepTarget | None:
        """None: Temporal re-drives these turns, the server's sweeper must not."""
        return None

    async def drain(self, grace_s: float = 5.0) -> list[str]:
        """Nothing to wait for: this process drives no turn."""
        return []


def temporal_runner_from_env(env: Mapping[str, str]) -> Callable[..., TurnRunner]:
    """The runner factory `serve --engine temporal` uses: `TEMPORAL_ADDRESS`,
    `TEMPORAL_NAMESPACE` and `AGENT_RUNTIME_TASK_QUEUE` (defaults: 127.0.0.1:7233,
    `default`, `agent-runtime`)."""
    address = env.get("TEMPORAL_ADDRESS", "").strip() or DEFAULT_ADDRESS
    namespace = env.get("TEMPORAL_NAMESPACE", "").strip() or "default"
    queue = env.get("AGENT_RUNTIME_TASK_QUEUE", "").strip() or DEFAULT_TASK_QUEUE

    def factory(
        store: DurableRunStore, backend: AgentExecutionBackend, **options: Any
    ) -> TurnRunner:
        return TemporalTurnRunner(
            store, backend, address=address, namespace=namespace, task_queue=queue, **options
        )

    return factory
