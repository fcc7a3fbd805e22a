"""The pure parts: which reminder step is due, the schedule settings, the run's summary."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from milepost.events import EventAction
from milepost.schedule.ladders import Step, funding_ladder, review_ladder, step_due
from milepost.schedule.service import Failure, Happening, TickReport
from milepost.settings import Settings

DEADLINE = datetime(2030, 1, 1, tzinfo=UTC)
DAY = timedelta(days=1)


def test_the_latest_due_step_is_taken_once_and_missed_steps_are_skipped() -> None:
    ladder = funding_ladder(Settings())
    assert ladder == [
        Step(0, EventAction.FUNDING_REMINDER),
        Step(3, EventAction.FUNDING_REMINDER),
        Step(7, EventAction.FUNDING_REMINDER),
        Step(10, EventAction.FUNDING_ESCALATED),
    ]
    assert step_due(ladder, DEADLINE, DEADLINE - timedelta(seconds=1), []) is None
    assert step_due(ladder, DEADLINE, DEADLINE, []) == Step(0, EventAction.FUNDING_REMINDER)
    assert step_due(ladder, DEADLINE, DEADLINE + 2 * DAY, [0]) is None
    assert step_due(ladder, DEADLINE, DEADLINE + 8 * DAY, [0]) == Step(
        7, EventAction.FUNDING_REMINDER
    )
    assert step_due(ladder, DEADLINE, DEADLINE + 9 * DAY, [7]) is None
    assert step_due(ladder, DEADLINE, DEADLINE + 30 * DAY, []) == Step(
        10, EventAction.FUNDING_ESCALATED
    )
    assert step_due(ladder, DEADLINE, DEADLINE + 30 * DAY, [0, 10]) is None


def test_review_reminders_count_back_from_the_end_of_the_period() -> None:
    ladder = review_ladder(Settings(review_reminder_days=[1, 3, 3]))
    assert ladder == [Step(-3, EventAction.REVIEW_REMINDER), Step(-1, EventAction.REVIEW_REMINDER)]
    assert step_due(ladder, DEADLINE, DEADLINE - 3 * DAY - timedelta(seconds=1), []) is None
    assert step_due(ladder, DEADLINE, DEADLINE - 2 * DAY, []) == Step(
        -3, EventAction.REVIEW_REMINDER
    )
    assert step_due(ladder, DEADLINE, DEADLINE - 2 * DAY, [-3]) is None
    assert step_due(ladder, DEADLINE, DEADLINE - DAY, [-3]) == Step(-1, EventAction.REVIEW_REMINDER)


@pytest.mark.parametrize(
    "values",
    [
        {"funding_reminder_days": [0, 10]},  # not before the escalation
        {"funding_reminder_days": [-1]},
        {"review_reminder_days": [0]},
        {"schedule_interval_seconds": 0},
    ],
)
def test_schedule_settings_that_make_no_sense_are_refused(values: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        Settings(**values)  # type: ignore[arg-type]


def test_the_summary_counts_each_kind_then_lists_what_was_done() -> None:
    quiet = TickReport(now=DEADLINE)
    assert quiet.lines() == ["2030-01-01T00:00:00+00:00: nothing due"]
    busy = TickReport(
        now=DEADLINE,
        done=[
            Happening("funding_reminder", "ms_1", "0 days past fund-by"),
            Happening("auto_approved", "ms_2", "review period ended"),
            Happening("funding_reminder", "ms_3", "3 days past fund-by"),
        ],
        failed=[Failure("review", "ms_4", "Conflict: busy")],
        emails_sent=2,
    )
    assert busy.counts() == {"funding_reminder": 2, "auto_approved": 1}
    assert busy.lines() == [
        "2030-01-01T00:00:00+00:00: 2 funding_reminder, 1 auto_approved, 2 e-mails sent, 1 failed",
        "  ms_1  funding_reminder: 0 days past fund-by",
        "  ms_2  auto_approved: review period ended",
        "  ms_3  funding_reminder: 3 days past fund-by",
        "  ms_4  FAILED review: Conflict: busy",
    ]
