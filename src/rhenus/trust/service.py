"""Trust logic that needs the database: replay guard, held credentials, the anchor's registry."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from rhenus.core.db import insert_for, utcnow
from rhenus.core.errors import NotFound
from rhenus.trust.credentials import decode_unverified, digest
from rhenus.trust.models import RegisteredParticipant, SeenNonce, StoredCredential

_last_purge: datetime | None = None  # in this process


async def accept_nonces(
    session: AsyncSession, entries: Mapping[str, str], *, window: timedelta
) -> set[str]:
    """Record nonces (nonce → sender); the set of those not seen before (the others are
    replays).

    Nonces older than the signature window are forgotten: a request that old is refused for its
    age before its nonce is looked at.
    """
    global _last_purge
    now = utcnow()
    # Forgetting is done now and then, not on every request: it is a write over an index range.
    if _last_purge is None or now - _last_purge > window / 10:
        await session.execute(delete(SeenNonce).where(SeenNonce.seen_at < now - window * 2))
        _last_purge = now
    # One statement that is both the check and the record: the primary key decides, also
    # between two workers receiving the same replay at once.
    added = await session.execute(
        insert_for(session)(SeenNonce)
        .values([{"nonce": n, "sender": s[:255], "seen_at": now} for n, s in entries.items()])
        .on_conflict_do_nothing(index_elements=[SeenNonce.nonce])
        .returning(SeenNonce.nonce)
    )
    return set(added.scalars())


async def store_credential(
    session: AsyncSession, *, kind: str, token: str, issuer: str, valid_until: datetime | None
) -> StoredCredential:
    """Keep a credential about this node (the newest of a kind is the one presented)."""
    existing = await session.scalar(
        select(StoredCredential).where(StoredCredential.digest == digest(token))
    )
    if existing is not None:
        return existing
    row = StoredCredential(
        kind=kind,
        issuer=issuer,
        digest=digest(token),
        token=token,
        created_at=utcnow(),
        valid_until=valid_until,
    )
    session.add(row)
    await session.flush()
    return row


async def latest_credential(session: AsyncSession, *, kind: str) -> StoredCredential | None:
    """The newest credential of ``kind`` this node holds, if any."""
    return await session.scalar(
        select(StoredCredential)
        .where(StoredCredential.kind == kind)
        .order_by(StoredCredential.id.desc())
        .limit(1)
    )


async def credentials_of_kind(session: AsyncSession, *, kind: str) -> list[StoredCredential]:
    """Every credential of ``kind`` this node holds, oldest first."""
    rows = await session.scalars(
        select(StoredCredential).where(StoredCredential.kind == kind).order_by(StoredCredential.id)
    )
    return list(rows.all())


async def get_participant(session: AsyncSession, *, did: str) -> RegisteredParticipant | None:
    return await session.get(RegisteredParticipant, did)


async def register_participant(
    session: AsyncSession,
    *,
    did: str,
    legal_name: str,
    country: str,
    labels: list[str],
    digests: list[str],
) -> RegisteredParticipant:
    """Record (or refresh) a compliant participant; a new one gets the next status index."""
    row = await session.get(RegisteredParticipant, did)
    if row is None:
        highest = await session.scalar(select(func.max(RegisteredParticipant.status_index)))
        row = RegisteredParticipant(did=did, status_index=(highest or 0) + 1, revoked_at=None)
        session.add(row)
    row.legal_name, row.country, row.labels = legal_name, country, labels
    row.credential_digests, row.issued_at = digests, utcnow()
    await session.flush()
    return row


async def revoke_participant(session: AsyncSession, *, did: str) -> RegisteredParticipant:
    """Revoke a participant's compliance (its status bit is set from now on)."""
    row = await session.get(RegisteredParticipant, did)
    if row is None:
        raise NotFound(f"no registered participant {did[:120]}")
    if row.revoked_at is None:
        row.revoked_at = utcnow()
    return row


async def list_participants(session: AsyncSession) -> list[RegisteredParticipant]:
    rows = await session.scalars(select(RegisteredParticipant).order_by(RegisteredParticipant.did))
    return list(rows.all())


async def revoked_indexes(session: AsyncSession) -> list[int]:
    rows = await session.scalars(
        select(RegisteredParticipant.status_index).where(
            RegisteredParticipant.revoked_at.is_not(None)
        )
    )
    return list(rows.all())


async def own_country(session: AsyncSession) -> str:
    """The headquarters country the anchor certified for this node ("" before compliance).

    The credential was verified when it was received; here it is only read.
    """
    held = await latest_credential(session, kind="compliance")
    if held is None:
        return ""
    subject = decode_unverified(held.token).get("credentialSubject", {})
    return str(subject.get("rhenus:headquartersCountry", "")) if isinstance(subject, dict) else ""
