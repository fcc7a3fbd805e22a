"""ledger entries and audit events of the same change name each other: ledger_entries.event_id and
milestone_events.entry_id

Both nullable, without foreign keys (each row is written before the other can name it, and a key each way
would make the two tables depend on each other); ``ledger verify`` checks that the two sides agree.

Existing entries are paired with their events the way receipts used to pair them: a change writes its
entry and its event in one unit of work, so they carry the same time; of one milestone at one moment, the
entries of a kind (by id) and the events of the matching actions (by seq) are paired in order, and both
sides are filled in. No hash or MAC covers the link (``ledger verify`` checks it against the milestone,
time, kind and action, which they do cover), so existing rows keep verifying as they are.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-02 05:20:00
"""

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Each kind of entry a milestone's change posts, and the audit actions recorded with it.
ACTIONS_OF_KIND = {
    "fund": ("funded",),
    "release": ("released", "released_part"),
    "refund": ("cancelled", "cancellation_accepted"),
    "dispute_split": ("dispute_resolved",),
}

entries = sa.table(
    "ledger_entries",
    sa.column("id", sa.String),
    sa.column("kind", sa.String),
    sa.column("milestone_id", sa.String),
    sa.column("created_at", sa.String),  # compared as stored: both tables store ctx.now alike
    sa.column("event_id", sa.String),
)
events = sa.table(
    "milestone_events",
    sa.column("id", sa.String),
    sa.column("milestone_id", sa.String),
    sa.column("seq", sa.Integer),
    sa.column("action", sa.String),
    sa.column("created_at", sa.String),  # compared as stored: both tables store ctx.now alike
    sa.column("entry_id", sa.String),
)


def upgrade() -> None:
    with op.batch_alter_table("ledger_entries", schema=None) as batch_op:
        batch_op.add_column(sa.Column("event_id", sa.String(length=40), nullable=True))
    with op.batch_alter_table("milestone_events", schema=None) as batch_op:
        batch_op.add_column(sa.Column("entry_id", sa.String(length=40), nullable=True))
    _pair_existing_entries(op.get_bind())


def _pair_existing_entries(connection: sa.Connection) -> None:
    kind_of_action = {
        action: kind for kind, actions in ACTIONS_OF_KIND.items() for action in actions
    }
    waiting: dict[tuple[Any, ...], list[str]] = defaultdict(list)
    for entry_id, kind, milestone_id, created_at in connection.execute(
        sa.select(entries.c.id, entries.c.kind, entries.c.milestone_id, entries.c.created_at)
        .where(entries.c.milestone_id.is_not(None), entries.c.kind.in_(list(ACTIONS_OF_KIND)))
        .order_by(entries.c.created_at, entries.c.id)
    ):
        waiting[(milestone_id, created_at, kind)].append(entry_id)
    if not waiting:
        return
    pairs: list[dict[str, str]] = []
    for event_id, milestone_id, action, created_at in connection.execute(
        sa.select(events.c.id, events.c.milestone_id, events.c.action, events.c.created_at)
        .where(events.c.action.in_(list(kind_of_action)))
        .order_by(events.c.milestone_id, events.c.seq)
    ):
        queue = waiting.get((milestone_id, created_at, kind_of_action[action]))
        if queue:
            pairs.append({"entry": queue.pop(0), "event": event_id})
    if pairs:
        connection.execute(
            entries.update()
            .where(entries.c.id == sa.bindparam("entry"))
            .values(event_id=sa.bindparam("event")),
            pairs,
        )
        connection.execute(
            events.update()
            .where(events.c.id == sa.bindparam("event"))
            .values(entry_id=sa.bindparam("entry")),
            pairs,
        )


def downgrade() -> None:
    """The links go; nothing else depended on them (the hashes never covered them)."""
    # Plain ALTER TABLE ... DROP COLUMN (SQLite 3.35+), not a batch copy: copying either table would trip
    # the foreign keys that point at it.
    op.drop_column("milestone_events", "entry_id")
    op.drop_column("ledger_entries", "event_id")
