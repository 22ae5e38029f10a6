"""The tamper-evident audit log: an append-only, hash-chained table with signed checkpoints.

Each entry's hash covers its fields and the previous entry's hash, so editing, inserting or
deleting a row breaks the chain from that row on. Every ``checkpoint_every`` entries the node signs
the head (sequence number + hash) with its Ed25519 key; checkpoints can be handed to partners so
that both sides can later show the log was not rewritten (``docs/operations.md``).

Appends are serialised: SQLite write transactions are ``BEGIN IMMEDIATE`` (see ``core.db``), and
on PostgreSQL an advisory transaction lock is taken before reading the head.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, String, Text, select, text
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from rhenus.core.db import Base, utcnow
from rhenus.core.keys import Keyring

GENESIS = "0" * 64
# Arbitrary constant naming "the audit head" among PostgreSQL advisory locks.
_PG_AUDIT_LOCK = 0x5248454E5553  # "RHENUS"
_VERIFY_BATCH = 1000


class AuditEntry(Base):
    """One audited act: who did what to which object, when, and the digest of what was sent."""

    __tablename__ = "audit_entries"

    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    ts: Mapped[datetime]
    actor: Mapped[str] = mapped_column(String(255))
    action: Mapped[str] = mapped_column(String(128), index=True)
    object_type: Mapped[str] = mapped_column(String(64), default="")
    object_id: Mapped[str] = mapped_column(String(255), default="")
    payload_digest: Mapped[str] = mapped_column(String(64), default="")
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    prev_hash: Mapped[str] = mapped_column(String(64))
    entry_hash: Mapped[str] = mapped_column(String(64))

    def canonical(self) -> bytes:
        """The bytes the entry hash covers (sorted-key compact JSON, UTF-8)."""
        return canonical_json(
            {
                "seq": self.seq,
                "ts": self.ts.isoformat(timespec="microseconds"),
                "actor": self.actor,
                "action": self.action,
                "object_type": self.object_type,
                "object_id": self.object_id,
                "payload_digest": self.payload_digest,
                "details": self.details,
                "prev": self.prev_hash,
            }
        )

    def compute_hash(self) -> str:
        return hashlib.sha256(self.canonical()).hexdigest()


class AuditCheckpoint(Base):
    """The node's signature over the log head after ``seq`` entries."""

    __tablename__ = "audit_checkpoints"

    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    head_hash: Mapped[str] = mapped_column(String(64))
    ts: Mapped[datetime]
    kid: Mapped[str] = mapped_column(String(64))
    signature: Mapped[str] = mapped_column(Text)

    def signed_bytes(self) -> bytes:
        return checkpoint_bytes(self.seq, self.head_hash, self.ts)


def canonical_json(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def checkpoint_bytes(seq: int, head_hash: str, ts: datetime) -> bytes:
    payload = {"seq": seq, "head": head_hash, "ts": ts.isoformat(timespec="microseconds")}
    return b"rhenus-audit-checkpoint:" + canonical_json(payload)


def digest(payload: bytes | Mapping[str, Any] | None) -> str:
    """sha-256 hex of a payload (bytes as they are, mappings as canonical JSON)."""
    if payload is None:
        return ""
    data = payload if isinstance(payload, bytes) else canonical_json(dict(payload))
    return hashlib.sha256(data).hexdigest()


class AuditLog:
    """Appends entries and signs checkpoints; one per node."""

    def __init__(self, keyring: Keyring, *, checkpoint_every: int = 100) -> None:
        self.keyring = keyring
        self.checkpoint_every = checkpoint_every

    async def record(
        self,
        session: AsyncSession,
        *,
        actor: str,
        action: str,
        object_type: str = "",
        object_id: str = "",
        payload: bytes | Mapping[str, Any] | None = None,
        details: Mapping[str, Any] | None = None,
    ) -> AuditEntry:
        """Append an entry inside the caller's transaction; it commits or vanishes with the act."""
        bind = session.get_bind()
        if bind.dialect.name == "postgresql":
            await session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_AUDIT_LOCK})
        head = (
            await session.execute(
                select(AuditEntry.seq, AuditEntry.entry_hash)
                .order_by(AuditEntry.seq.desc())
                .limit(1)
            )
        ).first()
        seq, prev = (head[0] + 1, head[1]) if head else (1, GENESIS)
        entry = AuditEntry(
            seq=seq,
            ts=utcnow(),
            actor=actor,
            action=action,
            object_type=object_type,
            object_id=object_id,
            payload_digest=digest(payload),
            details=dict(details or {}),
            prev_hash=prev,
        )
        entry.entry_hash = entry.compute_hash()
        session.add(entry)
        if seq % self.checkpoint_every == 0:
            session.add(self._checkpoint(seq, entry.entry_hash))
        # No flush here: the entry is written with the act's own rows at commit (one flush, not
        # one per entry); a second entry of the transaction reads the first by autoflush.
        return entry

    def _checkpoint(self, seq: int, head_hash: str) -> AuditCheckpoint:
        ts = utcnow()
        kid, signature = self.keyring.sign(checkpoint_bytes(seq, head_hash, ts))
        return AuditCheckpoint(
            seq=seq,
            head_hash=head_hash,
            ts=ts,
            kid=kid,
            signature=base64.b64encode(signature).decode(),
        )


@dataclass(frozen=True)
class AuditVerification:
    """What ``rhenus audit verify`` found: ``ok`` or the first bad entry and why."""

    ok: bool
    entries: int
    checkpoints: int
    first_bad_seq: int | None = None
    reason: str = ""


async def verify_log(session: AsyncSession, keyring: Keyring) -> AuditVerification:
    """Walk the whole chain and every checkpoint; stop at the first inconsistency."""
    checkpoints = {c.seq: c for c in (await session.scalars(select(AuditCheckpoint))).all()}
    expected_seq, prev, count = 1, GENESIS, 0
    hashes_at: dict[int, str] = {}
    while True:
        batch = (
            await session.scalars(
                select(AuditEntry)
                .where(AuditEntry.seq >= expected_seq)
                .order_by(AuditEntry.seq)
                .limit(_VERIFY_BATCH)
            )
        ).all()
        if not batch:
            break
        for entry in batch:
            if entry.seq != expected_seq:
                return AuditVerification(
                    False,
                    count,
                    len(checkpoints),
                    expected_seq,
                    f"entry {expected_seq} is missing (next present is {entry.seq})",
                )
            if entry.prev_hash != prev:
                return AuditVerification(
                    False,
                    count,
                    len(checkpoints),
                    entry.seq,
                    f"entry {entry.seq} does not link to entry {entry.seq - 1}",
                )
            if entry.compute_hash() != entry.entry_hash:
                return AuditVerification(
                    False,
                    count,
                    len(checkpoints),
                    entry.seq,
                    f"entry {entry.seq} was altered: its content does not match its hash",
                )
            if entry.seq in checkpoints:
                hashes_at[entry.seq] = entry.entry_hash
            prev, expected_seq, count = entry.entry_hash, entry.seq + 1, count + 1
    for seq in sorted(checkpoints):
        cp = checkpoints[seq]
        if seq > count:
            return AuditVerification(
                False,
                count,
                len(checkpoints),
                count + 1,
                f"checkpoint {seq} covers entries that are gone (log ends at {count})",
            )
        if hashes_at.get(seq) != cp.head_hash:
            return AuditVerification(
                False,
                count,
                len(checkpoints),
                seq,
                f"entry {seq} differs from the head signed in checkpoint {seq}",
            )
        try:
            signature = base64.b64decode(cp.signature, validate=True)
        except binascii.Error:
            signature = b""
        if not keyring.verify(cp.kid, cp.signed_bytes(), signature):
            return AuditVerification(
                False,
                count,
                len(checkpoints),
                seq,
                f"checkpoint {seq} has a bad signature",
            )
    return AuditVerification(True, count, len(checkpoints))


async def list_entries(
    session: AsyncSession, *, after: int = 0, limit: int = 100
) -> list[AuditEntry]:
    """Entries with ``seq > after``, oldest first."""
    rows = await session.scalars(
        select(AuditEntry).where(AuditEntry.seq > after).order_by(AuditEntry.seq).limit(limit)
    )
    return list(rows.all())
