"""The audit log is hash-chained and checkpointed: any edit, insertion or deletion is found."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import delete, select, update

from rhenus.config import Settings
from rhenus.core.audit import AuditCheckpoint, AuditEntry, verify_log
from rhenus.core.node import Node
from tests.cli_support import rhenus


def _fill(settings: Settings, count: int) -> None:
    async def work() -> None:
        node = Node.open(settings)
        try:
            for i in range(count):
                async with node.db.transaction() as session:
                    await node.audit.record(
                        session,
                        actor="user:alice",
                        action="dataset.published",
                        object_type="dataset",
                        object_id=f"ds-{i}",
                        payload={"n": i},
                        details={"title": f"Dataset {i}"},
                    )
        finally:
            await node.close()

    asyncio.run(work())


def _tamper(settings: Settings, statement: object) -> None:
    async def work() -> None:
        node = Node.open(settings)
        try:
            async with node.db.transaction() as session:
                await session.execute(statement)  # type: ignore[call-overload]
        finally:
            await node.close()

    asyncio.run(work())


def test_untouched_log_verifies(settings: Settings, initialised: str) -> None:
    _fill(settings, 12)
    code, out = rhenus(settings, "audit", "verify")
    assert code == 0, out
    assert "13 entries" in out  # 12 + the first admin's creation
    assert "2 signed checkpoints" in out  # every 5 entries


def test_editing_one_row_is_reported_with_its_number(settings: Settings, initialised: str) -> None:
    _fill(settings, 8)
    _tamper(settings, update(AuditEntry).where(AuditEntry.seq == 4).values(actor="user:mallory"))
    code, out = rhenus(settings, "audit", "verify")
    assert code == 1
    assert "TAMPERED at entry 4" in out
    assert "altered" in out


def test_rewriting_a_row_and_its_hash_breaks_the_next_link(
    settings: Settings, initialised: str
) -> None:
    _fill(settings, 8)

    async def rewrite() -> None:
        node = Node.open(settings)
        try:
            async with node.db.transaction() as session:
                entry = await session.scalar(select(AuditEntry).where(AuditEntry.seq == 3))
                assert entry is not None
                entry.object_id = "ds-forged"
                entry.entry_hash = entry.compute_hash()
        finally:
            await node.close()

    asyncio.run(rewrite())
    code, out = rhenus(settings, "audit", "verify")
    assert code == 1
    assert "entry 4 does not link to entry 3" in out


def test_deleting_a_row_is_reported(settings: Settings, initialised: str) -> None:
    _fill(settings, 8)
    _tamper(settings, delete(AuditEntry).where(AuditEntry.seq == 6))
    code, out = rhenus(settings, "audit", "verify")
    assert code == 1
    assert "entry 6 is missing" in out


def test_truncating_the_tail_below_a_checkpoint_is_reported(
    settings: Settings, initialised: str
) -> None:
    _fill(settings, 11)  # 12 entries, checkpoints at 5 and 10
    _tamper(settings, delete(AuditEntry).where(AuditEntry.seq >= 9))
    code, out = rhenus(settings, "audit", "verify")
    assert code == 1
    assert "checkpoint 10 covers entries that are gone" in out


def test_forged_checkpoint_signature_is_reported(settings: Settings, initialised: str) -> None:
    _fill(settings, 6)
    _tamper(
        settings,
        update(AuditCheckpoint).where(AuditCheckpoint.seq == 5).values(signature="AAAA"),
    )
    code, out = rhenus(settings, "audit", "verify")
    assert code == 1
    assert "checkpoint 5 has a bad signature" in out


async def test_concurrent_appends_keep_one_unbroken_chain(node: Node) -> None:
    async def one(i: int) -> None:
        async with node.db.transaction() as session:
            await node.audit.record(
                session, actor="system", action="test.concurrent", object_id=str(i)
            )

    await asyncio.gather(*(one(i) for i in range(20)))
    async with node.db.session() as session:
        result = await verify_log(session, node.keyring)
        seqs = list(await session.scalars(select(AuditEntry.seq).order_by(AuditEntry.seq)))
    assert result.ok, result.reason
    assert seqs == list(range(1, 22))


@pytest.mark.parametrize("payload", [b"raw bytes", {"b": 2, "a": 1}])
async def test_entry_keeps_only_the_digest_of_its_payload(node: Node, payload: object) -> None:
    async with node.db.transaction() as session:
        entry = await node.audit.record(
            session, actor="system", action="test.digest", payload=payload
        )  # type: ignore[arg-type]
    assert len(entry.payload_digest) == 64
    assert "raw bytes" not in str(entry.details)
