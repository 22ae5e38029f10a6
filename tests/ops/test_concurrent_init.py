"""Initialisation run by several processes at once (nodes' processes started together on one
home and one database): one does the work — keys, migrations, first administrator — and the
others find it done."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from rhenus.accounts import service as accounts
from rhenus.core.db import Database
from rhenus.core.keys import Keyring
from tests.support.postgres import PostgresServer

RHENUS = str(Path(sys.executable).parent / "rhenus")


@pytest.mark.parametrize("engine", ["sqlite", "postgresql"])
def test_three_processes_initialising_at_once_make_one_keyring_schema_and_admin(
    engine: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    home = tmp_path / "node"
    env = {**os.environ, "RHENUS_HOME": str(home), "COLUMNS": "200"}
    if engine == "postgresql":
        server: PostgresServer = request.getfixturevalue("postgres")
        name = f"t_{uuid.uuid4().hex[:12]}"
        server.psql(f"CREATE DATABASE {name}")  # empty: every process would migrate it
        env["RHENUS_DATABASE_URL"] = server.url(name)
    processes = [
        subprocess.Popen(
            [RHENUS, "init"], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        for _ in range(3)
    ]
    outputs = [p.communicate(timeout=120)[0] for p in processes]
    assert [p.returncode for p in processes] == [0, 0, 0], outputs
    assert sum("One-time password" in out for out in outputs) == 1, outputs
    ring = Keyring.load(home / "keys")
    assert len(ring.signing) == 1
    assert sorted(p.name for p in (home / "keys").glob("signing-*.pem")) == [
        f"signing-{ring.current_signing}.pem"
    ]
    assert asyncio.run(_accounts(env.get("RHENUS_DATABASE_URL") or _sqlite(home))) == 1


def _sqlite(home: Path) -> str:
    return f"sqlite+aiosqlite:///{home / 'rhenus.db'}"


async def _accounts(url: str) -> int:
    db = Database(url)
    try:
        async with db.session() as session:
            return await accounts.count_users(session)
    finally:
        await db.dispose()
