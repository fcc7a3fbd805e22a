from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from milepost.kit.db import Base, Money, UTCDateTime, json_column, str_enum
from milepost.milestones.state import MilestoneStatus


class DisputeStatus(StrEnum):
    OPEN = "open"
    WITHDRAWN = "withdrawn"
    RESOLVED = "resolved"


class Resolution(StrEnum):
    OFFER_ACCEPTED = "offer_accepted"
    STAFF = "staff"
    NO_RESPONSE = "no_response"  # the other party let the response window pass


class OfferStatus(StrEnum):
    OPEN = "open"
    ACCEPTED = "accepted"
    SUPERSEDED = "superseded"  # a newer offer from the same party replaced it
    CLOSED = "closed"  # the dispute ended (withdrawn, or resolved otherwise) while it was open


class Dispute(Base):
    __tablename__ = "disputes"
    # Staff's queue: the open ones by mediation deadline (web/views/dispute_queue.py pages it).
    __table_args__ = (
        Index("ix_disputes_status_mediation_due_at_id", "status", "mediation_due_at", "id"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    milestone_id: Mapped[str] = mapped_column(ForeignKey("milestones.id"), index=True)
    opened_by: Mapped[str] = mapped_column(ForeignKey("users.id"))
    opener_role: Mapped[str] = mapped_column(String(20))
    reason: Mapped[str] = mapped_column(Text)
    status: Mapped[DisputeStatus] = mapped_column(str_enum(DisputeStatus), index=True)
    status_before: Mapped[MilestoneStatus] = mapped_column(str_enum(MilestoneStatus))
    respond_by: Mapped[datetime] = mapped_column(UTCDateTime)
    mediation_due_at: Mapped[datetime] = mapped_column(UTCDateTime)
    responded_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Set by the scheduler once the mediation window has passed: the dispute is in staff's overdue queue.
    overdue_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    resolution: Mapped[Resolution | None] = mapped_column(str_enum(Resolution))
    to_freelancer: Mapped[int | None] = mapped_column(Money)
    to_client: Mapped[int | None] = mapped_column(Money)
    resolved_by: Mapped[str | None] = mapped_column(ForeignKey("users.id"))
    resolution_note: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class SettlementOffer(Base):
    __tablename__ = "settlement_offers"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    dispute_id: Mapped[str] = mapped_column(ForeignKey("disputes.id"), index=True)
    made_by: Mapped[str] = mapped_column(ForeignKey("users.id"))
    maker_role: Mapped[str] = mapped_column(String(20))
    to_freelancer: Mapped[int] = mapped_column(Money)
    status: Mapped[OfferStatus] = mapped_column(str_enum(OfferStatus))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    accepted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class DisputeMessage(Base):
    """A message in a dispute's conversation, from a party or staff, with attachments (evidence items as
    for a delivery: text, links, uploaded files). Messages are never edited or deleted; each is also an
    audit event of the milestone (``dispute_message``), whose hash covers its text."""

    __tablename__ = "dispute_messages"
    __table_args__ = (Index("ix_dispute_messages_dispute_id_id", "dispute_id", "id"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    dispute_id: Mapped[str] = mapped_column(ForeignKey("disputes.id"))
    author_id: Mapped[str] = mapped_column(ForeignKey("users.id"))
    author_role: Mapped[str] = mapped_column(String(20))  # client, freelancer or staff
    body: Mapped[str] = mapped_column(Text)
    attachments: Mapped[list[dict[str, str]]] = mapped_column(json_column())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
