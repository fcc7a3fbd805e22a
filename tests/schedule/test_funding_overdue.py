"""Funding overdue: reminders, the escalation to the billing contact, late fees; pausing work meanwhile."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from sqlalchemy import select

from milepost.kit.errors import InvalidState, PermissionDenied
from milepost.milestones import service as milestones
from milepost.milestones.state import MilestoneStatus
from milepost.notifications.models import Notification, OutgoingEmail
from milepost.projects import service as projects
from milepost.projects.models import Project
from milepost.settings import Settings
from milepost.users.models import User
from tests.schedule.helpers import at, events, happened, summary, tick
from tests.world import World

# $10,000 in five $2,000 milestones, each to be funded by the first of its month.
FUND_BY = [date(2030, 1, 1), date(2030, 2, 1), date(2030, 3, 1), date(2030, 4, 1), date(2030, 5, 1)]
# 1.5% of the amount for each whole week late after 3 days' grace, at most 10%.
LATE_FEE = {"type": "percent", "rate_bps": 150, "period_days": 7, "grace_days": 3, "cap_bps": 1000}
BILLING = "billing@acme.example"


def _contract(world: World) -> tuple[User, User, Project, list[str]]:
    client, freelancer = world.user("client"), world.user("freelancer")
    world.deposit(client, 1_000_000)
    project = world.project(client, freelancer, billing_contact_email=BILLING)
    ids = [
        world.milestone(
            client,
            project,
            200_000,
            title=f"Part {number}",
            fund_by=fund_by.isoformat(),
            late_fee=LATE_FEE,
            now=at(date(2029, 12, 1)),
        ).id
        for number, fund_by in enumerate(FUND_BY, start=1)
    ]
    return client, freelancer, project, ids


def test_a_missed_payment_gets_three_reminders_an_escalation_and_the_late_fee_once_each(
    world: World,
) -> None:
    # E-mails are queued only when SMTP is configured (the tick in these tests sends none).
    world.settings = Settings(fee_bps=1000, providers="sandbox,manual", smtp_host="mail.invalid")
    client, freelancer, _project, ids = _contract(world)
    first, second, third, fourth, fifth = ids
    # Milestones 1 and 2 are funded in time; milestone 3 is not.
    world.act(client, milestones.fund, first, now=at(date(2029, 12, 30)))
    world.act(client, milestones.fund, second, now=at(date(2030, 1, 31)))

    due_day = FUND_BY[2]
    expected_late_fee = {0: 0, 3: 0, 7: 0, 10: 3_000}  # by hand: 10 - 3 grace = 7 days = 1 week
    expected = {
        0: [("funding_reminder", third)],
        3: [("funding_reminder", third)],
        7: [("funding_reminder", third)],
        10: [("late_fee_accrued", third), ("funding_escalated", third)],
    }
    for day, actions in expected.items():
        now = at(due_day + timedelta(days=day))
        assert happened(tick(world, now)) == actions, f"day {day}"
        assert happened(tick(world, now)) == [], f"day {day}, again"
        assert happened(tick(world, now + timedelta(hours=5))) == [], f"later on day {day}"
        assert world.get(third).late_fee_amount == expected_late_fee[day]

    # Exactly these events, by the system, with these amounts and details.
    after_created = [summary(event) for event in events(world, third)][1:]
    reminder = {"fund_by": "2030-03-01", "amount_due": 200_000}
    assert after_created == [
        ("funding_reminder", None, "system", None, {**reminder, "days_overdue": 0, "step": 0}),
        ("funding_reminder", None, "system", None, {**reminder, "days_overdue": 3, "step": 3}),
        ("funding_reminder", None, "system", None, {**reminder, "days_overdue": 7, "step": 7}),
        ("late_fee_accrued", None, "system", 3_000, {"late_fee_amount": 3_000, "fund_by": "2030-03-01"}),
        (
            "funding_escalated",
            None,
            "system",
            None,
            {
                "fund_by": "2030-03-01",
                "amount_due": 203_000,
                "days_overdue": 10,
                "step": 10,
                "billing_contact_email": BILLING,
            },
        ),
    ]  # fmt: skip
    # Nothing happened to the others: funded in time, or not due yet.
    for other in (first, second, fourth, fifth):
        assert [event.action for event in events(world, other)] == (
            ["created", "funded"] if other in (first, second) else ["created"]
        )

    # The late fee grows a week later (2 weeks: 3%), with no further reminder.
    week_later = at(due_day + timedelta(days=17))
    assert happened(tick(world, week_later)) == [("late_fee_accrued", third)]
    assert world.get(third).late_fee_amount == 6_000
    assert happened(tick(world, week_later)) == []

    # Funding now takes the amount and the late fee shown; then nothing more is due for it.
    world.act(client, milestones.fund, third, now=week_later + timedelta(hours=1))
    funded = world.get(third)
    assert (funded.status, funded.funded_amount, funded.late_fee_amount) == (
        MilestoneStatus.FUNDED,
        206_000,
        6_000,
    )
    assert world.balance(client) == 1_000_000 - 3 * 200_000 - 6_000
    _assert_notified(world, client, freelancer, third)
    later = happened(tick(world, at(due_day + timedelta(days=60))))
    assert later and all(mid == fourth for _action, mid in later)  # milestone 4 is overdue by now


def _assert_notified(world: World, client: User, freelancer: User, milestone_id: str) -> None:
    with world.db.read_only() as session:
        told = session.execute(
            select(Notification.user_id, Notification.kind)
            .where(Notification.milestone_id == milestone_id)
            .order_by(Notification.created_at, Notification.id)
        ).all()
        billing_mail = list(
            session.scalars(
                select(OutgoingEmail.subject).where(OutgoingEmail.to_address == BILLING)
            )
        )
    client_kinds = [kind for user_id, kind in told if user_id == client.id]
    assert [kind for kind in client_kinds if kind != "late_fee_accrued"] == [
        "funding_reminder",
        "funding_reminder",
        "funding_reminder",
        "funding_escalated",
    ]
    assert client_kinds.count("late_fee_accrued") == 2
    freelancer_kinds = [kind for user_id, kind in told if user_id == freelancer.id]
    assert "funding_escalated" in freelancer_kinds
    assert "funding_reminder" not in freelancer_kinds
    assert len(billing_mail) == 1  # the escalation, once


def test_a_tick_that_missed_steps_takes_only_the_latest_one(world: World) -> None:
    client, _freelancer, _project, ids = _contract(world)
    third = ids[2]
    for mid in ids[:2]:
        world.act(client, milestones.fund, mid, now=at(date(2029, 12, 30)))

    # The worker was down until day 8: only the day-7 reminder, not three at once.
    assert happened(tick(world, at(FUND_BY[2] + timedelta(days=8)))) == [
        ("funding_reminder", third)
    ]
    assert events(world, third)[-1].data["step"] == 7
    # Down again until day 12: the escalation only (with the late fee accrued meanwhile).
    assert happened(tick(world, at(FUND_BY[2] + timedelta(days=12)))) == [
        ("late_fee_accrued", third),
        ("funding_escalated", third),
    ]


def test_moving_the_fund_by_date_starts_the_reminders_afresh(world: World) -> None:
    client, _freelancer, project = world.parties()
    mid = world.milestone(
        client, project, 100_000, fund_by="2030-03-01", now=at(date(2030, 1, 1))
    ).id
    assert happened(tick(world, at(date(2030, 3, 1)))) == [("funding_reminder", mid)]
    world.act(client, milestones.update_terms, mid, fund_by="2030-04-01", now=at(date(2030, 3, 2)))
    assert happened(tick(world, at(date(2030, 3, 5)))) == []
    assert happened(tick(world, at(date(2030, 4, 1)))) == [("funding_reminder", mid)]


def test_editing_late_fee_terms_of_an_overdue_draft_shows_the_fee_they_accrue(world: World) -> None:
    client, _freelancer, project = world.parties()
    mid = world.milestone(
        client, project, 100_000, fund_by="2030-03-01", now=at(date(2030, 1, 1))
    ).id
    flat = {"type": "flat", "amount": 5_000, "grace_days": 2}
    world.act(client, milestones.update_terms, mid, late_fee=flat, now=at(date(2030, 3, 10)))
    assert world.get(mid).late_fee_amount == 5_000
    assert events(world, mid)[-1].data["changed"]["late_fee_amount"] == 5_000
    world.act(client, milestones.update_terms, mid, late_fee=None, now=at(date(2030, 3, 11)))
    assert world.get(mid).late_fee_amount == 0


# Pause -----------------------------------------------------------------------------------------------


def test_the_freelancer_may_pause_only_while_a_payment_is_overdue_and_resume(world: World) -> None:
    client, freelancer, project = world.parties()
    mid = world.milestone(
        client, project, 100_000, fund_by="2030-03-01", now=at(date(2030, 1, 1))
    ).id
    before_due = at(date(2030, 2, 28))

    with pytest.raises(InvalidState) as early:
        world.act(freelancer, projects.pause_project, project.id, now=before_due)
    assert early.value.code == "nothing_overdue"
    with pytest.raises(PermissionDenied) as by_client:
        world.act(client, projects.pause_project, project.id, now=at(date(2030, 3, 2)))
    assert by_client.value.code == "only_freelancer_can_pause"

    paused = world.act(freelancer, projects.pause_project, project.id, now=at(date(2030, 3, 2)))
    assert (paused.paused, paused.paused_at) == (True, at(date(2030, 3, 2)))
    seen = world.act(client, projects.get_project, project.id)
    assert seen.paused is True
    with pytest.raises(InvalidState) as twice:
        world.act(freelancer, projects.pause_project, project.id, now=at(date(2030, 3, 3)))
    assert twice.value.code == "already_paused"

    with pytest.raises(PermissionDenied) as resume_by_client:
        world.act(client, projects.resume_project, project.id)
    assert resume_by_client.value.code == "only_freelancer_can_resume"
    world.act(client, milestones.fund, mid, now=at(date(2030, 3, 3)))
    resumed = world.act(freelancer, projects.resume_project, project.id, now=at(date(2030, 3, 3)))
    assert (resumed.paused, resumed.paused_at) == (False, None)
    with pytest.raises(InvalidState) as not_paused:
        world.act(freelancer, projects.resume_project, project.id)
    assert not_paused.value.code == "not_paused"

    with world.db.read_only() as session:
        kinds = list(
            session.scalars(
                select(Notification.kind)
                .where(Notification.user_id == client.id, Notification.project_id == project.id)
                .order_by(Notification.created_at, Notification.id)
            )
        )
    assert [k for k in kinds if k.startswith("project_")] == ["project_paused", "project_resumed"]
