"""messaging: each room's state position, which validates the per-process room auth cache

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-03 12:45:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0017"
down_revision: str | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("matrix_rooms") as batch:
        batch.add_column(
            sa.Column(
                "state_position",
                sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
                nullable=False,
                server_default="0",
            )
        )
    # The newest state event of each room (its current state's newest row).
    op.execute(
        "UPDATE matrix_rooms SET state_position = COALESCE((SELECT max(s.stream_ordering) "
        "FROM matrix_room_state s WHERE s.room_id = matrix_rooms.room_id), 0)"
    )


def downgrade() -> None:
    with op.batch_alter_table("matrix_rooms") as batch:
        batch.drop_column("state_position")
