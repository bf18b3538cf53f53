"""SSE and NDJSON encoders, checked against an independent parser written to the WHATWG spec."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from agent_runtime.errors import InvalidArgumentError
from agent_runtime.sse import (
    encode_ndjson,
    encode_server_sent_event,
    readiness_server_sent_event,
    runtime_stream_server_sent_event,
)


@dataclass
class Parsed:
    event: str
    data: str
    id: str | None
    retry: int | None


def parse_sse(stream: str) -> tuple[list[Parsed], list[str]]:
    """Events and comments of an event stream, per the HTML spec's interpretation rules."""
    events: list[Parsed] = []
    comments: list[str] = []
    data: list[str] = []
    event_type = ""
    last_id: str | None = None
    retry: int | None = None
    lines = stream.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    for line in lines:
        if line == "":
            if data:
                events.append(Parsed(event_type or "message", "\n".join(data), last_id, retry))
            data, event_type, retry = [], "", None
            continue
        if line.startswith(":"):
            comments.append(line[1:].removeprefix(" "))
            continue
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "data":
            data.append(value)
        elif name == "event":
            event_type = value
        elif name == "id" and "\x00" not in value:
            last_id = value
        elif name == "retry" and value.isdigit():
            retry = int(value)
    return events, comments


@given(st.text())
def test_any_text_round_trips_with_line_breaks_normalized(text: str) -> None:
    events, _ = parse_sse(encode_server_sent_event(text, event="delta", id="7"))
    assert len(events) == 1
    expected = text.replace("\r\n", "\n").replace("\r", "\n")
    assert events[0] == Parsed("delta", expected, "7", None)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=12,
)


@given(json_values.filter(lambda v: v is not None and not isinstance(v, str)))
def test_non_string_data_is_json_and_parses_back(value: Any) -> None:
    events, _ = parse_sse(encode_server_sent_event(value))
    assert orjson.loads(events[0].data) == value


@given(st.lists(st.text(alphabet=st.characters(blacklist_characters="\r\n")), min_size=1))
def test_many_frames_concatenate(texts: list[str]) -> None:
    stream = "".join(encode_server_sent_event(t, id=str(i)) for i, t in enumerate(texts))
    events, _ = parse_sse(stream)
    assert [e.data for e in events] == texts
    assert [e.id for e in events] == [str(i) for i in range(len(texts))]


def test_exact_wire_format() -> None:
    frame = encode_server_sent_event("a\nb", event="message.delta", id="42", retry=1500)
    assert frame == "event: message.delta\nid: 42\nretry: 1500\ndata: a\ndata: b\n\n"
    assert encode_server_sent_event(comment="ping") == ": ping\n\n"
    assert encode_server_sent_event("") == "data: \n\n"


def test_comment_is_a_ping_not_an_event() -> None:
    events, comments = parse_sse(encode_server_sent_event(comment="keep\nalive"))
    assert events == [] and comments == ["keep", "alive"]


@pytest.mark.parametrize(
    ("kwargs", "path"),
    [
        ({"event": "a\nb"}, "event"),
        ({"event": "a\rb"}, "event"),
        ({"id": "1\r\n2"}, "id"),
        ({"id": "x\x00"}, "id"),
        ({"retry": -1}, "retry"),
        ({"retry": True}, "retry"),
        ({}, "$"),
    ],
)
def test_framing_breakers_are_refused(kwargs: dict[str, Any], path: str) -> None:
    with pytest.raises(InvalidArgumentError) as info:
        if kwargs:
            encode_server_sent_event("x", **kwargs)
        else:
            encode_server_sent_event()
    assert info.value.path == path


def test_non_json_data_is_refused() -> None:
    with pytest.raises(InvalidArgumentError) as info:
        encode_server_sent_event({"x": float("nan")})
    assert info.value.path == "data.x"


class _Event:
    type = "tool.call"

    def to_json(self) -> str:
        return '{"type":"tool.call","name":"search"}'


def test_runtime_event_frame_uses_type_and_json() -> None:
    events, _ = parse_sse(runtime_stream_server_sent_event(_Event(), id="3"))
    assert events == [Parsed("tool.call", '{"type":"tool.call","name":"search"}', "3", None)]
    events, _ = parse_sse(runtime_stream_server_sent_event({"type": "done", "n": 1}))
    assert events[0].event == "done" and orjson.loads(events[0].data) == {"type": "done", "n": 1}
    with pytest.raises(InvalidArgumentError):
        runtime_stream_server_sent_event({"no": "type"})


def test_readiness_frame() -> None:
    events, _ = parse_sse(readiness_server_sent_event({"status": "ready", "reasons": []}))
    assert events[0].event == "readiness"
    assert orjson.loads(events[0].data) == {"status": "ready", "reasons": []}


@given(st.dictionaries(st.text(), json_values, max_size=5))
def test_ndjson_is_one_line_per_object(obj: dict[str, Any]) -> None:
    line = encode_ndjson(obj)
    assert line.endswith(b"\n") and line.count(b"\n") == 1
    assert orjson.loads(line) == obj


def test_ndjson_refuses_non_objects() -> None:
    with pytest.raises(InvalidArgumentError):
        encode_ndjson([1, 2])
    with pytest.raises(InvalidArgumentError):
        encode_ndjson({"v": {1, 2}})


def test_frames_strip_secrets_and_internal_fields_unless_told_not_to() -> None:
    from agent_runtime.knowledge import KnowledgeReadinessReport
    from agent_runtime.types import TextDeltaEvent

    key = "sk-proj-" + "Ab12" * 10
    frame = runtime_stream_server_sent_event(TextDeltaEvent(text=f"key {key}"))
    assert key not in frame and "[REDACTED:" in frame
    frame = runtime_stream_server_sent_event({"type": "status", "status": "x", "_secret_ref": 1})
    assert "_secret_ref" not in frame
    assert key in runtime_stream_server_sent_event(TextDeltaEvent(text=key), sanitize=False)
    report = KnowledgeReadinessReport(notes=(f"used {key}",), internal={"q": "select"})
    events, _ = parse_sse(readiness_server_sent_event(report))
    data = orjson.loads(events[0].data)
    assert "internal" not in data and key not in data["notes"][0]
