"""messaging (Matrix): end-to-end encryption keys (device, one-time, fallback), the device-list
stream, to-device messages and their transaction ids, media

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-02 21:33:38.768051
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import rhenus.core.db

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "matrix_device_list_changes",
        sa.Column(
            "position",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("user_id", sa.String(length=255), nullable=False),
        sa.PrimaryKeyConstraint("position", name=op.f("pk_matrix_device_list_changes")),
        sqlite_autoincrement=True,
    )
    with op.batch_alter_table("matrix_device_list_changes", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_matrix_device_list_changes_user_id"), ["user_id"], unique=False
        )

    op.create_table(
        "matrix_media",
        sa.Column("media_id", sa.String(length=64), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("content_type", sa.String(length=255), nullable=False),
        sa.Column("filename", sa.String(length=255), nullable=True),
        sa.Column("uploader", sa.String(length=255), nullable=False),
        sa.Column("created_at", rhenus.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("media_id", name=op.f("pk_matrix_media")),
    )
    with op.batch_alter_table("matrix_media", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_matrix_media_uploader"), ["uploader"], unique=False)

    op.create_table(
        "matrix_device_keys",
        sa.Column("device_pk", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.String(length=255), nullable=False),
        sa.Column("keys", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(
            ["device_pk"],
            ["matrix_devices.id"],
            name=op.f("fk_matrix_device_keys_device_pk_matrix_devices"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("device_pk", name=op.f("pk_matrix_device_keys")),
    )
    with op.batch_alter_table("matrix_device_keys", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_matrix_device_keys_user_id"), ["user_id"], unique=False
        )

    op.create_table(
        "matrix_fallback_keys",
        sa.Column("device_pk", sa.Integer(), nullable=False),
        sa.Column("algorithm", sa.String(length=64), nullable=False),
        sa.Column("key_id", sa.String(length=255), nullable=False),
        sa.Column("key", sa.JSON(), nullable=False),
        sa.Column("used", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(
            ["device_pk"],
            ["matrix_devices.id"],
            name=op.f("fk_matrix_fallback_keys_device_pk_matrix_devices"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("device_pk", "algorithm", name=op.f("pk_matrix_fallback_keys")),
    )
    op.create_table(
        "matrix_one_time_keys",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("device_pk", sa.Integer(), nullable=False),
        sa.Column("algorithm", sa.String(length=64), nullable=False),
        sa.Column("key_id", sa.String(length=255), nullable=False),
        sa.Column("key", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(
            ["device_pk"],
            ["matrix_devices.id"],
            name=op.f("fk_matrix_one_time_keys_device_pk_matrix_devices"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_matrix_one_time_keys")),
        sa.UniqueConstraint("device_pk", "algorithm", "key_id", name="uq_matrix_one_time_keys_key"),
    )
    op.create_table(
        "matrix_to_device",
        sa.Column(
            "position",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("device_pk", sa.Integer(), nullable=False),
        sa.Column("sender", sa.String(length=255), nullable=False),
        sa.Column("type", sa.String(length=255), nullable=False),
        sa.Column("content", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(
            ["device_pk"],
            ["matrix_devices.id"],
            name=op.f("fk_matrix_to_device_device_pk_matrix_devices"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("position", name=op.f("pk_matrix_to_device")),
        sqlite_autoincrement=True,
    )
    with op.batch_alter_table("matrix_to_device", schema=None) as batch_op:
        batch_op.create_index(
            "ix_matrix_to_device_recipient", ["device_pk", "position"], unique=False
        )

    op.create_table(
        "matrix_to_device_txns",
        sa.Column("device_pk", sa.Integer(), nullable=False),
        sa.Column("txn_id", sa.String(length=255), nullable=False),
        sa.Column("created_at", rhenus.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["device_pk"],
            ["matrix_devices.id"],
            name=op.f("fk_matrix_to_device_txns_device_pk_matrix_devices"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("device_pk", "txn_id", name=op.f("pk_matrix_to_device_txns")),
    )


def downgrade() -> None:
    op.drop_table("matrix_to_device_txns")
    with op.batch_alter_table("matrix_to_device", schema=None) as batch_op:
        batch_op.drop_index("ix_matrix_to_device_recipient")

    op.drop_table("matrix_to_device")
    op.drop_table("matrix_one_time_keys")
    op.drop_table("matrix_fallback_keys")
    with op.batch_alter_table("matrix_device_keys", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_matrix_device_keys_user_id"))

    op.drop_table("matrix_device_keys")
    with op.batch_alter_table("matrix_media", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_matrix_media_uploader"))

    op.drop_table("matrix_media")
    with op.batch_alter_table("matrix_device_list_changes", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_matrix_device_list_changes_user_id"))

    op.drop_table("matrix_device_list_changes")
