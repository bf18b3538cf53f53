"""`ChatService`: what one running app holds (store, turn runner, limits, readiness) and the
admission of a turn, from an authenticated principal and a parsed body to a streamable body.

Admission, in order: the model against the allowlist, the tenant's storage quota, a turn slot
of the tenant; a text-only turn gets the session's earlier turns as context (`SessionHistory`);
then the turn runs under the principal's own durable run id and its session records it. The body a client
receives is the turn's lines with secrets scrubbed; a terminal `session.run.failed` is checked
against the store, so a turn whose store write failed (its run still open, to be resumed) ends
saying how it really stands, as the events endpoint would.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
from collections.abc import AsyncIterator
from typing import Any

import orjson

from ..chat import ChatTurnResult
from ..durable import DurableRunStore, RunRecord, StreamEventRecord
from ..errors import AgentRuntimeError, InvalidArgumentError
from ..models import validate_chat_model_id
from ..sanitize import sanitize_text
from ..types import AgentMessage
from ._auth import Principal
from ._config import BackendConfig
from ._conversations import SessionHistory
from ._health import Readiness
from ._ids import TurnRef, principal_prefix
from ._limits import StorageQuota, TurnSlot, TurnSlots
from ._logging import log_fields
from ._redact import scrub_line
from ._request import ChatRequest
from ._settings import ServerSettings
from ._turns import TurnRunner

__all__ = ["ChatService"]

_log = logging.getLogger("agent_runtime.server")
_DELTA_PREFIXES = (b'{"type":"text_delta"', b'{"type":"reasoning_delta"')
_TERMINAL = (b"session.run.completed", b"session.run.failed", b"session.run.interrupted")
_WATCH_S = 0.5


def _encode(line: Any) -> bytes:
    return orjson.dumps(line) + b"\n"


def _client_view(line: Any, ref: TurnRef) -> Any:
    """A closing line as the client knows the turn: its own execution id, never the durable
    run id (which names the tenant and user)."""
    if isinstance(line, dict):
        data = line.get("data")
        if isinstance(data, dict) and "executionId" in data:
            line = {**line, "data": {**data, "executionId": ref.execution_id}}
        if "execution_id" in line:
            line = {**line, "execution_id": ref.execution_id}
    return line


class ChatService:
    """One app's serving state (built when the store opens)."""

    def __init__(
        self,
        *,
        store: DurableRunStore,
        runner: TurnRunner,
        config: BackendConfig,
        settings: ServerSettings,
        project_id: str,
        readiness: Readiness,
        history: SessionHistory,
    ) -> None:
        self.store = store
        self.history = history
        self.runner = runner
        self.config = config
        self.settings = settings
        self.project_id = project_id
        self.readiness = readiness
        self.slots = TurnSlots(settings.max_turns_per_tenant)
        self.quota = StorageQuota(store, settings.quota_bytes, {})
        self.models: tuple[str, ...] = settings.models or (config.model,)
        # deltas this process produced went through its TurnRedactor; another engine's (a
        # Temporal worker's) are scrubbed line by line on their way out
        self.deltas_scrubbed = type(runner) is TurnRunner
        self._watchers: set[asyncio.Task[None]] = set()

    # -- admission --------------------------------------------------------------------------

    async def admit_model(self, model: str | None) -> str | None:
        """The turn's model: None (the configured one) or an allowlisted id; a model not on
        the allowlist is an `InvalidArgumentError` (nothing is called upstream)."""
        if model is None or model == self.config.model:
            return None if model is None else model
        checked = await validate_chat_model_id(
            model, allowlist=self.models, load_models=lambda _url: []
        )
        if not checked.succeeded:
            raise InvalidArgumentError(
                f"{checked.error} (this server allows: {', '.join(self.models)})", path="model"
            )
        return checked.value

    def _stored_messages(self, messages: tuple[AgentMessage, ...]) -> tuple[AgentMessage, ...]:
        if self.settings.store_raw:
            return messages
        return tuple(dataclasses.replace(m, content=sanitize_text(m.content)) for m in messages)

    async def start_turn(
        self, principal: Principal, parsed: ChatRequest, incoming: int
    ) -> tuple[TurnRef, AsyncIterator[bytes]]:
        """Admit and start a turn; its ref and the client's body. Typed errors (409, 422, 429,
        503) before anything runs."""
        model = await self.admit_model(parsed.model)
        ref = TurnRef(self.project_id, principal, parsed.session_id, parsed.turn_index)
        prefix = principal_prefix(self.project_id, principal.tenant_id)
        await self.quota.check(principal.tenant_id, prefix, incoming)
        slot = self.slots.acquire(principal.tenant_id)
        try:
            request = dataclasses.replace(
                parsed,
                model=model,
                tenant_id=principal.tenant_id,
                user_id=principal.user_id,
                messages=self._stored_messages(parsed.messages),
            )
            request = await self.history.with_context(principal, request)
            run_id, turn = await self.runner.run_turn(request)
            await self.history.admitted(principal, request)
        except BaseException:
            slot.release()
            raise
        self.quota.add(principal.tenant_id, incoming)
        return ref, self._turn_body(ref, run_id, turn, slot)

    # -- the client's body ------------------------------------------------------------------

    async def _turn_body(
        self, ref: TurnRef, run_id: str, turn: ChatTurnResult, slot: TurnSlot
    ) -> AsyncIterator[bytes]:
        ended = False
        written = 0
        pending = b""
        seen: dict[str, Any] = {}  # the turn's last error line, for the failure log
        try:
            async for chunk in turn.body:
                pending += chunk
                if not pending.endswith(b"\n"):
                    continue
                out: list[bytes] = []
                for line in pending.splitlines(keepends=True):
                    fixed, terminal = await self._client_line(ref, run_id, line, seen)
                    ended = ended or terminal
                    out.append(fixed)
                pending = b""
                blob = b"".join(out)
                written += len(blob)
                yield blob
            if pending:
                yield pending
            ended = True
        finally:
            self.quota.add(ref.principal.tenant_id, written)
            if ended:
                slot.release()
            else:  # the client left mid-turn: the turn runs on headless, still in its slot
                self._watch(run_id, slot)

    async def _client_line(
        self, ref: TurnRef, run_id: str, line: bytes, seen: dict[str, Any]
    ) -> tuple[bytes, bool]:
        """The line a client gets, and whether it ends the turn."""
        if self.deltas_scrubbed and line.startswith(_DELTA_PREFIXES):
            return line, False  # scrubbed as produced
        terminal = any(t in line for t in _TERMINAL)
        try:
            original = parsed = orjson.loads(line)
        except orjson.JSONDecodeError:
            return line, terminal
        kind = parsed.get("type") if isinstance(parsed, dict) else None
        if kind == "error":
            seen["error"] = parsed
        elif kind == "session.run.failed":
            parsed = await self._truth(ref, run_id, parsed)
            self._log_failure(ref, seen.get("error") or parsed, parsed.get("type"))
        clean = _client_view(scrub_line(parsed, deltas_scrubbed=self.deltas_scrubbed), ref)
        return (line if clean == original else _encode(clean)), terminal

    async def _truth(self, ref: TurnRef, run_id: str, failed: dict[str, Any]) -> dict[str, Any]:
        """The failed line when the store says the run failed (or never existed); otherwise
        how it stands: completed, or interrupted (still open: its store write failed, or the
        store cannot say), so the client re-attaches or asks again instead of giving up."""
        try:
            async with asyncio.timeout(2.0):
                run = await self.store.load_run(run_id)
        except (AgentRuntimeError, TimeoutError) as exc:
            reason = exc.message if isinstance(exc, AgentRuntimeError) else "timed out"
            return self._interrupted(ref, f"the store cannot say how this turn stands ({reason})")
        if run is None or run.status == "failed":
            return failed
        closing = await self.runner.closing(run_id)
        if closing.get("type") == "session.run.interrupted":
            return self._interrupted(
                ref, "the turn's progress could not be saved; it is resumed when asked again"
            )
        return closing

    def _interrupted(self, ref: TurnRef, message: str) -> dict[str, Any]:
        data = {"sessionId": ref.session_id, "executionId": ref.execution_id, "message": message}
        return {"type": "session.run.interrupted", "data": data}

    def _log_failure(self, ref: TurnRef, line: dict[str, Any], outcome: Any) -> None:
        """One line per failed turn: its execution id, tenant, error code and message (the
        client was told `outcome`: failed, or interrupted when the run is still open)."""
        data = line.get("data") if isinstance(line.get("data"), dict) else line
        assert isinstance(data, dict)
        log_fields(
            _log,
            logging.WARNING,
            "turn failed" if outcome == "session.run.failed" else "turn interrupted",
            execution_id=ref.execution_id,
            tenant=ref.principal.tenant_id,
            code=data.get("code") or data.get("stage") or "turn_failed",
            detail=data.get("message"),
        )

    def _watch(self, run_id: str, slot: TurnSlot) -> None:
        async def watch() -> None:
            try:
                while True:
                    await asyncio.sleep(_WATCH_S)
                    run = await self.store.load_run(run_id)
                    if run is None or run.status != "running" or not _held_by(run, self.runner):
                        return
            except AgentRuntimeError:
                return
            finally:
                slot.release()

        task = asyncio.get_running_loop().create_task(watch())
        self._watchers.add(task)
        task.add_done_callback(self._watchers.discard)

    async def close(self) -> None:
        """Stop watching headless turns (their slots are released)."""
        for task in list(self._watchers):
            task.cancel()
        for task in list(self._watchers):
            with contextlib.suppress(asyncio.CancelledError):
                await task

    # -- reading a turn's log ---------------------------------------------------------------

    async def known(self, ref: TurnRef) -> bool:
        return await self.runner.known(ref.run_id)

    async def records(
        self, ref: TurnRef, after: int | None
    ) -> AsyncIterator[tuple[int | None, str | None, Any]]:
        """`(seq, event_id, payload)` of the log after `after`, then the closing line with
        `(None, None, line)`; payloads scrubbed for the client."""
        record: StreamEventRecord
        async for record in self.runner.tail(ref.run_id, after):
            payload = scrub_line(record.payload, deltas_scrubbed=self.deltas_scrubbed)
            yield record.seq, record.event_id, payload
        closing = await self.runner.closing(ref.run_id)
        yield None, None, _client_view(scrub_line(closing), ref)


def _held_by(run: RunRecord, runner: TurnRunner) -> bool:
    return run.lease_holder == runner.worker_id
