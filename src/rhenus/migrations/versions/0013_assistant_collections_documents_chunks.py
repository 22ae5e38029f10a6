"""assistant: collections, documents and their indexed chunks (keyword FTS + vectors)

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-03 05:45:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import rhenus.core.db

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UTC = rhenus.core.db.UTCDateTime(timezone=True)

# The chunks' full-text index, as migration 0005 builds the catalogue's: the terms are already
# stemmed and folded (rhenus.dataspace.catalogue.analysis), so the engine only splits them.
# SQLite: an external-content FTS5 table kept in step by triggers (cascaded deletes fire them).
SQLITE_UP = [
    "CREATE VIRTUAL TABLE assistant_chunks_fts USING fts5("
    "search_terms, content='assistant_chunks', content_rowid='id', "
    "tokenize='unicode61 remove_diacritics 2')",
    "CREATE TRIGGER assistant_chunks_fts_insert AFTER INSERT ON assistant_chunks BEGIN "
    "INSERT INTO assistant_chunks_fts(rowid, search_terms) VALUES (new.id, new.search_terms); "
    "END",
    "CREATE TRIGGER assistant_chunks_fts_delete AFTER DELETE ON assistant_chunks BEGIN "
    "INSERT INTO assistant_chunks_fts(assistant_chunks_fts, rowid, search_terms) "
    "VALUES ('delete', old.id, old.search_terms); END",
    "CREATE TRIGGER assistant_chunks_fts_update AFTER UPDATE OF search_terms ON assistant_chunks "
    "BEGIN "
    "INSERT INTO assistant_chunks_fts(assistant_chunks_fts, rowid, search_terms) "
    "VALUES ('delete', old.id, old.search_terms); "
    "INSERT INTO assistant_chunks_fts(rowid, search_terms) VALUES (new.id, new.search_terms); "
    "END",
]
SQLITE_DOWN = [
    "DROP TRIGGER IF EXISTS assistant_chunks_fts_update",
    "DROP TRIGGER IF EXISTS assistant_chunks_fts_delete",
    "DROP TRIGGER IF EXISTS assistant_chunks_fts_insert",
    "DROP TABLE IF EXISTS assistant_chunks_fts",
]
# PostgreSQL: a stored tsvector of the terms and a GIN index on it.
POSTGRES_UP = [
    "ALTER TABLE assistant_chunks ADD COLUMN search_vector tsvector GENERATED ALWAYS AS ("
    "to_tsvector('simple'::regconfig, search_terms)) STORED",
    "CREATE INDEX ix_assistant_chunks_search ON assistant_chunks USING gin (search_vector)",
]
POSTGRES_DOWN = [
    "DROP INDEX IF EXISTS ix_assistant_chunks_search",
    "ALTER TABLE assistant_chunks DROP COLUMN IF EXISTS search_vector",
]


def upgrade() -> None:
    op.create_table(
        "assistant_collections",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("owner_id", sa.Integer(), nullable=False),
        sa.Column("visibility", sa.String(length=16), nullable=False),
        sa.Column("created_at", UTC, nullable=False),
        sa.Column("updated_at", UTC, nullable=False),
        sa.ForeignKeyConstraint(
            ["owner_id"],
            ["users.id"],
            name=op.f("fk_assistant_collections_owner_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_assistant_collections")),
    )
    with op.batch_alter_table("assistant_collections", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_assistant_collections_owner_id"), ["owner_id"], unique=False
        )

    op.create_table(
        "assistant_documents",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("collection_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("media_type", sa.String(length=128), nullable=False),
        sa.Column("blob_sha256", sa.String(length=64), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("error", sa.Text(), nullable=False),
        sa.Column("chunk_count", sa.Integer(), nullable=False),
        sa.Column("page_count", sa.Integer(), nullable=True),
        sa.Column("created_at", UTC, nullable=False),
        sa.Column("updated_at", UTC, nullable=False),
        sa.ForeignKeyConstraint(
            ["collection_id"],
            ["assistant_collections.id"],
            name=op.f("fk_assistant_documents_collection_id_assistant_collections"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_assistant_documents")),
    )
    with op.batch_alter_table("assistant_documents", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_assistant_documents_collection_id"), ["collection_id"], unique=False
        )

    op.create_table(
        "assistant_chunks",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("document_id", sa.Integer(), nullable=False),
        sa.Column("collection_id", sa.Integer(), nullable=False),
        sa.Column("index", sa.Integer(), nullable=False),
        sa.Column("page", sa.Integer(), nullable=True),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("metadata", sa.JSON(), nullable=False),
        sa.Column("embedding", sa.LargeBinary(), nullable=False),
        sa.Column("search_terms", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["collection_id"],
            ["assistant_collections.id"],
            name=op.f("fk_assistant_chunks_collection_id_assistant_collections"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["document_id"],
            ["assistant_documents.id"],
            name=op.f("fk_assistant_chunks_document_id_assistant_documents"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_assistant_chunks")),
    )
    with op.batch_alter_table("assistant_chunks", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_assistant_chunks_collection_id"), ["collection_id"], unique=False
        )
        batch_op.create_index(
            "ix_assistant_chunks_document", ["document_id", "index"], unique=False
        )

    statements = {"sqlite": SQLITE_UP, "postgresql": POSTGRES_UP}[op.get_bind().dialect.name]
    for statement in statements:
        op.execute(statement)


def downgrade() -> None:
    statements = {"sqlite": SQLITE_DOWN, "postgresql": POSTGRES_DOWN}[op.get_bind().dialect.name]
    for statement in statements:
        op.execute(statement)
    with op.batch_alter_table("assistant_chunks", schema=None) as batch_op:
        batch_op.drop_index("ix_assistant_chunks_document")
        batch_op.drop_index(batch_op.f("ix_assistant_chunks_collection_id"))
    op.drop_table("assistant_chunks")
    with op.batch_alter_table("assistant_documents", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_assistant_documents_collection_id"))
    op.drop_table("assistant_documents")
    with op.batch_alter_table("assistant_collections", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_assistant_collections_owner_id"))
    op.drop_table("assistant_collections")
