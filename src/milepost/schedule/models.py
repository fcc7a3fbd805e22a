from __future__ import annotations

from datetime import datetime

from sqlalchemy import Float, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from milepost.kit.db import Base, UTCDateTime


class ScheduleStep(Base):
    """A step of a reminder ladder that has been taken: the exactly-once guard of time-driven messages.

    Keyed by the milestone, the ladder (``funding`` or ``review``), the deadline the ladder counts towards
    (so a new fund-by date or a new review period starts a fresh ladder) and the step, in days from that
    deadline (negative: before it). Inserted in the same unit of work as the step's audit event.
    """

    __tablename__ = "schedule_steps"

    milestone_id: Mapped[str] = mapped_column(ForeignKey("milestones.id"), primary_key=True)
    ladder: Mapped[str] = mapped_column(String(32), primary_key=True)
    deadline: Mapped[str] = mapped_column(String(40), primary_key=True)  # ISO date or instant
    step: Mapped[int] = mapped_column(Integer, primary_key=True)
    event_id: Mapped[str] = mapped_column(ForeignKey("milestone_events.id"))
    done_at: Mapped[datetime] = mapped_column(UTCDateTime)


class WorkerHeartbeat(Base):
    """A running scheduler (``milepost worker``, or the thread of ``serve``) says it is alive: one row per
    process, written after each run of the due work. /readyz wants a fresh one; /metrics shows its age."""

    __tablename__ = "worker_heartbeats"

    # host:pid:random, made when the process's scheduler starts.
    id: Mapped[str] = mapped_column(String(200), primary_key=True)
    role: Mapped[str] = mapped_column(String(20))  # "worker" or "serve"
    host: Mapped[str] = mapped_column(String(200))
    pid: Mapped[int] = mapped_column(Integer)
    interval_seconds: Mapped[float] = mapped_column(Float)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    beat_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
