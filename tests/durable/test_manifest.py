"""Manifests, manifest hashes, step ids and worker ids."""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass

import pytest

from agent_runtime import DurableValueError, canonical_hash
from agent_runtime.durable import DurableRunManifest, derive_worker_id, manifest_hash, step_id


@dataclass
class Spec:
    id: str
    intent: str
    domain: str | None = None


def test_manifest_hash_covers_identity_not_tags() -> None:
    base = DurableRunManifest("p", {"id": "t", "intent": "i", "domain": "d"}, {"a": [1, 2]})
    same = DurableRunManifest(
        "p", Spec("t", "i", "d"), {"a": [1, 2]}, tags={"env": "prod", "owner": "x"}
    )
    assert manifest_hash(base) == manifest_hash(same)
    for other in (
        DurableRunManifest("q", {"id": "t", "intent": "i", "domain": "d"}, {"a": [1, 2]}),
        DurableRunManifest("p", {"id": "t", "intent": "j", "domain": "d"}, {"a": [1, 2]}),
        DurableRunManifest("p", {"id": "t", "intent": "i", "domain": "e"}, {"a": [1, 2]}),
        DurableRunManifest("p", {"id": "t", "intent": "i", "domain": "d"}, {"a": [2, 1]}),
        DurableRunManifest(
            "p", {"id": "t", "intent": "i", "domain": "d"}, {"a": [1, 2]}, scenario_id="s"
        ),
    ):
        assert manifest_hash(other) != manifest_hash(base)


def test_manifest_validation() -> None:
    with pytest.raises(DurableValueError, match="task needs"):
        DurableRunManifest("p", {"domain": "d"}, {})
    with pytest.raises(DurableValueError):
        DurableRunManifest("p", {"id": "t"}, {}, tags={"bad": {1, 2}})
    with pytest.raises(DurableValueError):
        DurableRunManifest("p", {"id": "t"}, {}, scenario_id=7)  # type: ignore[arg-type]


def test_step_id_is_stable_and_distinct() -> None:
    a = step_id("run-1", 0, "plan")
    assert a == step_id("run-1", 0, "plan")
    assert (
        len(
            {
                a,
                step_id("run-1", 1, "plan"),
                step_id("run-1", 0, "act"),
                step_id("run-2", 0, "plan"),
            }
        )
        == 4
    )
    # the original's stepId: canonicalHash({runId, stepIndex, intent})
    assert a == canonical_hash({"runId": "run-1", "stepIndex": 0, "intent": "plan"})
    assert len(a) == 64 and int(a, 16) >= 0
    with pytest.raises(DurableValueError):
        step_id("", 0, "plan")
    with pytest.raises(DurableValueError):
        step_id("r", -1, "plan")


def test_worker_id_is_host_pid_random() -> None:
    a, b = derive_worker_id(), derive_worker_id()
    host, pid, rand = a.rsplit(":", 2)
    assert host == socket.gethostname() and pid == str(os.getpid()) and len(rand) == 8
    assert a != b


def test_manifest_ids_are_storable_text() -> None:
    # PostgreSQL text cannot hold NUL: refuse it when the manifest is built, as run ids are
    with pytest.raises(DurableValueError, match="NUL"):
        DurableRunManifest("proj\x00x", {"id": "t"}, {})
    with pytest.raises(DurableValueError, match="NUL"):
        DurableRunManifest("proj", {"id": "t"}, {}, scenario_id="s\x00")
    with pytest.raises(DurableValueError):
        DurableRunManifest("proj\ud800", {"id": "t"}, {})


def test_manifest_tags_must_be_a_mapping() -> None:
    for tags in (["a"], "env=prod", [("k", "v")]):
        with pytest.raises(DurableValueError) as info:
            DurableRunManifest("p", {"id": "t"}, {}, tags=tags)  # type: ignore[arg-type]
        assert info.value.path == "manifest.tags"
