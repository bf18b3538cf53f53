"""The `agent-runtime` command line: serve and talk to the chat service, run a task, inspect
durable runs and manage store schemas.

Each command group is its own Typer app mounted on `app` (`runs`); top-level commands
(`migrate`) are plain functions. Human output is Rich tables; `--json` prints JSON (one
document, or one object per line for `runs tail`) for scripts.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import sys
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Annotated, Any, TypeVar

import orjson
import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from ._cli_temporal import temporal_app
from .durable import DurableRunStore, RunRecord, open_store
from .errors import (
    AgentRuntimeError,
    ConfigurationError,
    DurableRunNotFoundError,
    DurableValueError,
    StoreUnavailableError,
    ValidationError,
)
from .types import FinalEvent, LlmCallEvent

__all__ = ["DEFAULT_STORE_URL", "app", "main", "runs_app"]

T = TypeVar("T")

DEFAULT_STORE_URL = "sqlite:///./.agent-runtime/runs.db"
STORE_ENV = "AGENT_RUNTIME_STORE"

app = typer.Typer(
    name="agent-runtime",
    help="Durable agent runtime: serve chat, run tasks, inspect runs, manage stores.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
runs_app = typer.Typer(help="List, inspect and tail durable runs.", no_args_is_help=True)
app.add_typer(runs_app, name="runs")
app.add_typer(temporal_app, name="temporal")

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
    _err.print(f"[red]error:[/red] {escape(message)}", highlight=False)
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
            Text(r.run_id),
            _status(r.status),
            str(r.step_count),
            str(n),
            Text(r.lease_holder or "-"),
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
    info.add_row("run", Text(run.run_id))
    info.add_row("status", _status(run.status))
    info.add_row(
        "project", Text(run.project_id + (f" / {run.scenario_id}" if run.scenario_id else ""))
    )
    info.add_row("created", _ts(run.created_at))
    info.add_row("updated", _ts(run.updated_at))
    info.add_row("lease", Text(f"{run.lease_holder or '-'} until {_ts(run.lease_expires_at)}"))
    info.add_row("lease epoch", str(run.lease_epoch))
    info.add_row("steps", str(run.step_count))
    info.add_row("stream", f"{length} events")
    if run.handle:
        info.add_row("handle", Text(_short(run.handle.to_dict(), 100)))
    if run.outcome is not None:
        info.add_row("outcome", Text(_short(run.outcome, 100)))
    _out.print(info)
    table = Table(title="steps", title_justify="left")
    for col in ("#", "intent", "kind", "status", "attempts", "completed", "result / error"):
        table.add_column(col)
    for st in steps:
        shown = st.error.get("message") if st.error else _short(st.result)
        table.add_row(
            str(st.step_index),
            Text(st.intent),
            st.kind,
            _status(st.status),
            str(st.attempts),
            _ts(st.completed_at),
            Text(str(shown)),
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
                    line = Text.assemble(
                        (f"{ev.seq:>6}", "dim"), f"  {ev.event_id}  {_short(ev.payload, 200)}"
                    )
                    _out.print(line, highlight=False)  # model text: never read as markup
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
        _out.print(
            f"{_display_url(store)}: schema version {version}", markup=False, highlight=False
        )


# -- service ------------------------------------------------------------------------------------

UrlOpt = Annotated[
    str | None,
    typer.Option("--url", help="A running server (http://host:port); default: in-process."),
]


@app.command("serve")
def serve(
    host: Annotated[str, typer.Option(help="Interface to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=0, max=65535, help="Port (0: any free port).")] = 8000,
    store: StoreOpt = DEFAULT_STORE_URL,
    engine: Annotated[
        str,
        typer.Option(
            envvar="AGENT_RUNTIME_ENGINE",
            help="Who drives turns: local (this process) or temporal (workers of "
            "`agent-runtime temporal worker` on TEMPORAL_ADDRESS, AGENT_RUNTIME_TASK_QUEUE).",
        ),
    ] = "local",
) -> None:
    """Serve the chat API and page (backend: OPENAI_BASE_URL's endpoint, else echo)."""
    os.environ["AGENT_RUNTIME_ENGINE"] = engine  # read with the backend settings
    try:
        import uvicorn

        from .server import create_app
    except ImportError as exc:  # the `server` extra is not installed
        raise _fail(
            f"serve needs the server extra (pip install 'durable-agent-runtime[server]'): {exc}", 2
        ) from None
    try:
        application = create_app(store_url=store)
    except AgentRuntimeError as exc:
        raise _fail(exc.message, 2) from None
    _err.print(
        f"serving on http://{host}:{port} (store {_display_url(store)})",
        markup=False,
        highlight=False,
    )
    uvicorn.run(application, host=host, port=port, log_level="warning", lifespan="on")


def _print_event(event: dict[str, Any], as_json: bool) -> None:
    if as_json:
        _emit_json(event)
        return
    kind = event.get("type")
    if kind in ("text_delta", "turn.replayed"):  # a replayed turn arrives as its whole text
        sys.stdout.write(str(event.get("text") or ""))
        sys.stdout.flush()
    elif kind == "error":
        detail = f"{event.get('code')}: {event.get('message')}"
        _err.print(f"[red]error[/red] {escape(detail)}", highlight=False)


async def _chat_remote(url: str, body: dict[str, Any], as_json: bool) -> bool:
    import httpx2

    ok = False
    try:
        async with (
            httpx2.AsyncClient(timeout=httpx2.Timeout(30.0, read=None)) as client,
            client.stream("POST", url.rstrip("/") + "/api/chat", json=body) as response,
        ):
            if response.status_code != 200:
                detail = (await response.aread()).decode(errors="replace")[:500]
                raise ConfigurationError(f"server answered {response.status_code}: {detail}")
            async for line in response.aiter_lines():
                if line.strip():
                    event = orjson.loads(line)
                    _print_event(event, as_json)
                    ok = ok or event.get("type") == "session.run.completed"
    except httpx2.HTTPError as exc:
        raise StoreUnavailableError(f"cannot reach {url}: {exc}") from None
    return ok


async def _chat_local(store_url: str, body: dict[str, Any], as_json: bool) -> bool:
    from .server import TurnRunner, backend_from_env, parse_chat_request

    request = parse_chat_request(orjson.dumps(body))
    config = backend_from_env()
    ok = False
    try:
        store = await open_store(store_url)
        try:
            runner = TurnRunner(store, config.backend, backend_for_model=config.backend_for)
            _run_id, turn = await runner.run_turn(request)
            async for line in turn.body:
                event = orjson.loads(line)
                _print_event(event, as_json)
                ok = ok or event.get("type") == "session.run.completed"
        finally:
            await store.close()
    finally:
        await config.aclose()
    return ok


@app.command("chat")
def chat(
    text: Annotated[str, typer.Argument(help="The user message.")],
    url: UrlOpt = None,
    session: Annotated[str | None, typer.Option(help="Session id (default: a new one).")] = None,
    turn: Annotated[int, typer.Option(min=0, help="Turn index within the session.")] = 0,
    model: Annotated[str | None, typer.Option(help="Model id for this turn.")] = None,
    store: StoreOpt = DEFAULT_STORE_URL,
    as_json: JsonOpt = False,
) -> None:
    """Run one chat turn and print its text as it streams (`--json`: every event)."""
    import uuid

    body: dict[str, Any] = {
        "session_id": session or f"cli-{uuid.uuid4().hex[:12]}",
        "turn_index": turn,
        "text": text,
    }
    if model is not None:
        body["model"] = model
    try:
        ok = asyncio.run(
            _chat_remote(url, body, as_json) if url else _chat_local(store, body, as_json)
        )
    except AgentRuntimeError as exc:
        raise _fail(exc.message, 2 if isinstance(exc, ConfigurationError) else 1) from None
    if not as_json:
        sys.stdout.write("\n")
    if not ok:
        raise typer.Exit(1)


RUN_INTENT = "Carry out the task given on the command line."
"""The intent of an `agent-runtime run` task: a fixed operation description (telemetry shows
it unredacted); the operator's text is the task's message."""


class _RunTally:
    """What the summary line of `agent-runtime run` needs, gathered from the events."""

    def __init__(self) -> None:
        self.status = "failed"
        self.reason = ""
        self.llm_calls = 0
        self.tokens_in: int | None = 0
        self.tokens_out: int | None = 0
        self.cost_usd: float | None = 0.0

    def observe(self, event: Any) -> None:
        if isinstance(event, LlmCallEvent):
            self.llm_calls += 1
            self.tokens_in = _add(self.tokens_in, event.tokens_in)
            self.tokens_out = _add(self.tokens_out, event.tokens_out)
            self.cost_usd = _add(self.cost_usd, event.cost_usd)
        elif isinstance(event, FinalEvent):
            self.status = event.status
            self.reason = event.reason

    def summary(self, duration_s: float) -> str:
        """`completed · tokens 12 in / 40 out · cost $0.000123 · 0.42 s`; `-` when unknown."""
        known = self.llm_calls > 0
        tin = str(self.tokens_in) if known and self.tokens_in is not None else "-"
        tout = str(self.tokens_out) if known and self.tokens_out is not None else "-"
        cost = f"${self.cost_usd:.6f}" if known and self.cost_usd is not None else "-"
        return f"{self.status} · tokens {tin} in / {tout} out · cost {cost} · {duration_s:.2f} s"


def _add(total: Any, value: Any) -> Any:
    """A running sum that becomes None (unknown) once one value is unknown."""
    return None if total is None or value is None else total + value


@app.command("run")
def run_task(
    message: Annotated[str, typer.Argument(help="What the agent should do (the task's message).")],
    task_id: Annotated[str, typer.Option("--id", help="Task id.")] = "cli-task",
    intent: Annotated[
        str, typer.Option(help="The task's fixed intent (shown unredacted in telemetry).")
    ] = RUN_INTENT,
    domain: Annotated[str | None, typer.Option(help="The task's domain.")] = None,
    model: Annotated[
        str | None,
        typer.Option(help="Model id (OPENAI_BASE_URL's endpoint; default OPENAI_MODEL)."),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Run one agent task (run_agent_task_stream) on the configured backend (OPENAI_BASE_URL's
    endpoint, else echo): print the answer as it streams, then one summary line on stderr
    (status, tokens in/out, cost, duration; `-` when unknown). `--json`: every event's wire
    JSON, one per line. Exits 1 unless the task completed; Ctrl-C aborts it."""
    import signal
    import time

    from .runtime import run_agent_task_stream
    from .server import backend_from_env
    from .types import AbortController, AgentTaskSpec, BackendErrorEvent, TextDeltaEvent

    async def go() -> tuple[_RunTally, float]:
        config = backend_from_env()
        tally = _RunTally()
        controller = AbortController()
        loop = asyncio.get_running_loop()

        def interrupted() -> None:  # a second Ctrl-C is a plain KeyboardInterrupt
            loop.remove_signal_handler(signal.SIGINT)
            controller.abort("interrupted")

        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(signal.SIGINT, interrupted)
        started = time.monotonic()
        try:
            backend = config.backend_for(model)
            spec = AgentTaskSpec(id=task_id, intent=intent, domain=domain)
            async for event in run_agent_task_stream(
                spec, backend, input={"message": message}, signal=controller.signal
            ):
                tally.observe(event)
                if as_json:
                    _emit_json(event.to_dict())
                elif isinstance(event, TextDeltaEvent):
                    sys.stdout.write(event.text)
                    sys.stdout.flush()
                elif isinstance(event, BackendErrorEvent):
                    _err.print(
                        f"[red]error[/red] {escape(event.backend)}: {escape(event.message)}",
                        highlight=False,
                    )
        finally:
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.remove_signal_handler(signal.SIGINT)
            await config.aclose()
        return tally, time.monotonic() - started

    try:
        tally, duration_s = asyncio.run(go())
    except AgentRuntimeError as exc:
        bad_option = isinstance(exc, ConfigurationError | ValidationError)
        raise _fail(exc.message, 2 if bad_option else 1) from None
    if not as_json:
        sys.stdout.write("\n")
        sys.stdout.flush()
        if tally.status == "blocked":
            _err.print(tally.reason, markup=False, highlight=False)
        _err.print(tally.summary(duration_s), markup=False, highlight=False)
    if tally.status != "completed":
        raise typer.Exit(1)


@app.command("models")
def models(url: UrlOpt = None, as_json: JsonOpt = False) -> None:
    """List the models of the configured endpoint (OPENAI_BASE_URL), or of a server's --url."""

    async def go() -> list[str]:
        if url:
            import httpx2

            try:
                async with httpx2.AsyncClient(timeout=10.0) as client:
                    response = await client.get(url.rstrip("/") + "/api/models")
            except httpx2.HTTPError as exc:
                raise StoreUnavailableError(f"cannot reach {url}: {exc}") from None
            if response.status_code != 200:
                raise ConfigurationError(f"server answered {response.status_code}")
            return [str(m["id"]) for m in response.json()["data"]]
        from .models import get_models
        from .server import backend_from_env

        config = backend_from_env()
        if config.base_url is None:
            return [config.model]
        return [
            str(m.get("id"))
            for m in await get_models(config.base_url, api_key=config.api_key)
            if m.get("id")
        ]

    try:
        ids = asyncio.run(go())
    except AgentRuntimeError as exc:
        raise _fail(exc.message, 2 if isinstance(exc, ConfigurationError) else 1) from None
    if as_json:
        _emit_json(ids)
    else:
        for model_id in ids:
            _out.print(model_id, markup=False, highlight=False)


def main() -> None:
    """Console-script entry point."""
    app()


if __name__ == "__main__":
    main()
