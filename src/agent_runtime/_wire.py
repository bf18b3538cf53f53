"""The wire codec of our records: frozen dataclasses to the original's camelCase JSON and back.

A record class derives from `WireRecord`; its fields map to camelCase keys (`required_for` →
`requiredFor`, `pass_` → `pass`; `field(metadata={"wire": ...})` overrides). `to_dict()` leaves
out optional fields that are None, as the original leaves out undefined keys. `from_dict()`
checks every value against the field's annotation and raises `EventParseError` naming the path
(`final.session.createdAt`), so a malformed record never becomes a half-valid object.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from collections.abc import Callable, Mapping
from typing import Any, ClassVar, Literal, TypeVar, Union

from .errors import AgentRuntimeError, DurableValueError, EventParseError
from .jsoncanon import ensure_json

__all__ = ["WireRecord", "camel", "check_json", "decoder_for"]

_R = TypeVar("_R", bound="WireRecord")
_Decode = Callable[[Any, str], Any]
_Encode = Callable[[Any], Any]


def camel(name: str) -> str:
    """`required_for` → `requiredFor`; a trailing underscore (`pass_`) is dropped."""
    head, *rest = name.rstrip("_").split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


#: what a JSON number written by our encoder can hold (as `jsoncanon`)
_INT_MIN, _INT_MAX = -(2**63), 2**64 - 1
#: nesting kept free above a payload for the records around it (the deepest is event → control
#: → steps → step → evalsBefore → eval → evidence), so what parses also serializes: the
#: encoder stops at 255 levels
_PAYLOAD_ROOM = 16


def check_json(value: Any, where: str) -> Any:
    """`value` when it is strict JSON nested shallowly enough to be written again inside its
    record, else `EventParseError` naming where it is not."""
    probe = value
    if type(value) is dict or type(value) is list:
        for _ in range(_PAYLOAD_ROOM):
            probe = [probe]
    try:
        ensure_json(probe, root=where)  # one walk and one encode, with the room included
    except (DurableValueError, RecursionError):
        try:
            ensure_json(value, root=where)  # the precise complaint, when there is one
        except DurableValueError as exc:
            raise EventParseError(str(exc)) from None
        except RecursionError:
            pass
        raise EventParseError(f"{where} is nested too deeply") from None
    return value


def _fail(where: str, what: str, value: Any) -> EventParseError:
    return EventParseError(f"{where} must be {what}, got {type(value).__name__}")


def _dec_str(v: Any, where: str) -> str:
    if type(v) is not str:
        raise _fail(where, "a string", v)
    if not v.isascii():
        try:
            v.encode("utf-8")
        except UnicodeEncodeError:
            raise EventParseError(f"{where} contains a lone surrogate (no JSON string)") from None
    return v


def _dec_bool(v: Any, where: str) -> bool:
    if type(v) is not bool:
        raise _fail(where, "a boolean", v)
    return v


def _dec_int(v: Any, where: str) -> int:
    if type(v) is not int:
        raise _fail(where, "an integer", v)
    if not _INT_MIN <= v <= _INT_MAX:
        raise EventParseError(f"{where} does not fit in 64 bits")
    return v


def _dec_float(v: Any, where: str) -> float:
    if type(v) not in (int, float) or not math.isfinite(v):
        raise _fail(where, "a finite number", v)
    # a JSON number stays as written (1 stays 1): the wire has one number type, and an int
    # is a valid float in Python's typing, so a record re-encodes byte for byte
    if type(v) is int and not -(2**63) <= v < 2**64:
        raise _fail(where, "a number within 64 bits", v)
    return v  # type: ignore[no-any-return]


def _dec_any(v: Any, where: str) -> Any:
    return check_json(v, where)


def _dec_mapping(v: Any, where: str) -> dict[str, Any]:
    if type(v) is not dict:
        raise _fail(where, "an object", v)
    return dict(check_json(v, where))


def _literal(values: tuple[Any, ...]) -> _Decode:
    allowed = frozenset(values)
    listed = ", ".join(repr(x) for x in values)

    def dec(v: Any, where: str) -> Any:
        if type(v) is not str or v not in allowed:
            raise EventParseError(f"{where} must be one of {listed}, got {v!r}")
        return v

    return dec


def _optional(inner: _Decode) -> _Decode:
    def dec(v: Any, where: str) -> Any:
        return None if v is None else inner(v, where)

    return dec


def _tuple_of(inner: _Decode) -> _Decode:
    def dec(v: Any, where: str) -> tuple[Any, ...]:
        if type(v) is not list:
            raise _fail(where, "a list", v)
        return tuple(inner(item, f"{where}[{i}]") for i, item in enumerate(v))

    return dec


def _dict_of(inner: _Decode) -> _Decode:
    def dec(v: Any, where: str) -> dict[str, Any]:
        if type(v) is not dict:
            raise _fail(where, "an object", v)
        return {str(k): inner(item, f"{where}.{k}") for k, item in v.items()}

    return dec


def _union(options: list[_Decode]) -> _Decode:
    def dec(v: Any, where: str) -> Any:
        last: EventParseError | None = None
        for option in options:
            try:
                return option(v, where)
            except EventParseError as exc:
                last = exc
        assert last is not None
        raise last

    return dec


_SIMPLE: dict[Any, _Decode] = {
    str: _dec_str,
    bool: _dec_bool,
    int: _dec_int,
    float: _dec_float,
    Any: _dec_any,
    object: _dec_any,
}


def decoder_for(tp: Any) -> _Decode:
    """A checking decoder for one annotation (str, int, Literal, X | None, tuple[X, ...],
    Mapping[str, Any], a `WireRecord` class, Any)."""
    if tp in _SIMPLE:
        return _SIMPLE[tp]
    if isinstance(tp, type) and issubclass(tp, WireRecord):
        return tp._decode_at
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin is Literal:
        return _literal(args)
    if origin is Union or origin is types.UnionType:
        rest = [a for a in args if a is not type(None)]
        inner = decoder_for(rest[0]) if len(rest) == 1 else _union([decoder_for(a) for a in rest])
        return _optional(inner) if len(rest) < len(args) else inner
    if origin is tuple:
        return _tuple_of(decoder_for(args[0]))
    if origin in (dict, Mapping, typing.Mapping) or tp in (dict, Mapping):
        if args and args[1] is not Any:
            return _dict_of(decoder_for(args[1]))
        return _dec_mapping
    if origin is list:
        return _tuple_of(decoder_for(args[0]))
    raise TypeError(f"no wire decoder for {tp!r}")


def _encode_value(v: Any) -> Any:
    if isinstance(v, WireRecord):
        return v.to_dict()
    if type(v) is tuple or type(v) is list:
        return [_encode_value(x) for x in v]
    if isinstance(v, Mapping) and type(v) is not dict:
        return {k: _encode_value(x) for k, x in v.items()}
    return v


class _Plan:
    """Per-class encode/decode tables, built once on first use."""

    __slots__ = ("decoders", "keys", "required", "simple")

    def __init__(self, cls: type[WireRecord]) -> None:
        hints = typing.get_type_hints(cls)
        self.keys: list[tuple[str, str, bool]] = []  # (attribute, wire key, omit when None)
        self.decoders: dict[str, tuple[str, _Decode]] = {}
        self.required: list[str] = []
        self.simple: list[bool] = []
        for f in dataclasses.fields(cls):  # type: ignore[arg-type]
            if not f.init or f.name.startswith("_"):
                continue
            key = f.metadata.get("wire", camel(f.name))
            tp = hints[f.name]
            optional = f.default is None
            self.keys.append((f.name, key, optional))
            self.decoders[key] = (f.name, decoder_for(tp))
            origin = typing.get_origin(tp)
            self.simple.append(tp in (str, int, float, bool) or origin is Literal)
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                self.required.append(key)


class WireRecord:
    """Mixin of the frozen dataclasses that cross the wire (see the module docstring)."""

    __slots__ = ()
    _plan: ClassVar[_Plan | None] = None
    #: the `type` tag written first, for event classes
    TYPE: ClassVar[str | None] = None

    @classmethod
    def _get_plan(cls) -> _Plan:
        plan = cls.__dict__.get("_plan")
        if plan is None:
            plan = _Plan(cls)
            cls._plan = plan
        return plan

    def to_dict(self) -> dict[str, Any]:
        """The wire form: camelCase keys, optional None fields left out, records nested."""
        plan = type(self)._get_plan()
        out: dict[str, Any] = {} if self.TYPE is None else {"type": self.TYPE}
        for (name, key, optional), simple in zip(plan.keys, plan.simple, strict=True):
            v = getattr(self, name)
            if v is None:
                if optional:
                    continue
                out[key] = None
            elif simple:
                out[key] = v
            else:
                out[key] = _encode_value(v)
        return out

    @classmethod
    def from_dict(cls: type[_R], data: Any) -> _R:
        """The checking inverse of `to_dict` (`EventParseError` on anything malformed)."""
        where = cls.TYPE or cls.__name__
        return cls._decode_at(data, where)

    @classmethod
    def _decode_at(cls: type[_R], data: Any, where: str) -> _R:
        if type(data) is not dict:
            raise _fail(where, "an object", data)
        plan = cls._get_plan()
        kwargs: dict[str, Any] = {}
        for key, value in data.items():
            if key == "type" and cls.TYPE is not None:
                if value != cls.TYPE:
                    raise EventParseError(f"{where}.type must be {cls.TYPE!r}")
                continue
            entry = plan.decoders.get(key)
            if entry is None:
                raise EventParseError(f"{where}: unknown field {key!r}")
            name, dec = entry
            kwargs[name] = dec(value, f"{where}.{key}")
        for key in plan.required:
            if key not in data:
                raise EventParseError(f"{where}: missing field {key!r}")
        try:
            return cls(**kwargs)
        except EventParseError:
            raise
        except (TypeError, ValueError, AgentRuntimeError) as exc:
            raise EventParseError(f"{where}: {exc}") from None
