"""milestones.cancellation_answer_due_at: when a pending cancellation request is granted if the freelancer
has not answered it (schedule.service). A request already pending gets its answer period from now (this
upgrade), not from when it was made: a freelancer who had no deadline before is not refunded away
overnight; they are reminded before the period ends, like anyone asked after the upgrade.

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-03 18:00:00
"""

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from alembic import op

revision: str = "0019"
down_revision: str | None = "0018"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The default answer period (Settings.cancellation_answer_days); a migration does not read settings.
ANSWER_DAYS = 7


def upgrade() -> None:
    op.add_column(
        "milestones",
        sa.Column("cancellation_answer_due_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_index(
        op.f("ix_milestones_cancellation_answer_due_at"),
        "milestones",
        ["cancellation_answer_due_at"],
        unique=False,
    )
    milestones = sa.table(
        "milestones",
        sa.column("cancellation_requested", sa.Boolean()),
        sa.column("cancellation_answer_due_at", sa.DateTime(timezone=True)),
    )
    op.execute(
        milestones.update()
        .where(milestones.c.cancellation_requested == sa.true())
        .values(cancellation_answer_due_at=datetime.now(UTC) + timedelta(days=ANSWER_DAYS))
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_milestones_cancellation_answer_due_at"), table_name="milestones")
    op.drop_column("milestones", "cancellation_answer_due_at")
