"""Redaction end to end: secrets a (fake) upstream model streams a few characters at a time
never reach the client (live, replayed, or through the events endpoint) nor the SQLite
files; `--store-raw` keeps them in the store only; a password inside `OPENAI_BASE_URL`
appears in no response, row or log line of a real `agent-runtime serve`."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx2
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from agent_runtime._scrub import sanitize_text
from agent_runtime.backends import create_openai_compatible_backend
from agent_runtime.server import BackendConfig, ServerSettings, StreamScrubber, create_app
from tests.katan import free_port
from tests.server.conftest import serving

OPENAI_KEY = "sk-proj-" + "Q7m2Xv9LpR4tY8wZ1cN6bH3jK5dF0sAgEeUuIiOo"
JWT = (
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJ0ZW5hbnQtYSIsImFkbWluIjp0cnVlfQ."
    "c2lnbmF0dXJlLW9mLXRoZS10b2tlbi1oZXJl"
)
PEM_BODY = (
    "MIIEpAIBAAKCAQEAuZ3kqv9Tq8Vb7r2WfR5XjL0mN4sD6cH1gK8pQ2eY7tU3oI9a",
    "Zx4Cv6Bn8Mq2Wr5Ty7Ui9Op1As3Df5Gh7Jk9Lz2Xc4Vb6Nm8Qw0Er2Ty4Ui6Op8",
)
PEM = "-----BEGIN RSA PRIVATE KEY-----\n" + "\n".join(PEM_BODY) + "\n-----END RSA PRIVATE KEY-----"
DB_PASSWORD = "S3cretDbPassw0rd"
DSN = f"postgresql://admin:{DB_PASSWORD}@db.internal:5432/app"
AWS = "AKIAIOSFODNN7EXAMPLE"
ANSWER = (
    f"Here is the config you asked for. The key is {OPENAI_KEY} and the token\n"
    f"{JWT}\nThe deploy key:\n{PEM}\nConnect with {DSN} or use {AWS} as the access key id. "
    f'Finally password = "correct horse battery staple" and that is all.'
)
SECRETS = [OPENAI_KEY, JWT, *PEM_BODY, DB_PASSWORD, AWS, "correct horse battery staple"]


def _pieces(secret: str) -> list[str]:
    """Every 10-character window of a secret: none may appear anywhere."""
    return [secret[i : i + 10] for i in range(0, max(1, len(secret) - 9))]


def _assert_clean(blob: bytes | str, where: str) -> None:
    text = blob if isinstance(blob, str) else blob.decode("utf-8", "replace")
    for secret in SECRETS:
        for piece in _pieces(secret):
            assert piece not in text, f"{piece!r} of a secret leaked into {where}"


def _upstream(text: str, chunk: int) -> Starlette:
    """An OpenAI-compatible endpoint streaming `text` `chunk` characters per delta."""

    async def completions(request: Request) -> Response:
        body = await request.json()
        model = body.get("model", "m")

        async def sse() -> AsyncIterator[bytes]:
            for i in range(0, len(text), chunk):
                delta = {"choices": [{"index": 0, "delta": {"content": text[i : i + chunk]}}]}
                yield b"data: " + orjson.dumps({"model": model, **delta}) + b"\n\n"
            usage = {"prompt_tokens": 5, "completion_tokens": 50, "total_tokens": 55}
            done = {"model": model, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}
            yield b"data: " + orjson.dumps({**done, "usage": usage}) + b"\n\n"
            yield b"data: [DONE]\n\n"

        return StreamingResponse(sse(), media_type="text/event-stream")

    async def models(_request: Request) -> Response:
        return JSONResponse({"object": "list", "data": [{"id": "m"}]})

    return Starlette(
        routes=[
            Route("/v1/chat/completions", completions, methods=["POST"]),
            Route("/v1/models", models),
        ]
    )


def _config(base: str) -> BackendConfig:
    return BackendConfig(
        backend=create_openai_compatible_backend(api_key="k", base_url=f"{base}/v1", model="m"),
        model="m",
        base_url=f"{base}/v1",
        api_key="k",
    )


def _text(body: str) -> str:
    out = ""
    for line in body.splitlines():
        event = orjson.loads(line)
        event = event.get("payload", event)
        if event.get("type") == "text_delta":
            out += event["text"]
    return out


def _store_bytes(folder: Path) -> bytes:
    return b"".join(p.read_bytes() for p in folder.iterdir() if p.name.startswith("runs.db"))


@pytest.mark.parametrize("chunk", [3, 7])
def test_streamed_secrets_reach_neither_the_client_nor_the_database(
    tmp_path: Path, chunk: int
) -> None:
    user_secret = "my api_key=ak_live_UserPasted0123456789"
    SECRETS.append("UserPasted0123456789")
    try:
        with serving(_upstream(ANSWER, chunk)) as base:
            app = create_app(store_url=f"sqlite:///{tmp_path}/runs.db", backend=_config(base))
            body = {"session_id": "leak", "turn_index": 0, "text": f"give me secrets {user_secret}"}
            with serving(app) as url:
                live = httpx2.post(f"{url}/api/chat", json=body)
                replay = httpx2.post(f"{url}/api/chat", json=body)
                events = httpx2.get(f"{url}/api/runs/chat:leak:0/events")
                sse = httpx2.get(f"{url}/api/runs/chat:leak:0/events", params={"format": "sse"})
                resumed = httpx2.get(f"{url}/api/runs/chat:leak:0/events", params={"after": 5})
        assert live.status_code == 200 and live.text.splitlines()[-1].startswith(
            '{"type":"session.run.completed"'
        )
        for name, r in (("live", live), ("replay", replay), ("events", events), ("sse", sse),
                        ("resumed", resumed)):  # fmt: skip
            _assert_clean(r.content, name)
        shown = _text(live.text)
        assert shown == sanitize_text(ANSWER)  # the text around the secrets is intact
        assert "[REDACTED:" in shown and "Here is the config you asked for." in shown
        assert _text(events.text) == shown
        _assert_clean(_store_bytes(tmp_path), "the SQLite files")
    finally:
        SECRETS.pop()


def test_store_raw_keeps_secrets_in_the_store_only(tmp_path: Path) -> None:
    with serving(_upstream(ANSWER, 5)) as base:
        app = create_app(
            store_url=f"sqlite:///{tmp_path}/runs.db",
            backend=_config(base),
            settings=ServerSettings(store_raw=True),
        )
        body = {"session_id": "raw", "turn_index": 0, "text": "secrets please"}
        with serving(app) as url:
            live = httpx2.post(f"{url}/api/chat", json=body)
            replay = httpx2.post(f"{url}/api/chat", json=body)
            events = httpx2.get(f"{url}/api/runs/chat:raw:0/events")
    for name, r in (("live", live), ("replay", replay), ("events", events)):
        _assert_clean(r.content, name)
    result = [orjson.loads(x) for x in replay.text.splitlines()][1]
    assert result["type"] == "result" and "[REDACTED:" in result["data"]["finalText"]
    assert OPENAI_KEY.encode() in _store_bytes(tmp_path)  # the stored answer is the raw one


def _echo_upstream() -> Starlette:
    """An endpoint that refuses every call and echoes what it was sent in its error body."""

    async def refuse(request: Request) -> Response:
        seen = {"url": str(request.url), "authorization": request.headers.get("authorization")}
        return JSONResponse({"error": {"message": f"rejected {seen}"}}, status_code=401)

    return Starlette(
        routes=[
            Route("/v1/chat/completions", refuse, methods=["POST"]),
            Route("/v1/models", refuse),
        ]
    )


@pytest.fixture
def echoing_upstream() -> Iterator[str]:
    with serving(_echo_upstream()) as base:
        yield base


@pytest.mark.parametrize("where", ["closed-port", "echoing-upstream"])
def test_a_password_in_openai_base_url_appears_nowhere(
    tmp_path: Path, where: str, echoing_upstream: str
) -> None:
    password = "Ultra5ecretPassw0rd"
    target = (
        f"127.0.0.1:{free_port()}"
        if where == "closed-port"
        else echoing_upstream.split("://", 1)[1]
    )
    port = free_port()
    log = tmp_path / "serve.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "AGENT_RUNTIME_"))}
    env.update(
        OPENAI_BASE_URL=f"http://svc-user:{password}@{target}/v1",
        OPENAI_API_KEY=f"sk-live-{password}",
        OPENAI_MODEL="m",
        PYTHONUNBUFFERED="1",
    )
    cli = Path(sys.executable).with_name("agent-runtime")
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [str(cli), "serve", "--port", str(port), "--store", f"sqlite:///{tmp_path}/runs.db",
             "--log-format", "json"],
            cwd=tmp_path, env=env, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
        try:
            url = f"http://127.0.0.1:{port}"
            deadline = time.monotonic() + 30
            while True:
                try:
                    if httpx2.get(f"{url}/healthz", timeout=1).status_code == 200:
                        break
                except httpx2.HTTPError:
                    pass
                assert proc.poll() is None and time.monotonic() < deadline, log.read_text()
                time.sleep(0.05)
            answers = [
                httpx2.post(
                    f"{url}/api/chat",
                    json={"session_id": "pw", "turn_index": 0, "text": "hi"},
                    timeout=60,
                ),
                httpx2.get(f"{url}/api/runs/chat:pw:0/events"),
                httpx2.get(f"{url}/api/models"),
                httpx2.get(f"{url}/readyz"),
                httpx2.post(
                    f"{url}/api/chat",
                    json={"session_id": "pw2", "turn_index": 0, "text": "x", "model": "other"},
                ),
            ]
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=20)
    failed = [orjson.loads(x) for x in answers[0].text.splitlines()]
    assert failed[-1]["type"] == "session.run.failed", failed  # the turn really failed
    assert answers[3].json()["backend"]["reachable"] is False
    logged = log.read_text()
    failures = [orjson.loads(x) for x in logged.splitlines() if '"turn failed"' in x]
    assert len(failures) == 1 and failures[0]["code"] == "config"  # one line, with its code
    assert failures[0]["execution_id"] == "chat:pw:0"
    for blob, name in [(r.content, str(r.url)) for r in answers] + [
        (logged.encode(), "the server log"),
        (_store_bytes(tmp_path), "the SQLite files"),
    ]:
        assert password.encode() not in blob, f"the password leaked into {name}"


@settings(max_examples=150, deadline=None)
@given(
    st.lists(
        st.sampled_from([OPENAI_KEY, JWT, PEM, DSN, AWS, "password: hunter2hunter2", " ", "\n",
                         "plain words here", "key", "token=", '"', "-----", "://x:y@h"]),
        max_size=8,
    ),
    st.lists(st.integers(min_value=1, max_value=9), min_size=1, max_size=20),
)  # fmt: skip
def test_stream_scrubbing_matches_scrubbing_the_whole_text(
    parts: list[str], sizes: list[int]
) -> None:
    """However a text is cut into deltas, what the scrubber lets out is the scrubbed whole
    text, and no secret piece of it."""
    text = " ".join(parts)
    scrubber = StreamScrubber()
    out, i, k = "", 0, 0
    while i < len(text):
        n = sizes[k % len(sizes)]
        out += scrubber.push(text[i : i + n])
        i, k = i + n, k + 1
    out += scrubber.flush()
    assert out == sanitize_text(text)
    _assert_clean(out, "the scrubbed stream")
