"""A stand-in sandbox execution: a process that outlives the worker draining it, appending
`{"id", "payload"}` lines to a file (one atomic write each) and a final `{"end": true}`.

usage: sandbox_proc.py OUT N DELAY_MS
"""

from __future__ import annotations

import os
import sys
import time

import orjson


def main(out: str, n: int, delay_ms: int) -> None:
    fd = os.open(out, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    for i in range(n):
        time.sleep(delay_ms / 1000)
        line = {"id": f"ev-{i}", "payload": {"type": "text_delta", "text": f"s{i} "}}
        os.write(fd, orjson.dumps(line) + b"\n")
    os.write(fd, b'{"end": true}\n')


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]))
