"""Every command exits as the README's table says: 0 done; 1 what was asked failed (an unknown
run, an unreachable store or server, a task or turn that did not complete); 2 a wrong command
line or setting. A failure is one `error: ...` line on stderr, never a traceback; `-v` adds the
error's type, fields and traceback below that line."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from agent_runtime.durable import DurableContext, DurableRunManifest, open_store, run_durable
from tests.cli.clirun import clean_env, cli
from tests.katan import running_katan

MODEL = "katan-exit"


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def _populate(url: str) -> None:
    store = await open_store(url)
    try:
        manifest = DurableRunManifest("proj", {"id": "t", "intent": "answer"}, {})

        async def task(ctx: DurableContext) -> str:
            await store.append_stream_event(ctx.run_id, "ev-0", {"text": "hi"})
            return str(await ctx.step("answer", lambda: "hi"))

        await run_durable(run_id="done", manifest=manifest, store=store, task_fn=task)
    finally:
        await store.close()


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A folder whose default store (./.agent-runtime/runs.db) holds the run `done`."""
    root = tmp_path_factory.mktemp("exit-codes")
    (root / ".agent-runtime").mkdir()
    asyncio.run(_populate(f"sqlite:///{root}/.agent-runtime/runs.db"))
    yield root


@pytest.fixture(scope="module")
def refusing(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """An environment whose model endpoint refuses the key: every call fails (a 401)."""
    tmp = tmp_path_factory.mktemp("katan-refusing")
    flags = ("--validate-keys", "--api-keys", "openai=the-right-key")
    with running_katan(tmp, *flags, name=MODEL) as base:
        yield clean_env(
            OPENAI_BASE_URL=f"{base}/v1", OPENAI_API_KEY="the-wrong-key", OPENAI_MODEL=MODEL
        )


CLOSED = _closed_port()
BAD_ENDPOINT = clean_env(OPENAI_BASE_URL="not a url")
PG_CLOSED = f"postgresql://postgres@127.0.0.1:{CLOSED}/test"

CASES: list[tuple[str, tuple[str, ...], int, dict[str, str] | None]] = [
    ("runs ls", ("runs", "ls"), 0, None),
    ("runs ls: no store there", ("runs", "ls", "--store", "sqlite:///nowhere/runs.db"), 1, None),
    ("runs ls: unknown scheme", ("runs", "ls", "--store", "mongodb://x"), 2, None),
    ("runs ls: unknown status", ("runs", "ls", "--status", "sleeping"), 2, None),
    ("runs ls: unknown option", ("runs", "ls", "--colour"), 2, None),
    ("runs show", ("runs", "show", "done"), 0, None),
    ("runs show: unknown run", ("runs", "show", "nope"), 1, None),
    ("runs show: no run id", ("runs", "show"), 2, None),
    ("runs tail", ("runs", "tail", "done"), 0, None),
    ("runs tail: unknown run", ("runs", "tail", "UNKNOWN"), 1, None),
    ("runs tail -f: unknown run", ("runs", "tail", "UNKNOWN", "--follow"), 1, None),
    ("runs tail: bad cursor", ("runs", "tail", "done", "--after", "x"), 2, None),
    ("migrate", ("migrate", "--store", "sqlite:///fresh/runs.db"), 0, None),
    (
        "migrate: unreachable",
        ("migrate", "--store", PG_CLOSED, "--connect-timeout", "0.2"),
        1,
        None,
    ),
    ("migrate: bad timeout", ("migrate", "--connect-timeout", "0"), 2, None),
    ("chat", ("chat", "hello"), 0, None),
    ("chat: unreachable server", ("chat", "hello", "--url", f"http://127.0.0.1:{CLOSED}"), 1, None),
    ("chat: bad endpoint setting", ("chat", "hello"), 2, BAD_ENDPOINT),
    ("chat: negative turn", ("chat", "hello", "--turn", "-1"), 2, None),
    ("run", ("run", "hello"), 0, None),
    ("run: bad endpoint setting", ("run", "hello"), 2, BAD_ENDPOINT),
    ("models", ("models",), 0, None),
    ("models: unreachable server", ("models", "--url", f"http://127.0.0.1:{CLOSED}"), 1, None),
    ("models: bad endpoint setting", ("models",), 2, BAD_ENDPOINT),
    ("serve: unknown scheme", ("serve", "--store", "mongodb://x", "--port", "0"), 2, None),
    (
        "serve: bad store option",
        ("serve", "--store", "sqlite:///x.db?durability=maybe", "--port", "0"),
        2,
        None,
    ),
    ("no command", (), 2, None),
    ("unknown command", ("launch",), 2, None),
]


@pytest.mark.parametrize(("args", "code", "env"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_exit_code(
    home: Path, args: tuple[str, ...], code: int, env: dict[str, str] | None
) -> None:
    out = cli(*args, cwd=home, env=env)
    assert out.returncode == code, out.stderr
    assert "Traceback" not in out.stderr
    if code == 1:
        errors = [line for line in out.stderr.splitlines() if line.startswith("error: ")]
        assert len(errors) == 1, out.stderr


@pytest.mark.parametrize("command", ["chat", "run"])
def test_a_turn_or_task_that_fails_exits_1(
    home: Path, refusing: dict[str, str], command: str
) -> None:
    out = cli(command, "hello", cwd=home, env=refusing)
    assert out.returncode == 1, out.stderr
    assert "Traceback" not in out.stderr and "401" in out.stderr


def test_an_error_is_one_line_and_verbose_adds_the_details(home: Path) -> None:
    plain = cli("runs", "show", "nope", cwd=home)
    assert plain.stderr == "error: run 'nope' does not exist\n"
    verbose = cli("-v", "runs", "show", "nope", cwd=home)
    assert verbose.returncode == 1
    lines = verbose.stderr.splitlines()
    assert lines[0] == "error: run 'nope' does not exist"
    assert lines[1] == "DurableRunNotFoundError (code='run_not_found', run_id='nope')"
    assert lines[2] == "Traceback (most recent call last):"
    assert lines[-1] == "agent_runtime.errors.DurableRunNotFoundError: run 'nope' does not exist"
    by_env = cli("runs", "show", "nope", cwd=home, env=clean_env(AGENT_RUNTIME_VERBOSE="1"))
    assert by_env.stderr == verbose.stderr
