"""Secret scrubbing both ways: generated secrets in prose never survive; ordinary text is
unchanged; markers are stable and keyed."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agent_runtime import _scrub
from agent_runtime.errors import InvalidArgumentError
from agent_runtime.sanitize import (
    SanitizeOptions,
    contains_secret,
    redaction_marker,
    sanitize_json,
    sanitize_text,
)
from tests.support.secret_strategies import ALNUM, MARKER, PROSE, SECRETS, chars


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


def test_bad_input_is_typed() -> None:
    with pytest.raises(InvalidArgumentError):
        sanitize_text(b"bytes")  # type: ignore[arg-type]
    with pytest.raises(InvalidArgumentError):
        sanitize_text("x", options={"fingerprint_key": b""})  # type: ignore[arg-type]
    with pytest.raises(InvalidArgumentError):
        sanitize_json({"a": 1}, options="default")  # type: ignore[arg-type]


@settings(max_examples=100)
@given(SECRETS, st.integers(0, 40))
def test_secrets_inside_long_text_never_survive(secret: str, at: int) -> None:
    filler = "The quarterly numbers improved; see https://example.com/r?q=1 for details. "
    text = filler * at + secret + " " + filler * (40 - at)
    assert len(text) > 256, "long text takes the per-anchor search"
    out = sanitize_text(text)
    assert secret not in out and MARKER.search(out)
    assert out.startswith(filler * at) and out.endswith(filler * (40 - at))
    assert sanitize_text(filler * 40) == filler * 40


_ASSIGNMENT_RULE = re.compile(_scrub._ASSIGNMENT)
# keyword pieces, separators, quotes, whitespace (Unicode too) and the four non-ASCII letters
# that case-insensitive matching folds onto ASCII ones (U+0130, U+0131, U+017F, U+212A)
_ASSIGN_PIECES = st.sampled_from(
    ["password", "PassWd", "pwd", "secret", "api_key", "API-KEY", "apikey", "access_token",
     "auth-token", "refresh_token", "client_secret", "secret_access_key", "private-key",
     "key", "token", "Token", "pa\u017fsword", "\u212aey", "s\u0131", "\u0130", "word", "wd",
     ":", "=", " ", "  ", "\t", "\n", "\u00a0", "\u2003", '"', "'", "x", "hunter2", "$X",
     "<k>", "null", ",", "[REDACTED:0123abcd]"]
)  # fmt: skip


_KEYWORDS = st.sampled_from(
    ["password", "passwd", "pwd", "secret", "api_key", "api-key", "apikey", "access_token",
     "authtoken", "refresh-token", "client_secret", "secret_access_key", "private_key"]
)  # fmt: skip
_FOLDS = {"s": "\u017f", "k": "\u212a", "i": "\u0131"}


@st.composite
def _assignments(draw: st.DrawFn) -> str:
    """`keyword [quote] [space] (: or =) [space] [quote] value` in random case, with folded
    letters, inside random pieces."""
    word = "".join(draw(st.sampled_from([c, c.upper(), _FOLDS.get(c, c)])) for c in draw(_KEYWORDS))
    space = st.sampled_from(["", " ", "  ", "\t", "\u00a0", "\u2003", "\n"])
    quote = st.sampled_from(["", '"', "'"])
    parts = [
        draw(st.lists(_ASSIGN_PIECES, max_size=4).map("".join)),
        word,
        draw(quote),
        draw(space),
        draw(st.sampled_from([":", "="])),
        draw(space),
        draw(quote),
        draw(st.sampled_from(["hunter22", "a b c d", "sk1234567890", "$X", "null", "x"])),
        draw(st.lists(_ASSIGN_PIECES, max_size=4).map("".join)),
    ]
    return "".join(parts)


@settings(max_examples=600)
@given(st.one_of(st.lists(_ASSIGN_PIECES, max_size=12).map("".join), _assignments()))
def test_the_assignment_gate_never_skips_text_the_rule_matches(text: str) -> None:
    if _ASSIGNMENT_RULE.search(text) is not None:
        assert _scrub.may_assign(text), text


@pytest.mark.parametrize(
    "text",
    [
        'password = "hunter2 xyz"',
        "api_key: sk12345678",
        'client_secret"  :  abcd1234',
        "pa\u017fsword=hunter22",
        "\u212aEY: x",
        "secret_access_key\u2003=\u00a0abcd",
    ],
)
def test_the_assignment_gate_passes_assignments(text: str) -> None:
    assert _scrub.may_assign(text)


@pytest.mark.parametrize(
    "text", ["The key idea passes by: a token of trust.", "ratio = 3", "no marks at all"]
)
def test_the_assignment_gate_skips_prose_without_assignments(text: str) -> None:
    assert not _scrub.may_assign(text) and sanitize_text(text) == text
