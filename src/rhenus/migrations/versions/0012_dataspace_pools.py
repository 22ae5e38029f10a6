"""dataspace: compute-to-data pools (queries under agreements, differential-privacy budgets)

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-02 23:45:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import rhenus.core.db

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "pool_queries",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("agreement_id", sa.String(length=255), nullable=False),
        sa.Column("counterparty", sa.String(length=255), nullable=False),
        sa.Column("dataset_id", sa.String(length=255), nullable=False),
        sa.Column("sql", sa.Text(), nullable=False),
        sa.Column("epsilon_micro", sa.BigInteger(), nullable=True),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("result_sha256", sa.String(length=64), nullable=False),
        sa.Column("result", sa.JSON(), nullable=True),
        sa.Column("epsilon_left_micro", sa.BigInteger(), nullable=True),
        sa.Column("created_at", rhenus.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("finished_at", rhenus.core.db.UTCDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_pool_queries")),
    )
    with op.batch_alter_table("pool_queries", schema=None) as batch_op:
        batch_op.create_index(
            "ix_pool_queries_agreement", ["agreement_id", "created_at"], unique=False
        )

    op.create_table(
        "pool_budgets",
        sa.Column("agreement_id", sa.String(length=255), nullable=False),
        sa.Column("epsilon_spent_micro", sa.BigInteger(), nullable=False),
        sa.Column("queries", sa.Integer(), nullable=False),
        sa.Column("updated_at", rhenus.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("agreement_id", name=op.f("pk_pool_budgets")),
    )


def downgrade() -> None:
    op.drop_table("pool_budgets")
    with op.batch_alter_table("pool_queries", schema=None) as batch_op:
        batch_op.drop_index("ix_pool_queries_agreement")
    op.drop_table("pool_queries")
