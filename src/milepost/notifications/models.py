from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from milepost.kit.db import Base, UTCDateTime, json_column, str_enum


class Notification(Base):
    """One thing a user should know of, shown in the app until they mark it read."""

    __tablename__ = "notifications"
    __table_args__ = (Index("ix_notifications_user_id_id", "user_id", "id"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id"))
    # The audit action it comes from (``funded``, ``release_requested``, ...) or a project-level kind.
    kind: Mapped[str] = mapped_column(String(60))
    milestone_id: Mapped[str | None] = mapped_column(ForeignKey("milestones.id"))
    project_id: Mapped[str | None] = mapped_column(ForeignKey("projects.id"))
    title: Mapped[str] = mapped_column(String(300))
    body: Mapped[str] = mapped_column(Text)
    data: Mapped[dict[str, Any]] = mapped_column(json_column())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    read_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class EmailStatus(StrEnum):
    PENDING = "pending"  # waiting to be sent, or claimed by a sender until ``next_attempt_at``
    SENT = "sent"
    FAILED = "failed"  # the server refused it for good; kept, with the error


class OutgoingEmail(Base):
    """The e-mail outbox: written in the unit of work that made the notification, sent after commit."""

    __tablename__ = "email_outbox"
    __table_args__ = (Index("ix_email_outbox_due", "status", "next_attempt_at"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    # What makes this e-mail this e-mail (the event or caller's key, and the address): queued once only.
    dedupe_key: Mapped[str] = mapped_column(String(400), unique=True)
    to_address: Mapped[str] = mapped_column(String(320))
    subject: Mapped[str] = mapped_column(String(300))
    text_body: Mapped[str] = mapped_column(Text)
    html_body: Mapped[str | None] = mapped_column(Text)
    notification_id: Mapped[str | None] = mapped_column(ForeignKey("notifications.id"))
    status: Mapped[EmailStatus] = mapped_column(str_enum(EmailStatus))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    # When to try next; while a sender holds the e-mail, the end of its lease. None once settled.
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_error: Mapped[str | None] = mapped_column(Text)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
