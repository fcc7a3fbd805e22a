from __future__ import annotations

from datetime import datetime

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from milepost.kit.db import Base, UTCDateTime


class User(Base):
    __tablename__ = "users"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    email: Mapped[str] = mapped_column(String(320), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    password_hash: Mapped[str] = mapped_column(String(200))
    is_staff: Mapped[bool] = mapped_column(default=False)
    # An IANA zone name ("Europe/Berlin"): the web app shows times in it. Stored instants stay UTC.
    time_zone: Mapped[str] = mapped_column(String(64), default="UTC", server_default="UTC")
    # How many live webhook endpoints the user has (kept by webhooks/service.py under this row's lock):
    # the events of a milestone whose parties have none queue nothing, without a query for endpoints.
    webhook_endpoints: Mapped[int] = mapped_column(default=0, server_default="0")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # Why this user's payouts are held (a deposit of theirs was charged back or bounced), until staff
    # lift it; None: not held.
    payouts_held_reason: Mapped[str | None] = mapped_column(String(500))
