"""Agent profiles: a base profile, a per-turn overlay, and a conformance check against policy.

An overlay may narrow a profile (fewer tools, lower limits, extra instructions) but never grant
a tool the base profile lacks, so a per-turn request cannot widen what an agent may do.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from .errors import DurableValueError, InvalidArgumentError, ModelCatalogError
from .jsoncanon import dumps_json, loads_json
from .models import validate_chat_model_id

__all__ = [
    "AgentProfile",
    "ConformanceIssue",
    "ConformanceOptions",
    "ConformanceResult",
    "TurnProfileOverlay",
    "assert_profile_conformance",
    "compose_turn_profile",
]

_PROFILE_KEYS = frozenset(
    ("name", "instructions", "model", "tools", "temperature", "max_output_tokens", "metadata")
)


def _json_obj(value: Any, path: str) -> dict[str, Any]:
    if not isinstance(value, Mapping):
        raise InvalidArgumentError("must be a JSON object", path=path)
    try:
        return loads_json(dumps_json(dict(value), root=path))  # type: ignore[no-any-return]
    except DurableValueError as exc:
        raise InvalidArgumentError(exc.reason, path=exc.path) from None


def _tools(value: Any, path: str) -> tuple[str, ...]:
    if isinstance(value, str) or not isinstance(value, Iterable):
        raise InvalidArgumentError("must be a list of tool names", path=path)
    out = tuple(value)
    for i, t in enumerate(out):
        if not isinstance(t, str) or not t:
            raise InvalidArgumentError("must be a non-empty string", path=f"{path}[{i}]")
    return out


def _opt_number(value: Any, path: str) -> float | None:
    if value is None:
        return None
    if type(value) not in (int, float) or not math.isfinite(value):
        raise InvalidArgumentError("must be a finite number", path=path)
    return float(value)


def _opt_int(value: Any, path: str) -> int | None:
    if value is None:
        return None
    if type(value) is not int or value <= 0:
        raise InvalidArgumentError("must be an int > 0", path=path)
    return value


def _opt_str(value: Any, path: str) -> str | None:
    if value is not None and not isinstance(value, str):
        raise InvalidArgumentError("must be a string", path=path)
    return value


@dataclass(frozen=True, slots=True)
class AgentProfile:
    """How an agent runs: instructions, model, the tools it may call and sampling limits."""

    name: str
    instructions: str = ""
    model: str | None = None
    tools: tuple[str, ...] = ()
    temperature: float | None = None
    max_output_tokens: int | None = None
    metadata: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise InvalidArgumentError("must be a non-empty string", path="profile.name")
        if not isinstance(self.instructions, str):
            raise InvalidArgumentError("must be a string", path="profile.instructions")
        _opt_str(self.model, "profile.model")
        object.__setattr__(self, "tools", _tools(self.tools, "profile.tools"))
        object.__setattr__(
            self, "temperature", _opt_number(self.temperature, "profile.temperature")
        )
        _opt_int(self.max_output_tokens, "profile.max_output_tokens")
        object.__setattr__(self, "metadata", _json_obj(self.metadata, "profile.metadata"))

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "instructions": self.instructions,
            "model": self.model,
            "tools": list(self.tools),
            "temperature": self.temperature,
            "max_output_tokens": self.max_output_tokens,
            "metadata": dict(self.metadata),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> AgentProfile:
        """Validating constructor from the JSON form; unknown keys are refused."""
        if not isinstance(data, Mapping):
            raise InvalidArgumentError("must be a JSON object", path="profile")
        extra = set(data) - _PROFILE_KEYS
        if extra:
            raise InvalidArgumentError(f"unknown key(s) {sorted(extra)}", path="profile")
        if "name" not in data:
            raise InvalidArgumentError("is required", path="profile.name")
        return cls(**dict(data))


@dataclass(frozen=True, slots=True)
class TurnProfileOverlay:
    """Per-turn changes: `instructions` are appended, `tools` narrows to a subset, the other
    fields replace the base's when set, `metadata` is merged."""

    instructions: str | None = None
    model: str | None = None
    tools: tuple[str, ...] | None = None
    temperature: float | None = None
    max_output_tokens: int | None = None
    metadata: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        _opt_str(self.instructions, "overlay.instructions")
        _opt_str(self.model, "overlay.model")
        if self.tools is not None:
            object.__setattr__(self, "tools", _tools(self.tools, "overlay.tools"))
        object.__setattr__(
            self, "temperature", _opt_number(self.temperature, "overlay.temperature")
        )
        _opt_int(self.max_output_tokens, "overlay.max_output_tokens")
        object.__setattr__(self, "metadata", _json_obj(self.metadata, "overlay.metadata"))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TurnProfileOverlay:
        if not isinstance(data, Mapping):
            raise InvalidArgumentError("must be a JSON object", path="overlay")
        extra = set(data) - _PROFILE_KEYS - {"name"}
        if extra or "name" in data:
            raise InvalidArgumentError(
                f"unknown key(s) {sorted(extra | {'name'} & set(data))}", path="overlay"
            )
        return cls(**dict(data))


def compose_turn_profile(
    base: AgentProfile | Mapping[str, Any],
    overlay: TurnProfileOverlay | Mapping[str, Any] | None = None,
) -> AgentProfile:
    """The profile for one turn: `base` with `overlay` applied (see `TurnProfileOverlay`).

    An overlay naming a tool the base does not allow is refused with `InvalidArgumentError`."""
    profile = base if isinstance(base, AgentProfile) else AgentProfile.from_dict(base)
    if overlay is None:
        return profile
    ov = (
        overlay
        if isinstance(overlay, TurnProfileOverlay)
        else TurnProfileOverlay.from_dict(overlay)
    )
    tools = profile.tools
    if ov.tools is not None:
        granted = [t for t in ov.tools if t not in profile.tools]
        if granted:
            raise InvalidArgumentError(
                f"a turn cannot grant tools the profile lacks: {granted}", path="overlay.tools"
            )
        tools = tuple(t for t in profile.tools if t in ov.tools)
    instructions = profile.instructions
    if ov.instructions:
        instructions = f"{instructions}\n\n{ov.instructions}" if instructions else ov.instructions
    return AgentProfile(
        name=profile.name,
        instructions=instructions,
        model=ov.model if ov.model is not None else profile.model,
        tools=tools,
        temperature=ov.temperature if ov.temperature is not None else profile.temperature,
        max_output_tokens=(
            ov.max_output_tokens if ov.max_output_tokens is not None else profile.max_output_tokens
        ),
        metadata={**profile.metadata, **ov.metadata},
    )


Severity = Literal["error", "warning"]


@dataclass(frozen=True, slots=True)
class ConformanceIssue:
    """One way a profile breaks policy: a stable `code`, the field `path`, a message."""

    code: str
    path: str
    message: str
    severity: Severity = "error"

    def to_dict(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "path": self.path,
            "message": self.message,
            "severity": self.severity,
        }


@dataclass(frozen=True, slots=True)
class ConformanceResult:
    """`ok` is True when no issue has severity `error` (warnings are reported, not fatal)."""

    ok: bool
    issues: tuple[ConformanceIssue, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "issues": [i.to_dict() for i in self.issues]}


@dataclass(frozen=True, slots=True)
class ConformanceOptions:
    """The policy a profile must meet; every check is off when its option is None/empty."""

    allowed_models: frozenset[str] | None = None
    allowed_tools: frozenset[str] | None = None
    required_tools: frozenset[str] = frozenset()
    require_instructions: bool = False
    max_instructions_chars: int | None = None
    min_temperature: float = 0.0
    max_temperature: float = 2.0
    max_output_tokens: int | None = None
    forbidden_phrases: tuple[str, ...] = ()
    check_secrets: bool = True


def _contains_secret(text: str) -> bool:
    from .sanitize import contains_secret

    return contains_secret(text)


def assert_profile_conformance(
    profile: AgentProfile | Mapping[str, Any], options: ConformanceOptions | None = None
) -> ConformanceResult:
    """Check a profile against policy and report every issue at once (not the first only)."""
    opts = options if options is not None else ConformanceOptions()
    if not isinstance(opts, ConformanceOptions):
        raise InvalidArgumentError("must be ConformanceOptions", path="options")
    p = profile if isinstance(profile, AgentProfile) else AgentProfile.from_dict(profile)
    issues: list[ConformanceIssue] = []

    def add(code: str, path: str, message: str, severity: Severity = "error") -> None:
        issues.append(ConformanceIssue(code, path, message, severity))

    if p.model is not None:
        try:
            validate_chat_model_id(p.model)
        except ModelCatalogError as exc:
            add("model.invalid", "model", exc.message)
        if opts.allowed_models is not None and p.model not in opts.allowed_models:
            add("model.not_allowed", "model", f"model {p.model!r} is not in the allowed models")
    elif opts.allowed_models is not None:
        add("model.missing", "model", "policy restricts models but the profile names none")
    if opts.allowed_tools is not None:
        for i, tool in enumerate(p.tools):
            if tool not in opts.allowed_tools:
                add("tool.not_allowed", f"tools[{i}]", f"tool {tool!r} is not allowed")
    for tool in sorted(opts.required_tools - set(p.tools)):
        add("tool.missing", "tools", f"required tool {tool!r} is missing")
    if len(set(p.tools)) != len(p.tools):
        add("tool.duplicate", "tools", "a tool is listed more than once", "warning")
    if opts.require_instructions and not p.instructions.strip():
        add("instructions.missing", "instructions", "the profile has no instructions")
    if (
        opts.max_instructions_chars is not None
        and len(p.instructions) > opts.max_instructions_chars
    ):
        add(
            "instructions.too_long",
            "instructions",
            f"{len(p.instructions)} characters, the limit is {opts.max_instructions_chars}",
        )
    lowered = p.instructions.casefold()
    for phrase in opts.forbidden_phrases:
        if phrase.casefold() in lowered:
            add("instructions.forbidden_phrase", "instructions", f"contains {phrase!r}")
    if opts.check_secrets and _contains_secret(p.instructions):
        add("instructions.secret", "instructions", "instructions contain a credential")
    if p.temperature is not None and not (
        opts.min_temperature <= p.temperature <= opts.max_temperature
    ):
        add(
            "temperature.out_of_range",
            "temperature",
            f"{p.temperature:g} is outside [{opts.min_temperature:g}, {opts.max_temperature:g}]",
        )
    if (
        opts.max_output_tokens is not None
        and p.max_output_tokens is not None
        and p.max_output_tokens > opts.max_output_tokens
    ):
        add(
            "max_output_tokens.too_high",
            "max_output_tokens",
            f"{p.max_output_tokens} exceeds the limit {opts.max_output_tokens}",
        )
    return ConformanceResult(
        ok=not any(i.severity == "error" for i in issues), issues=tuple(issues)
    )
