"""api_tokens: expires_at, kind (api or web session) and label

Existing tokens expire 90 days after they were made (the default lifetime), counted from their
created_at; the ones that are already older than that stop working at once.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-01 21:30:00
"""

from collections.abc import Sequence
from datetime import timedelta

import sqlalchemy as sa
from alembic import op

from milepost.kit.db import UTCDateTime

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

EXISTING_LIFETIME = timedelta(days=90)


def upgrade() -> None:
    with op.batch_alter_table("api_tokens") as batch:
        batch.add_column(sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(
            sa.Column("kind", sa.String(length=32), nullable=False, server_default="api")
        )
        batch.add_column(sa.Column("label", sa.String(length=100), nullable=True))
    # Row by row through the same column type the app uses, so the stored form of a timestamp is the
    # app's on both databases (SQLite keeps them as text).
    tokens = sa.table(
        "api_tokens",
        sa.column("id", sa.String()),
        sa.column("created_at", UTCDateTime()),
        sa.column("expires_at", UTCDateTime()),
    )
    connection = op.get_bind()
    rows = connection.execute(sa.select(tokens.c.id, tokens.c.created_at)).all()
    for token_id, created_at in rows:
        connection.execute(
            tokens.update()
            .where(tokens.c.id == token_id)
            .values(expires_at=created_at + EXISTING_LIFETIME)
        )
    with op.batch_alter_table("api_tokens") as batch:
        batch.alter_column("expires_at", existing_type=sa.DateTime(timezone=True), nullable=False)


def downgrade() -> None:
    with op.batch_alter_table("api_tokens") as batch:
        batch.drop_column("label")
        batch.drop_column("kind")
        batch.drop_column("expires_at")
