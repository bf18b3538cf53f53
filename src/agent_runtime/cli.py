"""The `agent-runtime` command line: inspect durable runs and manage store schemas.

Each command group is its own Typer app mounted on `app` (`runs`); top-level commands
(`migrate`) are plain functions. Human output is Rich tables; `--json` prints JSON (one
document, or one object per line for `runs tail`) for scripts.
"""

from __future__ import annotations

import asyncio
import re
import sys
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Annotated, Any, TypeVar

import orjson
import typer
from rich.console import Console
from rich.table import Table

from .durable import DurableRunStore, RunRecord, open_store
from .errors import (
    AgentRuntimeError,
    ConfigurationError,
    DurableRunNotFoundError,
    DurableValueError,
)

__all__ = ["DEFAULT_STORE_URL", "app", "main", "runs_app"]

T = TypeVar("T")

DEFAULT_STORE_URL = "sqlite:///./.agent-runtime/runs.db"
STORE_ENV = "AGENT_RUNTIME_STORE"

app = typer.Typer(
    name="agent-runtime",
    help="Durable agent runtime: inspect runs, manage stores.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
runs_app = typer.Typer(help="List, inspect and tail durable runs.", no_args_is_help=True)
app.add_typer(runs_app, name="runs")

StoreOpt = Annotated[
    str,
    typer.Option(
        "--store",
        envvar=STORE_ENV,
        help="Store URL: memory:, sqlite:///path, file:///root, postgresql://...",
    ),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]

_out = Console(soft_wrap=True)
_err = Console(stderr=True)


def _fail(message: str, code: int) -> typer.Exit:
    _err.print(f"[red]error:[/red] {message}", highlight=False)
    return typer.Exit(code)


def _with_store(
    url: str, fn: Callable[[DurableRunStore], Awaitable[T]], *, create: bool = False
) -> T:
    """Open the store, run `fn`, close it; typed errors become a message and an exit code.
    Only `migrate` creates a store: reading a mistyped path is an error, not a new file."""

    async def go() -> T:
        store = await open_store(url, create=create)
        try:
            return await fn(store)
        finally:
            await store.close()

    try:
        return asyncio.run(go())
    except DurableRunNotFoundError as exc:
        raise _fail(exc.message, 1) from None
    except (ConfigurationError, DurableValueError) as exc:
        raise _fail(exc.message, 2) from None
    except AgentRuntimeError as exc:
        raise _fail(f"{type(exc).__name__}: {exc.message}", 1) from None


def _display_url(url: str) -> str:
    """The store URL with any password masked."""
    return re.sub(r"(://[^:/@]+:)[^@]*@", r"\1***@", url)


def _emit_json(data: Any) -> None:
    sys.stdout.write(orjson.dumps(data).decode() + "\n")
    sys.stdout.flush()


def _ts(value: datetime | None) -> str:
    return value.astimezone().strftime("%Y-%m-%d %H:%M:%S") if value else "-"


async def _stream_length(store: DurableRunStore, run_id: str) -> int:
    length = getattr(store, "stream_length", None)
    if callable(length):
        return int(await length(run_id))
    return len(await store.read_stream_events(run_id))


def _short(value: Any, width: int = 60) -> str:
    text = orjson.dumps(value).decode()
    return text if len(text) <= width else text[: width - 1] + "…"


# -- runs ---------------------------------------------------------------------------------------


@runs_app.command("ls")
def runs_ls(
    store: StoreOpt = DEFAULT_STORE_URL,
    status: Annotated[
        str | None, typer.Option(help="Only runs with this status (running, completed, ...).")
    ] = None,
    limit: Annotated[int, typer.Option(min=1, help="At most this many runs.")] = 50,
    as_json: JsonOpt = False,
) -> None:
    """List runs, newest first."""

    async def go(s: DurableRunStore) -> list[tuple[RunRecord, int]]:
        runs = await s.list_runs(limit=limit, status=status)  # type: ignore[arg-type]
        return [(r, await _stream_length(s, r.run_id)) for r in runs]

    rows = _with_store(store, go)
    if as_json:
        _emit_json([{**r.to_dict(), "stream_length": n} for r, n in rows])
        return
    table = Table(title=f"runs in {_display_url(store)}", title_justify="left")
    for col in ("run id", "status", "steps", "stream", "lease holder", "lease expires", "created"):
        table.add_column(col, no_wrap=col == "run id")
    for r, n in rows:
        table.add_row(
            r.run_id,
            _status(r.status),
            str(r.step_count),
            str(n),
            r.lease_holder or "-",
            _ts(r.lease_expires_at),
            _ts(r.created_at),
        )
    _out.print(table)
    if not rows:
        _out.print("no runs")


def _status(status: str) -> str:
    color = {"completed": "green", "failed": "red", "running": "yellow"}.get(status, "cyan")
    return f"[{color}]{status}[/{color}]"


@runs_app.command("show")
def runs_show(
    run_id: Annotated[str, typer.Argument(help="The run id.")],
    store: StoreOpt = DEFAULT_STORE_URL,
    as_json: JsonOpt = False,
) -> None:
    """Show a run: status, lease, outcome, and every step with its attempts."""

    async def go(s: DurableRunStore) -> tuple[RunRecord, list[Any], int]:
        run = await s.load_run(run_id)
        if run is None:
            raise DurableRunNotFoundError(f"run {run_id!r} does not exist", run_id=run_id)
        return run, await s.load_steps(run_id), await _stream_length(s, run_id)

    run, steps, length = _with_store(store, go)
    if as_json:
        _emit_json(
            {"run": run.to_dict(), "steps": [s.to_dict() for s in steps], "stream_length": length}
        )
        return
    info = Table.grid(padding=(0, 2))
    info.add_column(style="bold")
    info.add_column()
    info.add_row("run", run.run_id)
    info.add_row("status", _status(run.status))
    info.add_row("project", run.project_id + (f" / {run.scenario_id}" if run.scenario_id else ""))
    info.add_row("created", _ts(run.created_at))
    info.add_row("updated", _ts(run.updated_at))
    info.add_row("lease", f"{run.lease_holder or '-'} until {_ts(run.lease_expires_at)}")
    info.add_row("lease epoch", str(run.lease_epoch))
    info.add_row("steps", str(run.step_count))
    info.add_row("stream", f"{length} events")
    if run.handle:
        info.add_row("handle", _short(run.handle.to_dict(), 100))
    if run.outcome is not None:
        info.add_row("outcome", _short(run.outcome, 100))
    _out.print(info)
    table = Table(title="steps", title_justify="left")
    for col in ("#", "intent", "kind", "status", "attempts", "completed", "result / error"):
        table.add_column(col)
    for st in steps:
        shown = st.error.get("message") if st.error else _short(st.result)
        table.add_row(
            str(st.step_index),
            st.intent,
            st.kind,
            _status(st.status),
            str(st.attempts),
            _ts(st.completed_at),
            str(shown),
        )
    _out.print(table)


@runs_app.command("tail")
def runs_tail(
    run_id: Annotated[str, typer.Argument(help="The run id.")],
    store: StoreOpt = DEFAULT_STORE_URL,
    after: Annotated[
        int | None, typer.Option(help="Only events with seq greater than this cursor.")
    ] = None,
    limit: Annotated[int | None, typer.Option(min=1, help="At most this many events.")] = None,
    follow: Annotated[
        bool, typer.Option("--follow", "-f", help="Keep printing new events until the run ends.")
    ] = False,
    poll_ms: Annotated[int, typer.Option(min=10, help="Poll interval with --follow.")] = 250,
    as_json: JsonOpt = False,
) -> None:
    """Print a run's stream log from a cursor; `--json` prints one JSON object per line."""

    async def go(s: DurableRunStore) -> None:
        cursor = after
        printed = 0
        while True:
            want = None if limit is None else limit - printed
            events = await s.read_stream_events(run_id, after_seq=cursor, limit=want)
            for ev in events:
                if as_json:
                    _emit_json(ev.to_dict())
                else:
                    _out.print(
                        f"[dim]{ev.seq:>6}[/dim]  {ev.event_id}  {_short(ev.payload, 200)}",
                        highlight=False,
                    )
                cursor = ev.seq
            printed += len(events)
            if not follow or (limit is not None and printed >= limit):
                return
            if not events:
                run = await s.load_run(run_id)
                if run is None:  # a mistyped id, or the store went away: nothing will come
                    raise DurableRunNotFoundError(
                        f"run {run_id!r} does not exist in this store", run_id=run_id
                    )
                if run.status != "running":
                    rest = await s.read_stream_events(run_id, after_seq=cursor, limit=1)
                    if not rest:
                        return
                await asyncio.sleep(poll_ms / 1000)

    _with_store(store, go)


# -- stores -------------------------------------------------------------------------------------


@app.command("migrate")
def migrate(store: StoreOpt = DEFAULT_STORE_URL, as_json: JsonOpt = False) -> None:
    """Create the store or bring its schema up to date (safe to run from several hosts)."""

    async def go(s: DurableRunStore) -> int:
        version = getattr(s, "schema_version", None)
        if not callable(version):
            return 0
        result = version()
        if asyncio.iscoroutine(result):
            result = await result
        return int(result)

    version = _with_store(store, go, create=True)
    if as_json:
        _emit_json({"store": _display_url(store), "schema_version": version})
    else:
        _out.print(f"{_display_url(store)}: schema version {version}", highlight=False)


def main() -> None:
    """Console-script entry point."""
    app()


if __name__ == "__main__":
    main()
