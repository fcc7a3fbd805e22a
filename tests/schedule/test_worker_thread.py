"""The scheduler thread of ``serve`` does the due work on its own, and its events reach webhooks."""

from __future__ import annotations

import time
from datetime import date, timedelta

from sqlalchemy import select

from milepost.kit.time import utcnow
from milepost.milestones import service as milestones
from milepost.milestones.state import MilestoneStatus
from milepost.schedule.service import run_due
from milepost.schedule.worker import Scheduler
from milepost.settings import Settings
from milepost.webhooks import service as webhooks
from milepost.webhooks.events import EVENT_TYPES
from milepost.webhooks.models import WebhookDelivery
from tests.schedule.helpers import at
from tests.world import World


def test_the_server_scheduler_releases_a_lapsed_review_by_itself(world: World) -> None:
    client, freelancer, project = world.parties()
    mid = world.milestone(client, project, 100_000).id
    world.act(client, milestones.fund, mid)
    world.act(freelancer, milestones.submit, mid, note="Done", now=utcnow() - timedelta(days=15))

    scheduler = Scheduler(
        world.db, Settings(fee_bps=1000, providers="sandbox,manual", schedule_interval_seconds=0.1)
    )
    scheduler.start()
    try:
        deadline = time.monotonic() + 20
        while world.get(mid).status is not MilestoneStatus.RELEASED:
            assert time.monotonic() < deadline, "the scheduler did not release the milestone"
            time.sleep(0.05)
    finally:
        scheduler.stop()
    assert world.balance(freelancer) == 90_000


def test_time_driven_events_are_webhook_event_types_and_are_queued(world: World) -> None:
    for action in (
        "funding_reminder",
        "funding_escalated",
        "late_fee_accrued",
        "review_reminder",
        "auto_approved",
        "dispute_overdue",
    ):
        assert f"milestone.{action}" in EVENT_TYPES
    client, _freelancer, project = world.parties()
    world.act(
        client,
        webhooks.create_endpoint,
        url="https://hooks.example.com/milepost",
        events=["milestone.funding_reminder"],
    )
    mid = world.milestone(client, project, 100_000, fund_by="2030-03-01", now=at(date(2030, 1, 1)))
    tick_at = at(date(2030, 3, 1))
    # Not sent here (the receiver does not exist): queued in the outbox with the event.
    run_due(world.db, world.settings, tick_at, deliver_emails=False, deliver_webhooks=False)
    with world.db.read_only() as session:
        queued = session.scalars(select(WebhookDelivery)).all()
    assert [(d.event_type, d.payload["data"]["milestone"]["id"]) for d in queued] == [
        ("milestone.funding_reminder", mid.id)
    ]
    assert queued[0].payload["data"]["actor"] == {"id": None, "role": "system"}
    assert queued[0].payload["data"]["details"]["days_overdue"] == 0
    again = run_due(world.db, world.settings, tick_at, deliver_emails=False, deliver_webhooks=False)
    assert again.done == []
