"""time-driven work: reminder steps taken, project pauses, overdue disputes

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-23 13:20:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "schedule_steps",
        sa.Column("milestone_id", sa.String(length=40), nullable=False),
        sa.Column("ladder", sa.String(length=32), nullable=False),
        sa.Column("deadline", sa.String(length=40), nullable=False),
        sa.Column("step", sa.Integer(), nullable=False),
        sa.Column("event_id", sa.String(length=40), nullable=False),
        sa.Column("done_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["event_id"],
            ["milestone_events.id"],
            name=op.f("fk_schedule_steps_event_id_milestone_events"),
        ),
        sa.ForeignKeyConstraint(
            ["milestone_id"],
            ["milestones.id"],
            name=op.f("fk_schedule_steps_milestone_id_milestones"),
        ),
        sa.PrimaryKeyConstraint(
            "milestone_id", "ladder", "deadline", "step", name=op.f("pk_schedule_steps")
        ),
    )
    with op.batch_alter_table("projects", schema=None) as batch_op:
        batch_op.add_column(sa.Column("paused_at", sa.DateTime(timezone=True), nullable=True))
    with op.batch_alter_table("disputes", schema=None) as batch_op:
        batch_op.add_column(sa.Column("overdue_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("disputes", schema=None) as batch_op:
        batch_op.drop_column("overdue_at")
    with op.batch_alter_table("projects", schema=None) as batch_op:
        batch_op.drop_column("paused_at")
    op.drop_table("schedule_steps")
