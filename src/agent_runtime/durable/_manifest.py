"""Run manifests, their hash, step ids and worker ids."""

from __future__ import annotations

import os
import secrets
import socket
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..errors import DurableValueError
from ..jsoncanon import canonical_hash, dumps_json, ensure_json

__all__ = ["DurableRunManifest", "derive_worker_id", "manifest_hash", "step_id"]


def _task_identity(task: Any) -> dict[str, Any]:
    """The task fields that identify a run: id, intent and domain."""
    if isinstance(task, Mapping):
        get = task.get
    else:

        def get(name: str, default: Any = None) -> Any:
            return getattr(task, name, default)

    ident = {"id": get("id"), "intent": get("intent"), "domain": get("domain")}
    if ident["id"] is None and ident["intent"] is None:
        raise DurableValueError("task needs an `id` or an `intent`", path="manifest.task")
    return ident


@dataclass(frozen=True, slots=True)
class DurableRunManifest:
    """What a run was started with; the same run id must always come with the same manifest.

    `task` is a mapping or an object with `id`, `intent` and `domain` (an `AgentTaskSpec`).
    `tags` are descriptive and do not enter the hash. The manifest is validated, hashed
    (`digest`) and encoded (`encoded`) once, when it is built.
    """

    project_id: str
    task: Any
    input: Any
    scenario_id: str | None = None
    tags: Mapping[str, Any] | None = field(default=None)
    digest: str = field(init=False, repr=False, compare=False)
    encoded: str = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not isinstance(self.project_id, str) or not self.project_id:
            raise DurableValueError("project_id must be a non-empty string", path="manifest")
        if self.scenario_id is not None and not isinstance(self.scenario_id, str):
            raise DurableValueError("scenario_id must be a string", path="manifest")
        for name, value in (("project_id", self.project_id), ("scenario_id", self.scenario_id)):
            if value is not None and "\x00" in value:  # stored as text columns
                raise DurableValueError(f"{name} contains a NUL character", path="manifest")
        ensure_json(_task_identity(self.task), root="manifest.task")
        ensure_json(self.input, root="input")
        if self.tags is not None:
            if not isinstance(self.tags, Mapping):
                raise DurableValueError("tags must be a mapping", path="manifest.tags")
            ensure_json(dict(self.tags), root="manifest.tags")
        object.__setattr__(self, "digest", canonical_hash(self.identity(), root="manifest"))
        object.__setattr__(self, "encoded", dumps_json(self.to_dict(), root="manifest").decode())

    def identity(self) -> dict[str, Any]:
        """The hashed part of the manifest."""
        return {
            "project_id": self.project_id,
            "scenario_id": self.scenario_id,
            "task": _task_identity(self.task),
            "input": self.input,
        }

    def to_dict(self) -> dict[str, Any]:
        data = self.identity()
        data["tags"] = dict(self.tags) if self.tags is not None else None
        return data


def manifest_hash(manifest: DurableRunManifest) -> str:
    """sha256 of the canonical JSON of project, scenario, task id/intent/domain and input."""
    return manifest.digest


def step_id(run_id: str, index: int, intent: str) -> str:
    """The original's `stepId`: the canonical hash of `{runId, stepIndex, intent}` (lower-case
    hex sha256), a stable idempotency key for the step at `index` of `run_id`."""
    if not run_id or type(index) is not int or index < 0 or not isinstance(intent, str):
        raise DurableValueError("step_id needs a run id, an index >= 0 and an intent")
    return canonical_hash({"runId": run_id, "stepIndex": index, "intent": intent})


def derive_worker_id() -> str:
    """`host:pid:random` — unique per process start, readable in `runs show`."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"
