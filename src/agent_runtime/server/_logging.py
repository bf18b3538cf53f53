"""The service's log lines: one line per record, secrets scrubbed, as text or JSON.

Structured records carry their fields in `extra={"fields": {...}}` (`log_fields`); any other
record (uvicorn's, the chat engine's) is rendered the same way. An exception becomes
`error=<Type> code=<code>: <message>` on the same line (no traceback; a traceback logged as
text, as Starlette does for a failed start-up, is cut to its last line), and every message and
field passes through the secret scrubber, so a credential inside an upstream URL or an
exception text never reaches the log.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Mapping
from typing import Any

import orjson

from ..errors import AgentRuntimeError
from ..sanitize import sanitize_json, sanitize_text

__all__ = ["LineFormatter", "configure_logging", "log_fields"]


def log_fields(logger: logging.Logger, level: int, message: str, **fields: Any) -> None:
    """Log `message` with structured `fields` (rendered `key=value` or as JSON keys)."""
    if logger.isEnabledFor(level):
        logger.log(level, message, extra={"fields": fields})


def _one_line(text: str) -> str:
    return " ".join(text.split())


_TRACEBACK = "Traceback (most recent call last):"


def _traceback_tail(message: str) -> tuple[str, dict[str, Any]]:
    """A formatted traceback passed as a message (Starlette's lifespan failure): its last
    line, the exception, as the message with `error=<Type>`."""
    lines = [line for line in message.splitlines() if line.strip()]
    last = lines[-1].strip() if lines else message
    kind, sep, detail = last.partition(": ")
    if sep and " " not in kind:
        return detail, {"error": kind.rsplit(".", 1)[-1]}
    return last, {}


def _error_of(record: logging.LogRecord) -> BaseException | None:
    if record.exc_info and record.exc_info[1] is not None:
        return record.exc_info[1]
    args = record.args
    values = args.values() if isinstance(args, Mapping) else (args or ())
    for value in values:
        if isinstance(value, BaseException):
            return value
    return None


class LineFormatter(logging.Formatter):
    """`text`: `2026-12-01T09:00:00.123Z INFO message key=value ...`; `json`: one object per
    line with `ts`, `level`, `logger`, `message` and the fields."""

    def __init__(self, fmt: str = "text") -> None:
        super().__init__()
        if fmt not in ("text", "json"):
            raise ValueError("fmt must be text or json")
        self.json = fmt == "json"

    def _ts(self, record: logging.LogRecord) -> str:
        at = time.gmtime(record.created)
        return time.strftime("%Y-%m-%dT%H:%M:%S", at) + f".{int(record.msecs):03d}Z"

    def format(self, record: logging.LogRecord) -> str:
        try:
            message = record.getMessage()
        except Exception:  # a bad format string in someone's log call
            message = str(record.msg)
        fields: dict[str, Any] = dict(getattr(record, "fields", None) or {})
        if message.startswith(_TRACEBACK):
            message, found = _traceback_tail(message)
            fields.update(found)
        message = _one_line(sanitize_text(message))
        error = _error_of(record)
        if error is not None:
            fields.setdefault("error", type(error).__name__)
            if isinstance(error, AgentRuntimeError):
                fields.setdefault("code", error.code)
            if record.exc_info:
                detail = error.message if isinstance(error, AgentRuntimeError) else str(error)
                fields.setdefault("detail", _one_line(detail))
        fields = sanitize_json(fields)
        if self.json:
            doc = {
                "ts": self._ts(record),
                "level": record.levelname.lower(),
                "logger": record.name,
                "message": message,
                **fields,
            }
            return orjson.dumps(doc, default=str).decode()
        parts = [self._ts(record), record.levelname, message]
        for key, value in fields.items():
            if value is None:
                continue
            shown = value if isinstance(value, str) else orjson.dumps(value, default=str).decode()
            shown = _one_line(shown)
            parts.append(f"{key}={shown}" if " " not in shown else f'{key}="{shown}"')
        return " ".join(parts)


def configure_logging(fmt: str = "text", level: int = logging.INFO) -> logging.Handler:
    """Send every log record to stderr through `LineFormatter(fmt)`: ours at `level`, uvicorn's
    warnings and errors (its own access log is replaced by ours)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(LineFormatter(fmt))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(logging.WARNING)
    logging.getLogger("agent_runtime").setLevel(level)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logger = logging.getLogger(name)
        logger.handlers.clear()
        logger.propagate = True
        logger.setLevel(logging.WARNING)
    return handler
