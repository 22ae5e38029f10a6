"""Backup one node, restore it into another data dir (and database): same accounts and blobs."""

from __future__ import annotations

import asyncio
import tarfile
from pathlib import Path

import httpx
import pytest

from rhenus.app import create_app
from rhenus.config import Settings
from rhenus.core.audit import verify_log
from rhenus.core.node import Node
from tests.cli_support import rhenus

PASS = {"RHENUS_BACKUP_PASSPHRASE": "a long backup passphrase"}


def _populate(settings: Settings) -> list[str]:
    async def work() -> list[str]:
        node = Node.open(settings)
        try:
            addresses = []
            for i in range(3):
                data = f"Rapport annuel {i} — données confidentielles ".encode() * (5000 * (i + 1))
                addresses.append((await node.blobs.put([data])).sha256)
            return addresses
        finally:
            await node.close()

    addresses = asyncio.run(work())
    code, out = rhenus(settings, "users", "add", "jeanne", "--email", "jeanne@berlin.de")
    assert code == 0, out
    return addresses


def _restored_settings(tmp_path: Path, fresh_db_url: str) -> Settings:
    return Settings(
        home=tmp_path / "restored",
        database_url=fresh_db_url,
        node_name="test-node",
        audit_checkpoint_every=5,
    )


@pytest.fixture
def fresh_db_url(request: pytest.FixtureRequest, db_url: str, tmp_path: Path) -> str:
    """A second, empty database of the same engine (not migrated)."""
    if db_url.startswith("sqlite"):
        return f"sqlite+aiosqlite:///{tmp_path / 'restored.db'}"
    server = request.getfixturevalue("postgres")
    name = "r_" + Path(tmp_path).name.replace("-", "_")[-20:].lower()
    server.psql(f"CREATE DATABASE {name}")
    return str(server.url(name))


def test_restored_node_serves_same_accounts_blobs_and_log(
    settings: Settings, initialised: str, tmp_path: Path, fresh_db_url: str
) -> None:
    addresses = _populate(settings)
    archive = tmp_path / "node.tar"
    code, out = rhenus(settings, "backup", str(archive), env=PASS)
    assert code == 0, out
    assert "3 blobs" in out
    with tarfile.open(archive) as tar:
        names = tar.getnames()
        keys = tar.extractfile("keys.enc")
        assert keys is not None
        assert b"PRIVATE KEY" not in keys.read()
    assert {"manifest.json", "keys.enc", "db/users.jsonl.gz"} <= set(names)

    target = _restored_settings(tmp_path, fresh_db_url)
    code, out = rhenus(target, "restore", str(archive), env=PASS)
    assert code == 0, out
    assert "all verified" in out

    async def check() -> None:
        node = Node.open(target)
        try:
            for address in addresses:
                data = await node.blobs.read_bytes(address)
                assert data.startswith(b"Rapport annuel")
            async with node.db.session() as session:
                assert (await verify_log(session, node.keyring)).ok
            app = create_app(target, node=node)
            async with httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app), base_url="http://t"
            ) as client:
                login = await client.post(
                    "/api/v1/auth/login", json={"username": "admin", "password": initialised}
                )
                assert login.status_code == 200
                token = login.json()["access_token"]
                await client.post(
                    "/api/v1/me/password",
                    json={"current_password": initialised, "new_password": "new-password-123"},
                    headers={"Authorization": f"Bearer {token}"},
                )
                users = await client.get(
                    "/api/v1/users", headers={"Authorization": f"Bearer {token}"}
                )
                assert [u["username"] for u in users.json()] == ["admin", "jeanne"]
                # New rows continue after the restored ones (sequences were reset).
                made = await client.post(
                    "/api/v1/users",
                    json={"username": "nouveau"},
                    headers={"Authorization": f"Bearer {token}"},
                )
                assert made.status_code == 201, made.text
        finally:
            await node.close()

    asyncio.run(check())


def test_wrong_passphrase_restores_nothing(
    settings: Settings, initialised: str, tmp_path: Path, fresh_db_url: str
) -> None:
    archive = tmp_path / "node.tar"
    assert rhenus(settings, "backup", str(archive), env=PASS)[0] == 0
    target = _restored_settings(tmp_path, fresh_db_url)
    code, out = rhenus(
        target, "restore", str(archive), env={"RHENUS_BACKUP_PASSPHRASE": "not the passphrase"}
    )
    assert code == 1
    assert "wrong backup passphrase" in out
    assert not (target.home / "keys").exists()


def test_restore_refuses_a_node_that_has_keys(
    settings: Settings, initialised: str, tmp_path: Path
) -> None:
    archive = tmp_path / "node.tar"
    assert rhenus(settings, "backup", str(archive), env=PASS)[0] == 0
    code, out = rhenus(settings, "restore", str(archive), env=PASS)
    assert code == 1
    assert "already has keys" in out


def test_backup_needs_a_passphrase(settings: Settings, initialised: str, tmp_path: Path) -> None:
    code, out = rhenus(settings, "backup", str(tmp_path / "x.tar"))
    assert code == 2
    assert "passphrase" in out
