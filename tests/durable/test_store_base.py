"""`StoreBase`: every check and every JSON encoding happens before a store's hook is called,
and optional capabilities (`stream_length`, `close`) have a default a store may override."""

from __future__ import annotations

import enum
import math
from typing import Any

import orjson
import pytest

from agent_runtime.durable import (
    DurableRunManifest,
    DurableRunStore,
    InMemoryDurableRunStore,
    RunHandle,
    StreamEventRecord,
)
from agent_runtime.durable._base import StoreBase
from agent_runtime.durable._records import ms_dt
from agent_runtime.durable._steps import StepWrite
from agent_runtime.errors import ConfigurationError, DurableRunError, DurableValueError

MANIFEST = DurableRunManifest("p", {"id": "t", "intent": "i"}, {"q": 1})


class Color(enum.Enum):
    RED = "red"


class Recording(StoreBase):
    """Records each hook call; answers nothing useful (the calls are what is checked)."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, tuple[Any, ...]]] = []

    def __getattribute__(self, name: str) -> Any:
        if name.startswith("_") and not name.startswith("__") and name != "_checked_write":
            calls = object.__getattribute__(self, "calls")

            async def hook(*args: Any) -> Any:
                calls.append((name, args))
                return [] if name in ("_append", "_read", "_list_runs", "_load_steps") else None

            return hook
        return object.__getattribute__(self, name)


BAD_CALLS: dict[str, Any] = {
    "start_or_resume: empty run id": lambda s: s.start_or_resume("", MANIFEST, "w"),
    "start_or_resume: no manifest": lambda s: s.start_or_resume("r", {"id": "t"}, "w"),
    "start_or_resume: lease": lambda s: s.start_or_resume("r", MANIFEST, "w", lease_ms=0),
    "renew_lease: worker": lambda s: s.renew_lease("r", "w\x00"),
    "renew_lease: epoch": lambda s: s.renew_lease("r", "w", lease_epoch=-1),
    "end_run: status": lambda s: s.end_run("r", "w", "running"),
    "end_run: outcome": lambda s: s.end_run("r", "w", "completed", math.nan),
    "end_run: worker": lambda s: s.end_run("r", "", "completed"),
    "load_run: run id": lambda s: s.load_run(7),
    "list_runs: limit": lambda s: s.list_runs(limit=-1),
    "list_runs: status": lambda s: s.list_runs(status="done"),
    "set_run_handle: handle": lambda s: s.set_run_handle("r", {"kind": "sandbox"}),
    "load_steps: run id": lambda s: s.load_steps(""),
    "load_step: index": lambda s: s.load_step("r", -1),
    "begin_step: intent": lambda s: s.begin_step("r", 0, "", "llm", None),
    "begin_step: kind": lambda s: s.begin_step("r", 0, "i", "magic", None),
    "complete_step: result": lambda s: s.complete_step("r", 0, {1, 2}, intent="i"),
    "complete_step: input hash": lambda s: s.complete_step("r", 0, 1, "i", "logic", "a\x00"),
    "complete_step: epoch": lambda s: s.complete_step("r", 0, 1, intent="i", lease_epoch=1.5),
    "fail_step: error": lambda s: s.fail_step("r", 0, {"msg": "no message key"}, intent="i"),
    "emit_event: key": lambda s: s.emit_event("r", "", 1),
    "emit_event: payload": lambda s: s.emit_event("r", "k", math.inf),
    "load_event: key": lambda s: s.load_event("r", None),
    "append_stream_event: id": lambda s: s.append_stream_event("r", "", 1),
    "append_stream_events: payload": lambda s: s.append_stream_events(
        "r", [("a", 1), ("b", object())]
    ),
    "append_stream_events: not pairs": lambda s: s.append_stream_events("r", [("a", 1, 2)]),
    "append_stream_events: no pair": lambda s: s.append_stream_events("r", [("a", 1), 5]),
    "append_stream_events: NUL id": lambda s: s.append_stream_events("r", [("a", 1), ("\x00", 2)]),
    "append_stream_events: long id": lambda s: s.append_stream_events("r", [("a" * 513, 1)]),
    "append_stream_events: id type": lambda s: s.append_stream_events("r", [("a", 1), (2, 2)]),
    "append_stream_events: empty id": lambda s: s.append_stream_events("r", [("", 1)]),
    "append_stream_events: enum": lambda s: s.append_stream_events("r", [("a", Color.RED)]),
    "read_stream_events: cursor": lambda s: s.read_stream_events("r", after_seq="3"),
    "read_stream_events: limit": lambda s: s.read_stream_events("r", limit=-2),
    "stream_length: run id": lambda s: s.stream_length(""),
}


@pytest.mark.parametrize("call", sorted(BAD_CALLS))
async def test_bad_arguments_never_reach_a_hook(call: str) -> None:
    store = Recording()
    with pytest.raises((DurableValueError, DurableRunError)):
        await BAD_CALLS[call](store)
    assert store.calls == []


async def test_a_bad_payload_names_its_place_in_the_batch() -> None:
    with pytest.raises(DurableValueError) as info:
        await Recording().append_stream_events("r", [("a", 1), ("b", {"x": [math.nan]})])
    assert info.value.path == "events[1].payload.x[0]"


async def test_a_batch_with_a_non_ascii_id_is_checked_event_by_event_and_accepted() -> None:
    store = Recording()
    await store.append_stream_events("r", [("é", {"x": 1}), ("a", [1.5])])
    assert store.calls[-1] == ("_append", ("r", ["é", "a"], ['{"x":1}', "[1.5]"]))


async def test_a_bad_event_is_named_in_batch_order() -> None:
    with pytest.raises(DurableValueError) as info:
        await Recording().append_stream_events("r", [("a", {1}), ("", 1)])
    assert info.value.path == "events[0].payload"


async def test_hooks_get_checked_arguments_and_json_text() -> None:
    store = Recording()
    await store.complete_step("r", 3, {"b": 1, "a": [True, None]}, intent="i", worker_id="w")
    await store.fail_step("r", 4, {"type": "E", "message": "m"}, intent="i", lease_epoch=2)
    await store.end_run("r", None, "failed", {"why": "x"})
    await store.append_stream_events("r", [("e1", {"t": "x"}), ("e2", 2)])
    await store.append_stream_events("r", [])  # nothing to append: no hook
    await store.read_stream_events("r", after_seq=-7)
    await store.emit_event("r", "k", [1])
    await store.set_run_handle("r", RunHandle(kind="remote", run_id="x"))
    assert store.calls == [
        (
            "_write_step",
            (
                StepWrite(
                    "r",
                    3,
                    "completed",
                    "i",
                    "logic",
                    None,
                    '{"b":1,"a":[true,null]}',
                    None,
                    "w",
                    None,
                ),
            ),
        ),
        (
            "_write_step",
            (
                StepWrite(
                    "r",
                    4,
                    "failed",
                    "i",
                    "logic",
                    None,
                    None,
                    '{"type":"E","message":"m"}',
                    None,
                    2,
                ),
            ),
        ),
        ("_end", ("r", None, "failed", '{"why":"x"}', None)),
        ("_append", ("r", ["e1", "e2"], ['{"t":"x"}', "2"])),
        ("_read", ("r", -1, None)),
        ("_emit", ("r", "k", "[1]")),
        (
            "_set_handle",
            (
                "r",
                RunHandle(kind="remote", run_id="x"),
                '{"kind":"remote","runId":"x"}',
            ),
        ),
    ]


class ReadOnlyLog(StoreBase):
    """A store that implements only `_read`: the defaults fill in the rest it needs."""

    def __init__(self, n: int) -> None:
        self.n = n

    async def _read(
        self, run_id: str, after_seq: int, limit: int | None
    ) -> list[StreamEventRecord]:
        at = ms_dt(0)
        return [StreamEventRecord(run_id, i, f"e{i}", i, at) for i in range(after_seq + 1, self.n)]


async def test_optional_capabilities_have_a_default() -> None:
    store = ReadOnlyLog(5)
    assert await store.stream_length("r") == 5
    assert await store.close() is None
    assert isinstance(store, DurableRunStore)


async def test_stream_length_is_the_next_seq(store: DurableRunStore) -> None:
    assert await store.stream_length("nothing-here") == 0
    await store.append_stream_events("s", [("a", 1), ("b", 2), ("a", 3)])
    await store.append_stream_event("s", "c", 4)
    await store.append_stream_event("s", "b", 5)  # a duplicate adds nothing
    assert await store.stream_length("s") == len(await store.read_stream_events("s")) == 3


def test_a_handle_reads_its_wire_form_and_the_form_stores_wrote_before_it() -> None:
    handle = RunHandle(kind="sandbox", sandbox_id="sb", session_id="s", run_id="x", cursor="7")
    wire = handle.to_dict()
    assert wire == {"kind": "sandbox", "sandboxId": "sb", "sessionId": "s", "runId": "x",
                    "cursor": "7"}  # fmt: skip
    assert RunHandle.from_dict(wire) == handle
    old = {"kind": "sandbox", "sandbox_id": "sb", "session_id": "s", "run_id": "x",
           "status": None, "cursor": "7"}  # fmt: skip
    assert RunHandle.from_dict(old) == handle


class ReadOnly(StoreBase):
    """A store with reads only: retention falls back to the base's defaults."""

    def __init__(self) -> None:
        self.record = InMemoryDurableRunStore()

    async def _list_runs(self, limit: int, status: Any) -> Any:
        return await self.record.list_runs(limit=limit, status=status)

    async def _load_steps(self, run_id: str) -> Any:
        return await self.record.load_steps(run_id)

    async def _read(self, run_id: str, after_seq: int, limit: int | None) -> Any:
        return await self.record.read_stream_events(run_id, after_seq, limit)


async def test_retention_defaults_count_through_the_reads_and_refuse_to_prune() -> None:
    store = ReadOnly()
    await store.record.start_or_resume("t1:a", MANIFEST, "w")
    await store.record.complete_step("t1:a", 0, {"r": "xyz"}, intent="i")
    await store.record.append_stream_events("t1:a", [("e1", "payload")])
    await store.record.start_or_resume("t2:a", MANIFEST, "w")
    run = await store.record.load_run("t1:a")
    assert run is not None
    manifest = len(orjson.dumps(run.manifest))
    # manifest + outcome null, result + error null, payload + event id; t2:a not counted
    assert await store.stored_bytes("t1:") == manifest + 4 + 11 + 4 + 9 + 2
    with pytest.raises(ConfigurationError):
        await store.prune_idle_runs("t1:", 1000)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"prefix": "a\x00", "older_than_ms": 1},
        {"prefix": 3, "older_than_ms": 1},
        {"prefix": "", "older_than_ms": 0},
        {"prefix": "", "older_than_ms": 1.5},
        {"prefix": "", "older_than_ms": 1, "now_ms": "now"},
    ],
)
async def test_prune_arguments_are_checked_before_the_hook(kwargs: dict[str, Any]) -> None:
    store = Recording()
    with pytest.raises(DurableValueError):
        await store.prune_idle_runs(**kwargs)
    assert store.calls == []
