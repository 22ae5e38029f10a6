"""Key rotation: new keys become current, old signatures verify and old blobs still open."""

from __future__ import annotations

import asyncio

from rhenus.config import Settings
from rhenus.core.audit import verify_log
from rhenus.core.keys import Keyring
from rhenus.core.node import Node
from tests.cli_support import rhenus


def test_rotating_both_keys_keeps_history_verifiable(settings: Settings, initialised: str) -> None:
    async def before() -> str:
        node = Node.open(settings)
        try:
            for i in range(5):  # reaches a checkpoint signed by the first key
                async with node.db.transaction() as session:
                    await node.audit.record(
                        session, actor="system", action="test", object_id=str(i)
                    )
            return (await node.blobs.put([b"sealed under the first KEK"])).sha256
        finally:
            await node.close()

    address = asyncio.run(before())
    first = Keyring.load(settings.keys_dir)
    assert rhenus(settings, "keys", "rotate", "signing")[0] == 0
    assert rhenus(settings, "keys", "rotate", "kek")[0] == 0
    ring = Keyring.load(settings.keys_dir)
    assert ring.current_signing != first.current_signing
    assert ring.current_kek != first.current_kek

    async def after() -> None:
        node = Node.open(settings)
        try:
            assert await node.blobs.read_bytes(address) == b"sealed under the first KEK"
            async with node.db.session() as session:
                result = await verify_log(session, node.keyring)
            assert result.ok, result.reason
            assert result.checkpoints >= 1
        finally:
            await node.close()

    asyncio.run(after())
    code, out = rhenus(settings, "keys", "list")
    assert code == 0
    assert out.count("signing") == 2
    assert out.count("yes") == 2
