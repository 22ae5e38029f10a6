"""catalogue peers and search entries, with the engine's full-text index

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-22 14:05:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import rhenus.core.db

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UTC = rhenus.core.db.UTCDateTime(timezone=True)

# SQLite: an external-content FTS5 table kept in step by triggers. The terms are already
# stemmed and folded by rhenus.dataspace.catalogue.analysis, so unicode61 only splits them.
SQLITE_UP = [
    "CREATE VIRTUAL TABLE catalogue_entries_fts USING fts5("
    "search_title, search_body, content='catalogue_entries', content_rowid='id', "
    "tokenize='unicode61 remove_diacritics 2')",
    # Title terms weigh five times the description, keywords and publisher in FTS5's rank.
    "INSERT INTO catalogue_entries_fts(catalogue_entries_fts, rank) "
    "VALUES ('rank', 'bm25(5.0, 1.0)')",
    "CREATE TRIGGER catalogue_entries_fts_insert AFTER INSERT ON catalogue_entries BEGIN "
    "INSERT INTO catalogue_entries_fts(rowid, search_title, search_body) "
    "VALUES (new.id, new.search_title, new.search_body); END",
    "CREATE TRIGGER catalogue_entries_fts_delete AFTER DELETE ON catalogue_entries BEGIN "
    "INSERT INTO catalogue_entries_fts(catalogue_entries_fts, rowid, search_title, search_body) "
    "VALUES ('delete', old.id, old.search_title, old.search_body); END",
    # Only a change of the terms touches the index: a crawl refreshes fetched_at on every row.
    "CREATE TRIGGER catalogue_entries_fts_update "
    "AFTER UPDATE OF search_title, search_body ON catalogue_entries BEGIN "
    "INSERT INTO catalogue_entries_fts(catalogue_entries_fts, rowid, search_title, search_body) "
    "VALUES ('delete', old.id, old.search_title, old.search_body); "
    "INSERT INTO catalogue_entries_fts(rowid, search_title, search_body) "
    "VALUES (new.id, new.search_title, new.search_body); END",
]
SQLITE_DOWN = [
    "DROP TRIGGER IF EXISTS catalogue_entries_fts_update",
    "DROP TRIGGER IF EXISTS catalogue_entries_fts_delete",
    "DROP TRIGGER IF EXISTS catalogue_entries_fts_insert",
    "DROP TABLE IF EXISTS catalogue_entries_fts",
]
# PostgreSQL: the weighted tsvector, stored (ranking reads it for every match, and computing it
# again from the text costs far more), and a GIN index on it.
POSTGRES_UP = [
    "ALTER TABLE catalogue_entries ADD COLUMN search_vector tsvector GENERATED ALWAYS AS ("
    "setweight(to_tsvector('simple'::regconfig, search_title), 'A') || "
    "setweight(to_tsvector('simple'::regconfig, search_body), 'B')) STORED",
    "CREATE INDEX ix_catalogue_entries_search ON catalogue_entries USING gin (search_vector)",
]
POSTGRES_DOWN = [
    "DROP INDEX IF EXISTS ix_catalogue_entries_search",
    "ALTER TABLE catalogue_entries DROP COLUMN IF EXISTS search_vector",
]


def upgrade() -> None:
    op.create_table(
        "catalogue_peers",
        sa.Column("did", sa.String(length=255), nullable=False),
        sa.Column("url", sa.String(length=500), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("added_at", UTC, nullable=False),
        sa.Column("crawled_at", UTC, nullable=True),
        sa.Column("crawl_status", sa.String(length=16), nullable=False),
        sa.Column("crawl_error", sa.Text(), nullable=False),
        sa.Column("entry_count", sa.Integer(), nullable=False),
        sa.Column("lease_until", UTC, nullable=True),
        sa.PrimaryKeyConstraint("did", name=op.f("pk_catalogue_peers")),
    )
    op.create_table(
        "catalogue_entries",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("origin", sa.String(length=255), nullable=False),
        sa.Column("dataset_id", sa.String(length=255), nullable=False),
        sa.Column("title", sa.JSON(), nullable=False),
        sa.Column("description", sa.JSON(), nullable=False),
        sa.Column("keywords", sa.JSON(), nullable=False),
        sa.Column("publisher", sa.String(length=255), nullable=False),
        sa.Column("country", sa.String(length=2), nullable=False),
        sa.Column("theme", sa.String(length=16), nullable=False),
        sa.Column("license", sa.String(length=500), nullable=False),
        sa.Column("format", sa.String(length=32), nullable=False),
        sa.Column("offers", sa.Integer(), nullable=False),
        sa.Column("modified", UTC, nullable=False),
        sa.Column("fetched_at", UTC, nullable=False),
        sa.Column("document", sa.JSON(), nullable=False),
        sa.Column("search_title", sa.Text(), nullable=False),
        sa.Column("search_body", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_catalogue_entries")),
        sa.UniqueConstraint("origin", "dataset_id", name=op.f("uq_catalogue_entries_origin")),
    )
    op.create_table(
        "catalogue_state",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("generation", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_catalogue_state")),
    )
    statements = {"sqlite": SQLITE_UP, "postgresql": POSTGRES_UP}[op.get_bind().dialect.name]
    for statement in statements:
        op.execute(statement)


def downgrade() -> None:
    statements = {"sqlite": SQLITE_DOWN, "postgresql": POSTGRES_DOWN}[op.get_bind().dialect.name]
    for statement in statements:
        op.execute(statement)
    op.drop_table("catalogue_state")
    op.drop_table("catalogue_entries")
    op.drop_table("catalogue_peers")
