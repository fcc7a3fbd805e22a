"""card payments: a deposit's payment page and the provider's payment id; the provider events received
(kept by id, so a webhook delivered twice does nothing the second time); users' accounts at a provider
that pays them (Stripe Connect); deposits taken back (chargebacks, bounces) and a user's payout hold; a
deposit's money that has not cleared yet (the pending balance). The
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


def money() -> sa.types.TypeEngine[int]:
    return sa.BigInteger().with_variant(sa.INTEGER(), "sqlite")


def upgrade() -> None:
    with op.batch_alter_table("deposits") as batch:
        batch.add_column(sa.Column("payment_url", sa.String(length=2000), nullable=True))
        batch.add_column(sa.Column("provider_payment_id", sa.String(length=100), nullable=True))
        batch.create_index("ix_deposits_provider_payment_id", ["provider_payment_id"])
        batch.add_column(sa.Column("clears_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(
            sa.Column(
                "uncleared",
                money(),
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
        "deposit_reversals",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("deposit_id", sa.String(length=40), nullable=False),
        sa.Column("provider_reference", sa.String(length=100), nullable=True),
        sa.Column("reason", sa.String(length=500), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("amount", money(), nullable=False),
        sa.Column("from_pending", money(), nullable=False),
        sa.Column("from_available", money(), nullable=False),
        sa.Column("payouts_failed", money(), nullable=False),
        sa.Column("loss", money(), nullable=False),
        sa.Column("entry_id", sa.String(length=40), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(length=40), nullable=True),
        sa.CheckConstraint(
            "from_pending + from_available + loss = amount AND amount > 0",
            name=op.f("ck_deposit_reversals_parts_add_up"),
        ),
        sa.ForeignKeyConstraint(
            ["deposit_id"], ["deposits.id"], name="fk_deposit_reversals_deposit_id_deposits"
        ),
        sa.ForeignKeyConstraint(
            ["entry_id"], ["ledger_entries.id"], name="fk_deposit_reversals_entry_id_ledger_entries"
        ),
        sa.ForeignKeyConstraint(
            ["created_by"], ["users.id"], name="fk_deposit_reversals_created_by_users"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_deposit_reversals"),
        sa.UniqueConstraint("deposit_id", name="uq_deposit_reversals_deposit_id"),
    )
    op.add_column("users", sa.Column("payouts_held_reason", sa.String(length=500), nullable=True))
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
    # Plain ALTER TABLE ... DROP COLUMN (SQLite 3.35+), not a batch copy: copying the users table would
    # trip the foreign keys that point at it.
    op.drop_column("users", "payouts_held_reason")
    op.drop_table("deposit_reversals")
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
