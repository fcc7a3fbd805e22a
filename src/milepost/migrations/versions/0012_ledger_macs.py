"""keyed MACs (HMAC-SHA256, MILEPOST_LEDGER_KEY) on journal entries and audit events, beside the plain
hashes; the audit chain's head MAC on the milestone

Every column is nullable: rows written before a key was set keep their plain hash only, and
``milepost ledger sign`` signs them once the key is on.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-01 21:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    for table in ("milestone_events", "ledger_entries"):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.add_column(sa.Column("mac", sa.String(length=64), nullable=True))
            batch_op.add_column(sa.Column("mac_key_id", sa.String(length=40), nullable=True))
    with op.batch_alter_table("milestones", schema=None) as batch_op:
        batch_op.add_column(sa.Column("last_event_mac", sa.String(length=64), nullable=True))


def downgrade() -> None:
    # Plain ALTER TABLE ... DROP COLUMN (SQLite 3.35+), not a batch copy: copying the milestones table
    # would trip the foreign keys that point at it.
    op.drop_column("milestones", "last_event_mac")
    for table in ("ledger_entries", "milestone_events"):
        op.drop_column(table, "mac_key_id")
        op.drop_column(table, "mac")
