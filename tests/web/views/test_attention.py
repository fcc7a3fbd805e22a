"""What needs the person first: each thing that waits for them, on the side they are on, overdue first,
and nothing that waits for someone else."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from milepost.disputes import service as disputes
from milepost.kit.context import Context
from milepost.milestones import service as milestones
from milepost.users.models import User
from milepost.wallets import service as wallets
from milepost.web.views.attention import Item, needs_you
from milepost.web.views.dashboard import Tab, default_tab
from tests.world import World


def _needs(world: World, user: User) -> list[Item]:
    with world.db.read_only() as session:
        ctx = Context(session, session.get(User, user.id), settings=world.settings)
        return needs_you(ctx)


def _tab(world: World, user: User) -> Tab:
    with world.db.read_only() as session:
        ctx = Context(session, session.get(User, user.id), settings=world.settings)
        return default_tab(ctx, user.id, needs_you(ctx))


def _said(items: list[Item]) -> list[tuple[str, str, bool]]:
    return [(item.side, item.what, item.overdue) for item in items]


def test_each_side_sees_what_waits_for_it_and_the_overdue_first(world: World) -> None:
    client, freelancer, project = world.parties()
    today = datetime.now(UTC).date()
    world.milestone(client, project, 30_000, title="Later", fund_by=today + timedelta(days=20))
    world.milestone(client, project, 30_000, title="Soon", fund_by=today + timedelta(days=3))
    world.milestone(client, project, 20_000, title="Late", fund_by=today - timedelta(days=2))
    delivered = world.milestone(client, project, 100_000, title="Delivered")
    world.act(client, milestones.fund, delivered.id)
    world.act(freelancer, milestones.submit, delivered.id, note="Done", evidence=[])
    world.act(freelancer, milestones.request_release, delivered.id)
    redo = world.milestone(client, project, 50_000, title="Redo", due_date=today + timedelta(9))
    world.act(client, milestones.fund, redo.id)
    world.act(freelancer, milestones.submit, redo.id, note="Done", evidence=[])
    world.act(client, milestones.request_changes, redo.id, reason="The logo is blurry")
    ending = world.milestone(client, project, 40_000, title="Ending")
    world.act(client, milestones.fund, ending.id)
    world.act(client, milestones.request_cancellation, ending.id, reason="Plans changed")

    assert _said(_needs(world, client)) == [
        ("client", "Fund “Late”", True),
        ("client", "Fund “Soon”", False),
        ("client", "Review the delivery of “Delivered”", False),
    ]
    review = _needs(world, client)[2]
    assert review.detail.startswith("Website: $1,000.00 in escrow; ")
    assert review.detail.endswith("The freelancer asks you to release it.")
    assert _tab(world, client) is Tab.OUTGOING

    assert _said(_needs(world, freelancer)) == [
        ("freelancer", "The client asked for changes to “Redo”", False),
        ("freelancer", "The client asks to cancel “Ending”", False),
    ]
    assert _tab(world, freelancer) is Tab.INCOMING

    # Once dealt with, an item is gone.
    world.act(client, milestones.approve, delivered.id)
    world.act(freelancer, milestones.answer_cancellation, ending.id, accept=False)
    assert "Review the delivery of “Delivered”" not in [i.what for i in _needs(world, client)]
    assert [i.what for i in _needs(world, freelancer)] == ["The client asked for changes to “Redo”"]
    assert world.verify().ok


def test_a_dispute_waits_for_the_other_party_and_then_for_their_answer_to_an_offer(
    world: World,
) -> None:
    client, freelancer, milestone = world.submitted(100_000)
    dispute = world.act(client, disputes.open_dispute, milestone.id, reason="Half is missing")
    assert _said(_needs(world, freelancer)) == [
        ("freelancer", "Answer the dispute on “Milestone”", False)
    ]
    assert _needs(world, client) == []  # waiting for the freelancer, not for the client

    world.act(freelancer, disputes.make_offer, dispute.id, to_freelancer=70_000)
    assert _needs(world, freelancer) == []
    [offer] = _needs(world, client)
    assert offer.what == "Answer the settlement offer on “Milestone”"
    assert "the freelancer offers $700.00 to the freelancer and $300.00 back to the client" in (
        offer.detail
    )


def test_staff_see_disputes_past_mediation_and_transfers_to_handle(world: World) -> None:
    staff = world.user("staffer", staff=True)
    assert _needs(world, staff) == []
    client, _, milestone = world.submitted(100_000)
    long_ago = datetime.now(UTC) - timedelta(days=30)
    world.act(client, disputes.open_dispute, milestone.id, reason="Late", now=long_ago)
    world.act(client, wallets.create_deposit, amount=5_000, currency="USD", provider="manual")
    assert _said(_needs(world, staff)) == [
        ("staff", "1 dispute waits for a staff decision", True),
        ("staff", "1 bank transfer to confirm or send", False),
    ]
    # Only staff: the client sees none of it.
    assert all(item.side != "staff" for item in _needs(world, client))
