"""Turn ids: what a client sees (`chat:session:turn`, the `x-execution-id`) and the durable
run id behind it, which names the tenant and the user (`chat:tenant:user:session:turn`).

The durable id is derived from the authenticated principal, so a client can only ever name
its own runs: another tenant's (or user's) session id maps to a run of the caller's own, which
answers exactly like an unknown one, and no one can write a turn index of a session they do
not own.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..errors import InvalidArgumentError
from ._auth import Principal

__all__ = ["TurnRef", "parse_execution_id", "principal_prefix"]

_SESSION = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@+\-]{0,127}")


@dataclass(frozen=True, slots=True)
class TurnRef:
    """One turn of one principal's session."""

    project_id: str
    principal: Principal
    session_id: str
    turn_index: int

    @property
    def execution_id(self) -> str:
        """The client-visible id: `{project}:{session}:{turn}`."""
        return f"{self.project_id}:{self.session_id}:{self.turn_index}"

    @property
    def scope(self) -> str:
        """The durable project of the principal's turns: `{project}:{tenant}:{user}`."""
        return f"{self.project_id}:{self.principal.tenant_id}:{self.principal.user_id}"

    @property
    def run_id(self) -> str:
        """The durable run id: `{project}:{tenant}:{user}:{session}:{turn}`."""
        return f"{self.scope}:{self.session_id}:{self.turn_index}"


def principal_prefix(project_id: str, tenant_id: str, user_id: str | None = None) -> str:
    """The run-id prefix of a tenant's runs (or of one user's), for quotas and retention."""
    if user_id is None:
        return f"{project_id}:{tenant_id}:"
    return f"{project_id}:{tenant_id}:{user_id}:"


def parse_execution_id(project_id: str, principal: Principal, execution_id: str) -> TurnRef:
    """The caller's turn named by a client execution id; `InvalidArgumentError` when it is not
    `{project}:{session}:{turn}` (the format is public, so this says nothing about others)."""
    head, _, rest = execution_id.partition(":")
    session, _, turn = rest.rpartition(":")
    if (
        head != project_id
        or not _SESSION.fullmatch(session)
        or not turn.isascii()
        or not turn.isdigit()
        or len(turn) > 6
    ):
        raise InvalidArgumentError(
            f"is not an execution id of this service ({project_id}:SESSION:TURN)",
            path="execution_id",
        )
    return TurnRef(project_id, principal, session, int(turn))
