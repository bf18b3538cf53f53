"""Human output fits an 80-column terminal (`COLUMNS=80`): long ids lose their middle to an
ellipsis, free text wraps without losing a word, JSON stays on one line cut with an ellipsis;
`runs tail` prints one line per event however long. `--json` and error lines are never
wrapped, even at 20 columns."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from agent_runtime.durable import DurableContext, DurableRunManifest, open_store, run_durable
from tests.cli.clirun import cli

LONG_ID = "chat:" + "session-" * 8 + "tail:7"
SHORT_ID = "short-run"
WORDS = " ".join(f"word{i}" for i in range(60))
BIG = {"rows": [{"name": f"row {i}", "value": i} for i in range(30)]}


async def _populate(url: str) -> None:
    store = await open_store(url)
    try:
        manifest = DurableRunManifest("proj", {"id": "t", "intent": "answer"}, {"q": 1})

        async def task(ctx: DurableContext) -> str:
            await store.append_stream_events(ctx.run_id, [("turn:0", {"text": WORDS})])
            await ctx.step("a step whose intent is a long sentence that has to wrap", lambda: BIG)
            return str(await ctx.step("draft", lambda: WORDS, kind="llm"))

        await run_durable(run_id=LONG_ID, manifest=manifest, store=store, task_fn=task)
        await run_durable(run_id=SHORT_ID, manifest=manifest, store=store, task_fn=task)
    finally:
        await store.close()


@pytest.fixture(scope="module")
def url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    store_url = f"sqlite:///{tmp_path_factory.mktemp('width')}/runs.db"
    asyncio.run(_populate(store_url))
    yield store_url


def _fits(text: str, width: int = 80) -> None:
    too_wide = [line for line in text.splitlines() if len(line) > width]
    assert not too_wide, "\n".join(too_wide)


def test_ls_fits_80_columns_and_truncates_the_id_in_the_middle(url: str) -> None:
    out = cli("runs", "ls", "--store", url, columns=80)
    assert out.returncode == 0, out.stderr
    _fits(out.stdout)
    rows = {line.split()[0]: line for line in out.stdout.splitlines()[3:]}
    assert SHORT_ID in rows
    (cut,) = [cell for cell in rows if cell != SHORT_ID]
    head, tail = cut.split("…")
    assert LONG_ID.startswith(head) and LONG_ID.endswith(tail) and tail.endswith(":7")
    assert len(head) + len(tail) + 1 < len(LONG_ID)
    assert all("completed" in line for line in rows.values())


def test_show_fits_80_columns_wraps_text_and_keeps_json_on_one_line(url: str) -> None:
    out = cli("runs", "show", LONG_ID, "--store", url, columns=80)
    assert out.returncode == 0, out.stderr
    _fits(out.stdout)
    words = out.stdout.split()
    assert words.count("word59") == 1  # the outcome, whole; the step result is cut in the table
    assert any(w.endswith("…") and w.startswith("word") for w in words)
    json_lines = [line for line in out.stdout.splitlines() if '{"rows":' in line]
    assert len(json_lines) == 1 and json_lines[0].rstrip().endswith("…")
    assert "".join(out.stdout.split()).count(LONG_ID) == 1  # the full id, folded if need be


def test_show_keeps_every_word_of_the_wrapped_outcome_in_order(url: str) -> None:
    out = cli("runs", "show", SHORT_ID, "--store", url, columns=80)
    assert out.returncode == 0, out.stderr
    outcome_and_after = out.stdout.split("outcome", 1)[1].split("\n\n", 1)[0]
    assert outcome_and_after.split() == WORDS.split()


def test_tail_prints_one_unwrapped_line_per_event(url: str) -> None:
    out = cli("runs", "tail", LONG_ID, "--store", url, columns=80)
    assert out.returncode == 0, out.stderr
    (line,) = out.stdout.splitlines()
    assert line.endswith(json.dumps({"text": WORDS}, separators=(",", ":"))) and len(line) > 80


@pytest.mark.parametrize(
    "args",
    [
        ("runs", "ls", "--json"),
        ("runs", "show", LONG_ID, "--json"),
        ("runs", "tail", LONG_ID, "--json"),
        ("migrate", "--json"),
    ],
    ids=lambda a: " ".join(a[:2]),
)
def test_json_is_compact_and_never_wrapped(url: str, args: tuple[str, ...]) -> None:
    out = cli(*args, "--store", url, columns=20)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert len(lines) == 1, out.stdout
    doc = json.loads(lines[0])
    assert lines[0] == json.dumps(doc, separators=(",", ":"), ensure_ascii=False)


def test_an_error_is_one_line_even_at_20_columns() -> None:
    url = "mongodb://a-very-long-host-name.example.internal:27017/with/a/long/path"
    out = cli("runs", "ls", "--store", url, columns=20)
    assert out.returncode == 2
    assert out.stderr.count("\n") == 1 and out.stderr.startswith("error: unknown store URL scheme")
    assert url in out.stderr


@pytest.mark.parametrize("command", ["run", "chat"])
def test_streamed_json_is_one_compact_object_per_line(tmp_path: Path, command: str) -> None:
    text = "a message long enough to be wrapped many times over at twenty columns"
    out = cli(command, text, "--json", cwd=tmp_path, columns=20)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    docs = [json.loads(line) for line in lines]
    assert all(
        line == json.dumps(doc, separators=(",", ":"), ensure_ascii=False)
        for line, doc in zip(lines, docs, strict=True)
    )
    deltas = "".join(d.get("text", "") for d in docs if d["type"] == "text_delta")
    assert deltas == f"echo: {text}" and out.stderr == ""
