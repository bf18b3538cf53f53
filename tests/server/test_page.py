"""The chat page in real Chromium against llm-katan as the model (through a counting relay):
send with the keyboard, stream, markdown rendered and scripts in the model's output inert,
tokens and cost per turn, stop mid-turn (the upstream request is closed), reload and
re-attach, retry and edit after a failure, switch, rename and delete sessions, the API-key
prompt, and a visible state when the backend or the server is unreachable. Screenshots go
to `test-artifacts/page/`."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx2
import pytest

from agent_runtime.backends import BackendRetryPolicy, create_openai_compatible_backend
from agent_runtime.backends.pricing import ModelPrice
from agent_runtime.server import ApiKeys, BackendConfig, create_app
from tests.conftest import require
from tests.katan import free_port, running_katan
from tests.server.conftest import serving
from tests.server.katan_proxy import CountingProxy
from tests.server.test_browser import ARGS, CHROMIUM

MODEL = "katan-page"
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "page"
KEY = "key-page-tenant-0123456789abcdef"
LAST = "[...document.querySelectorAll('.msg.assistant')].pop()"


@pytest.fixture(scope="module")
def proxy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CountingProxy]:
    """llm-katan's echo model, 4 characters a chunk 40 ms apart, behind the counting relay."""
    tmp = tmp_path_factory.mktemp("katan-page")
    with running_katan(tmp, "--chunk-delay-ms", "40", name=MODEL) as base:
        relay = CountingProxy(base)
        with serving(relay.app()) as url:
            relay.url = url  # type: ignore[attr-defined]
            yield relay


def _config(base_url: str) -> BackendConfig:
    backend = create_openai_compatible_backend(
        api_key="katan-key",
        base_url=base_url,
        model=MODEL,
        kind="katan",
        retry=BackendRetryPolicy(max_attempts=1),
        price=ModelPrice(input_per_million=2.5, output_per_million=10.0),
    )
    return BackendConfig(backend=backend, model=MODEL, base_url=base_url, api_key="katan-key")


@contextmanager
def _browser() -> Iterator[Any]:
    require(CHROMIUM.exists(), "chromium is not installed at /usr/bin/chromium")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        try:
            yield browser
        finally:
            browser.close()


@contextmanager
def _page(
    tmp_path: Path, base_url: str, *, api_keys: ApiKeys | None = None, ready: bool = True
) -> Iterator[tuple[Any, str, list[str]]]:
    """The page on a fresh server; yields the tab, the server URL and the failed requests
    (4xx/5xx answers other than the 401s the key prompt handles)."""
    app = create_app(
        store_url=f"sqlite:///{tmp_path}/runs.db",
        backend=_config(base_url),
        api_keys=api_keys,
        sweep_interval_ms=None,
    )
    with serving(app) as url, _browser() as browser:
        tab = browser.new_page()
        tab.set_default_timeout(20_000)
        bad: list[str] = []
        tab.on(
            "response",
            lambda r: r.status >= 400 and r.status != 401 and bad.append(f"{r.status} {r.url}"),
        )
        tab.goto(url)
        if ready:
            tab.wait_for_selector("#model option", state="attached")
        yield tab, url, bad


def shot(tab: Any, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    tab.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def session_of(url: str, tab: Any, headers: dict[str, str] | None = None) -> Any:
    sid = tab.evaluate("() => localStorage.getItem('ar.session')")
    return httpx2.get(f"{url}/api/sessions/{sid}", headers=headers or {}).json()


def wait_until(check: Any, what: str, timeout_s: float = 15.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


MARKDOWN = (
    "see below\n# Release notes\n\n**bold** and `inline`\n\n```python\nprint('hi')\n```\n\n"
    '<script>window.__pwned = 1</script><img src=x onerror="window.__pwned = 2">'
    '<a href="javascript:window.__pwned=3">link</a>'
)


def test_send_with_enter_stream_markdown_inert_scripts_and_usage(
    proxy: CountingProxy, tmp_path: Path
) -> None:
    with _page(tmp_path, f"{proxy.url}/v1") as (tab, url, bad):  # type: ignore[attr-defined]
        tab.focus("#input")
        tab.keyboard.type("first line")
        tab.keyboard.press("Shift+Enter")  # a new line, not a send
        tab.keyboard.type("second")
        assert tab.locator(".msg").count() == 0
        assert tab.input_value("#input") == "first line\nsecond"
        tab.fill("#input", MARKDOWN)
        tab.keyboard.press("Enter")
        tab.wait_for_function(
            f"() => {{ const m = {LAST}; return m && m.dataset.state === 'streaming'"
            " && m.textContent.includes('[echo]'); }"
        )
        tab.wait_for_selector(".msg.assistant[data-state=completed]")
        answer = tab.locator(".msg.assistant .text")
        assert answer.locator("h1").inner_text() == "Release notes"
        assert answer.locator("strong").inner_text() == "bold"
        assert "print('hi')" in answer.locator("pre code").inner_text()
        # the model's markup is inert: no script, no handler, no javascript: link
        assert tab.locator("#messages script").count() == 0
        assert tab.evaluate("() => document.querySelectorAll('#messages [onerror]').length") == 0
        hrefs = tab.evaluate(
            "() => [...document.querySelectorAll('#messages a')].map(a => a.getAttribute('href'))"
        )
        assert all(not (h or "").startswith("javascript:") for h in hrefs)
        assert tab.evaluate("() => window.__pwned") is None
        usage = tab.locator(".msg.assistant .usage").inner_text()
        assert "in ·" in usage and "out tokens" in usage and "$" in usage
        shot(tab, "markdown-and-usage")
        detail = session_of(url, tab)
        assert detail["turns"][0]["usage"]["tokensIn"] > 0
        assert detail["turns"][0]["usage"]["costUsd"] > 0
        # the page's own files all load: the favicon too
        assert (
            tab.evaluate(
                "() => fetch(document.querySelector('link[rel=icon]').href).then(r => r.status)"
            )
            == 200
        )
        assert [b for b in bad if not b.endswith("/x")] == []  # the model's <img src=x>


def test_stop_mid_turn_closes_the_upstream_request(proxy: CountingProxy, tmp_path: Path) -> None:
    long = "tell me everything " * 60
    with _page(tmp_path, f"{proxy.url}/v1") as (tab, url, _bad):  # type: ignore[attr-defined]
        before = proxy.closed_early
        tab.fill("#input", long)
        tab.click("#send")
        tab.wait_for_function(f"() => {LAST}.textContent.includes('User: tell me')")
        assert tab.is_visible("#stop")
        tab.keyboard.press("Escape")
        tab.wait_for_selector(".msg.assistant:not([data-state=streaming])")
        assert tab.get_attribute(".msg.assistant", "data-state") == "stopped", tab.inner_text(
            ".msg.assistant"
        )
        wait_until(lambda: proxy.closed_early == before + 1, "the upstream stream to close")
        shown = tab.locator(".msg.assistant .text").inner_text()
        assert "User: tell me" in shown and not tab.is_visible("#stop")
        shot(tab, "stopped")
        (turn,) = session_of(url, tab)["turns"]
        assert turn["status"] == "stopped"
        assert len(turn["text"]) < len(long)
        # the stopped turn, after a reload: its partial text from the history, not re-run
        requests = proxy.requests
        tab.reload()
        tab.wait_for_selector(".msg.assistant[data-state=stopped]")
        assert tab.locator(".msg.assistant .text").inner_text().strip() == shown.strip()
        assert proxy.requests == requests


def test_reload_mid_turn_reattaches_and_ends_with_the_stored_text(
    proxy: CountingProxy, tmp_path: Path
) -> None:
    with _page(tmp_path, f"{proxy.url}/v1") as (tab, url, _bad):  # type: ignore[attr-defined]
        requests = proxy.requests
        tab.fill("#input", "a slow answer " * 8)
        tab.click("#send")
        tab.wait_for_function(f"() => {LAST}.textContent.includes('User:')")
        tab.reload()
        tab.wait_for_selector(".msg.assistant[data-state=completed]")
        (turn,) = session_of(url, tab)["turns"]
        shown = tab.locator(".msg.assistant .text").inner_text()
        assert " ".join(shown.split()) == " ".join(turn["text"].split())
        assert proxy.requests == requests + 1  # re-attached, not asked again
        assert tab.locator(".msg.user").all_inner_texts() == [("a slow answer " * 8).strip()]


def test_retry_after_a_failure_asks_the_same_turn_again(
    proxy: CountingProxy, tmp_path: Path
) -> None:
    with _page(tmp_path, f"{proxy.url}/v1") as (tab, url, _bad):  # type: ignore[attr-defined]
        proxy.fail_next = 1
        tab.fill("#input", "please answer")
        tab.click("#send")
        tab.wait_for_selector(".msg.assistant[data-state=failed]")
        assert tab.locator(".msg.assistant .error").count() >= 1
        shot(tab, "failed")
        tab.click(".msg.assistant .retry")
        tab.wait_for_selector(".msg.assistant[data-state=completed]")
        assert tab.locator(".msg.assistant").count() == 1
        assert tab.get_attribute(".msg.assistant", "data-turn") == "0"
        assert "User: please answer" in tab.locator(".msg.assistant .text").inner_text()
        (turn,) = session_of(url, tab)["turns"]
        assert turn["status"] == "completed" and turn["turnIndex"] == 0


def test_edit_after_a_failure_asks_the_same_turn_with_the_new_text(
    proxy: CountingProxy, tmp_path: Path
) -> None:
    with _page(tmp_path, f"{proxy.url}/v1") as (tab, url, _bad):  # type: ignore[attr-defined]
        proxy.fail_next = 1
        tab.fill("#input", "frist try")
        tab.click("#send")
        tab.wait_for_selector(".msg.assistant[data-state=failed]")
        tab.click(".msg.assistant .edit")
        assert tab.input_value("#input") == "frist try"
        tab.fill("#input", "first try")
        tab.keyboard.press("Enter")
        tab.wait_for_selector(".msg.assistant:not([data-state=streaming])")
        assert tab.get_attribute(".msg.assistant", "data-state") == "completed", tab.locator(
            ".msg.assistant"
        ).inner_text()
        assert tab.locator(".msg.user").all_inner_texts() == ["first try"]
        (turn,) = session_of(url, tab)["turns"]
        assert (turn["turnIndex"], turn["prompt"]) == (0, "first try")


def test_switch_rename_and_delete_sessions(proxy: CountingProxy, tmp_path: Path) -> None:
    with _page(tmp_path, f"{proxy.url}/v1") as (tab, url, _bad):  # type: ignore[attr-defined]
        tab.fill("#input", "about apples")
        tab.keyboard.press("Enter")
        tab.wait_for_selector(".msg.assistant[data-state=completed]")
        tab.fill("#input", "and pears")
        tab.keyboard.press("Enter")
        tab.wait_for_selector(".msg.assistant[data-state=completed] >> nth=1")
        # a text-only turn: the model saw the earlier turn too
        assert "messages=3" in tab.locator(".msg.assistant .text").nth(1).inner_text()
        first = tab.evaluate("() => localStorage.getItem('ar.session')")

        tab.click("#new-chat")
        assert tab.locator(".msg").count() == 0
        tab.fill("#input", "about boats")
        tab.keyboard.press("Enter")
        tab.wait_for_selector(".msg.assistant[data-state=completed]")
        boats = tab.evaluate("() => localStorage.getItem('ar.session')")
        tab.wait_for_function("() => document.querySelectorAll('#sessions li').length === 2")
        titles = tab.locator("#sessions .open").all_inner_texts()
        assert titles == ["about boats", "about apples"]

        tab.click("#sessions li:nth-child(2) .open")
        tab.wait_for_function("() => document.querySelectorAll('.msg.user').length === 2")
        assert tab.locator(".msg.user").all_inner_texts() == ["about apples", "and pears"]
        assert tab.evaluate("() => localStorage.getItem('ar.session')") == first
        shot(tab, "sessions")

        tab.click(f"#sessions li[data-id='{first}'] .rename")
        tab.fill("#sessions .rename-input", "Fruit")
        tab.keyboard.press("Enter")
        tab.wait_for_function(
            "() => [...document.querySelectorAll('#sessions .open')]"
            ".some(b => b.textContent === 'Fruit')"
        )
        assert httpx2.get(f"{url}/api/sessions/{first}").json()["title"] == "Fruit"

        tab.once("dialog", lambda d: d.accept())
        tab.click(f"#sessions li[data-id='{boats}'] .delete")
        tab.wait_for_function("() => document.querySelectorAll('#sessions li').length === 1")
        listed = httpx2.get(f"{url}/api/sessions").json()["sessions"]
        assert [s["title"] for s in listed] == ["Fruit"]


def test_api_key_prompt(proxy: CountingProxy, tmp_path: Path) -> None:
    keys = ApiKeys.parse(f"{KEY}=acme:ann", source="test", separator=",")
    with _page(tmp_path, f"{proxy.url}/v1", api_keys=keys, ready=False) as (tab, url, bad):  # type: ignore[attr-defined]
        sent: list[str | None] = []
        tab.on(
            "request",
            lambda r: "/api/" in r.url and sent.append(r.headers.get("authorization")),
        )
        tab.wait_for_selector("#key-dialog[open]")
        shot(tab, "key-prompt")
        tab.fill("#key-input", "not-a-key")
        tab.keyboard.press("Enter")
        tab.wait_for_function(
            "() => document.querySelector('#key-dialog').open &&"
            " document.querySelector('#key-reason').textContent.includes('not accepted')"
        )
        tab.fill("#key-input", KEY)
        tab.click("#key-save")
        tab.wait_for_selector("#model option", state="attached")
        assert tab.evaluate("() => sessionStorage.getItem('ar.key')") == KEY
        tab.fill("#input", "with a key")
        tab.keyboard.press("Enter")
        tab.wait_for_selector(".msg.assistant[data-state=completed]")
        assert sent and sent[-1] == f"Bearer {KEY}"
        auth = {"authorization": f"Bearer {KEY}"}
        assert session_of(url, tab, auth)["turns"][0]["prompt"] == "with a key"
        assert bad == []


def test_unreachable_backend_and_server_are_shown(tmp_path: Path) -> None:
    dead = f"http://127.0.0.1:{free_port()}/v1"
    with _page(tmp_path, dead) as (tab, _url, _bad):
        tab.wait_for_function(
            "() => !document.querySelector('#banner').hidden &&"
            " document.querySelector('#banner').textContent.includes('not reachable')"
        )
        tab.fill("#input", "anyone there?")
        tab.keyboard.press("Enter")
        tab.wait_for_selector(".msg.assistant[data-state=failed]")
        assert tab.locator(".msg.assistant .error").count() >= 1
        shot(tab, "backend-unreachable")


def test_a_stopped_server_is_shown_not_an_empty_picker(
    proxy: CountingProxy, tmp_path: Path
) -> None:
    app = create_app(
        store_url=f"sqlite:///{tmp_path}/runs.db",
        backend=_config(f"{proxy.url}/v1"),  # type: ignore[attr-defined]
        sweep_interval_ms=None,
    )
    with _browser() as browser:
        tab = browser.new_page()
        tab.set_default_timeout(20_000)
        with serving(app) as url:
            tab.goto(url)
            tab.wait_for_selector("#model option", state="attached")
        tab.fill("#input", "hello?")
        tab.keyboard.press("Enter")
        tab.wait_for_selector(".msg.assistant[data-state=failed]")
        tab.wait_for_function("() => document.querySelector('#model').disabled")
        assert "cannot be reached" in tab.inner_text("#banner")
        assert tab.inner_text("#model") == "unavailable"
        shot(tab, "server-unreachable")
