"""project_totals: a project's planned, in-escrow and released totals, kept as its milestones change, so that the
project page does not sum every milestone of the project on each view (milestones/models.py keeps them;
``ledger verify`` checks them). Filled here from the milestones as they are.

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-03 12:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0018"
down_revision: str | None = "0017"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "project_totals",
        sa.Column("project_id", sa.String(40), nullable=False),
        sa.Column(
            "planned_amount", sa.BigInteger().with_variant(sa.INTEGER(), "sqlite"), nullable=False
        ),
        sa.Column(
            "in_escrow_amount",
            sa.BigInteger().with_variant(sa.INTEGER(), "sqlite"),
            nullable=False,
        ),
        sa.Column(
            "released_amount", sa.BigInteger().with_variant(sa.INTEGER(), "sqlite"), nullable=False
        ),
        sa.ForeignKeyConstraint(
            ["project_id"], ["projects.id"], name=op.f("fk_project_totals_project_id_projects")
        ),
        sa.PrimaryKeyConstraint("project_id", name=op.f("pk_project_totals")),
    )
    op.execute(
        "INSERT INTO project_totals (project_id, planned_amount, in_escrow_amount, released_amount)"
        " SELECT projects.id,"
        " COALESCE(SUM(CASE WHEN milestones.status != 'cancelled' THEN milestones.amount ELSE 0 END), 0),"
        " COALESCE(SUM(milestones.funded_amount - milestones.released_amount"
        " - milestones.refunded_amount), 0),"
        " COALESCE(SUM(milestones.released_amount), 0)"
        " FROM projects LEFT JOIN milestones ON milestones.project_id = projects.id"
        " GROUP BY projects.id"
    )


def downgrade() -> None:
    op.drop_table("project_totals")
