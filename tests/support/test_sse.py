"""SSE frames byte for byte as ORIGINAL §10, read back by an independent parser written to the
WHATWG spec, plus the two sanitized telemetry frames and NDJSON lines."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from agent_runtime import (
    RuntimeTelemetryOptions,
    ValidationError,
    encode_ndjson,
    encode_server_sent_event,
    readiness_server_sent_event,
    runtime_stream_server_sent_event,
    sanitize_knowledge_readiness_report,
    sanitize_runtime_stream_event,
)
from agent_runtime.errors import InvalidArgumentError
from agent_runtime.types import TextDeltaEvent, ToolCallEvent
from tests.support.telemetry_fixtures import REPORT, TASK, TS


@dataclass
class Parsed:
    event: str
    data: str
    id: str | None
    retry: int | None


def parse_sse(stream: str) -> tuple[list[Parsed], list[str]]:
    """Events and comments of an event stream, per the HTML spec's interpretation rules: CRLF,
    lone CR and LF end a line; one space after the colon is dropped; an id with NUL is ignored;
    a blank line dispatches the data buffer (its last LF removed)."""
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
            data, event_type = [], ""
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
        elif name == "retry" and value.isascii() and value.isdigit():
            retry = int(value)
    return events, comments


# --- the exact bytes ---------------------------------------------------------------------------


def test_data_only() -> None:
    assert encode_server_sent_event({"a": 1}) == 'data: {"a":1}\n\n'
    assert encode_server_sent_event("hello") == "data: hello\n\n", "a string is sent as is"
    assert encode_server_sent_event("") == "data: \n\n"
    assert encode_server_sent_event(None) == "data: null\n\n"
    assert encode_server_sent_event([1, "x"]) == 'data: [1,"x"]\n\n'


def test_id_comes_before_event_then_retry_then_data() -> None:
    frame = encode_server_sent_event("x", event="delta", id="42", retry=1500)
    assert frame == "id: 42\nevent: delta\nretry: 1500\ndata: x\n\n"


def test_id_and_event_only_when_truthy() -> None:
    assert encode_server_sent_event("x", event="", id="") == "data: x\n\n"
    assert encode_server_sent_event("x", id="0") == "id: 0\ndata: x\n\n"


def test_cr_and_lf_in_id_and_event_become_spaces() -> None:
    frame = encode_server_sent_event("x", event="a\nb\rc", id="1\r\n2")
    assert frame == "id: 1  2\nevent: a b c\ndata: x\n\n"


@pytest.mark.parametrize(
    ("retry", "line"),
    [
        (1500, "retry: 1500\n"),
        (1500.9, "retry: 1500\n"),
        (0, "retry: 0\n"),
        (0.4, "retry: 0\n"),
        (-1, ""),
        (math.nan, ""),
        (math.inf, ""),
    ],
)
def test_retry_is_floored_when_finite_and_not_negative(retry: float, line: str) -> None:
    assert encode_server_sent_event("x", retry=retry) == f"{line}data: x\n\n"


def test_multi_line_data_is_one_data_line_per_line() -> None:
    assert encode_server_sent_event("a\nb\r\nc\n") == "data: a\ndata: b\ndata: c\ndata: \n\n"
    events, _ = parse_sse(encode_server_sent_event("a\nb\r\nc"))
    assert events[0].data == "a\nb\nc"


def test_a_lone_cr_in_data_also_breaks_the_line() -> None:
    # the original splits on \r?\n only; a reader would take what follows a lone CR for a
    # field of its own ("a\revent: x" would rename the event)
    frame = encode_server_sent_event("a\revent: spoofed")
    assert frame == "data: a\ndata: event: spoofed\n\n"
    assert parse_sse(frame)[0] == [Parsed("message", "a\nevent: spoofed", None, None)]


def test_comment_lines_and_pings() -> None:
    assert encode_server_sent_event(comment="ping") == ": ping\n\n"
    assert encode_server_sent_event("x", comment="a\nb", id="1") == ": a\n: b\nid: 1\ndata: x\n\n"
    events, comments = parse_sse(encode_server_sent_event(comment="keep\nalive"))
    assert events == [] and comments == ["keep", "alive"]


def test_records_are_sent_as_their_wire_form() -> None:
    assert (
        encode_server_sent_event(REPORT) == f"data: {orjson.dumps(REPORT.to_dict()).decode()}\n\n"
    )


@pytest.mark.parametrize(
    "kwargs",
    [
        {"event": 3},
        {"id": 7},
        {"id": "x\x00"},
        {"retry": "1000"},
        {"retry": True},
        {"comment": b"ping"},
    ],
)
def test_malformed_options_are_validation_errors(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        encode_server_sent_event("x", **kwargs)


def test_a_frame_needs_data_or_a_comment_and_data_must_be_json() -> None:
    with pytest.raises(ValidationError):
        encode_server_sent_event()
    with pytest.raises(ValidationError):
        encode_server_sent_event({"x": {1, 2}})
    with pytest.raises(ValidationError):
        encode_server_sent_event({1: "non-string key"})


# --- any data, any id/event: a well-formed frame a conforming reader reads back ---------------

texts = st.text(alphabet=st.characters(blacklist_categories=("Cs",)))
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53), 2**53) | texts,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(texts, inner, max_size=4),
    max_leaves=12,
)
ids = st.text(alphabet=st.characters(blacklist_characters="\x00", blacklist_categories=("Cs",)))
names = texts


def _field(value: str) -> str:
    return value.replace("\r", " ").replace("\n", " ")


@given(texts, ids, names)
def test_any_string_data_id_and_event_read_back(text: str, id: str, event: str) -> None:
    frame = encode_server_sent_event(text, event=event, id=id)
    assert frame.endswith("\n\n") and "\n\n" not in frame[:-1] and "\r" not in frame
    events, comments = parse_sse(frame)
    assert comments == [] and len(events) == 1
    assert events[0].data == text.replace("\r\n", "\n").replace("\r", "\n")
    assert events[0].id == (_field(id) if id else None)
    assert events[0].event == (_field(event) if event else "message")


@given(json_values.filter(lambda v: not isinstance(v, str)), st.integers(0, 10**9))
def test_non_string_data_is_json_and_parses_back(value: Any, retry: int) -> None:
    events, _ = parse_sse(encode_server_sent_event(value, retry=retry))
    assert orjson.loads(events[0].data) == value and events[0].retry == retry


@given(st.lists(texts, min_size=1))
def test_many_frames_concatenate(texts: list[str]) -> None:
    stream = "".join(encode_server_sent_event(t, id=str(i)) for i, t in enumerate(texts))
    events, _ = parse_sse(stream)
    assert [e.data for e in events] == [t.replace("\r\n", "\n").replace("\r", "\n") for t in texts]
    assert [e.id for e in events] == [str(i) for i in range(len(texts))]


@given(ids.filter(lambda s: "\x00" not in s))
def test_ids_with_nul_are_refused_and_others_kept(id: str) -> None:
    with pytest.raises(ValidationError):
        encode_server_sent_event("x", id=id + "\x00")
    assert parse_sse(encode_server_sent_event("x", id=id or "1"))[0][0].id == _field(id or "1")


# --- the telemetry frames ------------------------------------------------------------------------


def test_readiness_frame_is_the_sanitized_report() -> None:
    payload = {"type": "readiness", "readiness": sanitize_knowledge_readiness_report(REPORT)}
    assert readiness_server_sent_event(REPORT) == f"data: {orjson.dumps(payload).decode()}\n\n"
    frame = readiness_server_sent_event(
        REPORT, include_evidence_ids=True, id="1", event="readiness"
    )
    events, _ = parse_sse(frame)
    assert frame.startswith("id: 1\nevent: readiness\ndata: ")
    data = orjson.loads(events[0].data)
    assert data["type"] == "readiness" and data["readiness"]["evidenceIds"] == [
        "LEAK<report.evidenceIds>"
    ]
    same = readiness_server_sent_event(REPORT, RuntimeTelemetryOptions(include_evidence_ids=True))
    assert orjson.loads(parse_sse(same)[0][0].data) == data


def test_runtime_stream_frame_is_the_sanitized_event() -> None:
    call = ToolCallEvent(
        tool_name="crm", tool_call_id="c1", args={"q": "LEAK<args>"}, task=TASK, timestamp=TS
    )
    frame = runtime_stream_server_sent_event(call)
    assert frame == f"data: {orjson.dumps(sanitize_runtime_stream_event(call)).decode()}\n\n"
    assert "LEAK<args>" not in frame
    mixed = runtime_stream_server_sent_event(
        call, event="tool_call", id="9", retry=10, include_control_payloads=True
    )
    assert mixed.startswith("id: 9\nevent: tool_call\nretry: 10\ndata: ")
    assert orjson.loads(parse_sse(mixed)[0][0].data)["args"] == {"q": "LEAK<args>"}
    assert runtime_stream_server_sent_event(call.to_dict()) == frame
    key = "sk-proj-" + "Ab12" * 10
    delta = TextDeltaEvent(text=f"key {key}")
    assert key not in runtime_stream_server_sent_event(delta)
    assert key in runtime_stream_server_sent_event(delta, scrub_deltas=False)


def test_telemetry_frames_refuse_unknown_options() -> None:
    with pytest.raises(ValidationError, match="include_payloads"):
        runtime_stream_server_sent_event(TextDeltaEvent(text="x"), include_payloads=True)
    with pytest.raises(ValidationError):
        readiness_server_sent_event(REPORT.to_dict())  # type: ignore[arg-type]
    with pytest.raises(ValidationError):
        readiness_server_sent_event(REPORT, include_inputs=1)


# --- NDJSON ------------------------------------------------------------------------------------


@given(st.dictionaries(texts, json_values, max_size=5))
def test_ndjson_is_one_line_per_object(obj: dict[str, Any]) -> None:
    line = encode_ndjson(obj)
    assert line.endswith(b"\n") and line.count(b"\n") == 1
    assert orjson.loads(line) == obj


def test_ndjson_refuses_non_objects() -> None:
    with pytest.raises(InvalidArgumentError):
        encode_ndjson([1, 2])
    with pytest.raises(InvalidArgumentError):
        encode_ndjson({"v": {1, 2}})
    assert encode_ndjson(TextDeltaEvent(text="x")) == b'{"type":"text_delta","text":"x"}\n'
