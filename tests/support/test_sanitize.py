"""Sanitizers both ways: generated secrets in prose never survive; ordinary text is unchanged."""

from __future__ import annotations

import base64
import re
import string

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agent_runtime.errors import InvalidArgumentError
from agent_runtime.knowledge import KnowledgeReadinessDecision, KnowledgeReadinessReport
from agent_runtime.sanitize import (
    SanitizeOptions,
    contains_secret,
    redaction_marker,
    sanitize_agent_runtime_event,
    sanitize_json,
    sanitize_knowledge_readiness_report,
    sanitize_runtime_stream_event,
    sanitize_text,
)
from agent_runtime.types import (
    ErrorEvent,
    ReadinessEvent,
    TextDeltaEvent,
    ToolCallEvent,
    ToolResultEvent,
    parse_event,
)

ALNUM = string.ascii_letters + string.digits
UPPER_DIGITS = string.ascii_uppercase + string.digits
B64URL = ALNUM + "-_"
MARKER = re.compile(r"\[REDACTED:[0-9a-f]{8}\]")


def chars(alphabet: str, n: int, m: int | None = None) -> st.SearchStrategy[str]:
    return st.text(alphabet=alphabet, min_size=n, max_size=m if m is not None else n + 40)


def _jwt(payload: bytes, sig: str) -> str:
    def enc(b: bytes) -> str:
        return base64.urlsafe_b64encode(b).rstrip(b"=").decode()

    header = enc(b'{"alg":"HS256","typ":"JWT"}')
    return f"{header}.{enc(payload)}.{sig}"


def _pem(body: bytes, kind: str) -> str:
    lines = base64.b64encode(body).decode()
    wrapped = "\n".join(lines[i : i + 64] for i in range(0, len(lines), 64))
    return f"-----BEGIN {kind}PRIVATE KEY-----\n{wrapped}\n-----END {kind}PRIVATE KEY-----"


SECRETS = st.one_of(
    chars(ALNUM + "-_", 20).map(lambda s: "sk-" + s),
    chars(ALNUM + "-_", 40).map(lambda s: "sk-proj-" + s),
    chars(ALNUM + "-_", 40).map(lambda s: "sk-ant-api03-" + s),
    chars(UPPER_DIGITS, 16, 16).map(lambda s: "AKIA" + s),
    chars(ALNUM, 36, 40).map(lambda s: "ghp_" + s),
    chars(ALNUM + "_", 82, 82).map(lambda s: "github_pat_" + s),
    chars(ALNUM + "-_", 35, 35).map(lambda s: "AIza" + s),
    st.tuples(st.sampled_from("bpaor"), chars(ALNUM + "-", 20)).map(lambda t: f"xox{t[0]}-{t[1]}"),
    chars(ALNUM, 24).map(lambda s: "sk_live_" + s),
    chars(ALNUM, 24).map(lambda s: "rk_test_" + s),
    chars(ALNUM, 34).map(lambda s: "hf_" + s),
    st.tuples(st.binary(min_size=2, max_size=80), chars(B64URL, 0, 60)).map(
        lambda t: _jwt(b'{"sub":' + orjson.dumps(base64.b64encode(t[0]).decode()) + b"}", t[1])
    ),
    st.tuples(
        st.binary(min_size=16, max_size=300), st.sampled_from(["", "RSA ", "EC ", "OPENSSH "])
    ).map(lambda t: _pem(*t)),
)

WORDS = st.sampled_from(
    [
        "the",
        "a",
        "run",
        "agent",
        "model",
        "returned",
        "three",
        "results",
        "from",
        "our",
        "tool",
        "and",
        "then",
        "we",
        "wrote",
        "a",
        "summary",
        "for",
        "you",
        "with",
        "numbers",
        "42",
        "3.14",
        "(see",
        "above).",
        "Please",
        "check,",
        "thanks!",
    ]
)
PROSE = st.lists(WORDS, max_size=12).map(" ".join)


@settings(max_examples=300)
@given(PROSE, SECRETS, PROSE)
def test_generated_secrets_in_prose_never_survive(before: str, secret: str, after: str) -> None:
    text = f"{before} {secret} {after}"
    out = sanitize_text(text)
    assert secret not in out
    assert MARKER.search(out)
    assert out.startswith(before) and out.endswith(after), "surrounding prose is kept"
    assert sanitize_text(out) == out, "idempotent"


PASSWORDS = st.text(alphabet=ALNUM + "!$%^&*-_.~+", min_size=1, max_size=30)


@given(PROSE, PASSWORDS, st.sampled_from(["postgresql", "mysql", "redis", "https", "amqp"]))
def test_url_passwords_never_survive(before: str, password: str, scheme: str) -> None:
    out = sanitize_text(f"{before} {scheme}://app_user:{password}@db.internal:5432/main")
    assert f":{password}@" not in out
    assert f"{scheme}://app_user:[REDACTED:" in out and "@db.internal:5432/main" in out


@given(
    st.sampled_from(["password", "api_key", "API-KEY", "client_secret", "access_token"]),
    st.sampled_from(["=", ": ", " = ", '": "']),
    st.text(alphabet=ALNUM + "!#$%&*+-./<>?@^_|~", min_size=4, max_size=40).filter(
        # references, not secrets: `$OPENAI_API_KEY`, `<your-key>`, `null`
        lambda v: (
            not re.fullmatch(
                r"\$\{?[A-Z_][A-Z0-9_]*\}?|<[A-Za-z0-9_\- ]+>|(?i:none|null|true|false|undefined|required|optional|redacted|changeme)",
                v,
            )
        )
    ),
)
def test_assigned_secrets_never_survive(key: str, sep: str, value: str) -> None:
    out = sanitize_text(f"config {key}{sep}{value} end")
    assert value not in out.replace(key, "")


@given(chars(ALNUM + "-._~+/", 16, 60).filter(lambda s: any(c in s for c in "0123456789-._~+/")))
def test_bearer_tokens_never_survive(token: str) -> None:
    out = sanitize_text(f"curl -H 'Authorization: Bearer {token}' https://api.example.com")
    assert token not in out and "https://api.example.com" in out


CORPUS = [
    "The quick brown fox jumps over the lazy dog.",
    "Please summarise the quarterly report and list three risks.",
    "I bear no grudge; the bearer of this letter is a friend.",
    "Your password must be at least 12 characters long.",
    "Reset your password from the settings page.",
    "Set the Authorization header to the token you were given.",
    "The secret to good bread is patience",
    "def add(a, b):\n    return a + b\n",
    "for (let i = 0; i < n; i++) { total += xs[i]; }",
    "SELECT id, name FROM users WHERE created_at > now() - interval '1 day';",
    "const apiKey = process.env.OPENAI_API_KEY;",
    "api_key = os.environ['OPENAI_API_KEY']",
    "export OPENAI_API_KEY=$OPENAI_API_KEY",
    "request id 3f2b9c1e-7a4d-4e2f-9b1a-0c8d7e6f5a4b failed",
    "commit 9fceb02d0ae598e95dc970b74767f19372d61af8 fixed it",
    "sha256 e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "see https://example.com/docs/page?q=1&lang=en#section-2",
    "connect to postgresql://localhost:5432/app or http://127.0.0.1:8080/health",
    "clone git@github.com:acme/widgets.git then run make test",
    "mail bob@example.com about the sk-learn pipeline",
    "scikit-learn, task-1234567890abcdefghij, risk-free-investment-strategy-guide",
    "The akia module and AKIA prefix docs; ghp_ is GitHub's prefix.",
    "JWTs start with eyJ, as in the header eyJhbGciOi.",
    "-----BEGIN CERTIFICATE-----\nMIIBszCCAVmgAwIBAgIU\n-----END CERTIFICATE-----",
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl user@host",
    "Temperature 0.7, max_tokens 512, model gpt-4o-mini, top_p 0.95.",
    "Token usage: 1200 input tokens, 300 output tokens.",
    "base64 of hello is aGVsbG8=",
    "Use `Bearer <token>` in the header.",
    "Das Passwort ist geheim; la contraseña es secreta. 密码很重要。",
]


@pytest.mark.parametrize("text", CORPUS)
def test_ordinary_text_is_unchanged(text: str) -> None:
    assert sanitize_text(text) == text
    assert not contains_secret(text)


@given(PROSE)
def test_generated_prose_is_unchanged(text: str) -> None:
    assert sanitize_text(text) == text


def test_markers_are_stable_and_keyed() -> None:
    key = "sk-proj-" + "A1b2C3d4" * 5
    a = sanitize_text(f"first {key}")
    b = sanitize_text(f"second {key} and again {key}")
    marker = redaction_marker(key)
    assert a == f"first {marker}" and b == f"second {marker} and again {marker}"
    other = SanitizeOptions(fingerprint_key=b"deployment-secret")
    assert redaction_marker(key, other) != marker
    assert redaction_marker("x" * 30) != marker


def test_sanitize_json_drops_internal_and_secret_fields() -> None:
    value = {
        "answer": "ok",
        "_trace": {"x": 1},
        "internal": {"prompt": "..."},
        "Debug": True,
        "raw": "response",
        "nested": [
            {
                "api_key": "abc",
                "apiKey": "def",
                "token_count": 3,
                "note": "use AKIAABCDEFGHIJKLMNOP",
            }
        ],
        "headers": {"Authorization": "Bearer abc.def.ghi-123456789", "Accept": "json"},
    }
    out = sanitize_json(value)
    assert set(out) == {"answer", "nested", "headers"}
    item = out["nested"][0]
    assert MARKER.fullmatch(item["api_key"]) and MARKER.fullmatch(item["apiKey"])
    assert item["token_count"] == 3 and "AKIA" not in item["note"]
    assert MARKER.fullmatch(out["headers"]["Authorization"]) and out["headers"]["Accept"] == "json"
    assert sanitize_json(out) == out
    assert value["internal"] == {"prompt": "..."}, "input is not mutated"


def test_typed_events_stay_typed_and_lose_secrets() -> None:
    key = "sk-ant-api03-" + "Z" * 40
    delta = sanitize_runtime_stream_event(TextDeltaEvent(text=f"your key {key}"))
    assert isinstance(delta, TextDeltaEvent) and key not in delta.text
    call = sanitize_runtime_stream_event(
        ToolCallEvent(
            call_id="c1",
            name="db",
            arguments=orjson.dumps({"dsn": "postgres://u:hunter22@h/db"}).decode(),
        )
    )
    assert "hunter22" not in call.arguments and call.parsed_arguments() is not None
    result = sanitize_runtime_stream_event(
        ToolResultEvent(call_id="c1", output={"rows": 2, "_cursor": "x", "debug": {"sql": "..."}})
    )
    assert result.output == {"rows": 2}
    err = sanitize_agent_runtime_event(
        ErrorEvent(
            code="backend.transport",
            message=f"401 for {key}",
            details={"raw": "body", "status": 401},
        )
    )
    assert isinstance(err, ErrorEvent) and key not in err.message and err.details == {"status": 401}
    as_dict = sanitize_agent_runtime_event({"type": "text.delta", "text": key, "_seq": 3})
    assert as_dict == {"type": "text.delta", "text": redaction_marker(key)}
    parse_event(as_dict)


def test_readiness_event_and_report() -> None:
    decision = KnowledgeReadinessDecision(
        outcome="blocked", reasons=("source postgres://svc:pw123456@db/x down",)
    )
    clean = sanitize_agent_runtime_event(ReadinessEvent(decision=decision))
    assert "pw123456" not in clean.decision.reasons[0]
    report = KnowledgeReadinessReport(
        available=("customer_id",),
        unavailable_sources=("https://admin:s3cret-pass@crm.internal/api",),
        notes=("looked up with ghp_" + "a" * 36,),
        provider="crm",
        internal={"query": "SELECT ...", "cost_ms": 12},
    )
    safe = sanitize_knowledge_readiness_report(report)
    assert isinstance(safe, KnowledgeReadinessReport) and safe.internal == {}
    assert "s3cret-pass" not in safe.unavailable_sources[0] and "ghp_" not in safe.notes[0]
    assert safe.available == ("customer_id",)
    safe_dict = sanitize_knowledge_readiness_report(report.to_dict())
    assert "internal" not in safe_dict


def test_bad_input_is_typed() -> None:
    with pytest.raises(InvalidArgumentError):
        sanitize_text(b"bytes")  # type: ignore[arg-type]
    with pytest.raises(InvalidArgumentError):
        sanitize_runtime_stream_event(object())
    with pytest.raises(InvalidArgumentError):
        sanitize_knowledge_readiness_report(42)
    with pytest.raises(InvalidArgumentError):
        sanitize_text("x", options={"fingerprint_key": b""})  # type: ignore[arg-type]
