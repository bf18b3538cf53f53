"""Model text printed by the CLI is never read as Rich markup: a stream log or an outcome
holding `[/oops]` (which Rich would refuse as a closing tag) or `[bold]` prints as it is."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

from agent_runtime.durable import DurableContext, DurableRunManifest, open_store, run_durable

CLI = [sys.executable, "-m", "agent_runtime.cli"]
TEXT = "[/oops] and [bold]not bold[/bold]"


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=60, check=False)


async def populate(url: str) -> None:
    store = await open_store(url)
    try:
        manifest = DurableRunManifest("proj", {"id": "t", "intent": "answer"}, {"q": 1})

        async def task(ctx: DurableContext) -> str:
            await store.append_stream_events(
                ctx.run_id, [("turn:0", {"type": "text_delta", "text": TEXT})]
            )
            return str(await ctx.step("[/step]", lambda: TEXT, kind="llm"))

        await run_durable(run_id="[/run]", manifest=manifest, store=store, task_fn=task)
    finally:
        await store.close()


def test_tail_show_and_ls_print_model_text_verbatim(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/runs.db"
    asyncio.run(populate(url))
    tail = cli("runs", "tail", "[/run]", "--store", url)
    assert tail.returncode == 0, tail.stderr
    assert TEXT in tail.stdout
    show = cli("runs", "show", "[/run]", "--store", url)
    assert show.returncode == 0, show.stderr
    assert "[/oops]" in show.stdout and "[/step]" in show.stdout and "[/run]" in show.stdout
    listed = cli("runs", "ls", "--store", url)
    assert listed.returncode == 0, listed.stderr
    assert "[/run]" in listed.stdout


def test_an_error_message_is_not_markup(tmp_path: Path) -> None:
    out = cli("runs", "show", "[/nope]", "--store", f"sqlite:///{tmp_path}/runs.db")
    assert out.returncode != 0
    assert "Traceback" not in out.stderr and "MarkupError" not in out.stderr
