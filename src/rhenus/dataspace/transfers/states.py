"""The transfer process state machine of the Dataspace Protocol 2025-1 ("Transfer Process
Protocol", section "States"): REQUESTED, STARTED, SUSPENDED, COMPLETED, TERMINATED."""

from __future__ import annotations

from enum import StrEnum

from rhenus.dataspace.machine import Machine, Role


class State(StrEnum):
    REQUESTED = "REQUESTED"
    STARTED = "STARTED"
    SUSPENDED = "SUSPENDED"
    COMPLETED = "COMPLETED"
    TERMINATED = "TERMINATED"


class Move(StrEnum):
    REQUEST = "TransferRequestMessage"
    START = "TransferStartMessage"
    SUSPEND = "TransferSuspensionMessage"
    COMPLETE = "TransferCompletionMessage"
    TERMINATE = "TransferTerminationMessage"


FINAL = frozenset({State.COMPLETED, State.TERMINATED})

# Either party may suspend or complete a started transfer; the provider starts it, and a
# suspended one is restarted by either (the consumer asks the provider with a start message).
TRANSFER = Machine[State](
    table={
        (Move.REQUEST, Role.CONSUMER): {None: State.REQUESTED},
        (Move.START, Role.PROVIDER): {
            State.REQUESTED: State.STARTED,
            State.SUSPENDED: State.STARTED,
        },
        (Move.START, Role.CONSUMER): {State.SUSPENDED: State.STARTED},
        (Move.SUSPEND, Role.PROVIDER): {State.STARTED: State.SUSPENDED},
        (Move.SUSPEND, Role.CONSUMER): {State.STARTED: State.SUSPENDED},
        (Move.COMPLETE, Role.PROVIDER): {State.STARTED: State.COMPLETED},
        (Move.COMPLETE, Role.CONSUMER): {State.STARTED: State.COMPLETED},
    },
    final=FINAL,
    terminate=Move.TERMINATE,
    terminated=State.TERMINATED,
)


def after(move: Move, *, sender: Role, state: State | None) -> State:
    """The state after ``sender`` makes ``move`` from ``state`` (see :class:`Machine`)."""
    return TRANSFER.after(move, sender=sender, state=state)
