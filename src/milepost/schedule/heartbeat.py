"""The scheduler's heartbeat: each running scheduler (``milepost worker``, or the thread of ``serve``)
writes its row after every run of the due work, so that /readyz and /metrics can tell whether anything is
doing the time-driven work at all, and how long ago it last did."""

from __future__ import annotations

import logging
import os
import secrets
import socket
from datetime import datetime, timedelta

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from milepost.kit.db import Database, log_failure
from milepost.kit.time import utcnow
from milepost.schedule.models import WorkerHeartbeat

log = logging.getLogger("milepost.schedule")

# Rows of schedulers that stopped are removed once this old (a restart makes a new row).
FORGET_AFTER = timedelta(days=1)


class Heartbeat:
    """One scheduler's heartbeat row."""

    def __init__(self, db: Database, *, role: str, interval: float) -> None:
        self.db = db
        self.role = role
        self.interval = interval
        host = socket.gethostname()[:100]
        self.id = f"{host}:{os.getpid()}:{secrets.token_hex(4)}"
        self.host = host
        self.started_at = utcnow()

    def beat(self) -> None:
        """Say "alive, and a run just ended"; a failure is logged (an outage once), never raised."""
        now = utcnow()
        try:
            with self.db.unit_of_work() as session:
                updated = session.execute(
                    update(WorkerHeartbeat)
                    .where(WorkerHeartbeat.id == self.id)
                    .values(beat_at=now)
                    .returning(WorkerHeartbeat.id)
                ).first()
                if updated is None:
                    session.execute(
                        delete(WorkerHeartbeat).where(WorkerHeartbeat.beat_at < now - FORGET_AFTER)
                    )
                    session.add(
                        WorkerHeartbeat(
                            id=self.id,
                            role=self.role,
                            host=self.host,
                            pid=os.getpid(),
                            interval_seconds=self.interval,
                            started_at=self.started_at,
                            beat_at=now,
                        )
                    )
        except Exception as error:
            log_failure(self.db, log, "could not write the scheduler's heartbeat", error)


def last_beat(session: Session) -> datetime | None:
    """When any scheduler last reported; None if none ever did (or all were forgotten)."""
    return session.scalar(select(func.max(WorkerHeartbeat.beat_at)))
