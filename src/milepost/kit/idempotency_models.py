from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from milepost.kit.db import Base, UTCDateTime, json_column


class IdempotencyKey(Base):
    __tablename__ = "idempotency_keys"

    # "<user id or anonymous>:<key>"
    scope_key: Mapped[str] = mapped_column(String(320), primary_key=True)
    request_hash: Mapped[str] = mapped_column(String(64))
    # None while the first request is running; then its response, replayed to duplicates.
    response_status: Mapped[int | None] = mapped_column(Integer)
    response_body: Mapped[Any] = mapped_column(json_column(), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    # The boot id of the process running the request (kit/liveness.py): while the claim is unanswered, it
    # is trusted only as long as that process is alive. None on claims older than this column.
    holder: Mapped[str | None] = mapped_column(String(64))
