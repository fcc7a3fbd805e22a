"""milestone_requests: a freelancer on an awarded project asks for a new milestone with its terms; the
client accepts it (a draft milestone with those terms) or rejects it.

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-03 18:45:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0021"
down_revision: str | None = "0020"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "milestone_requests",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("project_id", sa.String(length=40), nullable=False),
        sa.Column("freelancer_id", sa.String(length=40), nullable=False),
        sa.Column(
            "terms",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column(
            "status",
            sa.Enum(
                "pending",
                "accepted",
                "rejected",
                "withdrawn",
                name="milestonerequeststatus",
                native_enum=False,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("milestone_id", sa.String(length=40), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["freelancer_id"], ["users.id"], name=op.f("fk_milestone_requests_freelancer_id_users")
        ),
        sa.ForeignKeyConstraint(
            ["milestone_id"],
            ["milestones.id"],
            name=op.f("fk_milestone_requests_milestone_id_milestones"),
        ),
        sa.ForeignKeyConstraint(
            ["project_id"], ["projects.id"], name=op.f("fk_milestone_requests_project_id_projects")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_milestone_requests")),
    )
    op.create_index(
        op.f("ix_milestone_requests_project_id"), "milestone_requests", ["project_id"], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_milestone_requests_project_id"), table_name="milestone_requests")
    op.drop_table("milestone_requests")
