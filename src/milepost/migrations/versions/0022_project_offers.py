"""project_offers: a client offers an open project to one freelancer, by account or by e-mail address (an
invitation); the freelancer accepts (the project is awarded) or declines; the client may withdraw it.

Revision ID: 0022
Revises: 0021
Create Date: 2026-12-03 19:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0022"
down_revision: str | None = "0021"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "project_offers",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("project_id", sa.String(length=40), nullable=False),
        sa.Column("freelancer_id", sa.String(length=40), nullable=True),
        sa.Column("email", sa.String(length=320), nullable=True),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column(
            "status",
            sa.Enum(
                "pending",
                "accepted",
                "declined",
                "withdrawn",
                name="offerstatus",
                native_enum=False,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["freelancer_id"], ["users.id"], name=op.f("fk_project_offers_freelancer_id_users")
        ),
        sa.ForeignKeyConstraint(
            ["project_id"], ["projects.id"], name=op.f("fk_project_offers_project_id_projects")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_project_offers")),
    )
    for column in ("email", "freelancer_id", "project_id"):
        op.create_index(
            op.f(f"ix_project_offers_{column}"), "project_offers", [column], unique=False
        )


def downgrade() -> None:
    for column in ("email", "freelancer_id", "project_id"):
        op.drop_index(op.f(f"ix_project_offers_{column}"), table_name="project_offers")
    op.drop_table("project_offers")
