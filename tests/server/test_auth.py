"""Authentication and tenant isolation over real HTTP: two tenants (and two users of one) with
API keys on a real uvicorn server. No key or a wrong key is a 401; another tenant's or user's
run answers exactly like an unknown one and is never even looked up; only the owner writes a
session's turns; identity never comes from the body."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2
import orjson
import pytest
from starlette.requests import Request

from agent_runtime.backends import create_echo_backend
from agent_runtime.durable import SQLiteDurableRunStore
from agent_runtime.errors import ConfigurationError
from agent_runtime.server import (
    API_KEYS_ENV,
    ApiKeys,
    Principal,
    ServerSettings,
    create_app,
)
from tests.server.conftest import serving

KEY_A1 = "key-tenant-a-user-1-0123456789"
KEY_A2 = "key-tenant-a-user-2-0123456789"
KEY_B = "key-tenant-b-user-1-0123456789"
KEYS = f"{KEY_A1}=tenant-a:alice, {KEY_A2}=tenant-a:bob, {KEY_B}=tenant-b:carol"


def _auth(key: str) -> dict[str, str]:
    return {"authorization": f"Bearer {key}"}


def lines(body: str) -> list[dict[str, Any]]:
    return [orjson.loads(line) for line in body.splitlines() if line]


def text(response: httpx2.Response) -> str:
    """The streamed text of a turn body, or of an events body (its payloads)."""
    events = [e.get("payload", e) for e in lines(response.text)]
    return "".join(e["text"] for e in events if e.get("type") == "text_delta")


class _RecordingStore(SQLiteDurableRunStore):
    """A real SQLite store that remembers which run ids were read."""

    def __init__(self, path: str) -> None:
        super().__init__(path)
        self.looked_up: list[str] = []

    async def load_run(self, run_id: str) -> Any:
        self.looked_up.append(run_id)
        return await super().load_run(run_id)

    async def read_stream_events(self, run_id: str, *args: Any, **kwargs: Any) -> Any:
        self.looked_up.append(run_id)
        return await super().read_stream_events(run_id, *args, **kwargs)


@pytest.fixture(scope="module")
def tenants(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, _RecordingStore]]:
    path = tmp_path_factory.mktemp("auth") / "runs.db"
    store = _RecordingStore(str(path))
    app = create_app(
        store=store,
        backend=create_echo_backend(chunk_chars=4),
        api_keys=ApiKeys.parse(KEYS, source="test", separator=","),
        sweep_interval_ms=None,
    )
    with serving(app) as url:
        yield url, store


def _post(url: str, key: str | None, body: dict[str, Any]) -> httpx2.Response:
    headers = _auth(key) if key else {}
    return httpx2.post(f"{url}/api/chat", json=body, headers=headers)


def _same_answer(a: httpx2.Response, b: httpx2.Response) -> None:
    """Status, body and headers equal (the date aside): nothing tells them apart."""
    assert a.status_code == b.status_code
    assert a.content == b.content
    skip = {"date"}
    assert {k: v for k, v in a.headers.items() if k not in skip} == {
        k: v for k, v in b.headers.items() if k not in skip
    }


def test_no_key_and_a_wrong_key_are_401_on_every_api_route(
    tenants: tuple[str, _RecordingStore],
) -> None:
    url, _ = tenants
    body = {"session_id": "s", "turn_index": 0, "text": "hi"}
    wrong = [
        {},
        _auth("not-a-key-of-this-server-000"),
        {"authorization": f"Basic {KEY_A1}"},
        {"authorization": "Bearer"},
        {"authorization": f"Bearer {KEY_A1}x"},
        {"authorization": f"Bearer {KEY_A1[:-1]}"},
    ]
    for headers in wrong:
        for method, path in (
            ("POST", "/api/chat"),
            ("GET", "/api/runs/chat:s:0/events"),
            ("GET", "/api/models"),
            ("GET", "/api/nowhere"),
        ):
            r = httpx2.request(method, f"{url}{path}", json=body, headers=headers)
            assert r.status_code == 401, (headers, path, r.text)
            assert r.json()["error"]["code"] == "unauthorized"
            assert r.headers["www-authenticate"].startswith("Bearer")
    # the page and the probes need no key
    assert httpx2.get(f"{url}/").status_code == 200
    assert httpx2.get(f"{url}/healthz").status_code == 200


def test_another_tenants_or_users_run_answers_like_an_unknown_one(
    tenants: tuple[str, _RecordingStore],
) -> None:
    url, store = tenants
    first = _post(url, KEY_A1, {"session_id": "victim", "turn_index": 0, "text": "secret plan"})
    assert first.status_code == 200 and first.headers["x-execution-id"] == "chat:victim:0"
    assert text(first) == "echo: secret plan"
    own = httpx2.get(f"{url}/api/runs/chat:victim:0/events", headers=_auth(KEY_A1))
    assert own.status_code == 200 and text(own) == "echo: secret plan"
    for key in (KEY_B, KEY_A2):  # another tenant; another user of the same tenant
        for fmt in ("ndjson", "sse"):
            store.looked_up.clear()
            other = httpx2.get(
                f"{url}/api/runs/chat:victim:0/events", params={"format": fmt}, headers=_auth(key)
            )
            unknown = httpx2.get(
                f"{url}/api/runs/chat:nobody:0/events", params={"format": fmt}, headers=_auth(key)
            )
            _same_answer(other, unknown)
            assert other.status_code == 204
            # the victim's run is not even read: no answer (and no timing) can depend on it
            assert all(
                ":victim:" not in rid or rid.startswith(_scope(key)) for rid in store.looked_up
            )
            assert not any(rid.startswith("chat:tenant-a:alice:") for rid in store.looked_up)


def _scope(key: str) -> str:
    return {
        KEY_A1: "chat:tenant-a:alice:",
        KEY_A2: "chat:tenant-a:bob:",
        KEY_B: "chat:tenant-b:carol:",
    }[key]


def test_a_turn_is_written_only_by_its_sessions_owner(
    tenants: tuple[str, _RecordingStore],
) -> None:
    """Another tenant posting turn 1 of the victim's session first neither blocks the
    victim's turn 1 nor reads the victim's turn 0: it only writes a session of its own."""
    url, _ = tenants
    assert _post(url, KEY_A1, {"session_id": "owned", "turn_index": 0, "text": "mine"}).is_success
    squat = _post(url, KEY_B, {"session_id": "owned", "turn_index": 1, "text": "squatted"})
    assert squat.status_code == 200 and text(squat) == "echo: squatted"
    replayed = _post(url, KEY_B, {"session_id": "owned", "turn_index": 0, "text": "mine"})
    types = [e["type"] for e in lines(replayed.text)]
    assert "result" not in types and "turn.replayed" not in types  # a fresh turn of B's own
    real = _post(url, KEY_A1, {"session_id": "owned", "turn_index": 1, "text": "my second"})
    assert real.status_code == 200 and text(real) == "echo: my second"
    again = _post(url, KEY_A2, {"session_id": "owned", "turn_index": 1, "text": "other user"})
    assert again.status_code == 200 and text(again) == "echo: other user"
    # the owner still reads exactly their own turns
    mine = httpx2.get(f"{url}/api/runs/chat:owned:1/events", headers=_auth(KEY_A1))
    assert text(mine) == "echo: my second"


def test_identity_never_comes_from_the_body(tenants: tuple[str, _RecordingStore]) -> None:
    url, _ = tenants
    for field in ("tenant_id", "user_id"):
        body = {"session_id": "s", "turn_index": 0, "text": "x", field: "tenant-a"}
        r = _post(url, KEY_B, body)
        assert r.status_code == 422 and field in r.json()["error"]["message"]
    started = lines(_post(url, KEY_B, {"session_id": "who", "turn_index": 0, "text": "x"}).text)[0]
    assert started["data"]["tenantId"] == "tenant-b"


def test_models_need_a_key(tenants: tuple[str, _RecordingStore]) -> None:
    url, _ = tenants
    r = httpx2.get(f"{url}/api/models", headers=_auth(KEY_B))
    assert r.status_code == 200 and [m["id"] for m in r.json()["data"]] == ["echo"]


def test_a_products_authenticate_hook(tmp_path: Path) -> None:
    """`authenticate(request)` replaces the keys: its principal scopes the runs; None is a
    401; a ChatTurnIdentity-like object (tenant_id, user_id) is accepted."""

    class Identity:
        def __init__(self, tenant_id: str, user_id: str) -> None:
            self.tenant_id, self.user_id = tenant_id, user_id

    async def authenticate(request: Request) -> Any:
        who = request.headers.get("x-session-user")
        if who == "dave":
            return Principal("acme", "dave")
        if who == "erin":
            return Identity("acme", "erin")
        return None

    app = create_app(
        store_url=f"sqlite:///{tmp_path}/runs.db",
        backend=create_echo_backend(),
        authenticate=authenticate,
        api_keys=ApiKeys.parse(KEYS, source="test", separator=","),  # the hook wins
        sweep_interval_ms=None,
    )
    body = {"session_id": "h", "turn_index": 0, "text": "from the hook"}
    with serving(app) as url:
        dave = httpx2.post(f"{url}/api/chat", json=body, headers={"x-session-user": "dave"})
        erin = httpx2.get(f"{url}/api/runs/chat:h:0/events", headers={"x-session-user": "erin"})
        nobody = httpx2.post(f"{url}/api/chat", json=body, headers=_auth(KEY_A1))
    assert dave.status_code == 200
    assert lines(dave.text)[0]["data"]["tenantId"] == "acme"
    assert erin.status_code == 204  # same tenant, another user
    assert nobody.status_code == 401


async def test_unauthenticated_mode_serves_loopback_peers_only(tmp_path: Path) -> None:
    app = create_app(
        store_url=f"sqlite:///{tmp_path}/runs.db",
        backend=create_echo_backend(),
        api_keys=ApiKeys({}),
        sweep_interval_ms=None,
    )
    async with app.router.lifespan_context(app):
        for peer, status in ((("10.1.2.3", 4000), 401), (("127.0.0.1", 4000), 200)):
            transport = httpx2.ASGITransport(app=app, client=peer)
            async with httpx2.AsyncClient(transport=transport, base_url="http://127.0.0.1") as c:
                r = await c.get("/api/models")
            assert r.status_code == status, (peer, r.text)


def test_api_keys_from_the_environment_and_a_file(tmp_path: Path) -> None:
    keys_file = tmp_path / "keys"
    keys_file.write_text(
        f"# production keys\n{KEY_B} = tenant-b:carol\n\n{KEY_A2}=tenant-a:bob  # bob\n"
    )
    keys = ApiKeys.load(env={API_KEYS_ENV: f"{KEY_A1}=tenant-a:alice"}, file=str(keys_file))
    assert len(keys) == 3
    assert keys.lookup(KEY_A1) == Principal("tenant-a", "alice")
    assert keys.lookup(KEY_B) == Principal("tenant-b", "carol")
    assert keys.lookup(KEY_A2) == Principal("tenant-a", "bob")
    assert keys.lookup("unknown-key-000000000000") is None
    assert len(ApiKeys.load(env={})) == 0


@pytest.mark.parametrize(
    ("entries", "why"),
    [
        ("short=t:u", "16-512"),
        (f"{KEY_A1}=tenant-only", "TOKEN=TENANT:USER"),
        (f"{KEY_A1}", "TOKEN=TENANT:USER"),
        (f"{KEY_A1}=t:u, {KEY_A1}=t:v", "repeats"),
        (f"{KEY_A1}=bad tenant:u", "tenant_id"),
        (f"{KEY_A1}=t:bad:user", "user_id"),
    ],
)
def test_bad_key_entries_are_configuration_errors_without_the_key(entries: str, why: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        ApiKeys.parse(entries, source=API_KEYS_ENV, separator=",")
    assert why in caught.value.message and API_KEYS_ENV in caught.value.message
    assert KEY_A1 not in caught.value.message


def test_settings_and_keys_are_validated_when_the_app_is_built() -> None:
    with pytest.raises(ConfigurationError):
        create_app(api_keys={"k": "v"})  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError):
        ServerSettings(allowed_origins=("evil.example",))
    with pytest.raises(ConfigurationError):
        ServerSettings(models=("a b",))
    with pytest.raises(ConfigurationError):
        ServerSettings(max_turns_per_tenant=0)


def test_a_broken_hook_is_a_json_500_with_the_headers(tmp_path: Path) -> None:
    def authenticate(_request: Request) -> Principal:
        raise RuntimeError("the product's auth service is down")

    app = create_app(
        store_url=f"sqlite:///{tmp_path}/runs.db",
        backend=create_echo_backend(),
        authenticate=authenticate,
        sweep_interval_ms=None,
    )
    with serving(app) as url:
        r = httpx2.get(f"{url}/api/models")
        assert httpx2.get(f"{url}/healthz").status_code == 200  # the server still serves
    assert r.status_code == 500 and r.json()["error"]["code"] == "internal_error"
    assert "auth service" not in r.text  # no exception text leaves the server
    assert r.headers["x-frame-options"] == "DENY"
