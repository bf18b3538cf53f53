"""Egress cost: what sanitizing and framing add per event before it leaves the process.

Baseline: `event.to_json()` (the bare serialization every path pays). Measured:
1. `encode_ndjson(event.to_dict())` and `encode_server_sent_event(event.to_dict())` (no
   projection, no scrubbing),
2. `runtime_stream_server_sent_event(event, scrub_deltas=False)` (projected, not scrubbed),
3. `runtime_stream_server_sent_event(event)` (projected and scrubbed, the default),
4. a tool result's frame with its payload opted in (`include_control_payloads=True`), so the
   payload is scrubbed too,
5. `sanitize_text` on a 2 KB tool output with no secrets, against `str.encode` of it.
Typical chat deltas are short; the target is that a sanitized SSE frame of a delta stays
within 10 µs, so 1000 tokens/s of output cost under 1 % of a core.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from agent_runtime import (
    RuntimeTelemetryOptions,
    encode_ndjson,
    encode_server_sent_event,
    runtime_stream_server_sent_event,
    sanitize_text,
)
from agent_runtime.types import (
    AgentTaskSpec,
    RuntimeSession,
    TextDeltaEvent,
    ToolResultEvent,
    now_iso,
)

DELTA_TARGET_US = 10.0
UNSCRUBBED = RuntimeTelemetryOptions(scrub_deltas=False)
PAYLOADS = RuntimeTelemetryOptions(include_control_payloads=True)
N = 20_000


def per_call_us(fn: Callable[[], object], n: int = N) -> float:
    best = float("inf")
    for _ in range(5):
        start = time.perf_counter()
        for _ in range(n):
            fn()
        best = min(best, (time.perf_counter() - start) / n)
    return best * 1e6


def main() -> int:
    # as run_agent_task_stream yields them: with the task, the session and a timestamp
    task = AgentTaskSpec(id="chat:s1:0", intent="Answer the user's chat message.", domain="chat")
    session = RuntimeSession.new("tcloud", "s1")
    stamp = now_iso()
    delta = TextDeltaEvent(
        text="Hello there, here is the next part of the answer",
        task=task,
        session=session,
        timestamp=stamp,
    )
    tool = ToolResultEvent(
        tool_name="lookup_customers",
        tool_call_id="c1",
        task=task,
        session=session,
        timestamp=stamp,
        result={"rows": [{"id": i, "name": f"customer {i}", "city": "Lisbon"} for i in range(20)]},
    )
    prose = (
        "The quarterly numbers improved; see https://example.com/report?q=1 for details. " * 26
    )[:2048]
    rows = [
        ("delta: to_json (baseline)", per_call_us(delta.to_json), None),
        ("delta: encode_ndjson", per_call_us(lambda: encode_ndjson(delta.to_dict())), None),
        (
            "delta: bare encode_server_sent_event",
            per_call_us(lambda: encode_server_sent_event(delta.to_dict())),
            None,
        ),
        (
            "delta: SSE frame, scrub_deltas=False",
            per_call_us(lambda: runtime_stream_server_sent_event(delta, UNSCRUBBED)),
            None,
        ),
        (
            "delta: SSE frame, sanitized",
            per_call_us(lambda: runtime_stream_server_sent_event(delta)),
            DELTA_TARGET_US,
        ),
        ("tool result: to_json (baseline)", per_call_us(tool.to_json, 5000), None),
        (
            "tool result: SSE frame, sanitized",
            per_call_us(lambda: runtime_stream_server_sent_event(tool), 5000),
            None,
        ),
        (
            "tool result: SSE frame, payload scrubbed",
            per_call_us(lambda: runtime_stream_server_sent_event(tool, PAYLOADS), 5000),
            None,
        ),
        ("2 KB prose: str.encode (baseline)", per_call_us(prose.encode, 5000), None),
        ("2 KB prose: sanitize_text", per_call_us(lambda: sanitize_text(prose), 5000), None),
    ]
    print("egress cost per event (best of 5)")
    print(f"{'measure':<40} {'µs/call':>9} {'ratio':>8} {'target':>9}")
    base = rows[0][1]
    ok = True
    for name, us, target in rows:
        if "baseline" in name:
            base = us
        ratio = us / base if base else float("nan")
        tgt = f"≤{target:g} µs" if target is not None else "-"
        print(f"{name:<40} {us:>9.2f} {ratio:>7.1f}x {tgt:>9}")
        if target is not None and us > target:
            ok = False
    print("target met" if ok else "TARGET MISSED")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
