"""``preview_due`` (``milepost tick --dry-run``): what is due at a moment, every kind of it, from the same
code as the real run, and nothing of it kept: no row, no audit event, no queued e-mail or webhook."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select

import milepost.models  # noqa: F401 (every table on the metadata)
from milepost.disputes import service as disputes
from milepost.kit.db import Base
from milepost.kit.time import utcnow
from milepost.milestones import service as milestones
from milepost.notifications.models import OutgoingEmail
from milepost.schedule.service import ahead_of_clock, preview_due, run_due
from milepost.settings import Settings
from milepost.webhooks import service as webhooks
from milepost.webhooks.models import WebhookDelivery
from tests.world import World

DAY = timedelta(days=1)
LATE_FEE = {"type": "percent", "rate_bps": 150, "period_days": 7, "grace_days": 3, "cap_bps": 1000}


def every_row(world: World) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table, to compare a database before and after."""
    with world.db.read_only() as session:
        return {
            table.name: sorted(
                (tuple(row) for row in session.execute(select(table)).all()), key=repr
            )
            for table in Base.metadata.sorted_tables
        }


def _count(world: World, model: Any) -> int:
    with world.db.read_only() as session:
        return int(session.scalar(select(func.count()).select_from(model)) or 0)


def _every_kind_due(world: World, anchor: datetime) -> dict[str, str]:
    """Milestones with each kind of time-driven work due 20 days after ``anchor``."""
    client, freelancer = world.user("client"), world.user("freelancer")
    world.deposit(client, 5_000_000)
    world.deposit(client, 5_000_000, "JPY")
    usd = world.project(client, freelancer, billing_contact_email="billing@acme.example")
    jpy = world.project(client, freelancer, "JPY")
    world.act(client, webhooks.create_endpoint, url="https://hooks.example.com/milepost")

    def submitted(project: Any, amount: int, **terms: Any) -> str:
        milestone = world.milestone(client, project, amount, now=anchor, **terms)
        world.act(client, milestones.fund, milestone.id, now=anchor)
        world.act(freelancer, milestones.submit, milestone.id, note="Done", now=anchor)
        return milestone.id

    ids = {
        # 15 days past its fund-by date: a late fee and the escalation to the billing contact.
        "unfunded": world.milestone(
            client,
            usd,
            200_000,
            fund_by=(anchor + 5 * DAY).date().isoformat(),
            late_fee=LATE_FEE,
            now=anchor,
        ).id,
        # The review period (14 days) has ended: approved and released by the system.
        "silent": submitted(jpy, 150_000),
        # Two days left of a 22-day review period: a reminder.
        "reviewing": submitted(usd, 30_000, review_period_days=22),
        # Approved with a 3-day release delay: released.
        "delayed": submitted(usd, 40_000, release_delay_days=3),
        # A dispute nobody answered: resolved for the opener.
        "unanswered": submitted(usd, 50_000),
        # An answered dispute past the mediation window: flagged for staff.
        "mediation": submitted(usd, 60_000),
    }
    world.act(client, milestones.approve, ids["delayed"], now=anchor)
    world.act(freelancer, disputes.open_dispute, ids["unanswered"], reason="Unpaid", now=anchor)
    dispute = world.act(
        client, disputes.open_dispute, ids["mediation"], reason="Broken", now=anchor
    )
    world.act(freelancer, disputes.make_offer, dispute.id, to_freelancer=30_000, now=anchor)
    return ids


def test_a_dry_run_shows_every_kind_of_due_work_exactly_as_the_real_run_does_it_and_keeps_none(
    world: World,
) -> None:
    # With SMTP configured the work queues e-mail; a webhook endpoint makes it queue deliveries.
    world.settings = Settings(fee_bps=1000, providers="sandbox,manual", smtp_host="mail.invalid")
    anchor = utcnow()
    ids = _every_kind_due(world, anchor)
    moment = anchor + 20 * DAY
    assert ahead_of_clock(moment) is not None  # the future: what --dry-run is for
    before = every_row(world)

    preview = preview_due(world.db, world.settings, moment)

    assert every_row(world) == before  # no row of any table: events, entries, outboxes, steps
    assert preview.failed == []
    due = [(happening.action, happening.milestone_id) for happening in preview.done]
    assert sorted(due) == sorted(
        [
            ("late_fee_accrued", ids["unfunded"]),
            ("funding_escalated", ids["unfunded"]),
            ("auto_approved", ids["silent"]),
            ("released", ids["silent"]),
            ("review_reminder", ids["reviewing"]),
            ("released", ids["delayed"]),
            ("dispute_resolved", ids["unanswered"]),
            ("dispute_overdue", ids["mediation"]),
        ]
    )
    lines = preview.lines()
    assert lines[0].startswith(f"{moment.isoformat()}: dry run, nothing changed: due ")
    # The messages already queued (by the setup) that a real run would send now; none is sent.
    assert lines[0].endswith(f", {preview.webhooks_due} queued webhooks to send")
    assert preview.webhooks_due == _count(world, WebhookDelivery) > 0
    assert preview.emails_due == _count(world, OutgoingEmail) > 0
    assert (preview.emails_sent, preview.webhooks_sent) == (0, 0)
    assert f"  {ids['silent']}  auto_approved: ¥150,000 approved, review period ended" in (
        "\n".join(lines)
    )
    assert f"  {ids['silent']}  released: ¥150,000 released (fee ¥15,000)" in lines
    # A second look finds the same: nothing was taken.
    again = preview_due(world.db, world.settings, moment)
    assert again.done == preview.done
    assert every_row(world) == before

    # The real run at that moment does exactly what the dry run listed, and queues the messages the
    # dry run did not keep.
    real = run_due(world.db, world.settings, moment, deliver_emails=False, deliver_webhooks=False)
    assert real.done == preview.done
    assert real.lines()[1:] == lines[1:]
    assert _count(world, OutgoingEmail) > preview.emails_due
    assert _count(world, WebhookDelivery) > preview.webhooks_due
    assert preview_due(world.db, world.settings, moment).done == []
    report = world.verify()
    assert report.ok, report.problems


def test_a_dry_run_of_now_or_the_past_changes_nothing_either(world: World) -> None:
    _client, _freelancer, submitted = world.submitted(100_000)
    assert submitted.review_due_at is not None
    before = every_row(world)
    for moment in (utcnow(), utcnow() - 30 * DAY):
        report = preview_due(world.db, world.settings, moment)
        assert report.done == [] and report.failed == []
        assert report.lines() == [
            f"{report.now.isoformat()}: dry run, nothing changed: nothing due"
        ]
    assert every_row(world) == before


def test_the_clock_tolerance() -> None:
    clock = utcnow()
    assert ahead_of_clock(clock, clock) is None
    assert ahead_of_clock(clock - 365 * DAY, clock) is None
    assert ahead_of_clock(clock + timedelta(seconds=60), clock) is None
    assert ahead_of_clock(clock + timedelta(seconds=61), clock) == timedelta(seconds=61)
