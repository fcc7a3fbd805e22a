from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import CheckConstraint, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from milepost.kit.db import Base, Money, UTCDateTime, json_column, str_enum
from milepost.projects.state import (
    MilestoneRequestStatus,
    OfferStatus,
    ProjectStatus,
    ProposalStatus,
)

__all__ = ["Bonus", "Project", "ProjectStatus", "ProjectTotals", "Proposal", "ProposalStatus"]


class Project(Base):
    __tablename__ = "projects"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    client_id: Mapped[str] = mapped_column(ForeignKey("users.id"), index=True)
    freelancer_id: Mapped[str | None] = mapped_column(ForeignKey("users.id"), index=True)
    title: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    currency: Mapped[str] = mapped_column(String(3))
    billing_contact_email: Mapped[str | None] = mapped_column(String(320))
    status: Mapped[ProjectStatus] = mapped_column(str_enum(ProjectStatus))
    # The freelancer paused work because a payment on the project is overdue; the client sees it.
    paused: Mapped[bool] = mapped_column(default=False)
    paused_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # The head of the project's own audit trail (``audit.models.ProjectEvent``): how many events, the
    # newest hash and MAC. ``ledger verify`` checks the chain ends there.
    event_count: Mapped[int] = mapped_column(Integer, default=0)
    last_event_hash: Mapped[str] = mapped_column(String(64), default="0" * 64)
    last_event_mac: Mapped[str | None] = mapped_column(String(64))


class ProjectTotals(Base):
    """The figures under a project's milestone table, kept as its milestones change rather than summed
    over all of them on every view (a project may have thousands): what its milestones not cancelled
    are worth, what their escrow holds, and what has been released from it (gross, fee included). Kept by
    ``milestones.models`` (every insert or update of a milestone adds the change of its share, at
    commit); ``ledger verify`` checks them against the milestones. A row of its own, not columns of the
    project: the project row is locked by the project's own operations, these are added to by every
    release on any of its milestones."""

    __tablename__ = "project_totals"

    project_id: Mapped[str] = mapped_column(ForeignKey("projects.id"), primary_key=True)
    planned_amount: Mapped[int] = mapped_column(Money, default=0)
    in_escrow_amount: Mapped[int] = mapped_column(Money, default=0)
    released_amount: Mapped[int] = mapped_column(Money, default=0)


class Proposal(Base):
    __tablename__ = "proposals"
    __table_args__ = (CheckConstraint("amount > 0", name="amount_positive"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    project_id: Mapped[str] = mapped_column(ForeignKey("projects.id"), index=True)
    freelancer_id: Mapped[str] = mapped_column(ForeignKey("users.id"), index=True)
    amount: Mapped[int] = mapped_column(Money)
    currency: Mapped[str] = mapped_column(String(3))
    cover_letter: Mapped[str] = mapped_column(Text, default="")
    # [{title, amount, due_date (ISO date or null), acceptance_criteria: [str]}], validated on the way in.
    milestones: Mapped[list[dict[str, Any]]] = mapped_column(json_column())
    status: Mapped[ProposalStatus] = mapped_column(str_enum(ProposalStatus))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class Bonus(Base):
    """Money the client pays the freelancer straight from the wallet: no escrow, no review."""

    __tablename__ = "bonuses"
    __table_args__ = (CheckConstraint("amount > 0", name="amount_positive"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    project_id: Mapped[str] = mapped_column(ForeignKey("projects.id"), index=True)
    client_id: Mapped[str] = mapped_column(ForeignKey("users.id"))
    freelancer_id: Mapped[str] = mapped_column(ForeignKey("users.id"))
    amount: Mapped[int] = mapped_column(Money)
    fee_amount: Mapped[int] = mapped_column(Money)
    currency: Mapped[str] = mapped_column(String(3))
    note: Mapped[str] = mapped_column(Text, default="")
    entry_id: Mapped[str] = mapped_column(ForeignKey("ledger_entries.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class MilestoneRequest(Base):
    """A freelancer on an awarded project asks for a new milestone with these terms; the client accepts
    it (a draft milestone with the terms) or rejects it (as Freelancer.com's milestone requests)."""

    __tablename__ = "milestone_requests"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    project_id: Mapped[str] = mapped_column(ForeignKey("projects.id"), index=True)
    freelancer_id: Mapped[str] = mapped_column(ForeignKey("users.id"))
    # The terms as a milestone's creation takes them (title, amount, criteria, due date, ...), checked.
    terms: Mapped[dict[str, Any]] = mapped_column(json_column())
    status: Mapped[MilestoneRequestStatus] = mapped_column(str_enum(MilestoneRequestStatus))
    reason: Mapped[str | None] = mapped_column(Text)  # why the client rejected it
    milestone_id: Mapped[str | None] = mapped_column(ForeignKey("milestones.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class ProjectOffer(Base):
    """The client offers an open project to one freelancer, by account or by e-mail address (an
    invitation: whoever signs up with that address may answer); the freelancer accepts (the project is
    awarded to them) or declines, and the client may withdraw it unanswered, as on Upwork."""

    __tablename__ = "project_offers"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    project_id: Mapped[str] = mapped_column(ForeignKey("projects.id"), index=True)
    freelancer_id: Mapped[str | None] = mapped_column(ForeignKey("users.id"), index=True)
    email: Mapped[str | None] = mapped_column(String(320), index=True)  # lower case
    message: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[OfferStatus] = mapped_column(str_enum(OfferStatus))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
