"""Dispute deadlines: no answer in the response window resolves for the opener; past the mediation window
the dispute is flagged overdue for staff, once."""

from __future__ import annotations

from datetime import timedelta

from milepost.disputes import service as disputes
from milepost.disputes.models import DisputeStatus, Resolution
from milepost.kit.time import utcnow
from milepost.milestones.state import MilestoneStatus
from tests.schedule.helpers import events, happened, summary, tick
from tests.world import World

SECOND = timedelta(seconds=1)
DAY = timedelta(days=1)


def test_a_dispute_nobody_answers_resolves_for_the_opener_after_the_response_window(
    world: World,
) -> None:
    client, freelancer, submitted = world.submitted(100_000)
    mid = submitted.id
    opened_at = utcnow()
    dispute = world.act(
        freelancer, disputes.open_dispute, mid, reason="No answer for weeks", now=opened_at
    )

    assert happened(tick(world, opened_at + 7 * DAY - SECOND)) == []
    assert world.get(mid).status is MilestoneStatus.DISPUTED

    assert happened(tick(world, opened_at + 7 * DAY)) == [("dispute_resolved", mid)]
    assert happened(tick(world, opened_at + 7 * DAY)) == []
    assert happened(tick(world, opened_at + 30 * DAY)) == []

    resolved = world.act(client, disputes.get_dispute, dispute.id)
    assert (resolved.status, resolved.resolution, resolved.to_freelancer, resolved.to_client) == (
        DisputeStatus.RESOLVED,
        Resolution.NO_RESPONSE,
        100_000,
        0,
    )
    assert resolved.resolution_note is not None and "did not answer" in resolved.resolution_note
    assert resolved.overdue_at is None
    assert world.get(mid).status is MilestoneStatus.RESOLVED
    assert world.balance(freelancer) == 90_000
    action, actor_id, role, amount, data = summary(events(world, mid)[-1])
    assert (action, actor_id, role, amount) == ("dispute_resolved", None, "system", 100_000)
    assert data["resolution"] == "no_response"
    assert "client did not answer" in data["reason"]


def test_an_answered_dispute_goes_to_the_staff_queue_once_past_the_mediation_window(
    world: World,
) -> None:
    client, freelancer, submitted = world.submitted(100_000)
    mid = submitted.id
    opened_at = utcnow()
    dispute = world.act(client, disputes.open_dispute, mid, reason="Broken", now=opened_at)
    world.act(freelancer, disputes.make_offer, dispute.id, to_freelancer=50_000)

    assert happened(tick(world, opened_at + 8 * DAY)) == []  # answered: no resolution
    assert happened(tick(world, opened_at + 14 * DAY - SECOND)) == []
    assert happened(tick(world, opened_at + 14 * DAY)) == [("dispute_overdue", mid)]
    assert happened(tick(world, opened_at + 14 * DAY)) == []
    assert happened(tick(world, opened_at + 40 * DAY)) == []

    flagged = world.act(client, disputes.get_dispute, dispute.id)
    assert (flagged.status, flagged.overdue_at) == (DisputeStatus.OPEN, opened_at + 14 * DAY)
    assert summary(events(world, mid)[-1]) == (
        "dispute_overdue",
        None,
        "system",
        None,
        {
            "dispute_id": dispute.id,
            "mediation_due_at": (opened_at + 14 * DAY).isoformat(),
        },
    )
    assert world.get(mid).status is MilestoneStatus.DISPUTED
    assert world.balance(freelancer) == 0
