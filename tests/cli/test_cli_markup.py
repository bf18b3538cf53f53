"""Model and stored text printed by the CLI is never read as Rich markup or emoji codes: runs
whose ids, intents, outcomes, step results, step errors and stream payloads hold `[/red]` (a
closing tag Rich refuses), `[bold]x[/bold]` (a style Rich would apply), `[echo]` (a tag Rich
would silently drop) and `:smile:` print exactly the stored text, on `runs ls`, `runs show`,
`runs tail`, `chat` and in error lines."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from agent_runtime.durable import DurableContext, DurableRunManifest, open_store, run_durable
from tests.cli.clirun import cli

TEXT = "[/red] [bold]x[/bold] [echo] :smile:"
RUN = "[/red][bold]x[/bold][echo]"
FAILED = "failed-[echo]"
EVENT_ID = "turn:[echo]"
PAYLOAD = {"type": "text_delta", "text": TEXT}


async def _populate(url: str) -> None:
    store = await open_store(url)
    try:
        manifest = DurableRunManifest("proj", {"id": "t", "intent": "answer"}, {"q": 1})

        async def task(ctx: DurableContext) -> str:
            await store.append_stream_events(ctx.run_id, [(EVENT_ID, PAYLOAD)])
            await ctx.step(f"fetch {TEXT}", lambda: TEXT)
            await ctx.step("[/step]", lambda: {"text": TEXT}, kind="llm")
            return TEXT

        async def failing(ctx: DurableContext) -> str:
            def boom() -> str:
                raise RuntimeError(TEXT)

            return str(await ctx.step("boom", boom, kind="tool"))

        await run_durable(run_id=RUN, manifest=manifest, store=store, task_fn=task)
        with pytest.raises(RuntimeError):
            await run_durable(run_id=FAILED, manifest=manifest, store=store, task_fn=failing)
    finally:
        await store.close()


@pytest.fixture(scope="module")
def url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    path = tmp_path_factory.mktemp("markup") / "runs.db"
    store_url = f"sqlite:///{path}"
    asyncio.run(_populate(store_url))
    yield store_url


def _value(stdout: str, key: str) -> str:
    """The value of one `key  value` line of `runs show`."""
    for line in stdout.splitlines():
        m = re.match(rf"^{re.escape(key)}\s{{2,}}(.*?)\s*$", line)
        if m:
            return m[1]
    raise AssertionError(f"no {key!r} line in:\n{stdout}")


def test_ls_prints_the_run_id_as_stored(url: str) -> None:
    out = cli("runs", "ls", "--store", url)
    assert out.returncode == 0, out.stderr
    rows = [line.split()[0] for line in out.stdout.splitlines()[3:]]
    assert set(rows) == {RUN, FAILED}


def test_show_prints_id_outcome_intent_result_and_error_as_stored(url: str) -> None:
    out = cli("runs", "show", RUN, "--store", url)
    assert out.returncode == 0, out.stderr
    assert _value(out.stdout, "run") == RUN
    assert _value(out.stdout, "outcome") == TEXT
    step0 = next(line for line in out.stdout.splitlines() if line.startswith("0 "))
    assert f"fetch {TEXT}" in step0 and step0.rstrip().endswith(f"   {TEXT}")
    step1 = next(line for line in out.stdout.splitlines() if line.startswith("1 "))
    assert "[/step]" in step1 and step1.rstrip().endswith(
        json.dumps({"text": TEXT}, separators=(",", ":"))
    )
    failed = cli("runs", "show", FAILED, "--store", url)
    assert failed.returncode == 0, failed.stderr
    assert failed.stdout.count(f"RuntimeError: {TEXT}") == 2  # the step's error and the outcome's


def test_tail_prints_each_event_as_one_exact_line(url: str) -> None:
    out = cli("runs", "tail", RUN, "--store", url)
    assert out.returncode == 0, out.stderr
    payload = json.dumps(PAYLOAD, separators=(",", ":"), ensure_ascii=False)
    assert out.stdout == f"     0  {EVENT_ID}  {payload}\n"


def test_chat_prints_the_model_text_as_it_came(tmp_path: Path) -> None:
    out = cli("chat", TEXT, "--store", f"sqlite:///{tmp_path}/runs.db")
    assert out.returncode == 0, out.stderr
    assert out.stdout == f"echo: {TEXT}\n"


def test_an_error_line_prints_the_id_as_given(url: str) -> None:
    out = cli("runs", "show", "[/red]", "--store", url)
    assert out.returncode == 1
    assert out.stderr == "error: run '[/red]' does not exist\n"
