"""Receipts of completed transfers: what was delivered, signed by the provider and
countersigned by the consumer, kept — with both signatures — in both audit logs.

The provider signs the claims (transfer pids, agreement, dataset, sha-256, bytes, time, both
parties) as a compact JWS with its did:web key; the consumer checks the signature and that the
claims match what it received (the digest it computed itself), then signs a JWS over the
receipt's digest. Either side, or an auditor, can later check both signatures against the
parties' did:web documents (``rhenus audit verify --receipts``).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from rhenus.core.audit import AuditLog
from rhenus.core.db import utcnow
from rhenus.core.errors import Forbidden, NotFound, Problem
from rhenus.core.keys import Keyring
from rhenus.dataspace.machine import Role
from rhenus.dataspace.transfers.models import Receipt, Transfer
from rhenus.dataspace.transfers.states import State
from rhenus.trust.credentials import CredentialError, sign_jws, verify_jws
from rhenus.trust.did import DidResolver

RECEIPT = "transfer-receipt+jwt"
COUNTERSIGNATURE = "transfer-countersignature+jwt"


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def claims_of(
    tp: Transfer, *, provider: str, sha256: str, size: int, when: datetime
) -> dict[str, Any]:
    """What the provider attests it delivered (provider side of ``tp``)."""
    return {
        "type": "TransferReceipt",
        "providerPid": tp.provider_pid,
        "consumerPid": tp.consumer_pid,
        "agreement": tp.agreement_id,
        "dataset": tp.dataset_id,
        "sha256": sha256,
        "bytes": size,
        "provider": provider,
        "consumer": tp.counterparty,
        "completedAt": when.isoformat(timespec="seconds").replace("+00:00", "Z"),
    }


async def sign(
    session: AsyncSession,
    *,
    tp: Transfer,
    keyring: Keyring,
    audit: AuditLog,
    did: str,
    sha256: str,
    size: int,
) -> str:
    """Provider: sign and keep the receipt of a completed transfer; the token to send."""
    claims = claims_of(tp, provider=did, sha256=sha256, size=size, when=utcnow())
    token = sign_jws(keyring=keyring, did=did, payload=claims, typ=RECEIPT)
    session.add(
        Receipt(
            transfer_id=tp.id, role=tp.role, claims=claims, provider_signature=token,
            consumer_signature="", created_at=utcnow(),
        )
    )  # fmt: skip
    await audit.record(
        session, actor=did, action="transfer.receipt.signed", object_type="process",
        object_id=tp.id, payload=claims, details={"receipt": token_digest(token)},
    )  # fmt: skip
    return token


async def countersign(
    session: AsyncSession,
    *,
    token: str,
    sender: str,
    resolver: DidResolver,
    keyring: Keyring,
    audit: AuditLog,
    did: str,
) -> str:
    """Consumer: check the provider's receipt against what we received and countersign it."""
    try:
        claims, signer, _ = await verify_jws(token, resolver, typ=RECEIPT)
    except CredentialError as exc:
        raise Forbidden(f"the receipt does not verify: {exc}") from exc
    if signer != sender or claims.get("provider") != sender:
        raise Forbidden("the receipt is not signed by the provider that sent it")
    tp = (
        await session.scalars(
            select(Transfer).where(
                Transfer.id == str(claims.get("consumerPid")),
                Transfer.role == Role.CONSUMER.value,
                Transfer.counterparty == sender,
            )
        )
    ).first()
    if tp is None:
        raise NotFound("no transfer of ours matches this receipt")
    mismatches = [
        name
        for name, ours in (
            ("providerPid", tp.provider_pid), ("agreement", tp.agreement_id),
            ("sha256", tp.sha256), ("bytes", tp.bytes_served), ("consumer", did),
        )
        if claims.get(name) != ours
    ]  # fmt: skip
    if tp.state != State.COMPLETED or mismatches:
        raise Forbidden(
            f"the receipt does not match what we received ({', '.join(mismatches) or tp.state})"
        )
    counter = sign_jws(
        keyring=keyring,
        did=did,
        payload={"type": "TransferReceiptCountersignature", "receipt": token_digest(token),
                 "consumerPid": tp.id, "consumer": did},
        typ=COUNTERSIGNATURE,
    )  # fmt: skip
    existing = await session.get(Receipt, tp.id)
    if existing is None:
        session.add(
            Receipt(
                transfer_id=tp.id, role=tp.role, claims=claims, provider_signature=token,
                consumer_signature=counter, created_at=utcnow(),
            )
        )  # fmt: skip
    await audit.record(
        session, actor=did, action="transfer.receipt.countersigned", object_type="process",
        object_id=tp.id, payload=claims,
        details={"receipt": token_digest(token), "countersignature": token_digest(counter)},
    )  # fmt: skip
    return counter


async def record_countersignature(
    session: AsyncSession,
    *,
    transfer_id: str,
    counter: str,
    resolver: DidResolver,
    audit: AuditLog,
    did: str,
) -> None:
    """Provider: keep the consumer's countersignature once it verifies."""
    receipt = await session.get(Receipt, transfer_id)
    if receipt is None:
        raise NotFound(f"no receipt for {transfer_id}")
    payload, signer, _ = await verify_jws(counter, resolver, typ=COUNTERSIGNATURE)
    if signer != receipt.claims.get("consumer"):
        raise Forbidden("the countersignature is not the consumer's")
    if payload.get("receipt") != token_digest(receipt.provider_signature):
        raise Forbidden("the countersignature is for another receipt")
    receipt.consumer_signature = counter
    await audit.record(
        session, actor=signer, action="transfer.receipt.countersigned", object_type="process",
        object_id=transfer_id, payload=receipt.claims,
        details={"receipt": token_digest(receipt.provider_signature),
                 "countersignature": token_digest(counter)},
    )  # fmt: skip


@dataclass(frozen=True)
class ReceiptCheck:
    transfer_id: str
    role: str
    provider: str
    consumer: str
    ok: bool
    reason: str
    receipt: str  # sha-256 of the provider's signed receipt
    countersignature: str  # sha-256 of the consumer's countersignature ("" if none)


async def check_all(session: AsyncSession, *, resolver: DidResolver) -> list[ReceiptCheck]:
    """Verify both signatures of every receipt against the parties' did:web documents."""
    found = []
    for receipt in (await session.scalars(select(Receipt).order_by(Receipt.created_at))).all():
        claims = receipt.claims
        reason = ""
        try:
            signed, signer, _ = await verify_jws(receipt.provider_signature, resolver, typ=RECEIPT)
            if signer != claims.get("provider") or signed != claims:
                reason = "the provider's signature does not cover these claims"
            elif not receipt.consumer_signature:
                reason = "not countersigned by the consumer"
            else:
                counter, cosigner, _ = await verify_jws(
                    receipt.consumer_signature, resolver, typ=COUNTERSIGNATURE
                )
                if cosigner != claims.get("consumer"):
                    reason = "the countersignature is not the consumer's"
                elif counter.get("receipt") != token_digest(receipt.provider_signature):
                    reason = "the countersignature is for another receipt"
        except (CredentialError, Problem) as exc:
            reason = exc.detail if isinstance(exc, Problem) else str(exc)
        found.append(
            ReceiptCheck(
                receipt.transfer_id, receipt.role, str(claims.get("provider")),
                str(claims.get("consumer")), not reason, reason,
                token_digest(receipt.provider_signature),
                token_digest(receipt.consumer_signature) if receipt.consumer_signature else "",
            )
        )  # fmt: skip
    return found
