"""What only the filesystem store has: its folder layout, torn lines after a crash, odd run ids,
a foreign format version, and the JSON-lines reader under arbitrary truncation."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agent_runtime.durable import DurableRunManifest, FileSystemDurableRunStore
from agent_runtime.durable._fsio import JsonlLog
from agent_runtime.errors import StoreUnavailableError

MANIFEST = DurableRunManifest("p", {"id": "t", "intent": "i"}, {"q": 1})


async def test_layout_one_folder_per_run(tmp_path: Path) -> None:
    store = FileSystemDurableRunStore(tmp_path)
    await store.start_or_resume("r1", MANIFEST, "w1", lease_ms=5000)
    await store.complete_step("r1", 0, {"v": 1}, intent="a", worker_id="w1")
    await store.emit_event("r1", "k", 1)
    await store.append_stream_event("r1", "e0", "x")
    d = tmp_path / "runs" / "r1"
    assert {"run.json", "lease.json", "steps.jsonl", "events.jsonl", "stream.jsonl"} <= {
        p.name for p in d.iterdir()
    }
    assert json.loads((d / "lease.json").read_text())["holder"] == "w1"
    assert not list(d.glob(".*.tmp"))  # atomic replace leaves no temp files behind


async def test_torn_last_line_is_ignored_then_repaired(tmp_path: Path) -> None:
    store = FileSystemDurableRunStore(tmp_path)
    await store.start_or_resume("r", MANIFEST, "w1", lease_ms=5000)
    await store.complete_step("r", 0, "zero", intent="a", worker_id="w1")
    await store.append_stream_events("r", [("e0", 0), ("e1", 1)])
    d = tmp_path / "runs" / "r"
    with open(d / "steps.jsonl", "ab") as f:
        f.write(b'{"i": 1, "intent": "b", "kind": "lo')  # a crash mid-write
    with open(d / "stream.jsonl", "ab") as f:
        f.write(b'{"seq": 2, "id": "e2", "payl')
    fresh = FileSystemDurableRunStore(tmp_path)  # another process reading after the crash
    assert [s.result for s in await fresh.load_steps("r")] == ["zero"]
    assert [e.event_id for e in await fresh.read_stream_events("r")] == ["e0", "e1"]
    _, done, _ = await fresh.start_or_resume("r", MANIFEST, "w1", lease_ms=5000)
    assert [s.step_index for s in done] == [0]
    await fresh.complete_step("r", 1, "one", intent="b", worker_id="w1")
    res = await fresh.append_stream_event("r", "e2", 2)
    assert res.accepted and res.seq == 2
    for name in ("steps.jsonl", "stream.jsonl"):
        for line in (d / name).read_bytes().splitlines():
            orjson.loads(line)  # repaired: every line is whole again
    assert [s.result for s in await store.load_steps("r")] == ["zero", "one"]
    assert [e.seq for e in await store.read_stream_events("r")] == [0, 1, 2]


def test_writer_sigkilled_mid_append_never_breaks_readers(tmp_path: Path) -> None:
    script = textwrap.dedent(
        f"""
        import asyncio
        from agent_runtime.durable import FileSystemDurableRunStore
        async def main():
            s = FileSystemDurableRunStore({str(tmp_path)!r}, fsync=False)
            i = 0
            while True:
                await s.append_stream_events("r", [(f"e{{i + k}}", "x" * 5000) for k in range(50)])
                i += 50
                print(i, flush=True)
        asyncio.run(main())
        """
    )
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    for _ in range(20):
        proc.stdout.readline()
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()

    async def check() -> None:
        store = FileSystemDurableRunStore(tmp_path)
        events = await store.read_stream_events("r")
        assert [e.seq for e in events] == list(range(len(events))) and len(events) >= 1000
        more = await store.append_stream_events("r", [("new", 1)])
        assert more[0].seq == len(events)

    asyncio.run(check())


async def test_unsafe_run_ids_get_hashed_folders(tmp_path: Path) -> None:
    store = FileSystemDurableRunStore(tmp_path)
    odd = ["../../etc/passwd", "a/b", "ünïcode id", ".hidden", "x" * 500]
    for run_id in odd:
        await store.start_or_resume(run_id, MANIFEST, "w", lease_ms=5000)
        await store.append_stream_event(run_id, "e", run_id)
    assert {r.run_id for r in await store.list_runs()} == set(odd)
    assert sorted(p.name[0] for p in (tmp_path / "runs").iterdir()) == ["~"] * len(odd)
    assert not (tmp_path.parent / "etc").exists()
    for run_id in odd:
        assert (await store.read_stream_events(run_id))[0].payload == run_id


def test_foreign_format_version_is_refused(tmp_path: Path) -> None:
    FileSystemDurableRunStore(tmp_path)
    (tmp_path / "format.json").write_text('{"format": "durable-agent-runtime", "version": 99}')
    with pytest.raises(StoreUnavailableError, match="unsupported store format"):
        FileSystemDurableRunStore(tmp_path)


def test_corrupt_middle_line_is_a_typed_error(tmp_path: Path) -> None:
    path = tmp_path / "log.jsonl"
    path.write_bytes(b'{"a": 1}\nnot json\n{"a": 2}\n')
    with pytest.raises(StoreUnavailableError, match="corrupt line"):
        JsonlLog(path).refresh()


# the store validates values before they reach the log: strict JSON only
text = st.text(st.characters(exclude_categories=("Cs",)), max_size=20)
records = st.lists(
    st.dictionaries(text, st.one_of(st.integers(-(2**63), 2**63 - 1), text), max_size=3),
    max_size=8,
)


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(items=records, cut=st.integers(min_value=0, max_value=10_000), extra=records)
def test_jsonl_any_truncation_reads_a_prefix_and_repairs(
    tmp_path: Path, items: list[dict[str, object]], cut: int, extra: list[dict[str, object]]
) -> None:
    path = tmp_path / f"log-{os.getpid()}-{abs(hash((cut, len(items))))}.jsonl"
    data = b"".join(orjson.dumps(r) + b"\n" for r in items)
    cut = min(cut, len(data))
    path.write_bytes(data[:cut])
    whole = data[:cut].count(b"\n")
    log = JsonlLog(path)
    assert log.refresh() == items[:whole]
    log.append(list(extra), fsync=False)
    assert JsonlLog(path).refresh() == items[:whole] + list(extra)
    path.unlink()
