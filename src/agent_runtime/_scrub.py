"""Secret scrubbing: credentials recognised by shape or by field name become stable markers.

Secrets are recognised by shape (provider key prefixes, JWTs, PEM private keys, bearer tokens,
passwords in URLs and in `password=`-style assignments) and by field name (`api_key`,
`password`, ...). Each is replaced by `[REDACTED:<8 hex>]`, a keyed hash of the secret, so the
same secret always maps to the same marker (logs can be correlated) without revealing it.
Ordinary prose, code, UUIDs, hashes and credential-free URLs pass through unchanged.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import orjson

from .errors import InvalidArgumentError

__all__ = [
    "DEFAULT_INTERNAL_KEYS",
    "DEFAULT_SECRET_KEYS",
    "SanitizeOptions",
    "contains_secret",
    "redaction_marker",
    "sanitize_json",
    "sanitize_text",
    "scrub_payload",
    "scrub_repeated_text",
]

_DEFAULT_KEY = b"durable-agent-runtime/redaction/v1"

DEFAULT_INTERNAL_KEYS: frozenset[str] = frozenset(
    ("internal", "debug", "raw", "traceback", "stack", "stacktrace", "stack_trace")
)
"""Keys dropped wherever they appear in free-form JSON (as are keys starting with `_`)."""

DEFAULT_SECRET_KEYS: frozenset[str] = frozenset(
    (
        "password", "passwd", "pwd", "secret", "apikey", "accesstoken", "refreshtoken",
        "authtoken", "idtoken", "sessiontoken", "authorization", "proxyauthorization",
        "clientsecret", "privatekey", "secretkey", "secretaccesskey", "cookie", "setcookie",
        "xapikey",
    )
)  # fmt: skip
"""Field names (lowercase, `-`/`_` removed) whose values are redacted whole; a name that
ends with one of them (`db_password`, `openai_api_key`) counts too."""

_NOT_MARKER = r"(?!\[REDACTED:)"
# an assignment whose value is a reference (env lookup, template, placeholder) is not a secret
_VALUE_END = r"(?![^\s\"',;}{)(\]\[])"
_NOT_REFERENCE = (
    r"(?!(?:process\.env|os\.environ|os\.getenv|getenv|env\.|settings\.|config\.|%\(|\{\{)"
    r"|(?-i:\$\{?[A-Z_][A-Z0-9_]*\}?)"
    + _VALUE_END
    + r"|<[A-Za-z0-9_\- ]+>"
    + _VALUE_END
    + r"|(?:none|null|true|false|undefined|required|optional|redacted|changeme)"
    + _VALUE_END
    + ")"
)

# (triggers, pattern): a pattern runs only when one of its lowercase trigger substrings occurs
# in the lowercased text, so text without any credential-like anchor costs a few `in` checks.
# Order matters: whole blocks first, then credentials inside URLs, provider keys, then the
# context rules (bearer, assignments). Each pattern's `s` group is the secret itself.
_RULES: tuple[tuple[tuple[str, ...], str], ...] = (
    # PEM private keys (RSA, EC, OPENSSH, ENCRYPTED, PGP ...), also when cut off
    (
        ("private key",),
        r"(?P<s>-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----"
        r"[\s\S]*?(?:-----END (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----|\Z))",
    ),
    # user:password@ after any scheme://
    (("://",), r"://[^\s:/@]*:" + _NOT_MARKER + r"(?P<s>[^\s/@]+(?:@[^\s/@]+)*)@"),
    (("sk-ant-",), r"\b(?P<s>sk-ant-[A-Za-z0-9_\-]{20,})"),
    (
        ("sk-",),
        r"(?<![A-Za-z0-9_\-])(?P<s>sk-(?:proj-|svcacct-|admin-|or-v1-)?[A-Za-z0-9_\-]{20,})",
    ),
    (("_live_", "_test_"), r"\b(?P<s>(?:sk|rk)_(?:live|test)_[A-Za-z0-9]{10,})"),
    (("whsec_",), r"\b(?P<s>whsec_[A-Za-z0-9+/=]{20,})"),
    (("akia", "asia", "abia", "acca"), r"\b(?P<s>(?:AKIA|ASIA|ABIA|ACCA)[A-Z0-9]{16})\b"),
    (("ghp_", "gho_", "ghu_", "ghs_", "ghr_"), r"\b(?P<s>gh[pousr]_[A-Za-z0-9]{30,})"),
    (("github_pat_",), r"\b(?P<s>github_pat_[A-Za-z0-9_]{22,})"),
    (("glpat-",), r"\b(?P<s>glpat-[A-Za-z0-9_\-]{20,})"),
    (("aiza",), r"\b(?P<s>AIza[0-9A-Za-z_\-]{35})"),
    (("ya29.",), r"\b(?P<s>ya29\.[0-9A-Za-z_\-]{20,})"),
    (("xox",), r"\b(?P<s>xox[abposre]-[A-Za-z0-9\-]{10,})"),
    (("hooks.slack.com",), r"(?P<s>https://hooks\.slack\.com/services/[A-Za-z0-9/_\-]+)"),
    (("hf_",), r"\b(?P<s>hf_[A-Za-z0-9]{30,})"),
    (("npm_",), r"\b(?P<s>npm_[A-Za-z0-9]{36})"),
    (("sg.",), r"\b(?P<s>SG\.[A-Za-z0-9_\-]{16,}\.[A-Za-z0-9_\-]{16,})"),
    # JSON Web Tokens: base64url header and payload both start with {"  (eyJ)
    (("eyj",), r"\b(?P<s>eyJ[A-Za-z0-9_\-]{5,}\.eyJ[A-Za-z0-9_\-]{5,}\.[A-Za-z0-9_\-]*)"),
    # Bearer <token>, and any Authorization: [scheme] <credential>
    (
        ("bearer",),
        r"(?i)\bbearer\s+" + _NOT_MARKER + r"(?=\S*[0-9._~+/\-])(?P<s>[A-Za-z0-9._~+/\-]{16,}=*)",
    ),
    (
        ("authorization",),
        r"(?i)\b(?:proxy-)?authorization[\"']?\s*[:=]\s*[\"']?(?:basic\s+|token\s+|bearer\s+)?"
        + _NOT_MARKER
        + r"(?P<s>[A-Za-z0-9._~+/\-]{8,}=*)",
    ),
    # password = "...", api_key: ..., "client_secret": "...", also with a prefix as in
    # DB_PASSWORD= or AWS_SECRET_ACCESS_KEY=; a quoted value is taken whole (up to its closing
    # quote, escapes included), so passphrases with spaces or commas do not leak in part
    (
        ("pass", "pwd", "secret", "key", "token"),
        r"(?i)(?:password|passwd|pwd|secret|api[_\-]?key|access[_\-]?token|auth[_\-]?token|"
        r"refresh[_\-]?token|client[_\-]?secret|secret[_\-]?access[_\-]?key|private[_\-]?key)"
        r"[\"']?\s*[:=]\s*(?P<q>[\"'])?"
        + _NOT_MARKER
        + _NOT_REFERENCE
        + r"(?P<s>(?(q)(?:(?!(?P=q))[^\n\\]|\\.){4,}|[^\s\"',;}{)(\]\[]{4,}))",
    ),
)
_ASSIGNMENT = _RULES[-1][1]
# The assignment rule's keywords all end with one of these (case-insensitively, as the rule).
_KEY_TAIL = re.compile(r"(?i)(?:password|passwd|pwd|secret|key|token)\Z")
_KEY_TAIL_CHARS = 8  # the longest tail: a case-folded match is one character per character
_ASSIGN_MARK = re.compile(r"[:=]")


def may_assign(text: str) -> bool:
    """Whether the assignment rule can match `text`: some `:` or `=` follows, after optional
    whitespace and one optional quote, a keyword tail. A necessary condition, checked with
    a cheap scan instead of the rule's case-insensitive alternation at every position (most
    prose that says "token" or "key" has no assignment at all)."""
    for mark in _ASSIGN_MARK.finditer(text):
        i = mark.start()
        while i > 0 and text[i - 1].isspace():  # `\s*` (str.isspace is what `\s` matches)
            i -= 1
        if i > 0 and text[i - 1] in "\"'":  # the optional quote after the keyword
            i -= 1
        if _KEY_TAIL.search(text, max(0, i - _KEY_TAIL_CHARS), i) is not None:
            return True
    return False


_PATTERNS: tuple[tuple[frozenset[str], re.Pattern[str], Callable[[str], bool] | None], ...] = tuple(
    (frozenset(triggers), re.compile(pattern), may_assign if pattern is _ASSIGNMENT else None)
    for triggers, pattern in _RULES
)
_ALL_TRIGGERS = sorted({t for triggers, _ in _RULES for t in triggers}, key=len, reverse=True)
# one scan finds every anchor; a found trigger also counts for the triggers it contains
# (`sk-ant-` contains `sk-`), since the scan reports non-overlapping matches only
_TRIGGER_SCAN = re.compile("|".join(re.escape(t) for t in _ALL_TRIGGERS))
_IMPLIED: dict[str, frozenset[str]] = {
    t: frozenset(u for u in _ALL_TRIGGERS if u in t) for t in _ALL_TRIGGERS
}
_MARKER = re.compile(r"\[REDACTED:[0-9a-f]{8}\]")


@dataclass(frozen=True, slots=True)
class SanitizeOptions:
    """What to strip. `fingerprint_key` keys the hash behind `[REDACTED:...]` markers: set a
    deployment secret so low-entropy passwords cannot be guessed from their marker."""

    fingerprint_key: bytes = _DEFAULT_KEY
    internal_keys: frozenset[str] = DEFAULT_INTERNAL_KEYS
    secret_keys: frozenset[str] = DEFAULT_SECRET_KEYS
    drop_underscore_keys: bool = True
    extra_patterns: tuple[re.Pattern[str], ...] = field(default=())


_DEFAULT_OPTIONS = SanitizeOptions()


def _opts(options: SanitizeOptions | None) -> SanitizeOptions:
    if options is None:
        return _DEFAULT_OPTIONS
    if not isinstance(options, SanitizeOptions):
        raise InvalidArgumentError("must be SanitizeOptions", path="options")
    return options


def redaction_marker(secret: str, options: SanitizeOptions | None = None) -> str:
    """`[REDACTED:<first 8 hex of HMAC-SHA256(key, secret)>]`: stable for equal secrets."""
    digest = hmac.new(_opts(options).fingerprint_key, secret.encode(), hashlib.sha256)
    return f"[REDACTED:{digest.hexdigest()[:8]}]"


_SCAN_AT_MOST = 256


def _triggers_in(lowered: str) -> set[str]:
    """The anchors present: one regex scan for short text; for long text a substring search
    per anchor, which is several times cheaper than the alternation at every position."""
    if len(lowered) > _SCAN_AT_MOST:
        return {t for t in _ALL_TRIGGERS if t in lowered}
    present: set[str] = set()
    for t in _TRIGGER_SCAN.findall(lowered):
        present |= _IMPLIED[t]
    return present


def sanitize_text(text: str, options: SanitizeOptions | None = None) -> str:
    """`text` with every recognised secret replaced by its marker; idempotent."""
    if not isinstance(text, str):
        raise InvalidArgumentError("must be a string", path="text")
    opts = _opts(options)

    def replace(m: re.Match[str]) -> str:
        names = m.re.groupindex
        start, end = m.span("s") if "s" in names else m.span()
        secret = m.string[start:end]
        if _MARKER.fullmatch(secret):
            return m.group(0)
        whole_start = m.start()
        return (
            m.string[whole_start:start] + redaction_marker(secret, opts) + m.string[end : m.end()]
        )

    present = _triggers_in(text.lower())
    if present:
        for triggers, pattern, gate in _PATTERNS:
            if not triggers.isdisjoint(present) and (gate is None or gate(text)):
                text = pattern.sub(replace, text)
    for pattern in opts.extra_patterns:
        text = pattern.sub(replace, text)
    return text


def contains_secret(text: str, options: SanitizeOptions | None = None) -> bool:
    """True when `sanitize_text` would change `text`."""
    return sanitize_text(text, options) != text


def _normal_key(key: str) -> str:
    return key.lower().replace("-", "").replace("_", "")


@lru_cache(maxsize=4096)
def _is_secret_key(key: str, secret_keys: frozenset[str]) -> bool:
    """A field name that is, or ends with, a secret name (`password`, `DB_PASSWORD`,
    `openai_api_key`, `Set-Cookie`)."""
    normal = _normal_key(key)
    return normal in secret_keys or any(normal.endswith(name) for name in secret_keys)


# header-like objects: {"name": "Authorization", "value": "..."} (HAR, many HTTP tools)
_PAIR_NAME_KEYS = ("name", "key", "header")


def sanitize_json(value: Any, options: SanitizeOptions | None = None) -> Any:
    """A sanitized copy of a JSON value: internal keys dropped, values of secret-named keys
    redacted whole (strings and numbers, also inside lists and objects), secrets inside every
    other string redacted. A string under an `arguments` key that holds JSON (tool calls) is
    sanitized as JSON, so its secret-named fields are redacted too."""
    opts = _opts(options)
    return _walk(value, opts)


def _redact(value: Any, opts: SanitizeOptions) -> Any:
    """Every string and number of a value under a secret-named key, replaced by a marker."""
    t = type(value)
    if t is str:
        return value if not value or _MARKER.fullmatch(value) else redaction_marker(value, opts)
    if t is int or t is float:
        return redaction_marker(str(value), opts)
    if t is dict or isinstance(value, Mapping):
        return {
            k: _redact(v, opts)
            for k, v in value.items()
            if not (isinstance(k, str) and _internal(k, opts))
        }
    if isinstance(value, list | tuple):
        return [_redact(v, opts) for v in value]
    return value


def _internal(key: str, opts: SanitizeOptions) -> bool:
    return (opts.drop_underscore_keys and key.startswith("_")) or key.lower() in opts.internal_keys


def scrub_payload(value: Any, options: SanitizeOptions | None = None) -> Any:
    """`sanitize_json` of a payload; a payload that is itself JSON text (tool arguments as the
    model streamed them) is scrubbed by its structure and kept verbatim when nothing changes."""
    opts = _opts(options)
    if type(value) is str:
        return _json_text(value, opts)
    return _walk(value, opts)


def _json_text(text: str, opts: SanitizeOptions) -> str:
    """Tool-call arguments: JSON is sanitized by structure (kept verbatim when nothing
    changes), anything else by the text rules."""
    head = text.lstrip()[:1]
    if head == "{" or head == "[":
        try:
            parsed = orjson.loads(text)
        except orjson.JSONDecodeError:
            pass
        else:
            clean = _walk(parsed, opts)
            return text if clean == parsed else orjson.dumps(clean).decode()
    return sanitize_text(text, opts)


_CACHED_TEXT_MAX = 256


@lru_cache(maxsize=8192)
def _default_text(text: str) -> str:
    return sanitize_text(text, _DEFAULT_OPTIONS)


def scrub_repeated_text(text: str, options: SanitizeOptions | None = None) -> str:
    """`sanitize_text`, remembered for short strings under the default options: the ids,
    intents, backend kinds and session times of telemetry repeat on every event of a run."""
    if (options is None or options is _DEFAULT_OPTIONS) and len(text) <= _CACHED_TEXT_MAX:
        return _default_text(text)
    return sanitize_text(text, options)


_PLAIN, _DROP, _SECRET = 0, 1, 2
_DEFAULT_KEY_KINDS: dict[str, int] = {}


def _key_kind(key: str, opts: SanitizeOptions) -> int:
    """Whether a field is kept as is, dropped (internal) or redacted whole (secret-named);
    remembered for the default options, since the same few keys repeat."""
    if opts is _DEFAULT_OPTIONS:
        kind = _DEFAULT_KEY_KINDS.get(key)
        if kind is not None:
            return kind
    if (opts.drop_underscore_keys and key.startswith("_")) or key.lower() in opts.internal_keys:
        kind = _DROP
    elif _is_secret_key(key, opts.secret_keys):
        kind = _SECRET
    else:
        kind = _PLAIN
    if opts is _DEFAULT_OPTIONS and len(_DEFAULT_KEY_KINDS) < 4096:
        _DEFAULT_KEY_KINDS[key] = kind
    return kind


def _walk(value: Any, opts: SanitizeOptions) -> Any:
    t = type(value)
    if t is str:
        return scrub_repeated_text(value, opts)
    if t is int or t is float or t is bool or value is None:
        return value
    if t is dict or isinstance(value, Mapping):
        out: dict[Any, Any] = {}
        for k, v in value.items():
            if type(k) is str:
                kind = _key_kind(k, opts)
                if kind == _DROP:
                    continue
                if kind == _SECRET:
                    out[k] = _redact(v, opts)
                    continue
                if k == "arguments" and type(v) is str:
                    out[k] = _json_text(v, opts)
                    continue
            out[k] = _walk(v, opts)
        if "value" in out:
            for name_key in _PAIR_NAME_KEYS:
                name = out.get(name_key)
                if isinstance(name, str) and _is_secret_key(name, opts.secret_keys):
                    out["value"] = _redact(out["value"], opts)
                    break
        return out
    if t is list or t is tuple:
        items = [_walk(v, opts) for v in value]
        for i, item in enumerate(items):
            # [["Authorization", "Basic ..."], ...]: a header list of name/value pairs
            if (
                type(item) is list
                and len(item) == 2
                and isinstance(item[0], str)
                and _is_secret_key(item[0], opts.secret_keys)
            ):
                items[i] = [item[0], _redact(item[1], opts)]
        return items
    to_dict = getattr(value, "to_dict", None)
    if callable(to_dict) and not isinstance(value, type):
        return _walk(to_dict(), opts)  # a record: its wire form
    if isinstance(value, str):
        return scrub_repeated_text(str(value), opts)
    if isinstance(value, list | tuple):
        return _walk(list(value), opts)
    return value
