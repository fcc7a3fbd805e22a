"""Reminder ladders: which step of a schedule is due at a moment. Plain Python, no database.

A ladder is a list of steps, each some days from a deadline (negative: before it). At any moment the step
to take is the latest one whose time has come, and only if neither it nor a later step was taken already.
So a worker that was down over several steps sends one message (the newest) rather than a burst of stale
ones: with reminders at 0, 3 and 7 days and the first tick at day 8, the client gets the day-7 reminder
only; at day 12 (past the escalation at 10), the escalation only.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from milepost.events import EventAction
from milepost.settings import Settings

FUNDING = "funding"
REVIEW = "review"
CANCELLATION = "cancellation"


@dataclass(frozen=True)
class Step:
    days: int  # from the deadline; negative: before it
    action: EventAction  # the audit action recorded when the step is taken


def funding_ladder(settings: Settings) -> list[Step]:
    """Reminders after the fund-by date, then the escalation to the billing contact."""
    reminders = sorted(set(settings.funding_reminder_days))
    return [Step(day, EventAction.FUNDING_REMINDER) for day in reminders] + [
        Step(settings.funding_escalation_days, EventAction.FUNDING_ESCALATED)
    ]


def review_ladder(settings: Settings) -> list[Step]:
    """Reminders before the review period ends (the lapse itself approves: see schedule.service)."""
    days_before = sorted(set(settings.review_reminder_days), reverse=True)
    return [Step(-day, EventAction.REVIEW_REMINDER) for day in days_before]


def cancellation_ladder(settings: Settings) -> list[Step]:
    """Reminders to the freelancer before an unanswered cancellation request is granted."""
    days_before = sorted(set(settings.cancellation_reminder_days), reverse=True)
    return [Step(-day, EventAction.CANCELLATION_REMINDER) for day in days_before]


def start_of_day(day: date) -> datetime:
    """A date as a deadline: its first instant, in UTC (dates are UTC calendar days throughout)."""
    return datetime.combine(day, time(), tzinfo=UTC)


def step_due(
    ladder: Sequence[Step], deadline: datetime, now: datetime, taken: Iterable[int]
) -> Step | None:
    """The step to take at ``now``, or None: the latest step due, unless it or a later one was taken."""
    due = [step for step in ladder if now >= deadline + timedelta(days=step.days)]
    if not due:
        return None
    latest = max(due, key=lambda step: step.days)
    if any(days >= latest.days for days in taken):
        return None
    return latest


def earliest_step_days(ladder: Sequence[Step]) -> int:
    """How many days from the deadline the ladder's first step comes (to find candidates cheaply)."""
    return min((step.days for step in ladder), default=0)
