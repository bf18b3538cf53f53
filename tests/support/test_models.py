"""Model resolution and admission (ORIGINAL §13) against a real llm-katan catalog and a small
catalog server of ours (for many models, providers and malformed bodies)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import orjson
import pytest

from agent_runtime import (
    DEFAULT_ROUTER_BASE_URL,
    BackendTransportError,
    ChatModelValidation,
    clean_model_id,
    get_models,
    resolve_chat_model,
    resolve_router_base_url,
    validate_chat_model_id,
    with_configured_models,
)

from .conftest import KATAN_MODEL


@pytest.fixture
def catalog_server() -> Iterator[tuple[str, dict[str, Any]]]:
    """A catalog server whose status and body the test sets; it records each request."""
    state: dict[str, Any] = {"status": 200, "body": b'{"data": []}', "requests": []}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            state["requests"].append((self.path, dict(self.headers)))
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


def test_default_router_and_env_order() -> None:
    assert DEFAULT_ROUTER_BASE_URL == "https://router.tangle.tools"
    assert resolve_router_base_url() == DEFAULT_ROUTER_BASE_URL
    assert resolve_router_base_url({}) == DEFAULT_ROUTER_BASE_URL
    both = {"TANGLE_ROUTER_URL": "https://a.example", "TANGLE_ROUTER_BASE_URL": "https://b.example"}
    assert resolve_router_base_url(both) == "https://a.example"
    assert resolve_router_base_url({"TANGLE_ROUTER_BASE_URL": "https://b.example"}) == (
        "https://b.example"
    )
    assert resolve_router_base_url({"TANGLE_ROUTER_URL": ""}) == DEFAULT_ROUTER_BASE_URL


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("https://r.example/v1", "https://r.example"),
        ("https://r.example/v1/", "https://r.example"),
        ("https://r.example/", "https://r.example"),
        ("https://r.example/api/v1", "https://r.example/api"),
        ("https://r.example/v1/v1", "https://r.example/v1"),  # one /v1 only
        ("https://r.example//", "https://r.example/"),  # one trailing slash only
    ],
)
def test_one_trailing_v1_then_one_slash_is_stripped(raw: str, expected: str) -> None:
    assert resolve_router_base_url({"TANGLE_ROUTER_URL": raw}) == expected


async def test_get_models_reads_llm_katans_catalog(llm_katan: str) -> None:
    models = await get_models(llm_katan, api_key="test-key")
    assert [m["id"] for m in models] == [KATAN_MODEL]
    # an OpenAI-style base that ends in /v1 lands on the same URL
    assert [m["id"] for m in await get_models(f"{llm_katan}/v1", api_key="k")] == [KATAN_MODEL]


async def test_get_models_request_and_body_rules(
    catalog_server: tuple[str, dict[str, Any]],
) -> None:
    url, state = catalog_server
    state["body"] = orjson.dumps({"data": [{"id": "m1"}, 3, {"id": "m2", "provider": "x"}]})
    models = await get_models(url)
    assert models == [{"id": "m1"}, {"id": "m2", "provider": "x"}]
    path, headers = state["requests"][-1]
    assert path == "/v1/models" and headers["Accept"] == "application/json"
    assert "Authorization" not in headers
    for body in (b"not json", b"[]", b'{"data": {}}', b"{}"):
        state["body"] = body
        assert await get_models(url) == []


@pytest.mark.parametrize("status", [401, 404, 503])
async def test_non_2xx_raises_router_status(
    catalog_server: tuple[str, dict[str, Any]], status: int
) -> None:
    url, state = catalog_server
    state["status"] = status
    with pytest.raises(BackendTransportError, match=f"^router /v1/models {status}$") as info:
        await get_models(url)
    assert info.value.status == status


def test_clean_model_id() -> None:
    assert clean_model_id("  gpt-4o  ") == "gpt-4o"
    assert clean_model_id("   ") is None
    assert clean_model_id("") is None
    assert clean_model_id(None) is None
    assert clean_model_id(42) is None


def test_resolve_chat_model_first_usable_candidate_or_the_fallback_itself() -> None:
    fallback = {"source": "default", "model": "m-default"}
    candidates = [
        {"source": "request", "model": "  "},
        {"source": "workspace", "model": None},
        {"source": "env", "model": " m-env "},
        {"source": "late", "model": "m-late"},
    ]
    assert resolve_chat_model(candidates, fallback) == {"source": "env", "model": "m-env"}
    assert resolve_chat_model(candidates[:2], fallback) is fallback
    assert resolve_chat_model([], None) is None


async def test_validate_in_order_and_fail_closed() -> None:
    calls: list[str] = []

    async def catalog(base: str) -> list[dict[str, Any]]:
        calls.append(base)
        return [{"id": "gpt-4o", "_provider": "openai", "provider": "ignored"}, {"id": "a/b"}]

    async def broken(base: str) -> list[dict[str, Any]]:
        raise RuntimeError("router down")

    def check(result: ChatModelValidation, ok: bool, text: str) -> None:
        assert result.succeeded is ok
        assert (result.value if ok else result.error) == text

    check(
        await validate_chat_model_id("  ", load_models=catalog),
        False,
        "Model id must be a non-empty string.",
    )
    check(
        await validate_chat_model_id("bad id!", load_models=catalog),
        False,
        "Model id is malformed: bad id!",
    )
    check(
        await validate_chat_model_id("x" * 201, load_models=catalog),
        False,
        "Model id is malformed: " + "x" * 201,
    )
    assert calls == []  # malformed ids never fetch the catalog
    check(
        await validate_chat_model_id(" mine ", allowlist=[" mine "], load_models=broken),
        True,
        "mine",
    )
    check(
        await validate_chat_model_id("gpt-4o", load_models=broken),
        False,
        "Could not validate model catalog: router down",
    )
    check(await validate_chat_model_id("gpt-4o", load_models=catalog), True, "gpt-4o")
    check(await validate_chat_model_id("openai/gpt-4o", load_models=catalog), True, "openai/gpt-4o")
    check(
        await validate_chat_model_id("ignored/gpt-4o", load_models=catalog),
        False,
        "Model is not available: ignored/gpt-4o",
    )
    check(
        await validate_chat_model_id("x/a/b", load_models=catalog),
        False,
        "Model is not available: x/a/b",
    )
    assert calls == [DEFAULT_ROUTER_BASE_URL] * 4
    sync = await validate_chat_model_id("a/b", load_models=lambda base: [{"id": "a/b"}])
    assert sync.to_dict() == {"succeeded": True, "value": "a/b"}


async def test_validate_against_a_real_catalog(llm_katan: str) -> None:
    def load(base: str) -> Any:
        return get_models(base, api_key="test-key")  # llm-katan's catalog wants a key

    ok = await validate_chat_model_id(KATAN_MODEL, router_base_url=llm_katan, load_models=load)
    assert ok.succeeded and ok.value == KATAN_MODEL
    missing = await validate_chat_model_id(
        "other-model", router_base_url=llm_katan, load_models=load
    )
    assert missing.error == "Model is not available: other-model"
    # without the key, the catalog answers 401 and admission fails closed
    closed = await validate_chat_model_id(KATAN_MODEL, router_base_url=llm_katan)
    assert closed.error == "Could not validate model catalog: router /v1/models 401"


async def test_validate_fails_closed_when_the_router_is_unreachable() -> None:
    result = await validate_chat_model_id("m", router_base_url="http://127.0.0.1:9")
    assert not result.succeeded and result.error is not None
    assert result.error.startswith("Could not validate model catalog: ")


def test_with_configured_models() -> None:
    catalog: list[Any] = [{"id": "a"}, {"id": "b"}]
    assert with_configured_models(catalog, ["a", " ", "b"]) is catalog
    out = with_configured_models(catalog, ["c", " b ", "d", "c", ""])
    assert out == [{"id": "c"}, {"id": "d"}, {"id": "a"}, {"id": "b"}]
    assert catalog == [{"id": "a"}, {"id": "b"}]
