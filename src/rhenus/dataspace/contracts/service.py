"""Contract negotiation, both roles: what each received DSP message does to a negotiation.

Every handler runs inside the caller's unit of work: it checks the sender, applies the move
through :mod:`.states` (a forbidden move changes nothing), records the act in the audit log and
enqueues the node's own next step as a job (:mod:`.driver` carries it out after the commit).
"""

from __future__ import annotations

import uuid
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from rhenus.core.audit import AuditLog
from rhenus.core.db import utcnow
from rhenus.dataspace.callers import Caller
from rhenus.dataspace.catalogue import service as catalogue
from rhenus.dataspace.contracts.models import Agreement, Negotiation
from rhenus.dataspace.contracts.schemas import DspMessage
from rhenus.dataspace.contracts.states import FINAL, NEGOTIATION, Move, Role, State
from rhenus.dataspace.driving import raise_event
from rhenus.dataspace.machine import ForbiddenTransition, advance
from rhenus.dataspace.messages import Refused
from rhenus.dataspace.policy import service as policy


class NegotiationFailed(Refused):
    """A request the node refuses; rendered as a ``ContractNegotiationError``."""

    error_type = "ContractNegotiationError"


def new_pid() -> str:
    return f"urn:uuid:{uuid.uuid4()}"


def _not_found(pid: str, message: DspMessage | None = None) -> NegotiationFailed:
    return NegotiationFailed(
        404,
        "unknown-negotiation",
        f"no negotiation {pid[:120]}",
        provider_pid=(message.provider_pid if message else None) or pid,
        consumer_pid=(message.consumer_pid if message else None) or pid,
    )


async def get_negotiation(
    session: AsyncSession, *, pid: str, role: Role, caller: str | None, lock: bool = False
) -> Negotiation:
    """Our negotiation ``pid`` in ``role``; 404 if absent or another participant's (existence is
    not disclosed to others)."""
    query = select(Negotiation).where(Negotiation.id == pid, Negotiation.role == role.value)
    if lock:
        query = query.with_for_update()
    found = (await session.scalars(query)).first()
    if found is None or (caller is not None and found.counterparty != caller):
        raise _not_found(pid)
    return found


def _fail(neg: Negotiation, reason: str, status: int = 400) -> NegotiationFailed:
    return NegotiationFailed(
        status,
        "invalid-transition" if status == 400 else "refused",
        reason,
        provider_pid=neg.provider_pid,
        consumer_pid=neg.consumer_pid,
    )


async def move(
    session: AsyncSession,
    neg: Negotiation,
    step: Move,
    *,
    sender: Role,
    audit: AuditLog,
    actor: str,
    payload: dict[str, Any] | None = None,
    reason: list[str] | None = None,
) -> None:
    """Apply ``step`` made by ``sender`` to ``neg`` and audit it; 400 if the machine forbids it."""
    try:
        await advance(
            session, neg, step, machine=NEGOTIATION, sender=sender, audit=audit, actor=actor,
            kind="contract.negotiation", payload=payload, reason=reason,
            details={"dataset": neg.dataset_id},
        )  # fmt: skip
    except ForbiddenTransition as exc:
        raise _fail(neg, str(exc)) from exc


def callback_allowed(address: str, *, caller: str, loopback_http: bool) -> bool:
    """Whether a callback address belongs to the caller: https on the host its did:web names
    (so a signed request cannot make this node call a third party); plain http to loopback
    only in conformance mode."""
    parts = urlsplit(address)
    if loopback_http and parts.scheme == "http" and parts.hostname in ("127.0.0.1", "localhost"):
        return True
    if parts.scheme != "https" or not caller.startswith("did:web:"):
        return False
    host = caller.removeprefix("did:web:").split(":")[0].replace("%3A", ":").replace("%3a", ":")
    return parts.netloc == host


# -- provider: messages from consumers -------------------------------------------------------
async def _offer_for(session: AsyncSession, message: DspMessage, caller: Caller) -> tuple[str, str]:
    """The dataset and offer a consumer asks for; 400 unless it is one of our offers, for a
    dataset the caller may see, with the same terms."""
    offer = message.offer or {}
    stored = await catalogue.find_offer(session, offer_id=str(offer.get("@id")))
    consumer_pid = message.consumer_pid or ""
    refused = NegotiationFailed(
        400,
        "unknown-offer",
        f"no offer {str(offer.get('@id'))[:120]} for this participant",
        provider_pid="",
        consumer_pid=consumer_pid,
    )
    if stored is None:
        raise refused
    dataset = await catalogue.find_dataset(session, dataset_id=stored.dataset_id)
    if dataset is None or not catalogue.visible_to(dataset, did=caller.did, country=caller.country):
        raise refused
    target = offer.get("target")
    if target is not None and target != dataset.id:
        raise NegotiationFailed(
            400,
            "wrong-target",
            f"offer {stored.id} is for dataset {dataset.id}, not {str(target)[:120]}",
            consumer_pid=consumer_pid,
        )
    if not policy.same_terms(offer, stored.policy):
        raise NegotiationFailed(
            400,
            "changed-terms",
            f"the offer's terms differ from offer {stored.id} as published",
            consumer_pid=consumer_pid,
        )
    return dataset.id, stored.id


async def provider_request(
    session: AsyncSession,
    *,
    message: DspMessage,
    caller: Caller,
    audit: AuditLog,
    loopback_http: bool = False,
) -> tuple[Negotiation, bool]:
    """A ContractRequestMessage: a new negotiation (``True``) or a counter-request on ours."""
    consumer_pid = message.consumer_pid or ""
    if message.provider_pid:
        neg = await get_negotiation(
            session, pid=message.provider_pid, role=Role.PROVIDER, caller=caller.did, lock=True
        )
        if neg.consumer_pid != consumer_pid:
            raise _fail(neg, "the consumerPid does not match this negotiation")
        dataset_id, offer_id = await _offer_for(session, message, caller)
        if dataset_id != neg.dataset_id:
            raise _fail(neg, "a counter-request must be for the same dataset")
        await move(
            session, neg, Move.REQUEST, sender=Role.CONSUMER, audit=audit, actor=caller.did,
            payload=message.offer,
        )  # fmt: skip
        neg.offer, neg.offer_id = dict(message.offer or {}), offer_id
        raise_event(session, kind=KIND, process=neg, event="counter")
        return neg, False
    existing = (
        await session.scalars(
            select(Negotiation).where(
                Negotiation.role == Role.PROVIDER.value,
                Negotiation.counterparty == caller.did,
                Negotiation.consumer_pid == consumer_pid,
            )
        )
    ).first()
    if existing is not None:  # a retried initial request: the same negotiation, unchanged
        return existing, True
    callback = message.callback_address or ""
    if not callback_allowed(callback, caller=caller.did, loopback_http=loopback_http):
        raise NegotiationFailed(
            400,
            "bad-callback",
            "the callbackAddress must be an https URL on the requester's own host",
            consumer_pid=consumer_pid,
        )
    dataset_id, offer_id = await _offer_for(session, message, caller)
    now = utcnow()
    pid = new_pid()
    neg = Negotiation(
        id=pid,
        role=Role.PROVIDER.value,
        provider_pid=pid,
        consumer_pid=consumer_pid,
        counterparty=caller.did,
        counterparty_country=caller.country[:2],
        counterparty_address=callback.rstrip("/"),
        dataset_id=dataset_id,
        offer_id=offer_id,
        offer=dict(message.offer or {}),
        requested=None,
        purpose=_purpose(message),
        agreement_id=None,
        state=State.REQUESTED.value,
        reason=[],
        created_at=now,
        updated_at=now,
    )
    session.add(neg)
    await session.flush()
    await audit.record(
        session,
        actor=caller.did,
        action="contract.negotiation.requested",
        object_type="negotiation",
        object_id=pid,
        payload=message.offer,
        details={"role": "provider", "counterparty": caller.did, "dataset": dataset_id,
                 "providerPid": pid, "consumerPid": consumer_pid, "offer": offer_id},
    )  # fmt: skip
    raise_event(session, kind=KIND, process=neg, event="requested")
    return neg, True


PURPOSE = "https://w3id.org/rhenus/purpose"


def _purpose(message: DspMessage) -> str:
    """The purpose the consumer declares (an extension term; DSP itself has none)."""
    extra = message.model_extra or {}
    value = extra.get(PURPOSE, extra.get("rhenus:purpose", ""))
    return str(value)[:255] if isinstance(value, str) else ""


async def provider_event(
    session: AsyncSession, *, pid: str, message: DspMessage, caller: Caller, audit: AuditLog
) -> Negotiation:
    """A ContractNegotiationEventMessage from the consumer: only ``ACCEPTED`` is theirs."""
    neg = await _own(session, pid, message, Role.PROVIDER, caller)
    if message.event_type != "ACCEPTED":
        raise _fail(neg, f"a consumer cannot send the event {message.event_type}")
    await move(session, neg, Move.ACCEPT, sender=Role.CONSUMER, audit=audit, actor=caller.did)
    raise_event(session, kind=KIND, process=neg, event="accepted")
    return neg


async def provider_verification(
    session: AsyncSession, *, pid: str, message: DspMessage, caller: Caller, audit: AuditLog
) -> Negotiation:
    """A ContractAgreementVerificationMessage: the consumer confirms the agreement."""
    neg = await _own(session, pid, message, Role.PROVIDER, caller)
    await move(session, neg, Move.VERIFY, sender=Role.CONSUMER, audit=audit, actor=caller.did)
    raise_event(session, kind=KIND, process=neg, event="verified")
    return neg


async def terminated_by_peer(
    session: AsyncSession,
    *,
    pid: str,
    role: Role,
    message: DspMessage,
    caller: Caller,
    audit: AuditLog,
) -> Negotiation:
    """A ContractNegotiationTerminationMessage from the other party (either role)."""
    neg = await _own(session, pid, message, role, caller)
    sender = Role.CONSUMER if role is Role.PROVIDER else Role.PROVIDER
    reasons = [str(r)[:500] for r in (message.reason or [])][:10]
    await move(
        session, neg, Move.TERMINATE, sender=sender, audit=audit, actor=caller.did,
        reason=reasons or [f"terminated by the {sender.value}"],
    )  # fmt: skip
    return neg


async def _own(
    session: AsyncSession, pid: str, message: DspMessage, role: Role, caller: Caller
) -> Negotiation:
    """Our negotiation named by the path, which the message's pids must also name."""
    neg = await get_negotiation(session, pid=pid, role=role, caller=caller.did, lock=True)
    ours = message.provider_pid if role is Role.PROVIDER else message.consumer_pid
    theirs = message.consumer_pid if role is Role.PROVIDER else message.provider_pid
    counterpart = neg.consumer_pid if role is Role.PROVIDER else neg.provider_pid
    if ours not in (None, neg.id) or (theirs and counterpart and theirs != counterpart):
        raise _fail(neg, "the message's pids do not match this negotiation")
    if role is Role.CONSUMER and theirs and not neg.provider_pid:
        neg.provider_pid = theirs  # learned before the answer to our request arrived
    return neg


# -- consumer: messages from providers --------------------------------------------------------
async def consumer_agreement(
    session: AsyncSession, *, pid: str, message: DspMessage, caller: Caller, audit: AuditLog
) -> Negotiation:
    """A ContractAgreementMessage: keep the agreement; the node verifies it in the background."""
    neg = await _own(session, pid, message, Role.CONSUMER, caller)
    agreement = dict(message.agreement or {})
    await move(
        session, neg, Move.AGREE, sender=Role.PROVIDER, audit=audit, actor=caller.did,
        payload=agreement,
    )  # fmt: skip
    neg.agreement_id = str(agreement["@id"])
    existing = await session.get(Agreement, neg.agreement_id)
    if existing is not None:
        raise _fail(neg, "this agreement id is already in use")
    session.add(
        Agreement(
            id=neg.agreement_id,
            negotiation_id=neg.id,
            role=Role.CONSUMER.value,
            dataset_id=str(agreement.get("target", neg.dataset_id)),
            provider=str(agreement.get("assigner", neg.counterparty)),
            consumer=str(agreement.get("assignee", "")),
            provider_address=neg.counterparty_address,
            policy=agreement,
            purpose=neg.purpose,
            signed_at=utcnow(),
            access_count=0,
        )
    )
    raise_event(session, kind=KIND, process=neg, event="agreed")
    return neg


async def consumer_event(
    session: AsyncSession, *, pid: str, message: DspMessage, caller: Caller, audit: AuditLog
) -> Negotiation:
    """A ContractNegotiationEventMessage from the provider: only ``FINALIZED`` is theirs."""
    neg = await _own(session, pid, message, Role.CONSUMER, caller)
    if message.event_type != "FINALIZED":
        raise _fail(neg, f"a provider cannot send the event {message.event_type}")
    await move(session, neg, Move.FINALIZE, sender=Role.PROVIDER, audit=audit, actor=caller.did)
    return neg


async def consumer_offer(
    session: AsyncSession,
    *,
    pid: str | None,
    message: DspMessage,
    caller: Caller,
    audit: AuditLog,
    loopback_http: bool = False,
) -> tuple[Negotiation, bool]:
    """A ContractOfferMessage: a counter-offer on our negotiation (``pid``), or a provider's
    initial offer (no ``pid``), which starts a negotiation on our side (``True``)."""
    offer = dict(message.offer or {})
    if pid is not None:
        neg = await _own(session, pid, message, Role.CONSUMER, caller)
        await move(
            session, neg, Move.OFFER, sender=Role.PROVIDER, audit=audit, actor=caller.did,
            payload=offer,
        )  # fmt: skip
        neg.offer, neg.offer_id = offer, str(offer["@id"])
        raise_event(session, kind=KIND, process=neg, event="offered")
        return neg, False
    callback = message.callback_address or ""
    if not callback_allowed(callback, caller=caller.did, loopback_http=loopback_http):
        raise NegotiationFailed(
            400,
            "bad-callback",
            "the callbackAddress must be an https URL on the provider's own host",
            provider_pid=message.provider_pid or "",
        )
    now = utcnow()
    own = new_pid()
    neg = Negotiation(
        id=own,
        role=Role.CONSUMER.value,
        provider_pid=message.provider_pid or "",
        consumer_pid=own,
        counterparty=caller.did,
        counterparty_country=caller.country[:2],
        counterparty_address=callback.rstrip("/"),
        dataset_id=str(offer.get("target", "")),
        offer_id=str(offer["@id"]),
        offer=offer,
        requested=None,
        purpose="",
        agreement_id=None,
        state=State.OFFERED.value,
        reason=[],
        created_at=now,
        updated_at=now,
    )
    session.add(neg)
    await session.flush()
    await audit.record(
        session,
        actor=caller.did,
        action="contract.negotiation.offered",
        object_type="negotiation",
        object_id=own,
        payload=offer,
        details={"role": "consumer", "counterparty": caller.did, "providerPid": neg.provider_pid},
    )
    raise_event(session, kind=KIND, process=neg, event="offered")
    return neg, True


# -- queries for people ----------------------------------------------------------------------
async def list_negotiations(session: AsyncSession, *, limit: int = 200) -> list[Negotiation]:
    query = select(Negotiation).order_by(Negotiation.updated_at.desc()).limit(limit)
    return list((await session.scalars(query)).all())


async def negotiation_state(session: AsyncSession, *, pid: str) -> str | None:
    """The state of our negotiation ``pid`` (either role), or ``None``."""
    return await session.scalar(select(Negotiation.state).where(Negotiation.id == pid))


def is_final(neg: Negotiation) -> bool:
    return State(neg.state) in FINAL


KIND = "contracts"  # the driver of these events (see :mod:`.driver`)
