"""A cancellation request the freelancer leaves unanswered: a reminder before the answer period ends, then
the request is granted (cancelled, the escrow refunded to the client) by the time-driven work, once."""

from __future__ import annotations

from datetime import timedelta

import pytest
from pydantic import ValidationError

from milepost.disputes import service as disputes
from milepost.kit.db import Database
from milepost.kit.time import utcnow
from milepost.milestones import service as milestones
from milepost.milestones.state import MilestoneStatus
from milepost.settings import Settings
from tests.notifications.test_service import notifications
from tests.schedule.helpers import events, happened, summary, tick
from tests.world import World

S = MilestoneStatus
SECOND = timedelta(seconds=1)
DAY = timedelta(days=1)
CANCELLATION_WORK = {"cancellation_reminder", "cancellation_auto_accepted"}


def test_an_ignored_request_is_granted_after_seven_days_after_one_reminder(world: World) -> None:
    client, freelancer, funded = world.funded(100_000, title="Logo")
    mid = funded.id
    asked_at = utcnow()
    world.act(client, milestones.request_cancellation, mid, reason="Plans changed", now=asked_at)
    due = world.get(mid).cancellation_answer_due_at
    assert due == asked_at + 7 * DAY

    assert happened(tick(world, due - 2 * DAY - SECOND)) == []
    assert happened(tick(world, due - 2 * DAY)) == [("cancellation_reminder", mid)]
    assert happened(tick(world, due - DAY)) == []
    assert happened(tick(world, due - SECOND)) == []
    assert world.get(mid).status is S.FUNDED
    assert world.balance(client) == 1_000_000 - 100_000

    assert happened(tick(world, due)) == [("cancellation_auto_accepted", mid)]
    assert happened(tick(world, due)) == []
    assert happened(tick(world, due + 30 * DAY)) == []

    done = world.get(mid)
    assert (done.status, done.refunded_amount, done.cancellation_requested) == (
        S.CANCELLED,
        100_000,
        False,
    )
    assert done.cancellation_answer_due_at is None
    assert world.balance(client) == 1_000_000  # all of the escrow came back
    assert world.balance(freelancer) == 0
    reminded = {"days_left": 2, "answer_due_at": due.isoformat(), "step": -2}
    assert [summary(event) for event in events(world, mid)][-2:] == [
        ("cancellation_reminder", None, "system", None, reminded),
        ("cancellation_auto_accepted", None, "system", 100_000, {"reason": "Plans changed"}),
    ]

    told = {note.kind: note for note in notifications(world.db, freelancer)}
    assert "If you do not answer by" in told["cancellation_requested"].body
    assert told["cancellation_reminder"].title == "2 days left to answer the cancellation of “Logo”"
    assert "cancellation_auto_accepted" in told
    refunded = [
        note
        for note in notifications(world.db, client)
        if note.kind == "cancellation_auto_accepted"
    ]
    assert len(refunded) == 1
    assert "$1,000.00 went back from escrow" in refunded[0].body


def test_an_answered_request_does_not_lapse(world: World) -> None:
    client, freelancer, funded = world.funded(100_000)
    mid = funded.id
    asked_at = utcnow()
    world.act(client, milestones.request_cancellation, mid, reason="Plans changed", now=asked_at)
    world.act(freelancer, milestones.answer_cancellation, mid, accept=False, now=asked_at + DAY)
    assert world.get(mid).cancellation_answer_due_at is None

    assert happened(tick(world, asked_at + 30 * DAY)) == []
    assert world.get(mid).status is S.FUNDED
    assert world.balance(client) == 1_000_000 - 100_000


def test_work_delivered_meanwhile_does_not_stop_the_clock(world: World) -> None:
    client, freelancer, funded = world.funded(100_000)
    mid = funded.id
    asked_at = utcnow()
    world.act(client, milestones.request_cancellation, mid, reason="Plans changed", now=asked_at)
    world.act(freelancer, milestones.submit, mid, note="Here it is", now=asked_at + DAY)

    report = tick(world, asked_at + 7 * DAY)
    assert ("cancellation_auto_accepted", mid) in happened(report)
    assert world.get(mid).status is S.CANCELLED
    assert world.balance(client) == 1_000_000


def test_a_dispute_drops_the_pending_request(world: World) -> None:
    client, freelancer, funded = world.funded(100_000)
    mid = funded.id
    asked_at = utcnow()
    world.act(client, milestones.request_cancellation, mid, reason="Plans changed", now=asked_at)
    world.act(freelancer, disputes.open_dispute, mid, reason="Work is done", now=asked_at + DAY)
    disputed = world.get(mid)
    assert (disputed.cancellation_requested, disputed.cancellation_answer_due_at) == (False, None)

    done = happened(tick(world, asked_at + 7 * DAY))
    assert not [pair for pair in done if pair[0] in CANCELLATION_WORK]


def test_the_answer_period_and_reminders_are_settings(db: Database) -> None:
    world = World(
        db,
        Settings(
            fee_bps=1000,
            providers="sandbox,manual",
            cancellation_answer_days=3,
            cancellation_reminder_days=[1],
        ),
    )
    client, _freelancer, funded = world.funded(50_000)
    mid = funded.id
    asked_at = utcnow()
    world.act(client, milestones.request_cancellation, mid, reason="Plans changed", now=asked_at)
    assert happened(tick(world, asked_at + 2 * DAY)) == [("cancellation_reminder", mid)]
    assert happened(tick(world, asked_at + 3 * DAY)) == [("cancellation_auto_accepted", mid)]
    assert world.balance(client) == 1_000_000


def test_a_reminder_after_the_answer_period_is_refused_as_a_setting() -> None:
    with pytest.raises(ValidationError, match="cancellation_reminder_days"):
        Settings(cancellation_answer_days=3, cancellation_reminder_days=[3])
