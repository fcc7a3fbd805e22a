"""Review overdue (reminders, then automatic approval and release), and the release delay."""

from __future__ import annotations

from datetime import timedelta

from milepost.milestones import service as milestones
from milepost.milestones.state import MilestoneStatus
from tests.schedule.helpers import events, happened, summary, tick
from tests.world import World

S = MilestoneStatus
SECOND = timedelta(seconds=1)
DAY = timedelta(days=1)


def test_fourteen_days_of_silence_approve_and_release_after_two_reminders(world: World) -> None:
    client, freelancer, submitted = world.submitted(100_000)
    due = submitted.review_due_at
    assert due is not None and submitted.submitted_at is not None
    assert due - submitted.submitted_at == 14 * DAY
    mid = submitted.id

    assert happened(tick(world, due - 3 * DAY - SECOND)) == []
    assert happened(tick(world, due - 3 * DAY)) == [("review_reminder", mid)]
    assert happened(tick(world, due - 3 * DAY)) == []
    assert happened(tick(world, due - 2 * DAY)) == []
    assert happened(tick(world, due - DAY)) == [("review_reminder", mid)]
    assert happened(tick(world, due - SECOND)) == []
    assert world.get(mid).status is S.SUBMITTED
    assert world.balance(freelancer) == 0

    assert happened(tick(world, due)) == [("auto_approved", mid), ("released", mid)]
    assert happened(tick(world, due)) == []
    assert happened(tick(world, due + 30 * DAY)) == []

    done = world.get(mid)
    assert (done.status, done.released_amount, done.fee_amount) == (S.RELEASED, 100_000, 10_000)
    assert world.balance(freelancer) == 100_000 - 10_000  # the amount less the platform fee
    assert world.account_balance("platform_fee:USD") == 10_000
    assert world.balance(client) == 1_000_000 - 100_000
    review_due = due.isoformat()
    assert [summary(event) for event in events(world, mid)][-4:] == [
        ("review_reminder", None, "system", None, {"days_left": 3, "review_due_at": review_due, "step": -3}),
        ("review_reminder", None, "system", None, {"days_left": 1, "review_due_at": review_due, "step": -1}),
        ("auto_approved", None, "system", None, {}),
        ("released", None, "system", 100_000, {"fee": 10_000, "to_freelancer": 90_000}),
    ]  # fmt: skip


def test_a_change_request_stops_the_clock_and_the_next_delivery_restarts_it(world: World) -> None:
    client, freelancer, submitted = world.submitted(100_000)
    mid = submitted.id
    first_due = submitted.review_due_at
    assert first_due is not None

    world.act(client, milestones.request_changes, mid, reason="Tests fail", now=first_due - 5 * DAY)
    assert world.get(mid).review_due_at is None
    # Long past the first review period: nothing happens while the freelancer works on it.
    assert happened(tick(world, first_due + 10 * DAY)) == []
    assert world.get(mid).status is S.CHANGES_REQUESTED

    resubmitted_at = first_due + 11 * DAY
    world.act(freelancer, milestones.submit, mid, note="Fixed", now=resubmitted_at)
    second_due = world.get(mid).review_due_at
    assert second_due == resubmitted_at + 14 * DAY
    assert happened(tick(world, resubmitted_at + DAY)) == []
    # A fresh period gets fresh reminders.
    assert happened(tick(world, second_due - 3 * DAY)) == [("review_reminder", mid)]
    assert happened(tick(world, second_due - SECOND)) == [("review_reminder", mid)]
    assert happened(tick(world, second_due)) == [("auto_approved", mid), ("released", mid)]
    assert world.balance(freelancer) == 90_000


def test_a_late_tick_approves_without_stale_reminders(world: World) -> None:
    _client, freelancer, submitted = world.submitted(100_000)
    assert submitted.review_due_at is not None
    late = submitted.review_due_at + 2 * DAY
    assert happened(tick(world, late)) == [
        ("auto_approved", submitted.id),
        ("released", submitted.id),
    ]
    assert world.balance(freelancer) == 90_000


def test_release_delay_releases_on_time_and_not_before(world: World) -> None:
    _client, freelancer, submitted = world.submitted(100_000, release_delay_days=3)
    mid = submitted.id
    assert submitted.review_due_at is not None
    approved_at = submitted.review_due_at - 4 * DAY
    world.act(_client, milestones.approve, mid, now=approved_at)
    approved = world.get(mid)
    assert (approved.status, approved.release_due_at) == (S.APPROVED, approved_at + 3 * DAY)

    assert happened(tick(world, approved_at + 3 * DAY - SECOND)) == []
    assert world.get(mid).status is S.APPROVED
    assert world.balance(freelancer) == 0

    assert happened(tick(world, approved_at + 3 * DAY)) == [("released", mid)]
    assert happened(tick(world, approved_at + 3 * DAY)) == []
    assert world.get(mid).status is S.RELEASED
    assert world.balance(freelancer) == 90_000
    assert summary(events(world, mid)[-1]) == (
        "released",
        None,
        "system",
        100_000,
        {"fee": 10_000, "to_freelancer": 90_000},
    )


def test_auto_approval_with_a_release_delay_waits_for_the_delay(world: World) -> None:
    _client, freelancer, submitted = world.submitted(100_000, release_delay_days=2)
    mid = submitted.id
    due = submitted.review_due_at
    assert due is not None

    assert happened(tick(world, due)) == [("auto_approved", mid)]
    approved = world.get(mid)
    assert (approved.status, approved.release_due_at) == (S.APPROVED, due + 2 * DAY)
    assert happened(tick(world, due + DAY)) == []
    assert happened(tick(world, due + 2 * DAY)) == [("released", mid)]
    assert world.balance(freelancer) == 90_000
