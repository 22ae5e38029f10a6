"""The contract negotiation state machine of the Dataspace Protocol 2025-1 ("Contract
Negotiation Protocol", section "States" and its state-machine figure): which message, sent by
which role, moves a negotiation from which state to which.
"""

from __future__ import annotations

from enum import StrEnum

from rhenus.dataspace.machine import ForbiddenTransition, Machine, Role


class State(StrEnum):
    REQUESTED = "REQUESTED"
    OFFERED = "OFFERED"
    ACCEPTED = "ACCEPTED"
    AGREED = "AGREED"
    VERIFIED = "VERIFIED"
    FINALIZED = "FINALIZED"
    TERMINATED = "TERMINATED"


class Move(StrEnum):
    """The messages that change a negotiation's state (events name their ``eventType``)."""

    REQUEST = "ContractRequestMessage"
    OFFER = "ContractOfferMessage"
    ACCEPT = "ACCEPTED"
    AGREE = "ContractAgreementMessage"
    VERIFY = "ContractAgreementVerificationMessage"
    FINALIZE = "FINALIZED"
    TERMINATE = "ContractNegotiationTerminationMessage"


FINAL = frozenset({State.FINALIZED, State.TERMINATED})

NEGOTIATION = Machine[State](
    table={
        (Move.REQUEST, Role.CONSUMER): {None: State.REQUESTED, State.OFFERED: State.REQUESTED},
        (Move.OFFER, Role.PROVIDER): {None: State.OFFERED, State.REQUESTED: State.OFFERED},
        (Move.ACCEPT, Role.CONSUMER): {State.OFFERED: State.ACCEPTED},
        (Move.AGREE, Role.PROVIDER): {
            State.REQUESTED: State.AGREED,
            State.ACCEPTED: State.AGREED,
        },
        (Move.VERIFY, Role.CONSUMER): {State.AGREED: State.VERIFIED},
        (Move.FINALIZE, Role.PROVIDER): {State.VERIFIED: State.FINALIZED},
    },
    final=FINAL,
    terminate=Move.TERMINATE,
    terminated=State.TERMINATED,
)


def after(move: Move, *, sender: Role, state: State | None) -> State:
    """The state after ``sender`` makes ``move`` from ``state`` (see :class:`Machine`)."""
    return NEGOTIATION.after(move, sender=sender, state=state)


__all__ = ["FINAL", "ForbiddenTransition", "Move", "Role", "State", "after"]
