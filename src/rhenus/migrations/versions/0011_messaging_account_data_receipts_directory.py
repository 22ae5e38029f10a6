"""messaging (Matrix): account data, receipts, read markers, redactions, user directory

Account data (global and per room) and receipts, both positioned in the account stream of sync
tokens; the redaction an event received (``matrix_events.redacted_because``). Read markers are
account data (``m.fully_read``) and receipts; the user directory needs no table of its own.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-02 23:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_POSITION = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "matrix_account_data",
        sa.Column("user_id", sa.String(length=255), nullable=False),
        sa.Column("room_id", sa.String(length=255), nullable=False),
        sa.Column("type", sa.String(length=255), nullable=False),
        sa.Column("content", sa.JSON(), nullable=False),
        sa.Column("position", _POSITION, nullable=False),
        sa.PrimaryKeyConstraint("user_id", "room_id", "type", name=op.f("pk_matrix_account_data")),
        sa.UniqueConstraint("position", name=op.f("uq_matrix_account_data_position")),
    )
    op.create_table(
        "matrix_receipts",
        sa.Column("room_id", sa.String(length=255), nullable=False),
        sa.Column("user_id", sa.String(length=255), nullable=False),
        sa.Column("receipt_type", sa.String(length=32), nullable=False),
        sa.Column("thread_id", sa.String(length=255), nullable=False),
        sa.Column("event_id", sa.String(length=64), nullable=False),
        sa.Column("ts", sa.BigInteger(), nullable=False),
        sa.Column("position", _POSITION, nullable=False),
        sa.ForeignKeyConstraint(
            ["room_id"],
            ["matrix_rooms.room_id"],
            name=op.f("fk_matrix_receipts_room_id_matrix_rooms"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "room_id", "user_id", "receipt_type", "thread_id", name=op.f("pk_matrix_receipts")
        ),
        sa.UniqueConstraint("position", name=op.f("uq_matrix_receipts_position")),
    )
    with op.batch_alter_table("matrix_receipts", schema=None) as batch_op:
        batch_op.create_index(
            "ix_matrix_receipts_room_position", ["room_id", "position"], unique=False
        )
    # A nullable column: SQLite adds it in place (no copy of the table).
    with op.batch_alter_table("matrix_events", schema=None) as batch_op:
        batch_op.add_column(sa.Column("redacted_because", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("matrix_events", schema=None) as batch_op:
        batch_op.drop_column("redacted_because")
    with op.batch_alter_table("matrix_receipts", schema=None) as batch_op:
        batch_op.drop_index("ix_matrix_receipts_room_position")
    op.drop_table("matrix_receipts")
    op.drop_table("matrix_account_data")
