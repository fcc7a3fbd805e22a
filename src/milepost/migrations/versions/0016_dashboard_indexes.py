"""indexes for the reads of one party's milestones and of recent ledger entries (the dashboard and the
balances), so that they read the open milestones and the recent weeks, not every milestone a user ever had

- milestones (client_id, created_at) and (project_id, created_at): a client's newest milestones, and
  a freelancer's through their projects (the dashboard's list);
- milestones (client_id, status) and (project_id, status): a client's or a freelancer's (through their
  projects) milestones in the open statuses, for the cash-flow forecast;
- milestones (client_id, ...) and (project_id, ...), partial, where the escrow holds money, with the
  columns the escrow totals and balances sum (the WHERE is ``milestones.models.holds_escrow``, written
  here as it stands there);
- ledger_entries (kind, created_at): the releases of this month and the weekly history;
- deposits and payouts (user_id, status): a user's pending ones.

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-03 09:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

HOLDS_ESCROW = sa.text("(funded_amount - released_amount) - refunded_amount > 0")
# What the escrow sums read, in the partial indexes themselves (see milestones/models.py).
SUMMED = ["currency", "status", "funded_amount", "released_amount", "refunded_amount"]


def upgrade() -> None:
    op.create_index("ix_milestones_client_id_created_at", "milestones", ["client_id", "created_at"])
    op.create_index(
        "ix_milestones_project_id_created_at", "milestones", ["project_id", "created_at"]
    )
    op.create_index("ix_milestones_client_id_status", "milestones", ["client_id", "status"])
    op.create_index("ix_milestones_project_id_status", "milestones", ["project_id", "status"])
    for name, columns in (
        ("ix_milestones_client_id_holding", ["client_id", "project_id", *SUMMED]),
        ("ix_milestones_project_id_holding", ["project_id", *SUMMED]),
    ):
        op.create_index(
            name,
            "milestones",
            columns,
            sqlite_where=HOLDS_ESCROW,
            postgresql_where=HOLDS_ESCROW,
        )
    op.create_index("ix_ledger_entries_kind_created_at", "ledger_entries", ["kind", "created_at"])
    op.create_index("ix_deposits_user_id_status", "deposits", ["user_id", "status"])
    op.create_index("ix_payouts_user_id_status", "payouts", ["user_id", "status"])


def downgrade() -> None:
    op.drop_index("ix_payouts_user_id_status", table_name="payouts")
    op.drop_index("ix_deposits_user_id_status", table_name="deposits")
    op.drop_index("ix_ledger_entries_kind_created_at", table_name="ledger_entries")
    for name in (
        "ix_milestones_project_id_holding",
        "ix_milestones_client_id_holding",
        "ix_milestones_project_id_status",
        "ix_milestones_client_id_status",
        "ix_milestones_project_id_created_at",
        "ix_milestones_client_id_created_at",
    ):
        op.drop_index(name, table_name="milestones")
