"""dispute_messages: a dispute's conversation (messages with attachments, from the parties and staff), and
dispute_message_files: the uploads a message attaches, which the milestone's parties and staff may then
download.

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-03 18:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0020"
down_revision: str | None = "0019"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "dispute_messages",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("dispute_id", sa.String(length=40), nullable=False),
        sa.Column("author_id", sa.String(length=40), nullable=False),
        sa.Column("author_role", sa.String(length=20), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column(
            "attachments",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["author_id"], ["users.id"], name=op.f("fk_dispute_messages_author_id_users")
        ),
        sa.ForeignKeyConstraint(
            ["dispute_id"], ["disputes.id"], name=op.f("fk_dispute_messages_dispute_id_disputes")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_dispute_messages")),
    )
    op.create_index(
        "ix_dispute_messages_dispute_id_id", "dispute_messages", ["dispute_id", "id"], unique=False
    )
    op.create_table(
        "dispute_message_files",
        sa.Column("message_id", sa.String(length=40), nullable=False),
        sa.Column("file_id", sa.String(length=40), nullable=False),
        sa.ForeignKeyConstraint(
            ["file_id"], ["files.id"], name=op.f("fk_dispute_message_files_file_id_files")
        ),
        sa.ForeignKeyConstraint(
            ["message_id"],
            ["dispute_messages.id"],
            name=op.f("fk_dispute_message_files_message_id_dispute_messages"),
        ),
        sa.PrimaryKeyConstraint("message_id", "file_id", name=op.f("pk_dispute_message_files")),
    )
    op.create_index(
        op.f("ix_dispute_message_files_file_id"),
        "dispute_message_files",
        ["file_id"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_dispute_message_files_file_id"), table_name="dispute_message_files")
    op.drop_table("dispute_message_files")
    op.drop_index("ix_dispute_messages_dispute_id_id", table_name="dispute_messages")
    op.drop_table("dispute_messages")
