from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from milepost.kit.db import Base, Money, UTCDateTime, json_column

GENESIS_EVENT_HASH = "0" * 64


class MilestoneEvent(Base):
    """One change to a milestone. Events are chained per milestone: each hash covers the previous one, and
    each MAC (when a ledger key is set) the previous MAC."""

    __tablename__ = "milestone_events"
    __table_args__ = (UniqueConstraint("milestone_id", "seq"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    milestone_id: Mapped[str] = mapped_column(ForeignKey("milestones.id"), index=True)
    seq: Mapped[int] = mapped_column(Integer)
    actor_id: Mapped[str | None] = mapped_column(ForeignKey("users.id"))  # None: the system
    actor_role: Mapped[str] = mapped_column(String(20))
    action: Mapped[str] = mapped_column(String(60))
    from_status: Mapped[str | None] = mapped_column(String(32))
    to_status: Mapped[str | None] = mapped_column(String(32))
    amount: Mapped[int | None] = mapped_column(Money)
    data: Mapped[dict[str, Any]] = mapped_column(json_column())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))
    # The keyed MAC (see kit/macs.py) over this event's hash and the previous event's MAC, and the id of
    # the key that made it. None: written without MILEPOST_LEDGER_KEY.
    mac: Mapped[str | None] = mapped_column(String(64))
    mac_key_id: Mapped[str | None] = mapped_column(String(40))
    # The ledger entry that moved this change's money (funded, released, refunded, split), which names
    # this event back (``JournalEntry.event_id``). Not under the hash: ``ledger verify`` checks the pair
    # against what the hashes cover (milestone, time, entry kind and action). None: no money moved.
    entry_id: Mapped[str | None] = mapped_column(String(40))


class ProjectEvent(Base):
    """One step of a project's own conversation that is not a milestone's change: an offer made, accepted,
    declined or withdrawn; a milestone requested, accepted, rejected or withdrawn; work paused or resumed.
    Chained per project as milestone events are per milestone (hash, and MAC with a ledger key), with the
    chain's head kept on the project row."""

    __tablename__ = "project_events"
    __table_args__ = (UniqueConstraint("project_id", "seq"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    project_id: Mapped[str] = mapped_column(ForeignKey("projects.id"), index=True)
    seq: Mapped[int] = mapped_column(Integer)
    actor_id: Mapped[str | None] = mapped_column(ForeignKey("users.id"))  # None: the system
    actor_role: Mapped[str] = mapped_column(String(20))
    action: Mapped[str] = mapped_column(String(60))
    data: Mapped[dict[str, Any]] = mapped_column(json_column())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))
    mac: Mapped[str | None] = mapped_column(String(64))
    mac_key_id: Mapped[str | None] = mapped_column(String(40))
