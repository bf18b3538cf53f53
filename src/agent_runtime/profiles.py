"""Agent profiles in the original's shape (JSON dicts), their merge, the per-turn composition and
the conformance linter (ORIGINAL §15, §16, §21).

A profile is a dict such as `{"name", "prompt": {"systemPrompt", "instructions"},
"resources": {"files": [...]}, "subagents": {id: {...}}, "tools": {...}, "mcp": {...},
"model": {"default"}, "metadata": {"backend": {"type"}}}`; `AgentProfile` types it.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, TypedDict

from .errors import ValidationError

__all__ = [
    "DEFAULT_SHELL_CAPABILITIES",
    "AgentProfile",
    "ChatTurnOverlay",
    "ConformanceIssue",
    "ConformanceOptions",
    "ConformanceResult",
    "assert_profile_conformance",
    "compose_turn_profile",
    "merge_agent_profiles",
]


class AgentProfile(TypedDict, total=False):
    """The sandbox SDK's agent profile, as the JSON dict it is on the wire."""

    name: str
    description: str
    version: str
    prompt: dict[str, Any]
    resources: dict[str, Any]
    subagents: dict[str, dict[str, Any]]
    tools: dict[str, Any]
    mcp: dict[str, Any]
    permissions: dict[str, Any]
    model: dict[str, Any]
    metadata: dict[str, Any]


def _profile(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, Mapping):
        raise ValidationError(f"{where} must be a profile object")
    return dict(value)


def _instructions(value: Any) -> list[Any]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    if isinstance(value, Sequence):
        return list(value)
    raise ValidationError("prompt.instructions must be a string or a list of strings")


def _merge_prompt(base: Any, extra: Any) -> dict[str, Any]:
    merged = dict(base) if isinstance(base, Mapping) else {}
    if not isinstance(extra, Mapping):
        return merged
    for key, value in extra.items():
        if key == "instructions":
            combined = _instructions(merged.get("instructions")) + _instructions(value)
            merged["instructions"] = combined
        elif key == "systemPrompt" and merged.get("systemPrompt"):
            continue  # the base system prompt is kept
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def _merge_resources(base: Any, extra: Any) -> dict[str, Any]:
    merged = copy.deepcopy(dict(base)) if isinstance(base, Mapping) else {}
    if not isinstance(extra, Mapping):
        return merged
    for key, value in extra.items():
        if key == "files" and isinstance(value, Sequence) and not isinstance(value, str):
            files = [f for f in merged.get("files") or [] if isinstance(f, Mapping)]
            added = [copy.deepcopy(dict(f)) for f in value if isinstance(f, Mapping)]
            paths = {f.get("path") for f in added}
            merged["files"] = [f for f in files if f.get("path") not in paths] + added
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def merge_agent_profiles(
    base: Mapping[str, Any], extra: Mapping[str, Any] | None
) -> dict[str, Any]:
    """`base` with `extra` laid over it: the base system prompt is kept and `extra`'s
    instructions are appended, resource files are added (a file of the same path replaced),
    subagent, tool, MCP and permission maps are unioned (`extra` wins on a key), metadata is
    merged, any other key of `extra` replaces the base's. Neither argument is modified."""
    merged = copy.deepcopy(_profile(base, "base profile"))
    if extra is None:
        return merged
    for key, value in _profile(extra, "profile overlay").items():
        if key == "prompt":
            merged["prompt"] = _merge_prompt(merged.get("prompt"), value)
        elif key == "resources":
            merged["resources"] = _merge_resources(merged.get("resources"), value)
        elif key in ("subagents", "tools", "mcp", "permissions", "metadata") and isinstance(
            value, Mapping
        ):
            current = merged.get(key)
            union = dict(current) if isinstance(current, Mapping) else {}
            union.update(copy.deepcopy(dict(value)))
            merged[key] = union
        else:
            merged[key] = copy.deepcopy(value)
    return merged


@dataclass(frozen=True, slots=True)
class ChatTurnOverlay:
    """Per-turn additions to a profile: `prompt_overlay` (a `prompt` part, its instructions
    appended), `resources_overlay`, `subagents_overlay`, `metadata`."""

    prompt_overlay: Mapping[str, Any] | None = None
    resources_overlay: Mapping[str, Any] | None = None
    subagents_overlay: Mapping[str, Any] | None = None
    metadata: Mapping[str, Any] | None = None

    def __post_init__(self) -> None:
        for name in ("prompt_overlay", "resources_overlay", "subagents_overlay", "metadata"):
            value = getattr(self, name)
            if value is not None and not isinstance(value, Mapping):
                raise ValidationError(f"ChatTurnOverlay.{name} must be a mapping or None")

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ChatTurnOverlay:
        """From the original's camelCase form (`promptOverlay`, `resourcesOverlay`, …)."""
        if not isinstance(data, Mapping):
            raise ValidationError("a chat-turn overlay must be an object")
        known = {"promptOverlay", "resourcesOverlay", "subagentsOverlay", "metadata"}
        unknown = set(data) - known
        if unknown:
            raise ValidationError(f"unknown overlay key(s): {', '.join(sorted(unknown))}")
        return cls(
            prompt_overlay=data.get("promptOverlay"),
            resources_overlay=data.get("resourcesOverlay"),
            subagents_overlay=data.get("subagentsOverlay"),
            metadata=data.get("metadata"),
        )


def compose_turn_profile(
    base: Mapping[str, Any], overlay: ChatTurnOverlay | Mapping[str, Any] | None
) -> dict[str, Any]:
    """The profile of one turn: a partial profile built from the overlay's present fields
    (`prompt`, `resources`, `subagents`, `metadata`) merged over `base`."""
    if overlay is None:
        return dict(_profile(base, "base profile"))
    ov = overlay if isinstance(overlay, ChatTurnOverlay) else ChatTurnOverlay.from_dict(overlay)
    partial: dict[str, Any] = {}
    if ov.prompt_overlay is not None:
        partial["prompt"] = dict(ov.prompt_overlay)
    if ov.resources_overlay is not None:
        partial["resources"] = dict(ov.resources_overlay)
    if ov.subagents_overlay is not None:
        partial["subagents"] = dict(ov.subagents_overlay)
    if ov.metadata is not None:
        partial["metadata"] = dict(ov.metadata)
    return merge_agent_profiles(base, partial)


# --- conformance -------------------------------------------------------------------------------

DEFAULT_SHELL_CAPABILITIES: tuple[str, ...] = (
    "bash",
    "sh",
    "python",
    "node",
    "curl",
    "web",
    "browser",
    "shell",
)
Severity = Literal["error", "warn"]


@dataclass(frozen=True, slots=True)
class ConformanceIssue:
    """One finding: `severity` error or warn, a stable `code`, the field `path`, a message."""

    severity: Severity
    code: str
    path: str
    message: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "severity": self.severity,
            "code": self.code,
            "path": self.path,
            "message": self.message,
        }


@dataclass(frozen=True, slots=True)
class ConformanceResult:
    """`valid` is True when there are no errors; warnings are reported, not fatal."""

    valid: bool
    errors: tuple[ConformanceIssue, ...] = ()
    warnings: tuple[ConformanceIssue, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "valid": self.valid,
            "errors": [i.to_dict() for i in self.errors],
            "warnings": [i.to_dict() for i in self.warnings],
        }


@dataclass(frozen=True, slots=True)
class ConformanceOptions:
    """The linter's settings (the original's defaults). `check_secrets` is ours and opt-in:
    a credential in a prompt is an error `secret-in-prompt`."""

    known_shell_capabilities: tuple[str, ...] = DEFAULT_SHELL_CAPABILITIES
    strict_no_scaffolds: bool = False
    tools_allowed_without_mcp: tuple[str, ...] = ()
    min_system_prompt_chars: int = 800
    check_secrets: bool = False

    def __post_init__(self) -> None:
        for name in ("known_shell_capabilities", "tools_allowed_without_mcp"):
            value = getattr(self, name)
            if isinstance(value, str) or not all(isinstance(v, str) for v in value):
                raise ValidationError(f"ConformanceOptions.{name} must be a list of strings")
            object.__setattr__(self, name, tuple(value))
        if type(self.min_system_prompt_chars) is not int or self.min_system_prompt_chars < 0:
            raise ValidationError("ConformanceOptions.min_system_prompt_chars: an int >= 0")


def _text(value: Any) -> str:
    return value.strip() if isinstance(value, str) else ""


def _scaffold(subagent: Mapping[str, Any]) -> bool:
    meta = subagent.get("metadata")
    if not isinstance(meta, Mapping):
        return False
    return meta.get("status") in ("scaffold", "not-implemented") or meta.get("implemented") is False


def assert_profile_conformance(
    profile: Mapping[str, Any], options: ConformanceOptions | None = None
) -> ConformanceResult:
    """Lint a profile; it reports every issue and, despite its name, never raises on them.

    Checks, in order: the system prompt's length; each tool (a shell capability as a tool,
    then the allowlist, then `false`, then a tool without its MCP server); shipped scaffold
    subagents (a warning, an error when strict); each subagent's description (40) and prompt
    (100) lengths."""
    opts = options if options is not None else ConformanceOptions()
    if not isinstance(opts, ConformanceOptions):
        raise ValidationError("options must be ConformanceOptions")
    p = _profile(profile, "profile")
    errors: list[ConformanceIssue] = []
    warnings: list[ConformanceIssue] = []

    def add(severity: Severity, code: str, path: str, message: str) -> None:
        (errors if severity == "error" else warnings).append(
            ConformanceIssue(severity, code, path, message)
        )

    prompt = p.get("prompt") if isinstance(p.get("prompt"), Mapping) else {}
    assert isinstance(prompt, Mapping)
    system = _text(prompt.get("systemPrompt"))
    if len(system) < opts.min_system_prompt_chars:
        add(
            "error",
            "system-prompt-too-short",
            "prompt.systemPrompt",
            f"the system prompt has {len(system)} characters; at least "
            f"{opts.min_system_prompt_chars} are required",
        )
    tools = p.get("tools") if isinstance(p.get("tools"), Mapping) else {}
    mcp = p.get("mcp") if isinstance(p.get("mcp"), Mapping) else {}
    assert isinstance(tools, Mapping) and isinstance(mcp, Mapping)
    shells = {c.lower() for c in opts.known_shell_capabilities}
    for name, value in tools.items():
        if str(name).lower() in shells:
            add(
                "error",
                "shell-capability-as-tool",
                f"tools.{name}",
                f"{name!r} is a shell capability of the sandbox, not a tool",
            )
            continue
        if name in opts.tools_allowed_without_mcp or value is False:
            continue
        if name not in mcp:
            add(
                "error",
                "decorative-tool-without-mcp",
                f"tools.{name}",
                f"tool {name!r} has no MCP server (mcp.{name}) behind it",
            )
    subagents = p.get("subagents") if isinstance(p.get("subagents"), Mapping) else {}
    assert isinstance(subagents, Mapping)
    entries = [(sid, s) for sid, s in subagents.items() if isinstance(s, Mapping)]
    for sid, sub in entries:
        if _scaffold(sub):
            add(
                "error" if opts.strict_no_scaffolds else "warn",
                "subagent-scaffold-shipped",
                f"subagents.{sid}",
                f"subagent {sid!r} is a scaffold and is not implemented",
            )
    for sid, sub in entries:
        if len(_text(sub.get("description"))) < 40:
            add(
                "error",
                "subagent-description-too-short",
                f"subagents.{sid}.description",
                f"subagent {sid!r} needs a description of at least 40 characters",
            )
        if len(_text(sub.get("prompt"))) < 100:
            add(
                "error",
                "subagent-prompt-too-short",
                f"subagents.{sid}.prompt",
                f"subagent {sid!r} needs a prompt of at least 100 characters",
            )
    if opts.check_secrets:
        from .sanitize import contains_secret

        texts = [("prompt.systemPrompt", system)]
        texts += [
            (f"prompt.instructions[{i}]", t)
            for i, t in enumerate(_instructions(prompt.get("instructions")))
            if isinstance(t, str)
        ]
        texts += [(f"subagents.{sid}.prompt", _text(sub.get("prompt"))) for sid, sub in entries]
        for path, text in texts:
            if text and contains_secret(text):
                add("error", "secret-in-prompt", path, "the prompt contains a credential")
    return ConformanceResult(valid=not errors, errors=tuple(errors), warnings=tuple(warnings))
