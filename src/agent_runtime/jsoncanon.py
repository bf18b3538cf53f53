"""Strict JSON: validation, compact encoding and canonical hashing.

Everything that crosses a store or the wire goes through here, so a NaN, a set or a stray
object is refused with a `DurableValueError` naming the exact path of the bad value
(`input.items[3].price`) before anything is written.
"""

from __future__ import annotations

import hashlib
import math
from typing import Any, TypeAlias

import orjson

from .errors import DurableValueError

__all__ = [
    "JSONValue",
    "canonical_hash",
    "canonical_json",
    "dumps_json",
    "ensure_json",
    "loads_json",
]

JSONValue: TypeAlias = "dict[str, JSONValue] | list[JSONValue] | str | int | float | bool | None"

_INT_MIN = -(2**63)
_INT_MAX = 2**64 - 1


def _child(path: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    if key.isidentifier():
        return f"{path}.{key}"
    return f"{path}[{orjson.dumps(key).decode()}]"


def _check_str(value: str, path: str) -> None:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise DurableValueError("string contains a lone surrogate", path=path) from None


def _walk(value: Any, path: str) -> None:
    t = type(value)
    if t is str:
        return
    if t is int or t is bool or value is None:
        if t is int and not (_INT_MIN <= value <= _INT_MAX):
            raise DurableValueError("integer does not fit in 64 bits", path=path)
        return
    if t is float:
        if not math.isfinite(value):
            raise DurableValueError(f"{value!r} is not valid JSON", path=path)
        return
    if t is dict:
        for k, v in value.items():
            if type(k) is not str:
                raise DurableValueError(
                    f"object key {k!r} is a {type(k).__name__}, keys must be strings", path=path
                )
            _walk(v, _child(path, k))
        return
    if t is list or t is tuple:
        for i, v in enumerate(value):
            _walk(v, _child(path, i))
        return
    raise DurableValueError(f"{t.__name__} is not a JSON value", path=path)


def _find_bad_string(value: Any, path: str) -> None:
    """Slow path after the encoder refused a value the walk accepted (lone surrogates)."""
    if type(value) is str:
        _check_str(value, path)
    elif type(value) is dict:
        for k, v in value.items():
            _check_str(k, path)
            _find_bad_string(v, _child(path, k))
    elif type(value) in (list, tuple):
        for i, v in enumerate(value):
            _find_bad_string(v, _child(path, i))


def _valid(value: Any) -> bool:
    """Fast check without path bookkeeping; `_walk` re-runs only to explain a failure."""
    t = type(value)
    if t is str or t is bool or value is None:
        return True
    if t is int:
        return bool(_INT_MIN <= value <= _INT_MAX)
    if t is float:
        return math.isfinite(value)
    # explicit loops: measurably faster than all() over a generator on this hot path
    if t is dict:
        for k, v in value.items():  # noqa: SIM110
            if type(k) is not str or not _valid(v):
                return False
        return True
    if t is list or t is tuple:
        for v in value:  # noqa: SIM110
            if not _valid(v):
                return False
        return True
    return False


def _encode(value: Any, root: str, option: int) -> bytes:
    try:
        if not _valid(value):
            _walk(value, root)
    except RecursionError:  # a container that holds itself, or absurd nesting
        raise DurableValueError(
            "value is nested too deeply or contains itself", path=root
        ) from None
    try:
        return orjson.dumps(value, option=option)
    except orjson.JSONEncodeError as exc:
        _find_bad_string(value, root)
        raise DurableValueError(str(exc), path=root) from None


def ensure_json(value: Any, *, root: str = "$") -> None:
    """Raise `DurableValueError` unless `value` is strict JSON (finite numbers, str keys)."""
    _encode(value, root, 0)


def dumps_json(value: Any, *, root: str = "$") -> bytes:
    """Validated compact JSON bytes, keys kept in their given order."""
    return _encode(value, root, 0)


def loads_json(data: bytes | str) -> Any:
    """Parse JSON text produced by `dumps_json` or `canonical_json`."""
    return orjson.loads(data)


def canonical_json(value: Any, *, root: str = "$") -> str:
    """Canonical JSON text: sorted keys, no whitespace, arrays in order."""
    return _encode(value, root, orjson.OPT_SORT_KEYS).decode()


def canonical_hash(value: Any, *, root: str = "$") -> str:
    """sha256 hex digest of `canonical_json(value)`: equal for equal JSON, whatever key order."""
    return hashlib.sha256(_encode(value, root, orjson.OPT_SORT_KEYS)).hexdigest()
