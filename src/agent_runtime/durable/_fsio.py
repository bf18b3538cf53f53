"""File primitives of the filesystem store: atomic replace, `flock` locks, JSON-lines logs.

A JSON-lines log is append-only; one append is one `write` of whole lines. A crash can leave
a torn last line: readers ignore it, and the next writer (holding the exclusive lock) cuts it
off before appending. A reader keeps what it parsed and reads only the new tail next time.
"""

from __future__ import annotations

import fcntl
import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import orjson

from ..errors import StoreUnavailableError

__all__ = ["JsonlLog", "atomic_write", "flocked", "fsync_dir", "read_json"]


def fsync_dir(path: Path) -> None:
    """Make a rename or a new file in `path` durable."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write(path: Path, data: bytes, *, fsync: bool) -> None:
    """Replace `path` with `data` all at once: temp file, fsync, rename, fsync the folder."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    try:
        try:
            os.write(fd, data)
            if fsync:
                os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    if fsync:
        fsync_dir(path.parent)


def read_json(path: Path) -> Any:
    """The JSON document at `path`, or None when the file does not exist."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise StoreUnavailableError(f"{path} is not valid JSON: {exc}") from exc


@contextmanager
def flocked(path: Path, *, exclusive: bool = True) -> Iterator[None]:
    """Hold an `flock` on `path` (created if missing) for the block; works across processes."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the lock


class JsonlLog:
    """An append-only JSON-lines file with an incremental parse cache.

    `items` holds every complete, valid line parsed so far; `generation` changes when the
    file was replaced or cut shorter than what was cached, so indexes built on `items` must
    be rebuilt.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.items: list[Any] = []
        self.generation = 0
        self._inode: int | None = None
        self._valid_end = 0

    def _reset(self, inode: int | None) -> None:
        self.items = []
        self.generation += 1
        self._inode = inode
        self._valid_end = 0

    def refresh(self) -> list[Any]:
        """Parse lines appended since the last call; a torn or garbled last line is left out."""
        try:
            fd = os.open(self.path, os.O_RDONLY)
        except FileNotFoundError:
            if self._inode is not None or self.items:
                self._reset(None)
            return self.items
        try:
            st = os.fstat(fd)
            if st.st_ino != self._inode or st.st_size < self._valid_end:
                self._reset(st.st_ino)
            if st.st_size == self._valid_end:
                return self.items
            os.lseek(fd, self._valid_end, os.SEEK_SET)
            chunks = []
            remaining = st.st_size - self._valid_end
            while remaining > 0:
                chunk = os.read(fd, min(remaining, 1 << 20))
                if not chunk:
                    break
                chunks.append(chunk)
                remaining -= len(chunk)
        finally:
            os.close(fd)
        data = b"".join(chunks)
        pos = 0
        while True:
            nl = data.find(b"\n", pos)
            if nl < 0:
                break  # no newline yet: a torn line (crash) or a write in progress
            line = data[pos:nl]
            try:
                item = orjson.loads(line) if line.strip() else None
            except orjson.JSONDecodeError as exc:
                if data.find(b"\n", nl + 1) >= 0 or data[nl + 1 :].strip():
                    raise StoreUnavailableError(
                        f"{self.path}: corrupt line at byte {self._valid_end + pos}: {exc}"
                    ) from exc
                break  # a garbled last line is treated as torn
            if item is not None:
                self.items.append(item)
            pos = nl + 1
        self._valid_end += pos
        return self.items

    def append(self, records: list[Any], *, fsync: bool) -> None:
        """Append `records` as lines in one write. Call with the log's exclusive lock held;
        a torn tail left by a crashed writer is cut off first."""
        self.refresh()
        data = b"".join(orjson.dumps(r) + b"\n" for r in records)
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        try:
            st = os.fstat(fd)
            if st.st_ino != self._inode:  # created just now
                self._reset(st.st_ino)
            if st.st_size > self._valid_end:
                os.ftruncate(fd, self._valid_end)  # repair: drop the torn tail
            written = os.write(fd, data)
            if written != len(data):
                os.ftruncate(fd, self._valid_end)
                raise StoreUnavailableError(f"{self.path}: short write ({written} of {len(data)})")
            if fsync:
                os.fsync(fd)
        finally:
            os.close(fd)
        self.items.extend(records)
        self._valid_end += len(data)
