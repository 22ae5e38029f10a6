"""A protocol state machine as data: which move, by which role, leads from which state to which.

The Dataspace Protocol defines two (contract negotiation, transfer process); both are tables
of this shape, checked by one function, so that "only the allowed transitions, and only by the
party allowed to make them; final states are final" is written once.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any, Generic, Protocol, TypeVar

from sqlalchemy.ext.asyncio import AsyncSession

from rhenus.core.audit import AuditLog
from rhenus.core.db import utcnow

S = TypeVar("S", bound=StrEnum)


class Role(StrEnum):
    PROVIDER = "provider"
    CONSUMER = "consumer"


class ForbiddenTransition(Exception):
    """The move is not allowed from this state, or not for this role."""


@dataclass(frozen=True)
class Machine(Generic[S]):
    """``table[(move, sender)] = {state before: state after}``; ``None`` is "nothing yet".
    ``terminate`` is allowed to either party from any state that is not final."""

    table: Mapping[tuple[str, Role], Mapping[S | None, S]]
    final: frozenset[S]
    terminate: str
    terminated: S

    def after(self, move: str, *, sender: Role, state: S | None) -> S:
        """The state after ``sender`` makes ``move`` from ``state``; :class:`ForbiddenTransition`
        naming the rule otherwise."""
        if state in self.final:
            raise ForbiddenTransition(f"the process is {state}: a final state")
        if move == self.terminate:
            if state is None:
                raise ForbiddenTransition("there is nothing to terminate")
            return self.terminated
        allowed = self.table.get((move, sender))
        if allowed is None:
            raise ForbiddenTransition(f"only the other party may send {move}")
        if state not in allowed:
            where = f"in state {state}" if state else "to start a process"
            raise ForbiddenTransition(f"{move} is not allowed {where}")
        return allowed[state]


class Process(Protocol):
    """What negotiations and transfer processes share: a state, both pids, a counterparty."""

    id: str
    role: str
    state: str
    provider_pid: str
    consumer_pid: str
    counterparty: str
    reason: list[str]
    updated_at: datetime


async def advance(
    session: AsyncSession,
    process: Process,
    move: str,
    *,
    machine: Machine[Any],
    sender: Role,
    audit: AuditLog,
    actor: str,
    kind: str,
    payload: Mapping[str, Any] | None = None,
    reason: list[str] | None = None,
    details: Mapping[str, Any] | None = None,
) -> None:
    """Apply ``move`` by ``sender`` to ``process`` and record it in the audit log, as
    ``{kind}.{new state}``; :class:`ForbiddenTransition` (nothing changed) if not allowed."""
    new_state = machine.after(move, sender=sender, state=type(machine.terminated)(process.state))
    process.state = new_state.value
    process.updated_at = utcnow()
    if reason is not None:
        process.reason = reason
    await audit.record(
        session,
        actor=actor,
        action=f"{kind}.{new_state.value.lower()}",
        object_type=kind.rsplit(".", 1)[-1],
        object_id=process.id,
        payload=payload,
        details={
            "role": process.role,
            "counterparty": process.counterparty,
            "providerPid": process.provider_pid,
            "consumerPid": process.consumer_pid,
            "move": move,
            **(details or {}),
            **({"reason": reason} if reason else {}),
        },
    )
