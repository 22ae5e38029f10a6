"""Alembic environment: runs migrations over the async engine of the configured database."""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

from rhenus.migrations import PG_MIGRATION_LOCK
from rhenus.tables import Base

config = context.config
target_metadata = Base.metadata


# Full-text search objects live outside the models (an FTS5 table and its shadow tables on
# SQLite; a stored tsvector column and its GIN index on PostgreSQL): the migrations own them,
# autogenerate ignores them.
FULL_TEXT_OBJECTS = (
    "catalogue_entries_fts",
    "ix_catalogue_entries_search",
    "search_vector",
    "assistant_chunks_fts",
    "ix_assistant_chunks_search",
    # pgvector's side table (migration 0015), present only where the extension is.
    "assistant_chunk_vectors",
    "ix_assistant_chunk_vectors",
)


def _include(
    obj: object, name: str | None, type_: str, reflected: bool, compare_to: object
) -> bool:
    return not (reflected and name is not None and name.startswith(FULL_TEXT_OBJECTS))


def _include_name(name: str | None, type_: str, parent_names: object) -> bool:
    # Not even reflected: SQLAlchemy knows no ``vector`` type and would warn of it.
    return not (type_ == "table" and name == "assistant_chunk_vectors")


def _run(connection: Connection) -> None:
    # Batch mode lets SQLite (which has a limited ALTER TABLE) take the same migrations.
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=True,
        compare_type=True,
        include_object=_include,
        include_name=_include_name,
    )
    with context.begin_transaction():
        if connection.dialect.name == "postgresql":
            # Processes migrating at once take turns; the next one then finds the schema at
            # head (the version is read after the lock, inside the same transaction).
            connection.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": PG_MIGRATION_LOCK})
        context.run_migrations()


async def _run_async() -> None:
    engine = create_async_engine(config.attributes["database_url"])
    try:
        async with engine.connect() as conn:
            await conn.run_sync(_run)
    finally:
        await engine.dispose()


if context.is_offline_mode():
    context.configure(url=config.get_main_option("sqlalchemy.url"), target_metadata=target_metadata)
    with context.begin_transaction():
        context.run_migrations()
else:
    asyncio.run(_run_async())
