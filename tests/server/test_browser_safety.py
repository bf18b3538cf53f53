"""Browser safety over real HTTP: a page on another origin (real Chromium) cannot make the
service run a turn or read one; a DNS-rebinding `Host` is refused; CORS only for allowed
origins; JSON-only writes; the security headers on every response."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx2
import pytest
from starlette.applications import Starlette
from starlette.responses import HTMLResponse
from starlette.routing import Route

from agent_runtime.backends import create_iterable_backend
from agent_runtime.server import ApiKeys, ServerSettings, create_app
from agent_runtime.types import AgentBackendContext, AgentBackendInput, TextDeltaEvent
from tests.conftest import require
from tests.server.conftest import serving
from tests.server.test_browser import ARGS, CHROMIUM

SECURITY = {
    "content-security-policy",
    "x-content-type-options",
    "referrer-policy",
    "x-frame-options",
}
BODY = {"session_id": "csrf", "turn_index": 0, "text": "spend the key"}


class _Counting:
    """A backend that counts its calls (each one would be a paid upstream request)."""

    def __init__(self) -> None:
        self.calls = 0

    def backend(self) -> Any:
        async def stream(_inp: AgentBackendInput, _ctx: AgentBackendContext) -> AsyncIterator[Any]:
            self.calls += 1
            yield TextDeltaEvent(text="paid answer")

        return create_iterable_backend(kind="counting", stream=stream)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, _Counting]]:
    counting = _Counting()
    tmp = tmp_path_factory.mktemp("browser")
    app = create_app(
        store_url=f"sqlite:///{tmp}/runs.db",
        backend=counting.backend(),
        settings=ServerSettings(
            allowed_origins=("https://app.example.com",),
            allowed_hosts=("chat.example.com", "*.internal.example"),
        ),
        sweep_interval_ms=None,
    )
    with serving(app) as url:
        yield url, counting


def _host(url: str) -> str:
    return url.split("://", 1)[1]


def test_dns_rebinding_host_is_refused(served: tuple[str, _Counting]) -> None:
    url, counting = served
    before = counting.calls
    port = url.rsplit(":", 1)[1]
    for host in (f"evil.example:{port}", "evil.example", f"127.0.0.1.evil.example:{port}", ""):
        for method, path in (("POST", "/api/chat"), ("GET", "/"), ("GET", "/healthz")):
            r = httpx2.request(method, f"{url}{path}", json=BODY, headers={"host": host})
            assert r.status_code == 400, (host, path)
            assert r.json()["error"]["code"] == "host_not_allowed"
            assert set(r.headers) >= SECURITY
    assert counting.calls == before
    for host in (
        _host(url),
        f"localhost:{port}",
        f"[::1]:{port}",
        "chat.example.com",
        f"chat.example.com:{port}",
        "a.internal.example",
    ):
        assert httpx2.get(f"{url}/healthz", headers={"host": host}).status_code == 200, host


def test_cross_origin_writes_are_refused_and_cors_is_only_for_allowed_origins(
    served: tuple[str, _Counting],
) -> None:
    url, counting = served
    before = counting.calls
    for origin in ("http://evil.example", "null", "http://127.0.0.1:1", f"https://{_host(url)}x"):
        r = httpx2.post(f"{url}/api/chat", json=BODY, headers={"origin": origin})
        assert r.status_code == 403 and r.json()["error"]["code"] == "origin_not_allowed"
        assert "access-control-allow-origin" not in r.headers
        pre = httpx2.options(
            f"{url}/api/chat",
            headers={"origin": origin, "access-control-request-method": "POST"},
        )
        assert pre.status_code == 403 and "access-control-allow-origin" not in pre.headers
        read = httpx2.get(f"{url}/api/runs/chat:csrf:0/events", headers={"origin": origin})
        assert read.status_code == 403 and "access-control-allow-origin" not in read.headers
    # a state-changing request a browser marks cross-site, without an Origin header
    r = httpx2.post(f"{url}/api/chat", json=BODY, headers={"sec-fetch-site": "cross-site"})
    assert r.status_code == 403
    assert counting.calls == before
    # the page's own origin needs no CORS; an allowed origin gets it
    same = httpx2.post(
        f"{url}/api/chat",
        json={**BODY, "session_id": "same"},
        headers={"origin": url, "sec-fetch-site": "same-origin"},
    )
    assert same.status_code == 200 and "access-control-allow-origin" not in same.headers
    allowed = "https://app.example.com"
    pre = httpx2.options(
        f"{url}/api/chat",
        headers={
            "origin": allowed,
            "access-control-request-method": "POST",
            "access-control-request-headers": "authorization, content-type",
        },
    )
    assert pre.status_code == 204
    assert pre.headers["access-control-allow-origin"] == allowed
    assert "authorization" in pre.headers["access-control-allow-headers"]
    listed = httpx2.post(
        f"{url}/api/chat", json={**BODY, "session_id": "listed"}, headers={"origin": allowed}
    )
    assert listed.status_code == 200
    assert listed.headers["access-control-allow-origin"] == allowed
    assert "x-execution-id" in listed.headers["access-control-expose-headers"]
    assert "origin" in listed.headers["vary"].lower()


@pytest.mark.parametrize(
    "content_type",
    [None, "text/plain", "application/x-www-form-urlencoded", "multipart/form-data; b=x",
     "application/jsonx", "text/json"],
)  # fmt: skip
def test_writes_must_be_json(served: tuple[str, _Counting], content_type: str | None) -> None:
    url, counting = served
    before = counting.calls
    headers = {} if content_type is None else {"content-type": content_type}
    r = httpx2.post(f"{url}/api/chat", content=b'{"session_id":"ct","turn_index":0,"text":"x"}',
                    headers=headers)  # fmt: skip
    assert r.status_code == 415 and r.json()["error"]["code"] == "unsupported_media_type"
    assert counting.calls == before
    ok = httpx2.post(
        f"{url}/api/chat",
        content=b'{"session_id":"ct","turn_index":0,"text":"x"}',
        headers={"content-type": "application/json; charset=utf-8"},
    )
    assert ok.status_code == 200


def test_security_headers_on_every_response(served: tuple[str, _Counting]) -> None:
    url, _ = served
    responses = [
        httpx2.get(f"{url}/"),
        httpx2.get(f"{url}/app.js"),
        httpx2.get(f"{url}/app.css"),
        httpx2.get(f"{url}/healthz"),
        httpx2.get(f"{url}/readyz"),
        httpx2.get(f"{url}/api/models"),
        httpx2.get(f"{url}/missing.png"),
        httpx2.delete(f"{url}/api/chat"),
        httpx2.post(f"{url}/api/chat", json={"session_id": "h", "turn_index": 0, "text": "x"}),
        httpx2.get(f"{url}/api/runs/chat:h:0/events"),
    ]
    for r in responses:
        assert set(r.headers) >= SECURITY, r.url
        assert r.headers["x-content-type-options"] == "nosniff"
        assert r.headers["x-frame-options"] == "DENY"
        assert r.headers["referrer-policy"] == "no-referrer"
        csp = r.headers["content-security-policy"]
        assert "frame-ancestors 'none'" in csp and "script-src 'self'" in csp
        assert "unsafe-inline" not in csp


def _attacker_page(api: str) -> Starlette:
    html = f"""<!doctype html><html><body>
<iframe name="sink"></iframe>
<form id="f" method="POST" action="{api}/api/chat" enctype="text/plain" target="sink">
<input name='{{"session_id":"csrf-form","turn_index":0,"text":"x","pad":"' value='"}}'>
</form>
<script>
window.attack = async () => {{
  const body = JSON.stringify({{session_id: "csrf", turn_index: 0, text: "spend the key"}});
  const out = {{}};
  try {{
    await fetch("{api}/api/chat", {{method: "POST", mode: "no-cors",
      headers: {{"content-type": "text/plain"}}, body}});
    out.noCors = "sent";
  }} catch (e) {{ out.noCors = "error"; }}
  try {{
    const r = await fetch("{api}/api/chat", {{method: "POST",
      headers: {{"content-type": "application/json"}}, body}});
    out.cors = "read " + r.status;
  }} catch (e) {{ out.cors = "blocked"; }}
  try {{
    const r = await fetch("{api}/api/runs/chat:victim:0/events");
    out.read = "read " + (await r.text());
  }} catch (e) {{ out.read = "blocked"; }}
  await new Promise((done) => {{
    document.querySelector("iframe").onload = done;
    document.getElementById("f").submit();
    setTimeout(done, 3000);
  }});
  out.form = "submitted";
  return out;
}};
</script></body></html>"""

    async def page(_request: Any) -> HTMLResponse:
        return HTMLResponse(html)

    return Starlette(routes=[Route("/", page)])


@pytest.mark.parametrize("keys", [False, True], ids=["loopback-unauthenticated", "api-keys"])
def test_csrf_from_a_page_on_another_origin_in_chromium(tmp_path: Path, keys: bool) -> None:
    """The worst case is the unauthenticated loopback mode: the browser runs on the same
    machine, so its requests come from loopback and need no key. Still nothing runs."""
    require(CHROMIUM.exists(), "chromium is not installed at /usr/bin/chromium")
    from playwright.sync_api import sync_playwright

    counting = _Counting()
    key = "victim-key-0123456789abcdef"
    app = create_app(
        store_url=f"sqlite:///{tmp_path}/runs.db",
        backend=counting.backend(),
        api_keys=ApiKeys.parse(f"{key}=t:u", source="test", separator=",") if keys else None,
        sweep_interval_ms=None,
    )
    victim = {"authorization": f"Bearer {key}"} if keys else {}
    with serving(app) as api:
        own = httpx2.post(
            f"{api}/api/chat",
            json={"session_id": "victim", "turn_index": 0, "text": "private"},
            headers=victim,
        )
        assert own.status_code == 200 and counting.calls == 1
        with serving(_attacker_page(api)) as evil, sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
            try:
                tab = browser.new_page()
                tab.goto(evil.replace("127.0.0.1", "localhost"))  # another origin
                result = tab.evaluate("() => window.attack()")
            finally:
                browser.close()
        assert result["cors"] == "blocked"  # the preflight is refused: the POST never goes
        assert result["read"] == "blocked"  # no CORS header: the page cannot read a turn
        assert counting.calls == 1  # zero upstream calls from the attacker's page
        for session in ("csrf", "csrf-form"):
            r = httpx2.get(f"{api}/api/runs/chat:{session}:0/events", headers=victim)
            assert r.status_code == 204, session  # nothing was started or stored


def test_the_page_renders_model_markup_inert(tmp_path: Path) -> None:
    """Model text is rendered as sanitized markdown: its formatting shows, but no script
    element, event handler or script of it reaches the page (and the CSP forbids inline
    scripts besides)."""
    require(CHROMIUM.exists(), "chromium is not installed at /usr/bin/chromium")
    from playwright.sync_api import sync_playwright

    hostile = '<img src=x onerror="window.pwned=1"><script>window.pwned=2</script><b>bold</b>'

    async def stream(_inp: AgentBackendInput, _ctx: AgentBackendContext) -> AsyncIterator[Any]:
        yield TextDeltaEvent(text=hostile)

    app = create_app(
        store_url=f"sqlite:///{tmp_path}/runs.db",
        backend=create_iterable_backend(kind="hostile", stream=stream),
        sweep_interval_ms=None,
    )
    with serving(app) as url, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        try:
            tab = browser.new_page()
            tab.set_default_timeout(15_000)
            tab.goto(url)
            tab.fill("#input", "show me")
            tab.click("#send")
            tab.wait_for_selector(".msg.assistant[data-state=completed]")
            shown = tab.locator(".msg.assistant .text").inner_text()
            bold = tab.locator(".msg.assistant .text b").count()
            active = tab.evaluate(
                "() => document.querySelectorAll('.msg script, .msg [onerror]').length"
            )
            pwned = tab.evaluate("() => window.pwned === undefined")
        finally:
            browser.close()
    assert shown == "bold" and bold == 1 and active == 0 and pwned
