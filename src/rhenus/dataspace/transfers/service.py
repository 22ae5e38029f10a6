"""Transfer processes, both roles: what each received DSP transfer message does.

As with negotiations, every handler runs in the caller's unit of work, applies the move through
:mod:`.states` (a forbidden move changes nothing), audits it, and leaves the node's own next
step (starting the data flow) to a job run by :mod:`.driver`.
"""

from __future__ import annotations

import hashlib
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from rhenus.core.audit import AuditLog
from rhenus.core.db import utcnow
from rhenus.dataspace.callers import Caller
from rhenus.dataspace.contracts import agreements
from rhenus.dataspace.contracts import service as contracts
from rhenus.dataspace.contracts.service import callback_allowed, new_pid
from rhenus.dataspace.driving import raise_event
from rhenus.dataspace.machine import ForbiddenTransition, Role, advance
from rhenus.dataspace.messages import DspMessage, Refused
from rhenus.dataspace.transfers.models import Transfer
from rhenus.dataspace.transfers.states import FINAL, TRANSFER, Move, State

PULL = "HttpData-PULL"
FORMATS = frozenset({PULL})
KIND = "transfers"  # the driver of these events (see :mod:`.driver`)


class TransferFailed(Refused):
    """A request the node refuses; rendered as a ``TransferError``."""

    error_type = "TransferError"


def _fail(tp: Transfer, reason: str, status: int = 400) -> TransferFailed:
    return TransferFailed(
        status,
        "invalid-transition" if status == 400 else "refused",
        reason,
        provider_pid=tp.provider_pid,
        consumer_pid=tp.consumer_pid,
    )


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


async def get_transfer(
    session: AsyncSession, *, pid: str, caller: str | None, lock: bool = False
) -> Transfer:
    """Our transfer ``pid``; 404 if absent or another participant's."""
    query = select(Transfer).where(Transfer.id == pid)
    if lock:
        query = query.with_for_update()
    found = (await session.scalars(query)).first()
    if found is None or (caller is not None and found.counterparty != caller):
        raise TransferFailed(
            404, "unknown-transfer", f"no transfer {pid[:120]}", provider_pid=pid, consumer_pid=pid
        )
    return found


async def move(
    session: AsyncSession,
    tp: Transfer,
    step: Move,
    *,
    sender: Role,
    audit: AuditLog,
    actor: str,
    reason: list[str] | None = None,
    payload: dict[str, Any] | None = None,
) -> None:
    """Apply ``step`` by ``sender`` and audit it; 400 ``TransferFailed`` if forbidden."""
    try:
        await advance(
            session, tp, step, machine=TRANSFER, sender=sender, audit=audit, actor=actor,
            kind="transfer.process", payload=payload, reason=reason,
            details={"agreement": tp.agreement_id, "dataset": tp.dataset_id},
        )  # fmt: skip
    except ForbiddenTransition as exc:
        raise _fail(tp, str(exc)) from exc


async def provider_request(
    session: AsyncSession,
    *,
    message: DspMessage,
    caller: Caller,
    audit: AuditLog,
    loopback_http: bool = False,
) -> Transfer:
    """A TransferRequestMessage: a new transfer under one of the caller's agreements, or the
    same one again if it repeats a consumerPid (idempotent retries)."""
    consumer_pid = message.consumer_pid or ""
    existing = (
        await session.scalars(
            select(Transfer).where(
                Transfer.role == Role.PROVIDER.value,
                Transfer.counterparty == caller.did,
                Transfer.consumer_pid == consumer_pid,
            )
        )
    ).first()
    if existing is not None:
        return existing

    def refuse(code: str, reason: str) -> TransferFailed:
        return TransferFailed(400, code, reason, consumer_pid=consumer_pid)

    if message.format not in FORMATS:
        raise refuse(
            "unsupported-format", f"format {message.format!r} is not one of {sorted(FORMATS)}"
        )
    agreement = await agreements.find_agreement(session, agreement_id=message.agreement_id or "")
    if (
        agreement is None
        or agreement.role != Role.PROVIDER.value
        or agreement.consumer != caller.did
    ):
        raise refuse(
            "unknown-agreement", f"no agreement {str(message.agreement_id)[:120]} with you"
        )
    if agreement.negotiation_id is not None:
        state = await contracts.negotiation_state(session, pid=agreement.negotiation_id)
        if state != "FINALIZED":
            raise refuse(
                "agreement-not-final", "the negotiation of this agreement is not finalized"
            )
    callback = message.callback_address or ""
    if not callback_allowed(callback, caller=caller.did, loopback_http=loopback_http):
        raise refuse("bad-callback", "the callbackAddress must be an https URL on your own host")
    now = utcnow()
    pid = new_pid()
    tp = Transfer(
        id=pid, role=Role.PROVIDER.value, provider_pid=pid, consumer_pid=consumer_pid,
        counterparty=caller.did, counterparty_address=callback.rstrip("/"),
        agreement_id=agreement.id, dataset_id=agreement.dataset_id, format=message.format or PULL,
        state=State.REQUESTED.value, reason=[], token_sha256=None, token_expires_at=None,
        data_address=None, bytes_served=0, sha256=None, created_at=now, updated_at=now,
    )  # fmt: skip
    session.add(tp)
    await session.flush()
    await audit.record(
        session, actor=caller.did, action="transfer.process.requested",
        object_type="process", object_id=pid,
        details={"role": "provider", "counterparty": caller.did, "agreement": agreement.id,
                 "providerPid": pid, "consumerPid": consumer_pid, "format": tp.format},
    )  # fmt: skip
    raise_event(session, kind=KIND, process=tp, event="requested")
    return tp


# A received message: (move, the role that sent it).
_MOVES = {
    "TransferStartMessage": Move.START,
    "TransferCompletionMessage": Move.COMPLETE,
    "TransferSuspensionMessage": Move.SUSPEND,
    "TransferTerminationMessage": Move.TERMINATE,
}


async def peer_move(
    session: AsyncSession, *, pid: str, message: DspMessage, caller: Caller, audit: AuditLog
) -> Transfer:
    """A start, completion, suspension or termination from the other party. A consumer's start
    restarts a suspended transfer; a provider's start carries the data address to pull from."""
    tp = await get_transfer(session, pid=pid, caller=caller.did, lock=True)
    ours = tp.id
    mine = message.provider_pid if tp.role == Role.PROVIDER else message.consumer_pid
    theirs = message.consumer_pid if tp.role == Role.PROVIDER else message.provider_pid
    counterpart = tp.consumer_pid if tp.role == Role.PROVIDER else tp.provider_pid
    if mine != ours or (counterpart and theirs != counterpart):
        raise _fail(tp, "the message's pids do not match this transfer")
    if tp.role == Role.CONSUMER and not tp.provider_pid and theirs:
        tp.provider_pid = theirs
    sender = Role.CONSUMER if tp.role == Role.PROVIDER else Role.PROVIDER
    step = _MOVES[message.type]
    reasons = [str(r)[:500] for r in (message.reason or [])][:10] or None
    starts_pull = step is Move.START and sender is Role.PROVIDER and tp.format == PULL
    if starts_pull and not isinstance(message.data_address, dict):
        raise _fail(tp, "a pull transfer's start message needs a dataAddress")
    await move(session, tp, step, sender=sender, audit=audit, actor=caller.did, reason=reasons)
    if step is Move.START and sender is Role.PROVIDER:
        tp.data_address = message.data_address
        raise_event(session, kind=KIND, process=tp, event="started")
    if tp.state == State.COMPLETED:
        raise_event(session, kind=KIND, process=tp, event="completed")
    return tp


async def list_transfers(session: AsyncSession, *, limit: int = 200) -> list[Transfer]:
    query = select(Transfer).order_by(Transfer.updated_at.desc()).limit(limit)
    return list((await session.scalars(query)).all())


def is_final(tp: Transfer) -> bool:
    return State(tp.state) in FINAL
