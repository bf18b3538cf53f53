"""The common raw-event mapping (ORIGINAL §7.3): each rule, and hostile input never raises."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agent_runtime import map_raw_backend_event, parse_runtime_stream_event
from agent_runtime.types import (
    ArtifactEvent,
    ProposalCreatedEvent,
    ReasoningDeltaEvent,
    TextDeltaEvent,
    ToolCallEvent,
    ToolResultEvent,
)

from .drive import TASK, context

CTX = context("sandbox")


def m(raw: Any) -> Any:
    return map_raw_backend_event(raw, CTX)


@pytest.mark.parametrize("kind", ["message.part.updated", "text_delta", "delta"])
@pytest.mark.parametrize(
    ("raw", "text"),
    [
        ({"data": {"text": "a"}}, "a"),
        ({"data": {"delta": "b"}}, "b"),
        ({"text": "c"}, "c"),  # no data object: the record itself is the payload
        ({"data": {"part": {"type": "text", "text": "d"}}}, "d"),
        ({"data": {"part": {"text": "e"}}}, "e"),  # part type absent
        ({"data": {"text": "", "delta": "f", "part": {"text": "g"}}}, "f"),  # first non-empty
        ({"data": {"text": 5}, "text": "h"}, "h"),  # not a string: skipped
        ({"data": {"part": {"type": "text", "text": "i"}}, "text": "j"}, "j"),  # part last
        ({"data": 7, "text": "k"}, "k"),  # data not an object: the record is the payload
    ],
)
def test_text_kinds_take_the_first_non_empty_text(kind: str, raw: dict[str, Any], text: str):
    event = m({"type": kind, **raw})
    assert isinstance(event, TextDeltaEvent) and event.text == text


@pytest.mark.parametrize(
    "raw",
    [
        {"type": "delta"},
        {"type": "text_delta", "data": {"text": ""}},
        {"type": "message.part.updated", "data": {"part": {"type": "tool", "text": "x"}}},
        {"type": "message.part.updated", "data": {"part": "text"}},
    ],
)
def test_text_kinds_without_text_map_to_nothing(raw: dict[str, Any]) -> None:
    assert m(raw) is None


def test_reasoning_delta() -> None:
    ev = m({"type": "reasoning_delta", "data": {"text": "think"}})
    assert isinstance(ev, ReasoningDeltaEvent) and ev.text == "think"
    assert m({"type": "reasoning_delta", "text": "t2"}).text == "t2"
    assert m({"type": "reasoning_delta", "data": {"delta": "no"}}) is None


def test_tool_call_naming_and_args() -> None:
    ev = m({"type": "tool_call", "data": {"name": "search", "id": "c1", "args": {"q": 1}}})
    assert ev == ToolCallEvent(
        tool_name="search",
        tool_call_id="c1",
        args={"q": 1},
        task=TASK,
        session=CTX.session,
        timestamp=ev.timestamp,
    )
    ev = m({"type": "tool_call", "toolName": "read", "toolCallId": "c2", "args": [1]})
    assert (ev.tool_name, ev.tool_call_id, ev.args) == ("read", "c2", [1])
    ev = m({"type": "tool_call", "data": {"input": {"path": "/"}}})
    assert (ev.tool_name, ev.tool_call_id, ev.args) == ("tool", None, {"path": "/"})
    # data.args before data.input before record.args; a falsy but present value counts
    ev = m({"type": "tool_call", "data": {"args": 0, "input": 1}})
    assert ev.args == 0
    ev = m({"type": "tool_call", "data": {"name": 3, "id": ["x"]}, "toolName": "fallback"})
    assert (ev.tool_name, ev.tool_call_id) == ("fallback", None)


def test_tool_result_naming_and_result() -> None:
    ev = m({"type": "tool_result", "data": {"name": "search", "id": "c1", "result": "ok"}})
    assert isinstance(ev, ToolResultEvent)
    assert (ev.tool_name, ev.tool_call_id, ev.result) == ("search", "c1", "ok")
    ev = m({"type": "tool_result", "data": {"output": {"n": 2}}})
    assert (ev.tool_name, ev.result) == ("tool", {"n": 2})
    ev = m({"type": "tool_result", "toolName": "t", "toolCallId": "c", "result": False})
    assert (ev.tool_name, ev.tool_call_id, ev.result) == ("t", "c", False)


def test_artifact_requires_an_id_and_copies_its_fields() -> None:
    assert m({"type": "artifact", "data": {"name": "x"}}) is None
    ev = m(
        {
            "type": "artifact",
            "data": {
                "id": "a1",
                "name": "report.md",
                "mimeType": "text/markdown",
                "uri": "file:///r.md",
                "body": "# hi",
                "metadata": {"size": 4},
            },
        }
    )
    assert isinstance(ev, ArtifactEvent)
    assert (ev.artifact_id, ev.name, ev.mime_type, ev.uri, ev.content, ev.metadata) == (
        "a1",
        "report.md",
        "text/markdown",
        "file:///r.md",
        "# hi",
        {"size": 4},
    )
    ev = m({"type": "artifact", "artifactId": "a2", "content": "c", "body": "b", "metadata": 3})
    assert (ev.artifact_id, ev.content, ev.metadata) == ("a2", "c", None)
    ev = m({"type": "artifact", "data": {"artifactId": "a3", "id": "other", "name": 9}})
    assert (ev.artifact_id, ev.name) == ("a3", None)


@pytest.mark.parametrize("kind", ["proposal_created", "proposal", "filing"])
def test_proposal_kinds(kind: str) -> None:
    assert m({"type": kind, "data": {"title": "t"}}) is None
    ev = m({"type": kind, "data": {"id": "p1"}})
    assert isinstance(ev, ProposalCreatedEvent)
    assert (ev.proposal_id, ev.title, ev.status) == ("p1", "p1", None)  # title defaults to id
    ev = m({"type": kind, "data": {"id": "p2", "title": "Refund", "status": "approved"}})
    assert (ev.title, ev.status) == ("Refund", "approved")
    for status in ("pending", "approved", "rejected"):
        assert m({"type": kind, "id": "p", "status": status}).status == status
    assert m({"type": kind, "id": "p", "status": "merged"}).status is None
    assert m({"type": kind, "proposalId": "p9", "content": {"x": 1}}).content == {"x": 1}


@pytest.mark.parametrize("kind", ["result", "final"])
def test_result_and_final_become_one_text_delta(kind: str) -> None:
    ev = m({"type": kind, "data": {"finalText": "all done", "text": "no"}})
    assert isinstance(ev, TextDeltaEvent) and ev.text == "all done"
    assert m({"type": kind, "data": {"text": "t"}}).text == "t"
    assert m({"type": kind, "text": "r"}).text == "r"
    assert m({"type": kind, "data": {}}) is None


@pytest.mark.parametrize(
    "raw",
    [
        {"type": "status", "text": "thinking"},
        {"type": "llm_call", "model": "m"},
        {"type": "session.run.started", "data": {"sessionId": "s"}},
        {"text": "no type"},
        {"type": 5, "text": "x"},
    ],
)
def test_anything_else_is_dropped(raw: Any) -> None:
    assert m(raw) is None


def test_every_mapped_event_gets_the_context_task_session_and_now() -> None:
    raws = [
        {"type": "delta", "text": "x"},
        {"type": "reasoning_delta", "text": "x"},
        {"type": "tool_call"},
        {"type": "tool_result"},
        {"type": "artifact", "id": "a"},
        {"type": "filing", "id": "f"},
        {"type": "final", "text": "x"},
    ]
    for raw in raws:
        ev = m(raw)
        assert ev.task is TASK and ev.session is CTX.session
        assert isinstance(ev.timestamp, str) and ev.timestamp.endswith("Z")
        # the mapped event is valid on the wire: it round-trips
        assert parse_runtime_stream_event(ev.to_dict()) == ev


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=10,
)
field_names = st.sampled_from(
    [
        "text", "delta", "part", "name", "id", "toolName", "toolCallId", "args", "input",
        "result", "output", "artifactId", "mimeType", "uri", "content", "body", "metadata",
        "proposalId", "title", "status", "finalText", "data", "type",
    ]
)  # fmt: skip
raw_types = st.sampled_from(
    [
        "message.part.updated", "text_delta", "delta", "reasoning_delta", "tool_call",
        "tool_result", "artifact", "proposal_created", "proposal", "filing", "result", "final",
    ]
)  # fmt: skip
hostile_records = st.builds(
    lambda kind, fields, data: {"type": kind, **fields, **({"data": data} if data else {})},
    raw_types,
    st.dictionaries(field_names, json_values | st.builds(object), max_size=6),
    st.none() | st.dictionaries(field_names, json_values, max_size=6) | json_values,
)


@settings(max_examples=400, deadline=None)
@given(hostile_records | json_values | st.builds(object))
def test_hostile_input_maps_to_nothing_or_a_valid_event(raw: Any) -> None:
    ev = m(raw)
    if ev is None:
        return
    # the fields of the contract have their types, whatever the input held
    assert ev.task is TASK
    for name in ("text", "tool_name", "tool_call_id", "artifact_id", "name", "mime_type", "uri"):
        v = getattr(ev, name, None)
        assert v is None or (isinstance(v, str) and (name in ("name", "mime_type", "uri") or v))
    if isinstance(ev, ProposalCreatedEvent):
        assert ev.status in (None, "pending", "approved", "rejected") and ev.title


class _ExplodingMapping(dict[str, Any]):
    def get(self, key: str, default: Any = None) -> Any:
        raise RuntimeError("boom")


def test_a_mapping_whose_lookups_fail_maps_to_nothing() -> None:
    assert m(_ExplodingMapping(type="delta", text="x")) is None
    assert m({"type": "artifact", "id": "a", "metadata": _ExplodingMapping(a=1)}).metadata == {
        "a": 1
    }
