"""Model catalog helpers; `get_models` against a real llm-katan and a small fake router."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from agent_runtime.errors import (
    BackendTransportError,
    ConfigurationError,
    InvalidArgumentError,
    ModelCatalogError,
)
from agent_runtime.models import (
    DEFAULT_ROUTER_BASE_URL,
    RouterModel,
    clean_model_id,
    get_models,
    resolve_chat_model,
    resolve_router_base_url,
    validate_chat_model_id,
    with_configured_models,
)
from tests.katan import free_port

from .conftest import KATAN_MODEL


async def test_get_models_lists_llm_katan_model(llm_katan: str) -> None:
    models = await get_models(llm_katan, "test-key")
    assert [m.id for m in models] == [KATAN_MODEL]
    assert models[0].owned_by == "llm-katan"
    # a base that already ends in /v1 is not doubled
    assert [m.id for m in await get_models(f"{llm_katan}/v1/", "k")] == [KATAN_MODEL]


async def test_get_models_without_key_is_a_typed_401(llm_katan: str) -> None:
    with pytest.raises(BackendTransportError) as info:
        await get_models(llm_katan)
    assert info.value.status == 401 and info.value.retryable is False


async def test_unreachable_router_is_retryable_transport_error() -> None:

    with pytest.raises(BackendTransportError) as info:
        await get_models(f"http://127.0.0.1:{free_port()}", "k", timeout=2)
    assert info.value.retryable is True and info.value.status is None


def test_resolve_router_base_url() -> None:
    assert resolve_router_base_url({}) == DEFAULT_ROUTER_BASE_URL
    assert resolve_router_base_url({"OPENAI_BASE_URL": "http://h:1/v1/"}) == "http://h:1/v1"
    assert (
        resolve_router_base_url(
            {"OPENAI_BASE_URL": "http://a/v1", "AGENT_RUNTIME_ROUTER_BASE_URL": "https://b"}
        )
        == "https://b"
    )
    with pytest.raises(ConfigurationError):
        resolve_router_base_url({"OPENAI_BASE_URL": "ftp://x"})
    with pytest.raises(InvalidArgumentError):
        resolve_router_base_url(["x"])  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("  gpt-4o ", "gpt-4o"),
        ('"anthropic/claude-3.5-sonnet"', "anthropic/claude-3.5-sonnet"),
        ("`models/gemini-1.5-pro`", "gemini-1.5-pro"),
        ("llama3:8b", "llama3:8b"),
    ],
)
def test_clean_and_validate(raw: str, clean: str) -> None:
    assert clean_model_id(raw) == clean
    assert validate_chat_model_id(raw) == clean


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "  ",
        '""',
        "text-embedding-3-small",
        "nomic-embed-text",
        "whisper-1",
        "tts-1-hd",
        "gpt-4o-mini-tts",
        "dall-e-3",
        "omni-moderation-latest",
        "gpt 4o",
        "-flag",
        "x" * 201,
    ],
)
def test_validate_refuses(bad: str) -> None:
    with pytest.raises(ModelCatalogError):
        validate_chat_model_id(bad)


def test_resolve_chat_model_order_and_catalog() -> None:
    cat = [RouterModel("text-embedding-3-small"), RouterModel("a/chat"), RouterModel("b")]
    assert resolve_chat_model("b", available=cat, env={}) == "b"
    assert resolve_chat_model(None, available=cat, env={"OPENAI_MODEL": "b"}) == "b"
    assert resolve_chat_model(None, env={"AGENT_RUNTIME_MODEL": "x", "OPENAI_MODEL": "y"}) == "x"
    assert resolve_chat_model(None, env={}, default="d") == "d"
    assert resolve_chat_model(None, available=cat, env={}) == "a/chat"
    with pytest.raises(ModelCatalogError, match="not offered"):
        resolve_chat_model("zzz", available=cat, env={})
    with pytest.raises(ConfigurationError):
        resolve_chat_model(None, env={})
    with pytest.raises(ConfigurationError):
        resolve_chat_model(None, available=[cat[0]], env={})


def test_with_configured_models() -> None:
    cat = [RouterModel("a", owned_by="o"), RouterModel("b"), RouterModel("a")]
    out = with_configured_models(cat, ["b", " c ", "b"])
    assert [(m.id, m.configured) for m in out] == [("b", True), ("c", True), ("a", False)]
    with pytest.raises(InvalidArgumentError):
        with_configured_models(cat, "b")
    with pytest.raises(ModelCatalogError):
        with_configured_models(cat, ["text-embedding-ada-002"])


# --- a small fake router for what llm-katan does not do: many models, malformed bodies ----------


@pytest.fixture
def fake_router() -> Iterator[tuple[str, dict[str, Any]]]:
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    state: dict[str, Any] = {"status": 200, "body": b"{}", "auth": []}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            state["auth"].append(self.headers.get("Authorization"))
            self.send_response(state["status"])
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(state["body"])

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", state
    finally:
        server.shutdown()
        server.server_close()


async def test_many_models_and_malformed_bodies(fake_router: tuple[str, dict[str, Any]]) -> None:
    url, state = fake_router
    state["body"] = b'{"data":[{"id":"m1","created":1},{"id":"m2","owned_by":"x"},{"id":"m1"}]}'
    models = await get_models(url, "sk-test")
    assert [m.id for m in models] == ["m1", "m2"] and models[0].created == 1
    assert state["auth"][-1] == "Bearer sk-test"
    for body in (b"not json", b"[]", b'{"data": {}}', b'{"data":[{"name":"x"}]}'):
        state["body"] = body
        with pytest.raises(ModelCatalogError):
            await get_models(url)
    state["status"], state["body"] = 503, b'{"error":"busy"}'
    with pytest.raises(BackendTransportError) as info:
        await get_models(url)
    assert info.value.status == 503 and info.value.retryable is True
    with pytest.raises(InvalidArgumentError):
        await get_models(url, "bad\nkey")
