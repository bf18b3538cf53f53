"""Hypothesis strategies shared by the sanitizer tests: generated secrets of every recognised
shape, and ordinary prose that must pass unchanged."""

from __future__ import annotations

import base64
import re
import string

import orjson
from hypothesis import strategies as st

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
