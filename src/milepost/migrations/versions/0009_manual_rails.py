"""Manual rails that can say no: rejected deposits, failed payouts, payout destinations

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-01 21:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "payout_destinations",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("user_id", sa.String(length=40), nullable=False),
        sa.Column(
            "kind",
            sa.Enum("iban", "local", name="destinationkind", native_enum=False, length=32),
            nullable=False,
        ),
        sa.Column("label", sa.String(length=100), nullable=False),
        sa.Column("holder_name", sa.String(length=200), nullable=False),
        sa.Column("iban", sa.String(length=34), nullable=True),
        sa.Column("bic", sa.String(length=11), nullable=True),
        sa.Column("account_number", sa.String(length=34), nullable=True),
        sa.Column("routing_number", sa.String(length=20), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("removed_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_payout_destinations_user_id_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_payout_destinations")),
    )
    with op.batch_alter_table("payout_destinations", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_payout_destinations_user_id"), ["user_id"], unique=False
        )
    with op.batch_alter_table("deposits", schema=None) as batch_op:
        batch_op.add_column(sa.Column("rejected_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("rejected_by", sa.String(length=40), nullable=True))
        batch_op.add_column(sa.Column("rejection_reason", sa.String(length=500), nullable=True))
        batch_op.create_foreign_key(
            batch_op.f("fk_deposits_rejected_by_users"), "users", ["rejected_by"], ["id"]
        )
    with op.batch_alter_table("payouts", schema=None) as batch_op:
        batch_op.add_column(sa.Column("destination_id", sa.String(length=40), nullable=True))
        batch_op.add_column(sa.Column("failed_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("failed_by", sa.String(length=40), nullable=True))
        batch_op.add_column(sa.Column("failure_reason", sa.String(length=500), nullable=True))
        batch_op.create_foreign_key(
            batch_op.f("fk_payouts_destination_id_payout_destinations"),
            "payout_destinations",
            ["destination_id"],
            ["id"],
        )
        batch_op.create_foreign_key(
            batch_op.f("fk_payouts_failed_by_users"), "users", ["failed_by"], ["id"]
        )


def downgrade() -> None:
    with op.batch_alter_table("payouts", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("fk_payouts_failed_by_users"), type_="foreignkey")
        batch_op.drop_constraint(
            batch_op.f("fk_payouts_destination_id_payout_destinations"), type_="foreignkey"
        )
        batch_op.drop_column("failure_reason")
        batch_op.drop_column("failed_by")
        batch_op.drop_column("failed_at")
        batch_op.drop_column("destination_id")
    with op.batch_alter_table("deposits", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("fk_deposits_rejected_by_users"), type_="foreignkey")
        batch_op.drop_column("rejection_reason")
        batch_op.drop_column("rejected_by")
        batch_op.drop_column("rejected_at")
    with op.batch_alter_table("payout_destinations", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_payout_destinations_user_id"))
    op.drop_table("payout_destinations")
