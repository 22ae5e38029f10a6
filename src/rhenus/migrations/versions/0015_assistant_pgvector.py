"""assistant: pgvector side table of the chunks' embeddings, with an HNSW index

Only on PostgreSQL servers that have the ``vector`` extension (pgvector): elsewhere this
revision does nothing, and semantic search stays in memory (``assistant_vector_index``). The
table is the migrations' own, outside the models (``migrations/env.py`` leaves it out of
autogenerate, as the full-text objects): its column type exists only with the extension.

Revision ID: 0015
Revises: 0014
"""

from __future__ import annotations

import logging

from alembic import op
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None

log = logging.getLogger("alembic.runtime.migration")

UP = (
    "CREATE TABLE IF NOT EXISTS assistant_chunk_vectors ("
    "chunk_id integer PRIMARY KEY REFERENCES assistant_chunks (id) ON DELETE CASCADE, "
    "collection_id integer NOT NULL, "
    "embedding vector(512) NOT NULL)",
    "CREATE INDEX IF NOT EXISTS ix_assistant_chunk_vectors_collection "
    "ON assistant_chunk_vectors (collection_id)",
    # m and ef_construction: pgvector's defaults, spelled out.
    "CREATE INDEX IF NOT EXISTS ix_assistant_chunk_vectors_hnsw ON assistant_chunk_vectors "
    "USING hnsw (embedding vector_cosine_ops) WITH (m = 16, ef_construction = 64)",
)


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return
    offered = bind.execute(
        text("SELECT 1 FROM pg_available_extensions WHERE name = 'vector'")
    ).first()
    if offered is None:
        log.info("pgvector is not installed on this server: semantic search stays in memory")
        return
    try:
        # In a savepoint: a role that may not create the extension leaves the rest migrated.
        with bind.begin_nested():
            bind.execute(text("CREATE EXTENSION IF NOT EXISTS vector"))
    except DBAPIError as exc:
        log.warning("cannot create the vector extension (%s): search stays in memory", exc)
        return
    for statement in UP:
        op.execute(statement)


def downgrade() -> None:
    # The extension stays: other schemas of the database may use it.
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TABLE IF EXISTS assistant_chunk_vectors")
