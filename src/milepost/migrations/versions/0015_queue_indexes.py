"""indexes for reads that page and sum instead of loading everything: staff's queues, statements

- disputes (status, mediation_due_at, id): the open disputes by mediation deadline, a page at a time;
- deposits and payouts (status, provider, created_at, id): the manual transfers waiting on staff, oldest
  first, a page at a time;
- ledger_entries (created_at, id): the entries of a statement's period, without reading the accounts'
  whole history;
- milestones (project_id, status, fund_by and the amounts): the project page's totals from the index
  alone, and a project's drafts past their fund-by date.

The project page pages its milestones by (project_id, position), which the unique constraint on those two
columns indexes already.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-03 09:00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

INDEXES = (
    ("ix_disputes_status_mediation_due_at_id", "disputes", ["status", "mediation_due_at", "id"]),
    (
        "ix_deposits_status_provider_created_at_id",
        "deposits",
        ["status", "provider", "created_at", "id"],
    ),
    (
        "ix_payouts_status_provider_created_at_id",
        "payouts",
        ["status", "provider", "created_at", "id"],
    ),
    ("ix_ledger_entries_created_at_id", "ledger_entries", ["created_at", "id"]),
    (
        "ix_milestones_project_totals",
        "milestones",
        [
            "project_id",
            "status",
            "fund_by",
            "amount",
            "funded_amount",
            "released_amount",
            "refunded_amount",
        ],
    ),
)


def upgrade() -> None:
    for name, table, columns in INDEXES:
        op.create_index(op.f(name), table, columns, unique=False)


def downgrade() -> None:
    for name, table, _ in reversed(INDEXES):
        op.drop_index(op.f(name), table_name=table)
