"""The hot-path record builders make the very records the dataclasses make: same type, equal,
frozen, hashable where the dataclass is."""

from __future__ import annotations

import dataclasses

import orjson
import pytest

from agent_runtime.durable import RunHandle, RunRecord, StepRecord, StreamEventRecord
from agent_runtime.durable._records import (
    accepted_batch,
    completed_steps_of,
    ms_dt,
    new_run,
    new_step,
    new_stream_event,
)

AT = ms_dt(1_700_000_000_123)


def test_built_records_are_the_dataclass_records() -> None:
    step_args = ("r", 3, "s", "llm", "h", "completed", 2, {"a": [1]}, None, AT, AT)
    run_args = (
        "r",
        "h",
        "p",
        None,
        "running",
        AT,
        AT,
        "w",
        AT,
        None,
        4,
        RunHandle("remote"),
        {},
        2,
    )
    stream_args = ("r", 7, "e", [1, "x"], AT)
    for built, made in (
        (new_step(*step_args), StepRecord(*step_args)),  # type: ignore[arg-type]
        (new_run(*run_args), RunRecord(*run_args)),  # type: ignore[arg-type]
        (new_stream_event(*stream_args), StreamEventRecord(*stream_args)),  # type: ignore[arg-type]
    ):
        assert type(built) is type(made) and built == made and repr(built) == repr(made)
        assert dataclasses.astuple(built) == dataclasses.astuple(made)
        with pytest.raises(dataclasses.FrozenInstanceError):
            built.run_id = "other"  # type: ignore[misc]
        assert dataclasses.replace(built, run_id="x").run_id == "x"
    hashable = new_stream_event("r", 1, "e", "text", AT)
    assert hash(hashable) == hash(StreamEventRecord("r", 1, "e", "text", AT))


def test_bulk_builders() -> None:
    rows = [
        (i, f"s{i}", "logic", None, 1, orjson.dumps({"i": i}).decode(), 10, 10 + i)
        for i in range(3)
    ]
    steps = completed_steps_of("r", rows, orjson.loads)
    assert steps == [
        StepRecord(
            "r", i, f"s{i}", "logic", None, "completed", 1, {"i": i}, None, ms_dt(10), ms_dt(10 + i)
        )
        for i in range(3)
    ]
    results = accepted_batch("r", 5, ["a", "b"], [1, {"x": None}], AT)
    assert [(r.accepted, r.record) for r in results] == [
        (True, StreamEventRecord("r", 5, "a", 1, AT)),
        (True, StreamEventRecord("r", 6, "b", {"x": None}, AT)),
    ]
