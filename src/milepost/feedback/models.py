from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from milepost.kit.db import Base, UTCDateTime

MIN_RATING = 1
MAX_RATING = 5


class Feedback(Base):
    """One party's rating of the other after a milestone ended. At most one per author and milestone:
    the unique constraint holds even if two requests race past the service's own check."""

    __tablename__ = "feedback"
    __table_args__ = (
        UniqueConstraint("milestone_id", "author_id"),
        CheckConstraint(f"rating BETWEEN {MIN_RATING} AND {MAX_RATING}", name="rating_in_range"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    milestone_id: Mapped[str] = mapped_column(ForeignKey("milestones.id"), index=True)
    author_id: Mapped[str] = mapped_column(ForeignKey("users.id"))
    author_role: Mapped[str] = mapped_column(String(20))
    # The rated party (the other side of the milestone): reputation reads ratings by it.
    subject_id: Mapped[str] = mapped_column(ForeignKey("users.id"), index=True)
    rating: Mapped[int] = mapped_column(Integer)
    comment: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
