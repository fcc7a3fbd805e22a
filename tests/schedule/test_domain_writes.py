"""The scheduler's writes belong to their domains: ``milestones.accrue_late_fee`` and
``disputes.flag_overdue`` are the clock's alone, and refuse what is not due."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from milepost.disputes import service as disputes
from milepost.kit.errors import InvalidState, PermissionDenied
from milepost.milestones import service as milestones
from tests.schedule.helpers import at, events, summary
from tests.world import World

FLAT = {"type": "flat", "amount": 5_000, "grace_days": 2}


def test_a_late_fee_accrues_by_the_clock_once_and_only_on_a_draft(world: World) -> None:
    client, freelancer, project = world.parties()
    draft = world.milestone(
        client, project, 100_000, fund_by="2030-01-01", late_fee=FLAT, now=at(date(2029, 12, 1))
    )
    before = world.snapshot()
    for person in (client, freelancer, world.user("staff", staff=True)):
        with pytest.raises(PermissionDenied) as refused:
            world.act(person, milestones.accrue_late_fee, draft.id, now=at(date(2030, 1, 10)))
        assert (refused.value.status, refused.value.code) == (403, "system_only")
    # Within the grace days nothing has accrued: nothing is written.
    assert world.act(None, milestones.accrue_late_fee, draft.id, now=at(date(2030, 1, 3))) == 0
    assert world.snapshot() == before

    late = at(date(2030, 1, 4))
    assert world.act(None, milestones.accrue_late_fee, draft.id, now=late) == 5_000
    assert world.act(None, milestones.accrue_late_fee, draft.id, now=late + timedelta(days=9)) == 0
    assert world.get(draft.id).late_fee_amount == 5_000
    assert summary(events(world, draft.id)[-1]) == (
        "late_fee_accrued",
        None,
        "system",
        5_000,
        {"late_fee_amount": 5_000, "fund_by": "2030-01-01"},
    )

    world.act(client, milestones.fund, draft.id, now=late)
    with pytest.raises(InvalidState):
        world.act(None, milestones.accrue_late_fee, draft.id, now=late)


def test_a_dispute_is_flagged_overdue_by_the_clock_once_after_the_mediation_window(
    world: World,
) -> None:
    client, freelancer, milestone = world.funded()
    opened = at(date(2030, 1, 1))
    dispute = world.act(client, disputes.open_dispute, milestone.id, reason="Late", now=opened)
    world.act(freelancer, disputes.make_offer, dispute.id, to_freelancer=1, now=opened)
    due = dispute.mediation_due_at
    before = world.snapshot()
    with pytest.raises(PermissionDenied) as refused:
        world.act(world.user("staff", staff=True), disputes.flag_overdue, dispute.id, now=due)
    assert refused.value.code == "system_only"
    with pytest.raises(InvalidState) as early:
        world.act(None, disputes.flag_overdue, dispute.id, now=due - timedelta(seconds=1))
    assert early.value.code == "not_due"
    assert world.snapshot() == before

    flagged = world.act(None, disputes.flag_overdue, dispute.id, now=due)
    assert flagged.overdue_at == due
    assert summary(events(world, milestone.id)[-1]) == (
        "dispute_overdue",
        None,
        "system",
        None,
        {"dispute_id": dispute.id, "mediation_due_at": due.isoformat()},
    )
    with pytest.raises(InvalidState):
        world.act(None, disputes.flag_overdue, dispute.id, now=due + timedelta(days=1))
