"""Alembic migrations of the node's schema, run with :func:`upgrade` (also by ``rhenus init``).

Alembic (and mako, and the revision scripts) cost a serving process some 15 MiB it never gets
back, so they are imported only inside these functions; ``rhenus run`` migrates through
:func:`upgrade_in_child`, which keeps them out of the server altogether.
"""

from __future__ import annotations

import os
import subprocess
import sys
from typing import TYPE_CHECKING

from sqlalchemy.ext.asyncio import create_async_engine

if TYPE_CHECKING:
    from alembic.config import Config

# PostgreSQL advisory lock under which migrations run (and ``rhenus init`` creates the first
# admin): processes starting at once against one database take turns.
PG_MIGRATION_LOCK = 0x52484E494E4954  # "RHNINIT"

# How :func:`upgrade_in_child` hands the database URL to its child: not in argv, which any
# local user can read in ``ps``.
DATABASE_URL_ENV = "RHENUS_MIGRATE_DATABASE_URL"
# The child's last line of error output when a migration fails: the error in one line.
FAILED_PREFIX = "migration failed: "


class MigrationError(RuntimeError):
    """A migration run in a child process failed: the message says why in one line, and
    ``output`` holds what the child wrote (the traceback)."""

    def __init__(self, message: str, output: str) -> None:
        super().__init__(message)
        self.output = output


def alembic_config(database_url: str) -> Config:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", "rhenus:migrations")
    # ConfigParser interpolation would choke on '%' in passwords.
    config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    config.attributes["database_url"] = database_url
    return config


def upgrade(database_url: str, revision: str = "head") -> None:
    """Bring the database schema to ``revision`` (blocking; runs its own event loop)."""
    from alembic import command

    command.upgrade(alembic_config(database_url), revision)


def upgrade_in_child(database_url: str, revision: str = "head") -> None:
    """:func:`upgrade`, run in a short-lived child process (``python -m rhenus.migrations``);
    raises :class:`MigrationError` with the child's error output if it fails."""
    done = subprocess.run(  # noqa: S603 - our own interpreter and module, fixed arguments
        [sys.executable, "-m", "rhenus.migrations", revision],
        env={**os.environ, DATABASE_URL_ENV: database_url},
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        lines = (done.stderr or done.stdout).strip().splitlines()
        reason = f"exit status {done.returncode}"
        if lines and lines[-1].startswith(FAILED_PREFIX):
            reason = lines.pop().removeprefix(FAILED_PREFIX)
        elif lines:  # it died before it could say (an import error, a signal)
            reason = lines[-1]
        raise MigrationError(
            f"migrating the database to {revision!r} failed: {reason}", "\n".join(lines)
        )


def head_revision() -> str:
    from alembic.script import ScriptDirectory

    script = ScriptDirectory.from_config(alembic_config("sqlite+aiosqlite://"))
    head = script.get_current_head()
    assert head is not None
    return head


async def current_revision(database_url: str) -> str | None:
    """The revision the database is at, or None for an empty database."""
    from alembic.runtime.migration import MigrationContext

    engine = create_async_engine(database_url)
    try:
        async with engine.connect() as conn:
            return await conn.run_sync(
                lambda sync: MigrationContext.configure(sync).get_current_revision()
            )
    finally:
        await engine.dispose()
