"""Hostile event input and extreme retry schedules end in typed errors or capped delays."""

from __future__ import annotations

from typing import Any

import pytest

from agent_runtime import BackendRetryPolicy, EventParseError, parse_event


@pytest.mark.parametrize(
    "data",
    [
        {"type": "text.delta", "text": "a", 1: 2, "b": 3},  # mixed key types
        '{"type":"tool.result","call_id":"c","output":' + "[" * 1000 + "]" * 1000 + "}",
        '{"type":"error","code":"c","message":"m","details":{"a":' + "[" * 1000 + "]" * 1000 + "}}",
    ],
    ids=["mixed-keys", "deep-output", "deep-details"],
)
def test_parse_event_refuses_hostile_input_typed(data: Any) -> None:
    with pytest.raises(EventParseError):
        parse_event(data)


def test_backoff_for_a_late_retry_stays_capped() -> None:
    policy = BackendRetryPolicy(max_retries=5000)
    for n in (1024, 1100, 5000):
        assert 0.75 * 8.0 <= policy.delay_s(n) <= 8.0


def _bad_inputs() -> list[tuple[str, Any]]:
    from agent_runtime import (
        AgentTaskRunOptions,
        AgentTaskSpec,
        HttpSandboxClient,
        KnowledgeReadinessReport,
        KnowledgeRequirement,
        create_openai_compatible_backend,
        decide_knowledge_readiness,
    )

    url = "http://127.0.0.1:9"
    return [
        ("spec.metadata", lambda: AgentTaskSpec(id="t", intent="x", metadata=None)),
        ("spec.requirements", lambda: AgentTaskSpec(id="t", intent="x", requirements=5)),
        ("spec.model", lambda: AgentTaskSpec(id="t", intent="x", model=5)),
        ("spec.domain", lambda: AgentTaskSpec(id="t", intent="x", domain=["d"])),
        ("spec.system_prompt", lambda: AgentTaskSpec(id="t", intent="x", system_prompt=1)),
        ("options.messages", lambda: AgentTaskRunOptions(messages=5)),
        ("options.pricing", lambda: AgentTaskRunOptions(pricing=None)),
        ("options.model", lambda: AgentTaskRunOptions(model=5)),
        ("options.session_id", lambda: AgentTaskRunOptions(session_id=5)),
        ("report.available", lambda: KnowledgeReadinessReport(available=None)),
        ("report.internal", lambda: KnowledgeReadinessReport(internal=None)),
        ("report.provider", lambda: KnowledgeReadinessReport(provider=3)),
        (
            "requirement.required",
            lambda: KnowledgeRequirement(key="k", description="d", required="no"),
        ),
        (
            "requirement.data_source",
            lambda: KnowledgeRequirement(key="k", description="d", data_source=1),
        ),
        ("decide.requirements", lambda: decide_knowledge_readiness(None, None)),
        ("backend.tools", lambda: create_openai_compatible_backend(url, "k", "m", tools="abc")),
        (
            "backend.tools-json",
            lambda: create_openai_compatible_backend(url, "k", "m", tools=[{"x": float("nan")}]),
        ),
        (
            "backend.extra_body",
            lambda: create_openai_compatible_backend(url, "k", "m", extra_body=[1]),
        ),
        ("backend.api_key", lambda: create_openai_compatible_backend(url, "k\r\nX-A: b", "m")),
        (
            "backend.headers",
            lambda: create_openai_compatible_backend(url, "k", "m", headers={"x-a": "b\nc"}),
        ),
        ("sandbox.api_key", lambda: HttpSandboxClient(url, api_key="k\n")),
        ("sandbox.headers", lambda: HttpSandboxClient(url, headers={"x-a": 1})),
    ]


@pytest.mark.parametrize(("what", "make"), _bad_inputs(), ids=[w for w, _ in _bad_inputs()])
def test_bad_arguments_are_refused_typed(what: str, make: Any) -> None:
    from agent_runtime import ConfigurationError

    with pytest.raises(ConfigurationError):
        make()


async def test_execution_id_with_a_carriage_return_is_refused() -> None:
    from agent_runtime import ConfigurationError, HttpSandboxClient

    client = HttpSandboxClient("http://127.0.0.1:9")
    with pytest.raises(ConfigurationError):
        async for _ in client.stream_prompt("x", execution_id="a\rb"):
            pass
    await client.aclose()
