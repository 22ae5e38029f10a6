"""assistant: usage records per call (tokens, duration, time to first token)

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-03 05:45:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import rhenus.core.db

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "assistant_usage",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("model", sa.String(length=128), nullable=False),
        sa.Column("endpoint", sa.String(length=32), nullable=False),
        sa.Column("stream", sa.Boolean(), nullable=False),
        sa.Column("prompt_tokens", sa.Integer(), nullable=False),
        sa.Column("completion_tokens", sa.Integer(), nullable=False),
        sa.Column("duration_ms", sa.Integer(), nullable=True),
        sa.Column("time_to_first_token_ms", sa.Integer(), nullable=True),
        sa.Column("status", sa.String(length=48), nullable=False),
        sa.Column("http_status", sa.Integer(), nullable=True),
        sa.Column("created_at", rhenus.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_assistant_usage_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_assistant_usage")),
    )
    with op.batch_alter_table("assistant_usage", schema=None) as batch_op:
        batch_op.create_index(
            "ix_assistant_usage_window", ["user_id", "model", "created_at"], unique=False
        )
        batch_op.create_index("ix_assistant_usage_created", ["created_at"], unique=False)

    op.create_table(
        "assistant_limits",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("model", sa.String(length=128), nullable=False),
        sa.Column("rpm", sa.Integer(), nullable=True),
        sa.Column("tpm", sa.Integer(), nullable=True),
        sa.Column("updated_at", rhenus.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_assistant_limits_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_assistant_limits")),
        sa.UniqueConstraint("user_id", "model", name="uq_assistant_limits_user_model"),
    )


def downgrade() -> None:
    op.drop_table("assistant_limits")
    with op.batch_alter_table("assistant_usage", schema=None) as batch_op:
        batch_op.drop_index("ix_assistant_usage_created")
        batch_op.drop_index("ix_assistant_usage_window")
    op.drop_table("assistant_usage")
