"""How the `agent-runtime` CLI prints: text is never read as markup, tables fit the terminal,
errors are one line, JSON is compact and never wrapped.

Both consoles have markup, emoji codes and highlighting off, so model or stored text such as
`[/red]`, `[echo]` or `:smile:` prints as it is; styles come only from `Text` spans. Tables
truncate ids with an ellipsis in the middle (the end of `chat:session:3` tells turns apart),
wrap free text, and show JSON on one line cut with an ellipsis (`--json` has all of it).
"""

from __future__ import annotations

import sys
import traceback
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import orjson
from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from .durable import RunRecord, StepRecord
from .errors import AgentRuntimeError

__all__ = [
    "emit_json",
    "err",
    "error_details",
    "fit_middle",
    "json_line",
    "one_line",
    "out",
    "run_details",
    "runs_table",
    "status_text",
    "steps_table",
    "timestamp",
]

out = Console(markup=False, emoji=False, highlight=False)
err = Console(stderr=True, markup=False, emoji=False, highlight=False, soft_wrap=True)

_STATUS_STYLE = {"completed": "green", "failed": "red", "running": "yellow"}
_TEXT_LIMIT = 300  # free text in a table cell: this many characters, then an ellipsis
_GAP = 3  # columns between two table columns (padding, rule, padding)


def emit_json(data: Any) -> None:
    """One compact JSON document and a newline on stdout, never wrapped or truncated."""
    sys.stdout.write(orjson.dumps(data).decode() + "\n")
    sys.stdout.flush()


def one_line(message: str) -> str:
    """`message` with every run of whitespace (newlines, tabs) as one space."""
    return " ".join(message.split())


def error_details(exc: BaseException) -> list[str]:
    """What `-v` adds under an error line: the error's type, code and fields, then the
    traceback of the exception and its causes."""
    lines = []
    if isinstance(exc, AgentRuntimeError):
        fields = {k: v for k, v in exc.to_dict().items() if k not in ("type", "message")}
        fields.update(
            (k, v)
            for k, v in vars(exc).items()
            if k not in ("message", "code") and not k.startswith("_") and v is not None
        )
        described = ", ".join(f"{k}={v!r}" for k, v in fields.items())
        lines.append(f"{type(exc).__name__} ({described})")
    lines.extend(
        line.rstrip("\n") for line in traceback.format_exception(type(exc), exc, exc.__traceback__)
    )
    return lines


def fit_middle(text: str, width: int) -> str:
    """`text` in at most `width` characters, its middle replaced by `…` when it is longer."""
    if len(text) <= width:
        return text
    if width <= 1:
        return "…"[:width]
    head = width // 2
    tail = width - 1 - head
    return text[:head] + "…" + (text[-tail:] if tail else "")


def json_line(value: Any) -> Text:
    """`value` as compact JSON on one line, cut with `…` where the cell ends."""
    return Text(orjson.dumps(value).decode(), no_wrap=True, overflow="ellipsis")


def _free_text(text: str, style: str = "", limit: int | None = _TEXT_LIMIT) -> Text:
    """Text that wraps; longer than `limit`, it is cut at a word boundary and ends in `…`."""
    if limit is not None and len(text) > limit:
        cut = text[: limit - 1]
        word_start = cut.rfind(" ")
        text = (cut[:word_start] if word_start > limit // 2 else cut).rstrip() + "…"
    return Text(text, style=style, overflow="fold")


def _value(value: Any, limit: int | None = _TEXT_LIMIT) -> Text:
    """A string as wrapped free text (cut at `limit`), anything else as one line of JSON."""
    return _free_text(value, limit=limit) if isinstance(value, str) else json_line(value)


def _error_text(error: dict[str, Any], limit: int | None = _TEXT_LIMIT) -> Text:
    kind = error.get("type")
    message = str(error.get("message", ""))
    return _free_text(f"{kind}: {message}" if kind else message, style="red", limit=limit)


def _outcome(outcome: Any) -> Text:
    """A run's outcome in full: a failed run's `{"error": {"type", "message"}}` as its error
    line, text wrapped, anything else as one line of JSON."""
    error = outcome.get("error") if isinstance(outcome, dict) and len(outcome) == 1 else None
    if isinstance(error, dict) and "message" in error:
        return _error_text(error, limit=None)
    return _value(outcome, limit=None)


def status_text(status: str) -> Text:
    """A run or step status, coloured."""
    return Text(status, style=_STATUS_STYLE.get(status, "cyan"))


def timestamp(value: datetime | None) -> str:
    """Local time to the second, `-` when unknown."""
    return value.astimezone().strftime("%Y-%m-%d %H:%M:%S") if value else "-"


def _table(expand: bool = False) -> Table:
    return Table(
        box=box.SIMPLE_HEAD,
        show_edge=False,
        pad_edge=False,
        padding=(0, 1),
        expand=expand,
        header_style="bold",
    )


def runs_table(rows: Sequence[tuple[RunRecord, int]], width: int) -> Table:
    """`runs ls`: id, status, steps, stream events, creation time; the id column takes what
    the others leave of `width` and long ids lose their middle."""
    cells = [
        (r.run_id, r.status, str(r.step_count), str(n), timestamp(r.created_at)) for r, n in rows
    ]
    heads = ("run id", "status", "steps", "events", "created")
    widths = [max([len(h), *(len(c[i]) for c in cells)]) for i, h in enumerate(heads)]
    room = width - sum(widths[1:]) - _GAP * (len(heads) - 1)
    widths[0] = max(min(widths[0], room), 8)
    table = _table()
    for head, w in zip(heads, widths, strict=True):
        numeric = head in ("steps", "events")
        table.add_column(head, width=w, no_wrap=True, justify="right" if numeric else "left")
    for run_id, status, steps, events, created in cells:
        table.add_row(
            Text(fit_middle(run_id, widths[0])), status_text(status), steps, events, created
        )
    return table


def run_details(run: RunRecord, stream_length: int) -> Table:
    """`runs show`: one key and value per line; text wraps, JSON stays on one line."""
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold", no_wrap=True)
    grid.add_column(overflow="fold")
    project = run.project_id + (f" / {run.scenario_id}" if run.scenario_id else "")
    rows: list[tuple[str, Text | str]] = [
        ("run", Text(run.run_id, overflow="fold")),
        ("status", status_text(run.status)),
        ("project", Text(project, overflow="fold")),
        ("created", timestamp(run.created_at)),
        ("updated", timestamp(run.updated_at)),
        ("lease", Text(f"{run.lease_holder or '-'} until {timestamp(run.lease_expires_at)}")),
        ("lease epoch", str(run.lease_epoch)),
        ("steps", str(run.step_count)),
        ("stream", f"{stream_length} events"),
    ]
    if run.handle:
        rows.append(("handle", json_line(run.handle.to_dict())))
    if run.outcome is not None:
        rows.append(("outcome", _outcome(run.outcome)))
    for key, value in rows:
        grid.add_row(key, value)
    return grid


def _step_result(step: StepRecord) -> Text:
    if step.error:
        return _error_text(step.error)
    if step.result is None and step.status != "completed":
        return Text("-")
    return _value(step.result)


def steps_table(steps: Sequence[StepRecord]) -> Table:
    """`runs show`: every step with its attempts; intents and text results wrap, JSON
    results stay on one line."""
    table = _table(expand=True)
    table.add_column("#", no_wrap=True, justify="right")
    table.add_column("intent", ratio=1, overflow="fold")
    table.add_column("kind", no_wrap=True)
    table.add_column("status", no_wrap=True)
    table.add_column("tries", no_wrap=True, justify="right")
    table.add_column("result / error", ratio=2, overflow="fold")
    for st in steps:
        table.add_row(
            str(st.step_index),
            Text(st.intent, overflow="fold"),
            st.kind,
            status_text(st.status),
            str(st.attempts),
            _step_result(st),
        )
    return table
