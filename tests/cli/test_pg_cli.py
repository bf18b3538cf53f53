"""The CLI against a PostgreSQL store that cannot be used, on the real server: a wrong
database or role fails at once with one error line and no retry notice; a closed port is
retried for `--connect-timeout` with one line of progress, then one error line; never a
pool warning or a traceback."""

from __future__ import annotations

import socket
from urllib.parse import urlsplit, urlunsplit

import pytest

from tests.cli.clirun import cli


def _with(
    dsn: str, *, user: str | None = None, db: str | None = None, port: int | None = None
) -> str:
    parts = urlsplit(dsn)
    netloc = f"{user or parts.username}@{parts.hostname}:{port or parts.port or 5432}"
    return urlunsplit(parts._replace(netloc=netloc, path=f"/{db}" if db else parts.path))


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.parametrize(
    ("change", "why"),
    [
        ({"db": "no_such_db_here"}, 'database "no_such_db_here" does not exist'),
        ({"user": "no_such_role_here"}, 'role "no_such_role_here" does not exist'),
    ],
    ids=["wrong database", "wrong role"],
)
@pytest.mark.parametrize("command", [("runs", "ls"), ("migrate",)], ids=" ".join)
def test_what_no_retry_fixes_is_one_error_line_at_once(
    pg_dsn: str, change: dict[str, str], why: str, command: tuple[str, ...]
) -> None:
    url = _with(pg_dsn, **change)  # type: ignore[arg-type]
    # a connect timeout longer than the test's budget: a retry would show as a timeout
    out = cli(*command, "--store", url, "--connect-timeout", "600", timeout=30)
    assert out.returncode == 1
    where = urlsplit(url)
    expected = (
        f"error: cannot connect to PostgreSQL at {where.username}@{where.hostname}:"
        f"{where.port}{where.path}: {why}\n"
    )
    assert out.stderr == expected


def test_a_closed_port_is_retried_with_one_progress_line_then_one_error(pg_dsn: str) -> None:
    port = _closed_port()
    url = _with(pg_dsn, port=port)
    out = cli("runs", "ls", "--store", url, "--connect-timeout", "0.5")
    assert out.returncode == 1
    at = f"postgres@127.0.0.1:{port}/test"
    assert out.stderr.splitlines() == [
        f"PostgreSQL at {at}: Connection refused; retrying for up to 0.5 s",
        f"error: cannot connect to PostgreSQL at {at}: Connection refused (gave up after 0.5 s)",
    ]


def test_the_connect_timeout_comes_from_the_environment_too(pg_dsn: str) -> None:
    from tests.cli.clirun import clean_env

    port = _closed_port()
    env = clean_env(AGENT_RUNTIME_CONNECT_TIMEOUT="0.3")
    out = cli("runs", "ls", "--store", _with(pg_dsn, port=port), env=env)
    assert out.returncode == 1 and "gave up after 0.3 s" in out.stderr


def test_a_password_in_the_url_is_not_printed(pg_dsn: str) -> None:
    parts = urlsplit(pg_dsn)
    url = urlunsplit(
        parts._replace(netloc=f"no_such_role_here:s3cret@{parts.hostname}:{parts.port}")
    )
    out = cli("runs", "ls", "--store", url, "--connect-timeout", "600", timeout=30)
    assert out.returncode == 1 and "s3cret" not in out.stderr + out.stdout
