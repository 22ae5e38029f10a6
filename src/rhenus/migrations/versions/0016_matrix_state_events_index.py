"""messaging: a partial index on state events, for the room state at a stream position

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-03 10:25:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ONLY_STATE = sa.text("state_key IS NOT NULL")


def upgrade() -> None:
    op.create_index(
        "ix_matrix_events_state",
        "matrix_events",
        ["room_id", "type", "state_key", "stream_ordering"],
        unique=False,
        sqlite_where=_ONLY_STATE,
        postgresql_where=_ONLY_STATE,
    )


def downgrade() -> None:
    op.drop_index("ix_matrix_events_state", table_name="matrix_events")
