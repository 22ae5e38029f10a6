"""messaging (Matrix): Tchap rules (e-mail registration, external users, access rules, expiry)

E-mail validation sessions and the addresses bound to accounts (3pids), invitations sent by
e-mail, each account's expiry and renewal token, and the validated e-mail session of a
registration's auth session. External users are accounts of role ``external`` and room access
rules are room state (``im.vector.room.access_rules``): neither needs a table.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-02 23:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import rhenus.core.db

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TIME = rhenus.core.db.UTCDateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "matrix_threepid_sessions",
        sa.Column("sid", sa.String(length=64), nullable=False),
        sa.Column("client_secret_hash", sa.String(length=64), nullable=False),
        sa.Column("medium", sa.String(length=16), nullable=False),
        sa.Column("address", sa.String(length=255), nullable=False),
        sa.Column("send_attempt", sa.Integer(), nullable=False),
        sa.Column("sends", sa.Integer(), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=True),
        sa.Column("token_expires_at", _TIME, nullable=False),
        sa.Column("requested_from", sa.String(length=64), nullable=False),
        sa.Column("validated_at", _TIME, nullable=True),
        sa.Column("consumed_at", _TIME, nullable=True),
        sa.Column("created_at", _TIME, nullable=False),
        sa.PrimaryKeyConstraint("sid", name=op.f("pk_matrix_threepid_sessions")),
        sa.UniqueConstraint(
            "client_secret_hash", "address", name="uq_matrix_threepid_sessions_secret"
        ),
    )
    with op.batch_alter_table("matrix_threepid_sessions", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_matrix_threepid_sessions_address"), ["address"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_matrix_threepid_sessions_requested_from"),
            ["requested_from"],
            unique=False,
        )
        batch_op.create_index(
            batch_op.f("ix_matrix_threepid_sessions_created_at"), ["created_at"], unique=False
        )

    op.create_table(
        "matrix_threepids",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("medium", sa.String(length=16), nullable=False),
        sa.Column("address", sa.String(length=255), nullable=False),
        sa.Column("validated_at", _TIME, nullable=False),
        sa.Column("added_at", _TIME, nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["users.id"],
            name=op.f("fk_matrix_threepids_account_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_matrix_threepids")),
        sa.UniqueConstraint("medium", "address", name="uq_matrix_threepids_address"),
    )
    with op.batch_alter_table("matrix_threepids", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_matrix_threepids_account_id"), ["account_id"], unique=False
        )

    op.create_table(
        "matrix_email_invitations",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("room_id", sa.String(length=255), nullable=False),
        sa.Column("inviter", sa.String(length=255), nullable=False),
        sa.Column("address", sa.String(length=255), nullable=False),
        sa.Column("external", sa.Boolean(), nullable=False),
        sa.Column("created_at", _TIME, nullable=False),
        sa.Column("expires_at", _TIME, nullable=False),
        sa.Column("accepted_by", sa.String(length=255), nullable=True),
        sa.Column("accepted_at", _TIME, nullable=True),
        sa.ForeignKeyConstraint(
            ["room_id"],
            ["matrix_rooms.room_id"],
            name=op.f("fk_matrix_email_invitations_room_id_matrix_rooms"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_matrix_email_invitations")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_matrix_email_invitations_token_hash")),
    )
    with op.batch_alter_table("matrix_email_invitations", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_matrix_email_invitations_room_id"), ["room_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_matrix_email_invitations_inviter"), ["inviter"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_matrix_email_invitations_address"), ["address"], unique=False
        )

    op.create_table(
        "matrix_account_validity",
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("expires_at", _TIME, nullable=False),
        sa.Column("renewal_token_hash", sa.String(length=64), nullable=True),
        sa.Column("renewal_sent_at", _TIME, nullable=True),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["users.id"],
            name=op.f("fk_matrix_account_validity_account_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("account_id", name=op.f("pk_matrix_account_validity")),
        sa.UniqueConstraint(
            "renewal_token_hash", name=op.f("uq_matrix_account_validity_renewal_token_hash")
        ),
    )
    with op.batch_alter_table("matrix_account_validity", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_matrix_account_validity_expires_at"), ["expires_at"], unique=False
        )

    # A nullable column: SQLite adds it in place (no copy of the table).
    with op.batch_alter_table("matrix_auth_sessions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("threepid_sid", sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("matrix_auth_sessions", schema=None) as batch_op:
        batch_op.drop_column("threepid_sid")
    with op.batch_alter_table("matrix_account_validity", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_matrix_account_validity_expires_at"))
    op.drop_table("matrix_account_validity")
    with op.batch_alter_table("matrix_email_invitations", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_matrix_email_invitations_address"))
        batch_op.drop_index(batch_op.f("ix_matrix_email_invitations_inviter"))
        batch_op.drop_index(batch_op.f("ix_matrix_email_invitations_room_id"))
    op.drop_table("matrix_email_invitations")
    with op.batch_alter_table("matrix_threepids", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_matrix_threepids_account_id"))
    op.drop_table("matrix_threepids")
    with op.batch_alter_table("matrix_threepid_sessions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_matrix_threepid_sessions_created_at"))
        batch_op.drop_index(batch_op.f("ix_matrix_threepid_sessions_requested_from"))
        batch_op.drop_index(batch_op.f("ix_matrix_threepid_sessions_address"))
    op.drop_table("matrix_threepid_sessions")
