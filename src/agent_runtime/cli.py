"""The `agent-runtime` command line: serve and talk to the chat service, run a task, inspect
durable runs and manage store schemas.

Each command group is its own Typer app mounted on `app` (`runs`); top-level commands
(`migrate`, `chat`, `run`, ...) are plain functions. Human output is Rich with markup off
(`_cli_output`): model and stored text prints as it is, tables fit the terminal. `--json`
prints compact JSON (one document, or one object per line for `runs tail` and streams).
Errors are one line on stderr (`agent-runtime -v ...` adds the details); exit codes: 0 done,
1 what was asked failed (unknown run, unreachable store or server, a task or turn that did
not complete), 2 a wrong option, URL or setting.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import os
import re
import sys
from collections.abc import Awaitable, Callable, Coroutine
from typing import Annotated, Any, NoReturn, TypeVar

import orjson
import typer
from rich.status import Status
from rich.text import Text

from ._cli_output import (
    emit_json,
    err,
    error_details,
    one_line,
    out,
    run_details,
    runs_table,
    status_text,
    steps_table,
    timestamp,
)
from ._cli_temporal import temporal_app
from .durable import DurableRunStore, RunRecord, open_store
from .errors import (
    AgentRuntimeError,
    ChatTurnError,
    ConfigurationError,
    DurableRunNotFoundError,
    DurableValueError,
    InvalidArgumentError,
    StoreUnavailableError,
    ValidationError,
)
from .types import FinalEvent, LlmCallEvent

__all__ = [
    "DEFAULT_CONNECT_TIMEOUT_S",
    "DEFAULT_STORE_URL",
    "app",
    "exit_code",
    "main",
    "runs_app",
]

T = TypeVar("T")

DEFAULT_STORE_URL = "sqlite:///./.agent-runtime/runs.db"
STORE_ENV = "AGENT_RUNTIME_STORE"
DEFAULT_CONNECT_TIMEOUT_S = 5.0
"""Seconds the CLI retries a PostgreSQL server that refuses the connection (--connect-timeout)."""

app = typer.Typer(
    name="agent-runtime",
    help="Durable agent runtime: serve chat, run tasks, inspect runs, manage stores.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,  # help and usage errors as plain click text, never markup
)
runs_app = typer.Typer(
    help="List, inspect and tail durable runs.", no_args_is_help=True, rich_markup_mode=None
)
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
JsonOpt = Annotated[bool, typer.Option("--json", help="Print compact JSON for scripts.")]
ConnectTimeoutOpt = Annotated[
    float,
    typer.Option(
        "--connect-timeout",
        envvar="AGENT_RUNTIME_CONNECT_TIMEOUT",
        min=0.1,
        max=3600,
        help="Seconds to retry a PostgreSQL server that refuses the connection.",
    ),
]

_out = out
_err = err


class _Settings:
    """Options of the root command, read by every subcommand."""

    verbose = False


@app.callback()
def _root(
    verbose: Annotated[
        bool,
        typer.Option(
            "--verbose",
            "-v",
            envvar="AGENT_RUNTIME_VERBOSE",
            help="On an error, also print its type, fields and traceback.",
        ),
    ] = False,
) -> None:
    """Durable agent runtime: serve chat, run tasks, inspect runs, manage stores."""
    _Settings.verbose = verbose


def exit_code(exc: BaseException) -> int:
    """2 for a wrong option, URL, setting or argument; 1 for everything else that failed."""
    wrong_input = (ConfigurationError, DurableValueError, ValidationError, InvalidArgumentError)
    return 2 if isinstance(exc, wrong_input) else 1


def _error_line(message: str) -> None:
    _err.print(Text.assemble(("error:", "red"), " ", one_line(message)))


def _fail(message: str, code: int, exc: BaseException | None = None) -> typer.Exit:
    """Print `error: <message>` as one line (with `-v`, the details of `exc` below it) and
    return the exit to raise."""
    _error_line(message)
    if exc is not None and _Settings.verbose:
        for line in error_details(exc):
            _err.print(Text(line, style="dim"))
    return typer.Exit(code)


def _fail_on(exc: AgentRuntimeError) -> typer.Exit:
    return _fail(exc.message, exit_code(exc), exc)


def _run(coro: Coroutine[Any, Any, T]) -> T:
    """`asyncio.run(coro)`; a typed error becomes one line and its exit code."""
    try:
        return asyncio.run(coro)
    except AgentRuntimeError as exc:
        raise _fail_on(exc) from None


def _with_store(
    url: str,
    fn: Callable[[DurableRunStore], Awaitable[T]],
    *,
    create: bool = False,
    connect_timeout_s: float = DEFAULT_CONNECT_TIMEOUT_S,
) -> T:
    """Open the store, run `fn`, close it; typed errors become a message and an exit code.
    Only `migrate` creates a store: reading a mistyped path is an error, not a new file."""

    async def go() -> T:
        store = await open_store(url, create=create, connect_timeout_s=connect_timeout_s)
        try:
            return await fn(store)
        finally:
            await store.close()

    return _run(go())


def _display_url(url: str) -> str:
    """The store URL with any password masked."""
    url = re.sub(r"(://[^:/@]+:)[^@]*@", r"\1***@", url)
    return re.sub(r"(?i)(password=)[^&\s]*", r"\1***", url)


def _emit_json(data: Any) -> None:
    emit_json(data)


def _ts(value: Any) -> str:
    return timestamp(value)


def _status(status: str) -> Text:
    return status_text(status)


async def _stream_length(store: DurableRunStore, run_id: str) -> int:
    return await store.stream_length(run_id)


class _FirstToken:
    """A transient `waiting for the first token…` status on stderr, on a terminal only, from
    the start of a command until it prints its first output."""

    def __init__(self, enabled: bool) -> None:
        self._status: Status | None = None
        if enabled and _err.is_terminal and not _err.is_dumb_terminal:
            self._status = _err.status(Text("waiting for the first token…"), spinner="dots")
            self._status.start()

    def done(self) -> None:
        """Clear the status line (idempotent)."""
        status, self._status = self._status, None
        if status is not None:
            status.stop()


# -- runs ---------------------------------------------------------------------------------------


@runs_app.command("ls")
def runs_ls(
    store: StoreOpt = DEFAULT_STORE_URL,
    status: Annotated[
        str | None, typer.Option(help="Only runs with this status (running, completed, ...).")
    ] = None,
    limit: Annotated[int, typer.Option(min=1, help="At most this many runs.")] = 50,
    connect_timeout: ConnectTimeoutOpt = DEFAULT_CONNECT_TIMEOUT_S,
    as_json: JsonOpt = False,
) -> None:
    """List runs, newest first."""

    async def go(s: DurableRunStore) -> list[tuple[RunRecord, int]]:
        runs = await s.list_runs(limit=limit, status=status)  # type: ignore[arg-type]
        return [(r, await _stream_length(s, r.run_id)) for r in runs]

    rows = _with_store(store, go, connect_timeout_s=connect_timeout)
    if as_json:
        _emit_json([{**r.to_dict(), "streamLength": n} for r, n in rows])
        return
    where = _display_url(store)
    if not rows:
        _out.print(Text(f"no runs in {where}"))
        return
    _out.print(Text(f"runs in {where}", style="bold"))
    _out.print(runs_table(rows, _out.width))


@runs_app.command("show")
def runs_show(
    run_id: Annotated[str, typer.Argument(help="The run id.")],
    store: StoreOpt = DEFAULT_STORE_URL,
    connect_timeout: ConnectTimeoutOpt = DEFAULT_CONNECT_TIMEOUT_S,
    as_json: JsonOpt = False,
) -> None:
    """Show a run: status, lease, outcome, and every step with its attempts."""

    async def go(s: DurableRunStore) -> tuple[RunRecord, list[Any], int]:
        run = await s.load_run(run_id)
        if run is None:
            raise DurableRunNotFoundError(f"run {run_id!r} does not exist", run_id=run_id)
        return run, await s.load_steps(run_id), await _stream_length(s, run_id)

    run, steps, length = _with_store(store, go, connect_timeout_s=connect_timeout)
    if as_json:
        _emit_json(
            {"run": run.to_dict(), "steps": [s.to_dict() for s in steps], "streamLength": length}
        )
        return
    _out.print(run_details(run, length))
    if steps:
        _out.print()
        _out.print(steps_table(steps))


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
    connect_timeout: ConnectTimeoutOpt = DEFAULT_CONNECT_TIMEOUT_S,
    as_json: JsonOpt = False,
) -> None:
    """Print a run's stream log from a cursor, one event a line (`seq  event id  payload`);
    `--json` prints one JSON object per line. An unknown run exits 1."""

    async def go(s: DurableRunStore) -> None:
        if await s.load_run(run_id) is None:
            raise DurableRunNotFoundError(f"run {run_id!r} does not exist", run_id=run_id)
        cursor = after
        printed = 0
        while True:
            want = None if limit is None else limit - printed
            events = await s.read_stream_events(run_id, after_seq=cursor, limit=want)
            for ev in events:
                if as_json:
                    _emit_json(ev.to_dict())
                else:
                    payload = orjson.dumps(ev.payload).decode()
                    line = Text.assemble((f"{ev.seq:>6}", "dim"), f"  {ev.event_id}  {payload}")
                    _out.print(line, soft_wrap=True)  # one line, however long: never cut
                cursor = ev.seq
            printed += len(events)
            if not follow or (limit is not None and printed >= limit):
                return
            if not events:
                run = await s.load_run(run_id)
                if run is None:  # the store went away under us: nothing more will come
                    raise DurableRunNotFoundError(
                        f"run {run_id!r} does not exist any more in this store", run_id=run_id
                    )
                if run.status != "running":
                    rest = await s.read_stream_events(run_id, after_seq=cursor, limit=1)
                    if not rest:
                        return
                await asyncio.sleep(poll_ms / 1000)

    _with_store(store, go, connect_timeout_s=connect_timeout)


@runs_app.command("prune")
def runs_prune(
    older_than: Annotated[
        str, typer.Option("--older-than", help="Prune runs idle longer than this (30d, 12h, 90m).")
    ],
    store: StoreOpt = DEFAULT_STORE_URL,
    prefix: Annotated[str, typer.Option(help="Only runs whose id starts with this.")] = "",
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="List what would be pruned; delete nothing.")
    ] = False,
    connect_timeout: ConnectTimeoutOpt = DEFAULT_CONNECT_TIMEOUT_S,
    as_json: JsonOpt = False,
) -> None:
    """Delete runs (with their steps, events and stream log) whose last update is older than
    `--older-than` and that no worker holds a live lease on."""
    from .retention import PruneResult, parse_duration, prune_runs

    try:
        age = parse_duration(older_than)
    except AgentRuntimeError as exc:
        raise _fail(f"--older-than {exc.message}", 2, exc) from None

    async def go(s: DurableRunStore) -> PruneResult:
        return await prune_runs(s, older_than=age, prefix=prefix, dry_run=dry_run)

    result = _with_store(store, go, connect_timeout_s=connect_timeout)
    if as_json:
        _emit_json(result.to_dict())
        return
    verb = "would prune" if dry_run else "pruned"
    _out.print(Text(f"{verb} {result.count} runs idle since before {result.cutoff.isoformat()}"))


# -- stores -------------------------------------------------------------------------------------


@app.command("migrate")
def migrate(
    store: StoreOpt = DEFAULT_STORE_URL,
    connect_timeout: ConnectTimeoutOpt = DEFAULT_CONNECT_TIMEOUT_S,
    as_json: JsonOpt = False,
) -> None:
    """Create the store or bring its schema up to date (safe to run from several hosts)."""

    async def go(s: DurableRunStore) -> int:
        version = getattr(s, "schema_version", None)
        if not callable(version):
            return 0
        result = version()
        if asyncio.iscoroutine(result):
            result = await result
        return int(result)

    version = _with_store(store, go, create=True, connect_timeout_s=connect_timeout)
    if as_json:
        _emit_json({"store": _display_url(store), "schema_version": version})
    else:
        _out.print(Text(f"{_display_url(store)}: schema version {version}"))


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
    api_keys_file: Annotated[
        str | None,
        typer.Option(
            "--api-keys-file",
            help="API keys, one TOKEN=TENANT:USER a line (with AGENT_RUNTIME_API_KEYS).",
        ),
    ] = None,
    allowed_origins: Annotated[
        str, typer.Option(help="Other origins whose pages may call the API (comma-separated).")
    ] = "",
    allowed_hosts: Annotated[
        str,
        typer.Option(help="Host names besides the bound address (comma-separated, *.domain)."),
    ] = "",
    models: Annotated[
        str,
        typer.Option(
            help="Models clients may pick (comma-separated; default: the configured one)."
        ),
    ] = "",
    allow_client_system: Annotated[
        bool, typer.Option(help="Accept system messages from clients.")
    ] = False,
    store_raw: Annotated[
        bool,
        typer.Option(
            help="Store turn input and answers unscrubbed (clients still get them scrubbed)."
        ),
    ] = False,
    max_body: Annotated[str, typer.Option(help="Largest request body (413 beyond).")] = "1MiB",
    max_message_chars: Annotated[
        int, typer.Option(min=1, help="Longest message in a request (413 beyond).")
    ] = 100_000,
    max_turns_per_tenant: Annotated[
        int, typer.Option(min=1, help="Turns a tenant may run at once (429 beyond).")
    ] = 8,
    quota: Annotated[
        str, typer.Option(help="Storage per tenant (e.g. 256MiB; none: no quota).")
    ] = "256MiB",
    retention: Annotated[
        str, typer.Option(help="Prune runs idle longer than this (e.g. 30d; none: keep).")
    ] = "none",
    header_timeout: Annotated[
        float, typer.Option(min=0.1, help="Seconds a client has to send its request headers.")
    ] = 10.0,
    body_timeout: Annotated[
        float, typer.Option(min=0.1, help="Seconds a client has to send its request body.")
    ] = 15.0,
    max_connections: Annotated[
        int | None,
        typer.Option(min=1, help="Open connections at most (default: from the fd limit)."),
    ] = None,
    log_format: Annotated[
        str, typer.Option(help="Log lines as text or json (one line per request).")
    ] = "text",
) -> None:
    """Serve the chat API and page (backend: OPENAI_BASE_URL's endpoint, else echo).

    Clients authenticate with `Authorization: Bearer <key>`; without any key the server binds
    loopback only and runs unauthenticated."""
    os.environ["AGENT_RUNTIME_ENGINE"] = engine  # read with the backend settings
    try:
        from .retention import parse_byte_size, parse_duration
        from .server import ServerSettings
        from .server._serve import ServeOptions, run_server
    except ImportError as exc:  # the `server` extra is not installed
        raise _fail(
            f"serve needs the server extra (pip install 'durable-agent-runtime[server]'): {exc}", 2
        ) from None

    def listed(value: str) -> tuple[str, ...]:
        return tuple(v.strip() for v in value.split(",") if v.strip())

    try:
        if log_format not in ("text", "json"):
            raise ConfigurationError("--log-format must be text or json")
        settings = ServerSettings(
            allowed_origins=listed(allowed_origins),
            allowed_hosts=listed(allowed_hosts),
            models=listed(models) or None,
            allow_client_system=allow_client_system,
            store_raw=store_raw,
            max_body_bytes=parse_byte_size(max_body),
            max_message_chars=max_message_chars,
            max_turns_per_tenant=max_turns_per_tenant,
            quota_bytes=None if quota.strip().lower() == "none" else parse_byte_size(quota),
            retention=None if retention.strip().lower() == "none" else parse_duration(retention),
            body_timeout_s=body_timeout,
            log_format="json" if log_format == "json" else "text",
        )
    except AgentRuntimeError as exc:
        raise _fail(exc.message, 2, exc) from None
    options = ServeOptions(
        host=host,
        port=port,
        store_url=store,
        store_label=_display_url(store),
        api_keys_file=api_keys_file,
        settings=settings,
        header_timeout_s=header_timeout,
        max_connections=max_connections,
    )
    code = run_server(options)
    if code:
        raise typer.Exit(code)


class _TurnPrinter:
    """Prints a chat turn's lines as they arrive: the text on stdout, an error as one line on
    stderr (`--json`: every line as it came); `ok` once the turn completed."""

    def __init__(self, as_json: bool, waiting: _FirstToken) -> None:
        self.as_json = as_json
        self.waiting = waiting
        self.ok = False
        self._texted = False

    def __call__(self, event: dict[str, Any]) -> None:
        kind = event.get("type")
        self.ok = self.ok or kind == "session.run.completed"
        if self.as_json:
            _emit_json(event)
            return
        data = event.get("data")
        body: dict[str, Any] = data if isinstance(data, dict) else event
        text: Any = None
        if kind == "text_delta":
            text = event.get("text", body.get("text"))
        elif kind in ("turn.replayed", "result") and not self._texted:  # a replay: the whole text
            text = body.get("text", body.get("finalText"))
        elif kind == "error":
            self.waiting.done()
            _error_line(f"{body.get('code') or 'error'}: {body.get('message')}")
        if isinstance(text, str) and text:
            self.waiting.done()
            self._texted = True
            sys.stdout.write(text)
            sys.stdout.flush()


def _server_error(status: int, body: bytes) -> AgentRuntimeError:
    """A non-200 answer of the chat server as a typed error: 2 (our request or `--url` is
    wrong) for 400, 404, 405, 413 and 422, else 1; the message is the server's own."""
    detail = body.decode(errors="replace")
    with contextlib.suppress(ValueError, TypeError, AttributeError):
        detail = str(orjson.loads(body)["error"]["message"])
    message = f"server answered {status}: {one_line(detail)[:500]}"
    if status in (400, 404, 405, 413, 422):
        return ConfigurationError(message)
    return ChatTurnError(message, status)


def _server_headers() -> dict[str, str]:
    """`Authorization: Bearer $AGENT_RUNTIME_API_KEY` for a server that wants a key."""
    key = os.environ.get("AGENT_RUNTIME_API_KEY", "").strip()
    return {"authorization": f"Bearer {key}"} if key else {}


async def _chat_remote(url: str, body: dict[str, Any], show: _TurnPrinter) -> None:
    import httpx2

    try:
        async with (
            httpx2.AsyncClient(
                timeout=httpx2.Timeout(30.0, read=None), headers=_server_headers()
            ) as client,
            client.stream("POST", url.rstrip("/") + "/api/chat", json=body) as response,
        ):
            if response.status_code != 200:
                raise _server_error(response.status_code, await response.aread())
            async for line in response.aiter_lines():
                if line.strip():
                    show(orjson.loads(line))
    except httpx2.HTTPError as exc:
        raise StoreUnavailableError(f"cannot reach {url}: {exc}") from None


async def _chat_local(
    store_url: str, body: dict[str, Any], show: _TurnPrinter, connect_timeout_s: float
) -> None:
    from .server import TurnRunner, backend_from_env, parse_chat_request

    request = parse_chat_request(orjson.dumps(body))
    config = backend_from_env()
    try:
        store = await open_store(store_url, connect_timeout_s=connect_timeout_s)
        try:
            runner = TurnRunner(store, config.backend, backend_for_model=config.backend_for)
            _run_id, turn = await runner.run_turn(request)
            async for line in turn.body:
                show(orjson.loads(line))
        finally:
            await store.close()
    finally:
        await config.aclose()


@app.command("chat")
def chat(
    text: Annotated[str, typer.Argument(help="The user message.")],
    url: UrlOpt = None,
    session: Annotated[str | None, typer.Option(help="Session id (default: a new one).")] = None,
    turn: Annotated[int, typer.Option(min=0, help="Turn index within the session.")] = 0,
    model: Annotated[str | None, typer.Option(help="Model id for this turn.")] = None,
    store: StoreOpt = DEFAULT_STORE_URL,
    connect_timeout: ConnectTimeoutOpt = DEFAULT_CONNECT_TIMEOUT_S,
    as_json: JsonOpt = False,
) -> None:
    """Run one chat turn and print its text as it streams (`--json`: every event). On a
    terminal a status line shows until the first token arrives. Exits 1 unless the turn
    completed."""
    import uuid

    body: dict[str, Any] = {
        "session_id": session or f"cli-{uuid.uuid4().hex[:12]}",
        "turn_index": turn,
        "text": text,
    }
    if model is not None:
        body["model"] = model
    waiting = _FirstToken(not as_json)
    show = _TurnPrinter(as_json, waiting)
    try:
        _run(
            _chat_remote(url, body, show)
            if url
            else _chat_local(store, body, show, connect_timeout)
        )
    finally:
        waiting.done()
    if not as_json:
        sys.stdout.write("\n")
    if not show.ok:
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

    waiting = _FirstToken(not as_json)

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
                    waiting.done()
                    sys.stdout.write(event.text)
                    sys.stdout.flush()
                elif isinstance(event, BackendErrorEvent):
                    waiting.done()
                    _error_line(f"{event.backend}: {event.message}")
        finally:
            waiting.done()
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.remove_signal_handler(signal.SIGINT)
            await config.aclose()
        return tally, time.monotonic() - started

    tally, duration_s = _run(go())
    if not as_json:
        sys.stdout.write("\n")
        sys.stdout.flush()
        if tally.status == "blocked":
            _err.print(Text(tally.reason))
        _err.print(Text(tally.summary(duration_s)))
    if tally.status != "completed":
        raise typer.Exit(1)


@app.command("models")
def models(url: UrlOpt = None, as_json: JsonOpt = False) -> None:
    """List the models of the configured endpoint (OPENAI_BASE_URL), or of a server's --url."""

    async def go() -> list[str]:
        if url:
            import httpx2

            try:
                async with httpx2.AsyncClient(timeout=10.0, headers=_server_headers()) as client:
                    response = await client.get(url.rstrip("/") + "/api/models")
            except httpx2.HTTPError as exc:
                raise StoreUnavailableError(f"cannot reach {url}: {exc}") from None
            if response.status_code != 200:
                raise _server_error(response.status_code, response.content)
            return [str(m["id"]) for m in response.json()["data"]]
        from .models import get_models
        from .server import backend_from_env

        config = backend_from_env()
        try:
            if config.base_url is None:
                return [config.model]
            return [
                str(m.get("id"))
                for m in await get_models(config.base_url, api_key=config.api_key)
                if m.get("id")
            ]
        finally:
            await config.aclose()

    ids = _run(go())
    if as_json:
        _emit_json(ids)
    else:
        for model_id in ids:
            _out.print(Text(model_id))


def main() -> None:
    """Console-script entry point: a failure that is not a typed error (a bug) is still one
    line and exit 1; `-v` prints its traceback."""
    try:
        app()
    except SystemExit as exc:
        _exit(exc.code)
    except Exception as exc:
        _fail(f"internal error: {type(exc).__name__}: {exc}", 1, exc)
        if not _Settings.verbose:
            _err.print(Text("(agent-runtime -v ... prints the traceback)", style="dim"))
        _exit(1)
    _exit(0)


_TEMPORAL_BRIDGE = "temporalio.bridge.temporal_sdk_bridge"


def _exit(code: object) -> NoReturn:
    """Exit with `code` as `sys.exit` would. Once the Temporal SDK's native bridge is loaded,
    its Tokio threads can call into Python while the interpreter finalizes and abort or crash
    the process after the command succeeded (temporalio/sdk-python#300), so then the exit
    handlers run, the streams are flushed and the process ends without finalization."""
    if _TEMPORAL_BRIDGE not in sys.modules:
        raise SystemExit(code)
    if code is None:
        status = 0
    elif isinstance(code, int):
        status = code
    else:
        with contextlib.suppress(Exception):
            sys.stderr.write(f"{code}\n")
        status = 1
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    os._exit(status)


if __name__ == "__main__":
    main()
