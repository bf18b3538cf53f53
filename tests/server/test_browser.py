"""The chat page in real Chromium on the original's `{type, data}` lines: type, see deltas
stream in, see the turn complete, re-attach to an unfinished turn after a reload, apply
`session.run.restarted` to a turn re-run after its worker died, and show a finished turn from
the session's history after a reload (see test_page.py for the page against llm-katan)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx2
import pytest

from agent_runtime.backends import create_iterable_backend
from agent_runtime.server import create_app
from agent_runtime.types import (
    AgentBackendContext,
    AgentBackendInput,
    RuntimeStreamEvent,
    TextDeltaEvent,
    ToolCallEvent,
)
from tests.conftest import require
from tests.server.conftest import serving

CHROMIUM = Path("/usr/bin/chromium")
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
WORDS = 20


def _slow_echo(
    inp: AgentBackendInput, _ctx: AgentBackendContext
) -> AsyncIterator[RuntimeStreamEvent]:
    async def gen() -> AsyncIterator[RuntimeStreamEvent]:
        for i in range(WORDS):
            await asyncio.sleep(0.05)
            yield TextDeltaEvent(text=f"{inp.prompt}-{i} ")

    return gen()


@contextmanager
def _open_page(tmp_path: Path, backend: Any) -> Iterator[tuple[Any, str]]:
    require(CHROMIUM.exists(), "chromium is not installed at /usr/bin/chromium")
    from playwright.sync_api import sync_playwright

    app = create_app(
        store_url=f"sqlite:///{tmp_path}/runs.db",
        backend=backend,
        sweep_interval_ms=None,  # the page, not the sweeper, resumes an interrupted turn
    )
    with serving(app) as url, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        try:
            tab = browser.new_page()
            tab.set_default_timeout(15_000)
            tab.goto(url)
            yield tab, url
        finally:
            browser.close()


@pytest.fixture
def page(tmp_path: Path) -> Iterator[tuple[Any, str]]:
    with _open_page(tmp_path, create_iterable_backend(kind="slow-echo", stream=_slow_echo)) as p:
        yield p


def test_type_stream_complete_and_reattach_after_reload(page: tuple[Any, str]) -> None:
    tab, _url = page
    expected = "".join(f"hello-{i} " for i in range(WORDS)).strip()
    tab.fill("#input", "hello")
    tab.click("#send")
    assistant = tab.locator(".msg.assistant").last
    # partial text while the turn is still streaming
    tab.wait_for_function(
        "() => { const m = [...document.querySelectorAll('.msg.assistant')].pop();"
        " return m && m.dataset.state === 'streaming' && m.textContent.includes('hello-0'); }"
    )
    tab.wait_for_selector(".msg.assistant[data-state=completed]")
    assert assistant.locator(".text").inner_text().strip() == expected
    assert tab.get_attribute("#status", "data-state") == "completed"

    # second turn: reload mid-stream, the page re-attaches and finishes the same turn
    tab.fill("#input", "again")
    tab.click("#send")
    tab.wait_for_function(
        "() => [...document.querySelectorAll('.msg.assistant')].pop().textContent"
        ".includes('again-1')"
    )
    tab.reload()
    tab.wait_for_selector(".msg.assistant[data-state=completed] >> nth=1")
    texts = [t.strip() for t in tab.locator(".msg.assistant .text").all_inner_texts()]
    assert texts == [expected, "".join(f"again-{i} " for i in range(WORDS)).strip()]
    assert tab.locator(".msg.user").all_inner_texts() == ["hello", "again"]


def test_reload_after_the_worker_died_resumes_the_turn(
    page: tuple[Any, str], tmp_path: Path
) -> None:
    """The page re-attaches to a turn whose worker was SIGKILLed, learns it was interrupted,
    and asks for it again: the server re-runs it, the new backend answers differently, and
    the page drops the dead attempt's text at `session.run.restarted`: it shows the stored
    answer only."""
    from tests.server.test_crash import _kill_worker_mid_turn

    tab, url = page
    store_url = f"sqlite:///{tmp_path}/runs.db"
    _kill_worker_mid_turn(store_url, "dead")
    body = {"session_id": "dead", "turn_index": 0, "text": "go"}
    pending = {
        "text": "go",
        "turnIndex": 0,
        "sessionId": "dead",
        "executionId": "chat:dead:0",
        "body": body,
    }
    tab.evaluate(
        "(p) => { localStorage.setItem('ar.session', 'dead');"
        " localStorage.setItem('ar.pending', JSON.stringify(p)); }",
        pending,
    )
    tab.reload()
    tab.wait_for_selector(".msg.assistant:not([data-state=streaming]):not([data-state=running])")
    assert tab.get_attribute(".msg.assistant", "data-state") == "completed", tab.inner_text(
        "#messages"
    )
    expected = "".join(f"go-{i} " for i in range(WORDS)).strip()
    assert tab.locator(".msg.assistant .text").inner_text().strip() == expected
    assert tab.get_attribute(".msg.assistant", "data-attempt") == "2"
    assert tab.locator(".msg.assistant .error").count() == 0
    assert tab.evaluate("() => localStorage.getItem('ar.pending')") is None
    detail = httpx2.get(f"{url}/api/sessions/dead").json()
    assert [t["text"].strip() for t in detail["turns"]] == [expected]


def test_a_finished_turn_after_a_reload_is_not_asked_again(tmp_path: Path) -> None:
    """After a reload the page shows a finished turn from the session's history: the backend
    is not called again."""
    calls: list[str] = []

    def counting(
        inp: AgentBackendInput, ctx: AgentBackendContext
    ) -> AsyncIterator[RuntimeStreamEvent]:
        calls.append(inp.prompt)
        return _slow_echo(inp, ctx)

    backend = create_iterable_backend(kind="counting", stream=counting)
    expected = "".join(f"once-{i} " for i in range(WORDS)).strip()
    with _open_page(tmp_path, backend) as (tab, _url):
        tab.fill("#input", "once")
        tab.click("#send")
        tab.wait_for_selector(".msg.assistant[data-state=completed]")
        tab.reload()
        tab.wait_for_selector(".msg.assistant[data-state=completed]")
        assert tab.locator(".msg.assistant .text").inner_text().strip() == expected
        assert tab.locator(".msg.user").all_inner_texts() == ["once"]
    assert calls == ["once"]


def test_tool_calls_show_beside_the_answer_text(tmp_path: Path) -> None:
    async def stream(
        _inp: AgentBackendInput, _ctx: AgentBackendContext
    ) -> AsyncIterator[RuntimeStreamEvent]:
        yield ToolCallEvent(tool_name="search_docs", tool_call_id="c1", args={"q": "x"})
        yield TextDeltaEvent(text="found it")

    backend = create_iterable_backend(kind="tools", stream=stream)
    with _open_page(tmp_path, backend) as (tab, url):
        tab.fill("#input", "look it up")
        tab.click("#send")
        tab.wait_for_selector(".msg.assistant[data-state=completed]")
        assert tab.locator(".msg.assistant .tool").all_inner_texts() == ["🔧 search_docs"]
        assert tab.locator(".msg.assistant .text").inner_text() == "found it"
        sid = tab.evaluate("() => localStorage.getItem('ar.session')")
        detail = httpx2.get(f"{url}/api/sessions/{sid}").json()
    assert [t["text"] for t in detail["turns"]] == ["found it"]
