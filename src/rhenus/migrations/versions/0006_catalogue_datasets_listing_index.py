"""catalogue datasets: an index in catalog order

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-22 18:20:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Pages of the DSP catalog walk this index instead of sorting the whole catalog each time.
    op.create_index(
        "ix_catalogue_datasets_listing",
        "catalogue_datasets",
        ["status", "created_at", "id"],
    )


def downgrade() -> None:
    op.drop_index("ix_catalogue_datasets_listing", table_name="catalogue_datasets")
