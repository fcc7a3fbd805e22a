"""the head of each milestone's audit chain (event count, newest hash) kept on the milestone

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23 13:10:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

GENESIS = "0" * 64


def upgrade() -> None:
    with op.batch_alter_table("milestones", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("event_count", sa.Integer(), nullable=False, server_default="0")
        )
        batch_op.add_column(
            sa.Column(
                "last_event_hash", sa.String(length=64), nullable=False, server_default=GENESIS
            )
        )
    # Existing chains: their length and their newest hash.
    op.execute(
        "UPDATE milestones SET "
        "event_count = (SELECT count(*) FROM milestone_events e WHERE e.milestone_id = milestones.id), "
        f"last_event_hash = COALESCE((SELECT e.hash FROM milestone_events e "
        f"WHERE e.milestone_id = milestones.id ORDER BY e.seq DESC LIMIT 1), '{GENESIS}')"
    )


def downgrade() -> None:
    with op.batch_alter_table("milestones", schema=None) as batch_op:
        batch_op.drop_column("last_event_hash")
        batch_op.drop_column("event_count")
