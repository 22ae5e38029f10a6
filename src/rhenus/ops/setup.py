"""First start of a node: data directory, keys, schema, first administrator."""

from __future__ import annotations

import asyncio
import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import text

from rhenus.accounts import service as accounts
from rhenus.config import Settings
from rhenus.core.audit import AuditLog
from rhenus.core.db import Database
from rhenus.core.keys import Keyring
from rhenus.migrations import PG_MIGRATION_LOCK, upgrade, upgrade_in_child

INIT_LOCK = ".init.lock"


@dataclass(frozen=True)
class InitResult:
    """What :func:`initialise` did; ``admin_password`` is set only when it created the admin."""

    created_keys: bool
    admin_username: str | None
    admin_password: str | None


def initialise(
    settings: Settings, *, admin_username: str = "admin", migrate_in_child: bool = False
) -> InitResult:
    """Make the node ready to serve; safe to run again (it only adds what is missing), and
    safe to run at the same time from several processes (several nodes' processes sharing a
    home, or only a database): one does the work, the others then find it done.

    ``migrate_in_child`` runs the migrations in a child process (a failure raises
    :class:`~rhenus.migrations.MigrationError`), so that a process about to serve never loads
    alembic (``rhenus run``)."""
    settings.home.mkdir(parents=True, exist_ok=True)
    settings.home.chmod(0o700)
    with _home_lock(settings.home):
        created_keys = not Keyring.exists(settings.keys_dir)
        keyring = Keyring.load_or_create(settings.keys_dir)
        url = settings.database_url.get_secret_value()
        # On PostgreSQL under an advisory lock (migrations/env.py).
        (upgrade_in_child if migrate_in_child else upgrade)(url)
        password = asyncio.run(_first_admin(settings, keyring, admin_username))
    return InitResult(
        created_keys=created_keys,
        admin_username=admin_username if password else None,
        admin_password=password,
    )


@contextmanager
def _home_lock(home: Path) -> Iterator[None]:
    """An exclusive lock on the data directory, across processes (released if one dies)."""
    fd = os.open(home / INIT_LOCK, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


async def _first_admin(settings: Settings, keyring: Keyring, username: str) -> str | None:
    db = Database(settings.database_url.get_secret_value())
    audit = AuditLog(keyring, checkpoint_every=settings.audit_checkpoint_every)
    try:
        async with db.transaction() as session:
            if not db.is_sqlite:  # nodes sharing only the database: one creates the admin
                await session.execute(
                    text("SELECT pg_advisory_xact_lock(:k)"), {"k": PG_MIGRATION_LOCK}
                )
            if await accounts.count_users(session):
                return None
            _, password = await accounts.create_user(
                session,
                audit=audit,
                actor="system:init",
                username=username,
                display_name="Administrator",
                role="admin",
            )
            return password
    finally:
        await db.dispose()
