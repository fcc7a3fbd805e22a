"""Helpers for the time-driven tests: run the due work at a moment, read what happened."""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from typing import Any

from sqlalchemy import select

from milepost.audit.models import MilestoneEvent
from milepost.schedule.service import TickReport, run_due
from tests.world import World


def at(day: date, hour: int = 9) -> datetime:
    """``hour`` o'clock UTC on ``day``."""
    return datetime.combine(day, time(hour), tzinfo=UTC)


def tick(world: World, now: datetime) -> TickReport:
    report = run_due(world.db, world.settings, now, deliver_emails=False)
    assert report.failed == [], report.failed
    return report


def events(world: World, milestone_id: str) -> list[MilestoneEvent]:
    with world.db.read_only() as session:
        return list(
            session.scalars(
                select(MilestoneEvent)
                .where(MilestoneEvent.milestone_id == milestone_id)
                .order_by(MilestoneEvent.seq)
            )
        )


def happened(report: TickReport) -> list[tuple[str, str]]:
    """(action, milestone id) of everything a run did, in order."""
    return [(happening.action, happening.milestone_id) for happening in report.done]


def summary(event: MilestoneEvent) -> tuple[Any, ...]:
    return (event.action, event.actor_id, event.actor_role, event.amount, event.data)
