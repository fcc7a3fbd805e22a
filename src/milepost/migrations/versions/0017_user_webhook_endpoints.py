"""users.webhook_endpoints: how many live webhook endpoints a user has, so that a milestone event whose
parties have none queues nothing without looking for endpoints (webhooks/service.py keeps the count)

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-02 20:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0017"
down_revision: str | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.add_column(
            sa.Column("webhook_endpoints", sa.Integer(), nullable=False, server_default="0")
        )
    op.execute(
        "UPDATE users SET webhook_endpoints = (SELECT count(*) FROM webhook_endpoints"
        " WHERE webhook_endpoints.owner_id = users.id AND webhook_endpoints.deleted_at IS NULL)"
    )


def downgrade() -> None:
    # Plain ALTER TABLE ... DROP COLUMN (SQLite 3.35+), not a batch copy: copying the users table would
    # trip the foreign keys that point at it.
    op.drop_column("users", "webhook_endpoints")
