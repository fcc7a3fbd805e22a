"""card payments: a deposit's payment page and the provider's payment id; the provider events received
(kept by id, so a webhook delivered twice does nothing the second time); users' accounts at a provider
that pays them (Stripe Connect); a deposit's money that has not cleared yet (the pending balance). The
new account kind ``pending`` is kept non-negative by the ledger and checked by ``ledger verify``; the
table's CHECK on balances is not widened to it (on SQLite that means rebuilding ledger_accounts).

Revision ID: 0023
Revises: 0022
Create Date: 2026-12-04 03:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0023"
down_revision: str | None = "0022"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("deposits") as batch:
        batch.add_column(sa.Column("payment_url", sa.String(length=2000), nullable=True))
        batch.add_column(sa.Column("provider_payment_id", sa.String(length=100), nullable=True))
        batch.create_index("ix_deposits_provider_payment_id", ["provider_payment_id"])
        batch.add_column(sa.Column("clears_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(
            sa.Column(
                "uncleared",
                sa.BigInteger().with_variant(sa.INTEGER(), "sqlite"),
                nullable=False,
                server_default="0",
            )
        )
        batch.add_column(sa.Column("cleared_at", sa.DateTime(timezone=True), nullable=True))
        batch.create_check_constraint(
            "uncleared_within_amount", "uncleared >= 0 AND uncleared <= amount"
        )
    op.create_index(
        "ix_deposits_uncleared_clears_at",
        "deposits",
        ["clears_at"],
        postgresql_where=sa.text("uncleared > 0"),
        sqlite_where=sa.text("uncleared > 0"),
    )
    op.create_table(
        "provider_events",
        sa.Column("provider", sa.String(length=40), nullable=False),
        sa.Column("event_id", sa.String(length=100), nullable=False),
        sa.Column("type", sa.String(length=100), nullable=False),
        sa.Column("outcome", sa.String(length=500), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("provider", "event_id", name="pk_provider_events"),
    )
    op.create_table(
        "provider_accounts",
        sa.Column("user_id", sa.String(length=40), nullable=False),
        sa.Column("provider", sa.String(length=40), nullable=False),
        sa.Column("account_id", sa.String(length=100), nullable=False),
        sa.Column("payouts_enabled", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name="fk_provider_accounts_user_id_users"
        ),
        sa.PrimaryKeyConstraint("user_id", "provider", name="pk_provider_accounts"),
        sa.UniqueConstraint("account_id", name="uq_provider_accounts_account_id"),
    )


def downgrade() -> None:
    op.drop_table("provider_accounts")
    op.drop_table("provider_events")
    op.drop_index("ix_deposits_uncleared_clears_at", table_name="deposits")
    with op.batch_alter_table("deposits") as batch:
        batch.drop_constraint("uncleared_within_amount", type_="check")
        batch.drop_column("cleared_at")
        batch.drop_column("uncleared")
        batch.drop_column("clears_at")
        batch.drop_index("ix_deposits_provider_payment_id")
        batch.drop_column("provider_payment_id")
        batch.drop_column("payment_url")
