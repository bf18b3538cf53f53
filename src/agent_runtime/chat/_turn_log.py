"""The stream log of a durable turn: event ids per attempt, restart markers, and the cursor a
client follows it with.

A turn re-run after its worker died, whose producer answers differently, is a new *attempt*:
the log gets a restart marker (`turn:{attempt}:restart`) and the new attempt's events after
it (`turn:{attempt}:{position}`; the first attempt's are `turn:{position}`). A client that
applies the marker (drops its partial text) and then the events after it ends with the stored
text. `TurnLogCursor` decides, record by record, what a client at a given cursor still needs:
the records of its attempt after its cursor, and every later attempt from its marker on.
Records a fenced worker appended late for an attempt the log has left are never delivered.
"""

from __future__ import annotations

import re
from typing import NamedTuple

from ..durable._records import StreamEventRecord
from ..durable._store import DurableRunStore
from ..errors import DurableValueError

__all__ = [
    "TurnLogCursor",
    "TurnLogId",
    "parse_turn_event_id",
    "turn_event_id",
    "turn_event_ids",
    "turn_restart_id",
]

_ID = re.compile(r"turn:(?:([1-9][0-9]*):)?(?:([0-9]+)|(restart))")


class TurnLogId(NamedTuple):
    """What a log record's event id says: its attempt, and whether it is a restart marker."""

    attempt: int
    restart: bool


def turn_event_id(position: int, attempt: int = 1) -> str:
    """The event id of the producer event at `position` of `attempt` (stable across retries,
    so a re-logged event is a duplicate the store drops)."""
    return f"turn:{position}" if attempt == 1 else f"turn:{attempt}:{position}"


def turn_event_ids(start: int, stop: int, attempt: int = 1) -> list[str]:
    """`turn_event_id` of each position in `range(start, stop)` of `attempt`, in bulk."""
    if attempt == 1:
        return [f"turn:{position}" for position in range(start, stop)]
    return [f"turn:{attempt}:{position}" for position in range(start, stop)]


def turn_restart_id(attempt: int) -> str:
    """The event id of the marker that starts `attempt` (2 for the first restart)."""
    return f"turn:{attempt}:restart"


_FIRST_ATTEMPT = TurnLogId(1, False)


def parse_turn_event_id(event_id: str) -> TurnLogId:
    """The attempt of a record; ids of other logs (a substrate's own) count as attempt 1."""
    tail = event_id[5:]
    if tail.isdigit() and tail.isascii() and event_id.startswith("turn:"):
        return _FIRST_ATTEMPT  # `turn:{position}`, the first attempt's events: most records
    match = _ID.fullmatch(event_id)
    if match is None:
        return TurnLogId(1, False)
    attempt = int(match.group(1) or 1)
    return TurnLogId(attempt, match.group(3) is not None)


class TurnLogCursor:
    """Where one client is in a turn's log: the attempt it follows and the last `seq` it got.

    `admit(record)` says whether the client still needs a record read (or appended) in log
    order, and moves the cursor: a record of the client's attempt after its cursor, or the
    marker of a later attempt (the client switches to it; the records after the marker follow).
    """

    __slots__ = ("attempt", "seq")

    def __init__(self, seq: int = -1, attempt: int = 1) -> None:
        self.seq = seq
        self.attempt = attempt

    @classmethod
    async def resume(
        cls, store: DurableRunStore, run_id: str, after_seq: int | None
    ) -> TurnLogCursor:
        """The cursor of a client that got every record up to `after_seq` (None: nothing):
        its attempt is the attempt of that record."""
        if after_seq is None or after_seq < 0:
            return cls()
        if type(after_seq) is not int:
            raise DurableValueError("after_seq must be an int or None", path="after_seq")
        seen = await store.read_stream_events(run_id, after_seq=after_seq - 1, limit=1)
        if seen and seen[0].seq == after_seq:
            return cls(after_seq, parse_turn_event_id(seen[0].event_id).attempt)
        # a cursor past the end of the log: whatever comes later, in the last attempt
        last = await store.read_stream_events(run_id)
        attempt = max((parse_turn_event_id(r.event_id).attempt for r in last), default=1)
        return cls(after_seq, attempt)

    def admit(self, record: StreamEventRecord) -> bool:
        """Whether the client needs `record`; advances the cursor when it does."""
        return self.admit_id(record.seq, record.event_id)

    def admit_id(self, seq: int, event_id: str) -> bool:
        """`admit` for a record known by its `seq` and event id."""
        attempt, restart = parse_turn_event_id(event_id)
        if restart:
            if attempt <= self.attempt:
                return False
            self.attempt = attempt
            self.seq = seq
            return True
        if attempt != self.attempt or seq <= self.seq:
            return False
        self.seq = seq
        return True
