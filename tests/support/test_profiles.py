"""Profiles as JSON dicts (ORIGINAL §15, §16): the merge, the per-turn composition and the
conformance linter's four checks, in order, with their defaults, codes and paths."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from agent_runtime import (
    ChatTurnOverlay,
    ConformanceOptions,
    ValidationError,
    assert_profile_conformance,
    compose_turn_profile,
    merge_agent_profiles,
)

LONG = "You are a careful assistant. " * 40  # > 800 characters
DESC = "Answers questions about value-added tax rules."  # >= 40
PROMPT = "You answer value-added tax questions precisely, citing the rule you apply each time. " * 2


def good() -> dict[str, Any]:
    return {
        "name": "tax",
        "prompt": {"systemPrompt": LONG, "instructions": ["Be brief."]},
        "resources": {"files": [{"path": "a.md", "resource": "A"}]},
        "subagents": {"vat": {"description": DESC, "prompt": PROMPT, "metadata": {}}},
        "tools": {"lookup": True},
        "mcp": {"lookup": {"command": "lookup-server"}},
        "metadata": {"backend": {"type": "claude-code"}},
    }


def codes(profile: dict[str, Any], **opts: Any) -> list[tuple[str, str, str]]:
    r = assert_profile_conformance(profile, ConformanceOptions(**opts))
    return [(i.severity, i.code, i.path) for i in (*r.errors, *r.warnings)]


def test_a_good_profile_is_valid() -> None:
    r = assert_profile_conformance(good())
    assert r.valid and r.errors == () and r.warnings == ()
    assert r.to_dict() == {"valid": True, "errors": [], "warnings": []}


@pytest.mark.parametrize("prompt", [None, {}, {"systemPrompt": "   short   "}])
def test_system_prompt_too_short_or_missing(prompt: Any) -> None:
    p = good()
    if prompt is None:
        del p["prompt"]
    else:
        p["prompt"] = prompt
    assert codes(p) == [("error", "system-prompt-too-short", "prompt.systemPrompt")]


def test_system_prompt_minimum_is_an_option_and_counts_trimmed_text() -> None:
    p = good()
    p["prompt"]["systemPrompt"] = "  " + "x" * 10 + "  "
    assert codes(p, min_system_prompt_chars=10) == []
    assert codes(p, min_system_prompt_chars=11)[0][1] == "system-prompt-too-short"


def test_tool_checks_in_order() -> None:
    p = good()
    p["tools"] = {"bash": True, "allowed": True, "off": False, "lookup": True, "fake": True}
    assert codes(p, tools_allowed_without_mcp=("allowed",)) == [
        ("error", "shell-capability-as-tool", "tools.bash"),
        ("error", "decorative-tool-without-mcp", "tools.fake"),
    ]


def test_shell_capability_wins_over_the_allowlist_and_false() -> None:
    p = good()
    p["tools"] = {"python": False}
    assert codes(p, tools_allowed_without_mcp=("python",)) == [
        ("error", "shell-capability-as-tool", "tools.python")
    ]


def test_known_shell_capabilities_default_and_option() -> None:
    for name in ("bash", "sh", "python", "node", "curl", "web", "browser", "shell"):
        p = good()
        p["tools"] = {name: True}
        assert codes(p)[0][1] == "shell-capability-as-tool"
    p = good()
    p["tools"] = {"bash": True}
    assert codes(p, known_shell_capabilities=("zsh",)) == [
        ("error", "decorative-tool-without-mcp", "tools.bash")
    ]


@pytest.mark.parametrize(
    "meta", [{"status": "scaffold"}, {"status": "not-implemented"}, {"implemented": False}]
)
def test_scaffold_subagent_warns_or_errors_when_strict(meta: dict[str, Any]) -> None:
    p = good()
    p["subagents"]["vat"]["metadata"] = meta
    assert codes(p) == [("warn", "subagent-scaffold-shipped", "subagents.vat")]
    r = assert_profile_conformance(p)
    assert r.valid  # a warning is not fatal
    assert codes(p, strict_no_scaffolds=True) == [
        ("error", "subagent-scaffold-shipped", "subagents.vat")
    ]


def test_subagent_lengths_and_the_order_of_the_checks() -> None:
    p = good()
    p["prompt"]["systemPrompt"] = "short"
    p["tools"] = {"sh": True}
    p["subagents"] = {
        "a": {"description": " " + "d" * 39 + " ", "prompt": "p" * 99, "metadata": {}},
        "b": {"description": DESC, "prompt": PROMPT, "metadata": {"status": "scaffold"}},
    }
    r = assert_profile_conformance(p, ConformanceOptions(strict_no_scaffolds=True))
    assert [(i.code, i.path) for i in r.errors] == [
        ("system-prompt-too-short", "prompt.systemPrompt"),
        ("shell-capability-as-tool", "tools.sh"),
        ("subagent-scaffold-shipped", "subagents.b"),
        ("subagent-description-too-short", "subagents.a.description"),
        ("subagent-prompt-too-short", "subagents.a.prompt"),
    ]
    assert not r.valid and all(i.message for i in r.errors)


def test_secret_check_is_ours_and_opt_in() -> None:
    p = good()
    p["prompt"]["systemPrompt"] = LONG + " key sk-proj-" + "A1b2C3d4" * 6
    assert codes(p) == []
    assert codes(p, check_secrets=True) == [("error", "secret-in-prompt", "prompt.systemPrompt")]


def test_conformance_never_raises_on_odd_shapes_but_refuses_non_objects() -> None:
    r = assert_profile_conformance({"tools": "x", "subagents": [1], "prompt": 3})
    assert [i.code for i in r.errors] == ["system-prompt-too-short"]
    with pytest.raises(ValidationError):
        assert_profile_conformance("profile")  # type: ignore[arg-type]
    with pytest.raises(ValidationError):
        ConformanceOptions(min_system_prompt_chars=-1)


def test_merge_keeps_base_system_prompt_and_appends_instructions() -> None:
    base = good()
    before = copy.deepcopy(base)
    merged = merge_agent_profiles(
        base, {"prompt": {"systemPrompt": "OVERRIDE", "instructions": ["Cite sources."]}}
    )
    assert merged["prompt"]["systemPrompt"] == LONG
    assert merged["prompt"]["instructions"] == ["Be brief.", "Cite sources."]
    assert base == before  # inputs untouched


def test_merge_adds_resource_files_and_unions_subagents() -> None:
    extra = {
        "resources": {"files": [{"path": "b.md", "resource": "B"}]},
        "subagents": {"gtm": {"description": "x", "prompt": "y"}},
        "metadata": {"tenant": "t1"},
        "model": {"default": "m-2"},
    }
    merged = merge_agent_profiles(good(), extra)
    assert [f["path"] for f in merged["resources"]["files"]] == ["a.md", "b.md"]
    assert set(merged["subagents"]) == {"vat", "gtm"}
    assert merged["metadata"] == {"backend": {"type": "claude-code"}, "tenant": "t1"}
    assert merged["model"] == {"default": "m-2"}


def test_merge_replaces_a_resource_file_of_the_same_path() -> None:
    merged = merge_agent_profiles(
        good(), {"resources": {"files": [{"path": "a.md", "resource": "A2"}]}}
    )
    assert merged["resources"]["files"] == [{"path": "a.md", "resource": "A2"}]


def test_merge_sets_a_system_prompt_the_base_lacks() -> None:
    merged = merge_agent_profiles({"name": "x"}, {"prompt": {"systemPrompt": "S"}})
    assert merged["prompt"]["systemPrompt"] == "S"


def test_compose_uses_only_the_overlay_fields_present() -> None:
    base = good()
    overlay = ChatTurnOverlay(
        prompt_overlay={"instructions": "Answer in French."},
        subagents_overlay={"extra": {"description": "e", "prompt": "p"}},
    )
    composed = compose_turn_profile(base, overlay)
    assert composed["prompt"]["instructions"] == ["Be brief.", "Answer in French."]
    assert set(composed["subagents"]) == {"vat", "extra"}
    assert composed["resources"] == base["resources"]
    assert compose_turn_profile(base, None) == base


def test_compose_accepts_the_original_camel_case_overlay() -> None:
    composed = compose_turn_profile(
        good(), {"resourcesOverlay": {"files": [{"path": "c.md", "resource": "C"}]}}
    )
    assert [f["path"] for f in composed["resources"]["files"]] == ["a.md", "c.md"]
    with pytest.raises(ValidationError, match="unknown overlay key"):
        compose_turn_profile(good(), {"prompt_overlay": {}})
    with pytest.raises(ValidationError):
        ChatTurnOverlay(prompt_overlay="text")  # type: ignore[arg-type]
