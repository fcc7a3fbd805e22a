"""project_events: a project's own audit trail (offers, milestone requests, work paused and resumed),
hash-chained per project with its head on the project row; webhook deliveries may name a project's event
as well as a milestone's, so their event_id loses its foreign key to milestone_events; a reversed deposit
given back when its card dispute was won (deposit_reversals.reinstated_at, reinstated_entry_id).

Revision ID: 0024
Revises: 0023
Create Date: 2026-12-04 06:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0024"
down_revision: str | None = "0023"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

GENESIS = "0" * 64
DELIVERY_EVENT_FK = "fk_webhook_deliveries_event_id_milestone_events"


def upgrade() -> None:
    op.create_table(
        "project_events",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("project_id", sa.String(length=40), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("actor_id", sa.String(length=40), nullable=True),
        sa.Column("actor_role", sa.String(length=20), nullable=False),
        sa.Column("action", sa.String(length=60), nullable=False),
        sa.Column(
            "data",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("prev_hash", sa.String(length=64), nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.Column("mac", sa.String(length=64), nullable=True),
        sa.Column("mac_key_id", sa.String(length=40), nullable=True),
        sa.ForeignKeyConstraint(
            ["project_id"], ["projects.id"], name="fk_project_events_project_id_projects"
        ),
        sa.ForeignKeyConstraint(
            ["actor_id"], ["users.id"], name="fk_project_events_actor_id_users"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_project_events"),
        sa.UniqueConstraint("project_id", "seq", name="uq_project_events_project_id_seq"),
    )
    op.create_index("ix_project_events_project_id", "project_events", ["project_id"])
    # Plain ALTER TABLE ... ADD COLUMN, not a batch copy of projects (which many tables point at).
    op.add_column(
        "projects", sa.Column("event_count", sa.Integer(), nullable=False, server_default="0")
    )
    op.add_column(
        "projects",
        sa.Column("last_event_hash", sa.String(length=64), nullable=False, server_default=GENESIS),
    )
    op.add_column("projects", sa.Column("last_event_mac", sa.String(length=64), nullable=True))
    with op.batch_alter_table("webhook_deliveries") as batch:
        batch.drop_constraint(DELIVERY_EVENT_FK, type_="foreignkey")
    # A card dispute decided for the platform gives the reversed deposit back.
    with op.batch_alter_table("deposit_reversals") as batch:
        batch.add_column(sa.Column("reinstated_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("reinstated_entry_id", sa.String(length=40), nullable=True))
        batch.create_foreign_key(
            "fk_deposit_reversals_reinstated_entry_id_ledger_entries",
            "ledger_entries",
            ["reinstated_entry_id"],
            ["id"],
        )


def downgrade() -> None:
    with op.batch_alter_table("deposit_reversals") as batch:
        batch.drop_constraint(
            "fk_deposit_reversals_reinstated_entry_id_ledger_entries", type_="foreignkey"
        )
        batch.drop_column("reinstated_entry_id")
        batch.drop_column("reinstated_at")
    # The deliveries of project events cannot keep a key into milestone_events: they go first.
    project_deliveries = "SELECT id FROM webhook_deliveries WHERE substr(event_id, 1, 4) = 'pev_'"
    op.execute(f"DELETE FROM webhook_attempts WHERE delivery_id IN ({project_deliveries})")
    op.execute("DELETE FROM webhook_deliveries WHERE substr(event_id, 1, 4) = 'pev_'")
    with op.batch_alter_table("webhook_deliveries") as batch:
        batch.create_foreign_key(DELIVERY_EVENT_FK, "milestone_events", ["event_id"], ["id"])
    op.drop_column("projects", "last_event_mac")
    op.drop_column("projects", "last_event_hash")
    op.drop_column("projects", "event_count")
    op.drop_index("ix_project_events_project_id", table_name="project_events")
    op.drop_table("project_events")
