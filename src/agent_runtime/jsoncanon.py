"""Strict JSON: validation, compact encoding and canonical hashing.

Everything that crosses a store or the wire goes through here, so a NaN, a set or a stray
object is refused with a `DurableValueError` naming the exact path of the bad value
(`input.items[3].price`) before anything is written.
"""

from __future__ import annotations

import hashlib
import itertools
import math
from typing import Any, TypeAlias

import orjson

from .errors import DurableValueError

__all__ = [
    "JSONValue",
    "canonical_hash",
    "canonical_json",
    "dumps_json",
    "dumps_json_texts",
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


# orjson refuses, with these, every type strict JSON refuses (subclasses of str, int, dict
# and list; dataclasses; datetimes; anything else unknown), non-str keys, integers beyond 64
# bits, lone surrogates, cycles and nesting past 255 levels. It still writes four things that
# are not JSON values: non-finite floats (as null), enum members (as their value), UUIDs (as
# strings) and `orjson.Fragment`s (as raw text); `_written_strict` looks for those after.
_STRICT = orjson.OPT_PASSTHROUGH_SUBCLASS | orjson.OPT_PASSTHROUGH_DATACLASS
_STRICT |= orjson.OPT_PASSTHROUGH_DATETIME
_PLAIN = frozenset((str, int, bool, type(None)))
_KNOWN = _PLAIN | frozenset((dict, list, tuple, float))
_dumps = orjson.dumps
_isfinite = math.isfinite
_chain = itertools.chain.from_iterable


def _written_strict(level: list[Any]) -> bool:
    """After orjson wrote every value of `level`: True unless one of them holds what orjson
    writes but strict JSON refuses. Checked a depth at a time, the types of a whole depth in
    one set, so flat values cost a few C calls however many there are. (The tree is finite
    and acyclic: orjson just walked it.)"""
    while level:
        types = set(map(type, level))
        if types <= _PLAIN:
            return True
        if not types <= _KNOWN:
            return False
        if float in types and not all(map(_isfinite, [v for v in level if type(v) is float])):
            return False
        deeper: list[Any] = []
        if dict in types:
            if len(types) == 1:  # only objects (a batch of payloads): often flat ones
                if set(map(type, _chain(map(dict.values, level)))) <= _PLAIN:
                    return True
                dicts = level
            else:
                dicts = [v for v in level if type(v) is dict]
            deeper.extend(_chain(map(dict.values, dicts)))
        if list in types or tuple in types:
            deeper.extend(_chain([v for v in level if type(v) is list or type(v) is tuple]))
        level = deeper
    return True


def _explain(value: Any, root: str) -> None:
    """Raise the `DurableValueError` naming the first bad value's path (the slow path)."""
    try:
        _walk(value, root)
        _find_bad_string(value, root)
    except RecursionError:  # a container that holds itself, or absurd nesting
        raise DurableValueError(
            "value is nested too deeply or contains itself", path=root
        ) from None


def _encode(value: Any, root: str, option: int) -> bytes:
    try:
        out = _dumps(value, None, option | _STRICT)
    except orjson.JSONEncodeError as exc:
        _explain(value, root)
        raise DurableValueError(str(exc), path=root) from None
    if type(value) not in _PLAIN and not _written_strict([value]):
        _explain(value, root)
        raise DurableValueError("value is not strict JSON", path=root)  # _explain raised
    return out


def dumps_json_texts(values: list[Any]) -> list[str] | None:
    """Compact JSON text of each value (as `dumps_json(v).decode()`), checked in bulk; None
    when any value is not strict JSON (`dumps_json` on each then names the bad path)."""
    try:
        texts = [_dumps(v, None, _STRICT).decode() for v in values]
    except orjson.JSONEncodeError:
        return None
    return texts if _written_strict(values) else None


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
