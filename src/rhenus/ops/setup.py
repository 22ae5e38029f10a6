"""First start of a node: data directory, keys, schema, first administrator."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from rhenus.accounts import service as accounts
from rhenus.config import Settings
from rhenus.core.audit import AuditLog
from rhenus.core.db import Database
from rhenus.core.keys import Keyring
from rhenus.migrations import upgrade


@dataclass(frozen=True)
class InitResult:
    """What :func:`initialise` did; ``admin_password`` is set only when it created the admin."""

    created_keys: bool
    admin_username: str | None
    admin_password: str | None


def initialise(settings: Settings, *, admin_username: str = "admin") -> InitResult:
    """Make the node ready to serve; safe to run again (it only adds what is missing)."""
    settings.home.mkdir(parents=True, exist_ok=True)
    settings.home.chmod(0o700)
    created_keys = not Keyring.exists(settings.keys_dir)
    keyring = Keyring.load_or_create(settings.keys_dir)
    url = settings.database_url.get_secret_value()
    upgrade(url)
    password = asyncio.run(_first_admin(settings, keyring, admin_username))
    return InitResult(
        created_keys=created_keys,
        admin_username=admin_username if password else None,
        admin_password=password,
    )


async def _first_admin(settings: Settings, keyring: Keyring, username: str) -> str | None:
    db = Database(settings.database_url.get_secret_value())
    audit = AuditLog(keyring, checkpoint_every=settings.audit_checkpoint_every)
    try:
        async with db.transaction() as session:
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
