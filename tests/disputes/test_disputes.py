"""Disputes: opening, freezing, withdrawing, settlement offers, staff splits and the response deadline."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from milepost.disputes import service as disputes
from milepost.disputes.models import Dispute, DisputeStatus, OfferStatus, Resolution
from milepost.kit.errors import InvalidState, NotFound, PermissionDenied, ValidationFailed
from milepost.kit.time import utcnow
from milepost.milestones import service as milestones
from milepost.milestones.state import MilestoneStatus as S
from milepost.projects.models import Project
from milepost.users.models import User
from tests.world import World

FEE = "platform_fee:USD"


def drive(
    world: World,
    client: User,
    freelancer: User,
    project: Project,
    status: S,
    amount: int = 100_000,
) -> str:
    """A new milestone on ``project`` brought to ``status`` the way the parties would; its id."""
    terms = {"release_delay_days": 3} if status is S.APPROVED else {}
    milestone_id = world.milestone(client, project, amount, **terms).id
    if status is S.DRAFT:
        return milestone_id
    world.act(client, milestones.fund, milestone_id)
    if status is S.CANCELLED:
        world.act(freelancer, milestones.cancel, milestone_id, reason="Cannot do it")
    if status in (S.FUNDED, S.CANCELLED):
        return milestone_id
    world.act(freelancer, milestones.submit, milestone_id, note="Done")
    if status is S.CHANGES_REQUESTED:
        world.act(client, milestones.request_changes, milestone_id, reason="Not yet")
    elif status in (S.APPROVED, S.RELEASED):
        world.act(client, milestones.approve, milestone_id)
    return milestone_id


def open_dispute(world: World, user: User, milestone_id: str, **kwargs: Any) -> Dispute:
    return world.act(user, disputes.open_dispute, milestone_id, reason="Not as agreed", **kwargs)


def dispute(world: World, user: User, dispute_id: str) -> Dispute:
    return world.act(user, disputes.get_dispute, dispute_id)


def money(world: World, client: User, freelancer: User, milestone_id: str) -> tuple[int, ...]:
    """(client available, freelancer available, the milestone's escrow, platform fee revenue)."""
    return (
        world.balance(client),
        world.balance(freelancer),
        world.account_balance(f"escrow:{milestone_id}:USD"),
        world.account_balance(FEE),
    )


# Opening -----------------------------------------------------------------------------------------------


def test_either_party_can_open_from_every_state_that_holds_money(world: World) -> None:
    client, freelancer, project = world.parties()
    for status in (S.FUNDED, S.SUBMITTED, S.CHANGES_REQUESTED, S.APPROVED):
        for opener, role in ((client, "client"), (freelancer, "freelancer")):
            milestone_id = drive(world, client, freelancer, project, status)
            assert world.get(milestone_id).status is status
            held = money(world, client, freelancer, milestone_id)
            now = utcnow()

            opened = dispute(world, opener, open_dispute(world, opener, milestone_id, now=now).id)

            assert world.get(milestone_id).status is S.DISPUTED
            assert (opened.status, opened.status_before) == (DisputeStatus.OPEN, status)
            assert (opened.opened_by, opened.opener_role) == (opener.id, role)
            assert opened.respond_by == now + timedelta(days=7)
            # Opening freezes the money where it is: nothing moves.
            assert money(world, client, freelancer, milestone_id) == held
            assert held[2] == 100_000


def test_no_dispute_from_draft_released_cancelled_disputed_or_resolved(world: World) -> None:
    client, freelancer, project = world.parties()
    targets = {
        status: drive(world, client, freelancer, project, status)
        for status in (S.DRAFT, S.RELEASED, S.CANCELLED)
    }
    targets[S.DISPUTED] = drive(world, client, freelancer, project, S.FUNDED)
    open_dispute(world, client, targets[S.DISPUTED])
    targets[S.RESOLVED] = drive(world, client, freelancer, project, S.FUNDED)
    settled = open_dispute(world, freelancer, targets[S.RESOLVED])
    offer = world.act(client, disputes.make_offer, settled.id, to_freelancer=50_000)
    world.act(freelancer, disputes.accept_offer, settled.id, offer.id)

    for status, milestone_id in targets.items():
        assert world.get(milestone_id).status is status
        before = world.snapshot()
        for opener in (client, freelancer):
            with pytest.raises(InvalidState) as refused:
                open_dispute(world, opener, milestone_id)
            assert refused.value.status == 409, status
            assert world.snapshot() == before, status


def test_a_disputed_milestone_is_frozen(world: World) -> None:
    client, freelancer, project = world.parties()
    staff = world.user("staff", staff=True)
    submitted = drive(world, client, freelancer, project, S.SUBMITTED)
    changes = drive(world, client, freelancer, project, S.CHANGES_REQUESTED)
    approved = drive(world, client, freelancer, project, S.APPROVED)
    for milestone_id in (submitted, changes, approved):
        open_dispute(world, client, milestone_id)
    before = world.snapshot()

    refusals: list[tuple[User, Any, str, dict[str, Any]]] = [
        (client, milestones.release, submitted, {}),
        (client, milestones.release, submitted, {"amount": 1}),
        (client, milestones.approve, submitted, {}),
        (client, milestones.request_changes, submitted, {"reason": "More"}),
        (client, milestones.request_cancellation, submitted, {"reason": "Stop"}),
        (freelancer, milestones.cancel, submitted, {}),
        (staff, milestones.cancel, submitted, {}),
        (freelancer, milestones.submit, changes, {"note": "Again"}),
        (client, milestones.release, approved, {}),
    ]
    for actor, action, milestone_id, kwargs in refusals:
        with pytest.raises(InvalidState):
            world.act(actor, action, milestone_id, **kwargs)
        assert world.snapshot() == before, action.__name__
    # Nor does the release delay of an approved milestone mature while it is disputed.
    with pytest.raises(InvalidState):
        world.act(None, milestones.release_matured, approved, now=utcnow() + timedelta(days=30))
    assert world.snapshot() == before


# Withdrawing -------------------------------------------------------------------------------------------


def test_a_withdrawn_dispute_gives_the_review_period_back_the_time_it_was_open(
    world: World,
) -> None:
    client, _freelancer, milestone = world.submitted()
    due = milestone.review_due_at
    assert due is not None
    # Opened with two days of review left; withdrawn twenty days later.
    opened_at = due - timedelta(days=2)
    opened = world.act(
        client, disputes.open_dispute, milestone.id, reason="Not as agreed", now=opened_at
    )
    world.act(client, disputes.withdraw, opened.id, now=opened_at + timedelta(days=20))

    after = world.get(milestone.id)
    assert after.status is S.SUBMITTED
    assert after.review_due_at == due + timedelta(days=20)  # still two days left to review


def test_only_the_opener_withdraws_once_and_the_milestone_carries_on(world: World) -> None:
    client, freelancer, project = world.parties()
    cases = [
        (S.FUNDED, freelancer),
        (S.SUBMITTED, client),
        (S.CHANGES_REQUESTED, freelancer),
        (S.APPROVED, client),
    ]
    ids = {}
    for status, opener in cases:
        milestone_id = drive(world, client, freelancer, project, status)
        opened = open_dispute(world, opener, milestone_id)
        other = freelancer if opener is client else client
        before = world.snapshot()
        with pytest.raises(PermissionDenied) as refused:
            world.act(other, disputes.withdraw, opened.id)
        assert (refused.value.status, refused.value.code) == (403, "only_opener_can_withdraw")
        assert world.snapshot() == before

        held = money(world, client, freelancer, milestone_id)
        withdrawn = world.act(opener, disputes.withdraw, opened.id)
        assert withdrawn.status is DisputeStatus.WITHDRAWN
        assert world.get(milestone_id).status is status
        assert money(world, client, freelancer, milestone_id) == held
        ids[status] = milestone_id

        after = world.snapshot()
        with pytest.raises(InvalidState):
            world.act(opener, disputes.withdraw, opened.id)
        assert world.snapshot() == after

    # The withdrawn milestone goes on as if nothing happened: approving releases it less the fee.
    earned = world.balance(freelancer)
    world.act(client, milestones.approve, ids[S.SUBMITTED])
    assert world.get(ids[S.SUBMITTED]).status is S.RELEASED
    assert world.balance(freelancer) == earned + 90_000


# Settlement offers -------------------------------------------------------------------------------------


def test_staff_and_outsiders_cannot_open_offer_or_accept(world: World) -> None:
    client, freelancer, project = world.parties()
    staff, outsider = world.user("staff", staff=True), world.user("outsider")
    untouched = drive(world, client, freelancer, project, S.SUBMITTED)
    before = world.snapshot()
    with pytest.raises(PermissionDenied) as refused:
        open_dispute(world, staff, untouched)
    assert (refused.value.status, refused.value.code) == (403, "only_parties_can_dispute")
    # To someone who is not a party the milestone does not exist.
    with pytest.raises(NotFound):
        open_dispute(world, outsider, untouched)
    assert world.snapshot() == before
    assert world.get(untouched).status is S.SUBMITTED

    milestone_id = drive(world, client, freelancer, project, S.FUNDED)
    opened = open_dispute(world, client, milestone_id)
    offer = world.act(client, disputes.make_offer, opened.id, to_freelancer=10_000)
    before = world.snapshot()

    with pytest.raises(PermissionDenied) as refused:
        world.act(staff, disputes.make_offer, opened.id, to_freelancer=10_000)
    assert refused.value.code == "parties_only"
    with pytest.raises(PermissionDenied) as refused:
        world.act(staff, disputes.accept_offer, opened.id, offer.id)
    assert refused.value.code == "only_other_party_can_accept"
    with pytest.raises(NotFound):
        world.act(outsider, disputes.make_offer, opened.id, to_freelancer=10_000)
    with pytest.raises(NotFound):
        world.act(outsider, disputes.accept_offer, opened.id, offer.id)
    with pytest.raises(NotFound):
        world.act(outsider, disputes.get_dispute, opened.id)
    assert world.snapshot() == before


def test_a_newer_offer_supersedes_the_older_and_only_the_other_party_accepts(world: World) -> None:
    client, freelancer, project = world.parties()
    milestone_id = drive(world, client, freelancer, project, S.SUBMITTED)
    opened = open_dispute(world, freelancer, milestone_id)
    first = world.act(client, disputes.make_offer, opened.id, to_freelancer=30_000)
    theirs = world.act(freelancer, disputes.make_offer, opened.id, to_freelancer=90_000)
    second = world.act(client, disputes.make_offer, opened.id, to_freelancer=40_000)

    statuses = {o.id: o.status for o in world.act(freelancer, disputes.list_offers, opened.id)}
    # The client's newer offer replaced the client's older one, not the freelancer's.
    assert statuses == {
        first.id: OfferStatus.SUPERSEDED,
        theirs.id: OfferStatus.OPEN,
        second.id: OfferStatus.OPEN,
    }

    before = world.snapshot()
    with pytest.raises(InvalidState):
        world.act(freelancer, disputes.accept_offer, opened.id, first.id)
    assert world.snapshot() == before
    # Nobody accepts their own offer.
    for actor, offer in ((client, second), (freelancer, theirs)):
        with pytest.raises(PermissionDenied) as refused:
            world.act(actor, disputes.accept_offer, opened.id, offer.id)
        assert (refused.value.status, refused.value.code) == (403, "only_other_party_can_accept")
        assert world.snapshot() == before

    client_before = world.balance(client)
    world.act(freelancer, disputes.accept_offer, opened.id, second.id)
    # 40,000 to the freelancer less 10%; the other 60,000 back to the client.
    assert money(world, client, freelancer, milestone_id) == (
        client_before + 60_000,
        36_000,
        0,
        4_000,
    )


def test_offers_within_the_escrow_and_accepting_one_resolves_with_that_split(world: World) -> None:
    client, freelancer, project = world.parties()
    milestone_id = drive(world, client, freelancer, project, S.SUBMITTED)
    client_before = world.balance(client)
    opened = open_dispute(world, client, milestone_id)
    before = world.snapshot()
    for bad in (100_001, -1, 500.0, "500", True, None):
        with pytest.raises(ValidationFailed) as refused:
            world.act(freelancer, disputes.make_offer, opened.id, to_freelancer=bad)
        assert refused.value.param == "to_freelancer", bad
        assert world.snapshot() == before, bad
    # Anything from nothing to the whole escrow may be offered.
    whole = world.act(freelancer, disputes.make_offer, opened.id, to_freelancer=100_000)
    nothing = world.act(client, disputes.make_offer, opened.id, to_freelancer=0)
    offer = world.act(freelancer, disputes.make_offer, opened.id, to_freelancer=60_000)

    resolved = world.act(client, disputes.accept_offer, opened.id, offer.id)

    assert (resolved.status, resolved.resolution) == (
        DisputeStatus.RESOLVED,
        Resolution.OFFER_ACCEPTED,
    )
    assert (resolved.to_freelancer, resolved.to_client) == (60_000, 40_000)
    done = world.get(milestone_id)
    assert done.status is S.RESOLVED
    assert (done.released_amount, done.refunded_amount, done.fee_amount) == (60_000, 40_000, 6_000)
    assert money(world, client, freelancer, milestone_id) == (
        client_before + 40_000,
        54_000,
        0,
        6_000,
    )
    offers = {
        o.id: (o.to_freelancer, o.status)
        for o in world.act(client, disputes.list_offers, opened.id)
    }
    assert offers == {
        whole.id: (100_000, OfferStatus.SUPERSEDED),
        nothing.id: (0, OfferStatus.CLOSED),  # the dispute ended before it was taken up
        offer.id: (60_000, OfferStatus.ACCEPTED),
    }

    # A resolved dispute is over: no more offers, acceptances or withdrawals.
    before = world.snapshot()
    after_resolution: list[tuple[User, Any, dict[str, Any]]] = [
        (freelancer, disputes.make_offer, {"to_freelancer": 0}),
        (client, disputes.withdraw, {}),
    ]
    for actor, action, args in after_resolution:
        with pytest.raises(InvalidState):
            world.act(actor, action, opened.id, **args)
    with pytest.raises(InvalidState):
        world.act(client, disputes.accept_offer, opened.id, offer.id)
    assert world.snapshot() == before


# Staff resolution --------------------------------------------------------------------------------------


def test_staff_split_must_add_up_to_the_escrow_and_happens_once(world: World) -> None:
    client, freelancer, project = world.parties()
    staff = world.user("staff", staff=True)
    milestone_id = drive(world, client, freelancer, project, S.APPROVED)
    client_before = world.balance(client)
    opened = open_dispute(world, freelancer, milestone_id)
    before = world.snapshot()

    for to_freelancer, to_client in ((70_000, 29_999), (70_000, 30_001), (0, 0)):
        with pytest.raises(ValidationFailed) as refused:
            world.act(
                staff,
                disputes.resolve,
                opened.id,
                to_freelancer=to_freelancer,
                to_client=to_client,
            )
        assert (refused.value.status, refused.value.code) == (422, "split_must_equal_escrow")
        assert world.snapshot() == before
    assert str(refused.value) == "The split adds up to $0.00; the escrow holds $1,000.00."
    for party in (client, freelancer):
        with pytest.raises(PermissionDenied) as denied:
            world.act(party, disputes.resolve, opened.id, to_freelancer=70_000, to_client=30_000)
        assert denied.value.code == "staff_only"
        assert world.snapshot() == before

    resolved = world.act(
        staff, disputes.resolve, opened.id, to_freelancer=70_001, to_client=29_999, note="Split"
    )
    assert (resolved.status, resolved.resolution, resolved.resolved_by) == (
        DisputeStatus.RESOLVED,
        Resolution.STAFF,
        staff.id,
    )
    assert world.get(milestone_id).status is S.RESOLVED
    # 10% of 70,001 is 7,000.1, rounded to 7,000.
    assert money(world, client, freelancer, milestone_id) == (
        client_before + 29_999,
        63_001,
        0,
        7_000,
    )

    after = world.snapshot()
    with pytest.raises(InvalidState):
        world.act(staff, disputes.resolve, opened.id, to_freelancer=0, to_client=0)
    assert world.snapshot() == after

    # A part may be zero: everything to one side.
    for to_freelancer, change in (
        (0, (100_000, 0, -100_000, 0)),
        (100_000, (0, 90_000, -100_000, 10_000)),
    ):
        other_id = drive(world, client, freelancer, project, S.SUBMITTED)
        other = open_dispute(world, client, other_id)
        held = money(world, client, freelancer, other_id)
        world.act(
            staff,
            disputes.resolve,
            other.id,
            to_freelancer=to_freelancer,
            to_client=100_000 - to_freelancer,
        )
        now_held = money(world, client, freelancer, other_id)
        assert tuple(n - h for n, h in zip(now_held, held, strict=True)) == change
        assert world.get(other_id).status is S.RESOLVED


def test_a_dispute_after_a_partial_release_splits_only_the_remainder(world: World) -> None:
    client, freelancer, project = world.parties(wallet=2_000_000)
    staff = world.user("staff", staff=True)
    milestone_id = drive(world, client, freelancer, project, S.SUBMITTED, amount=1_000_000)
    world.act(client, milestones.release, milestone_id, amount=250_005)
    # 10% of 250,005 = 25,000.5, rounded half up.
    assert money(world, client, freelancer, milestone_id) == (1_000_000, 225_004, 749_995, 25_001)

    opened = open_dispute(world, client, milestone_id)
    before = world.snapshot()
    with pytest.raises(ValidationFailed):
        world.act(freelancer, disputes.make_offer, opened.id, to_freelancer=749_996)
    with pytest.raises(ValidationFailed) as refused:
        world.act(staff, disputes.resolve, opened.id, to_freelancer=500_000, to_client=500_000)
    assert refused.value.code == "split_must_equal_escrow"
    assert world.snapshot() == before

    world.act(staff, disputes.resolve, opened.id, to_freelancer=250_005, to_client=499_990)
    # The fee is on everything released from the milestone: 10% of 500,010 = 50,001 in all, so this
    # part carries 25,000 (not the 25,001 it would carry on its own).
    assert money(world, client, freelancer, milestone_id) == (
        1_499_990,
        225_004 + 225_005,
        0,
        50_001,
    )
    done = world.get(milestone_id)
    assert (done.released_amount, done.refunded_amount, done.fee_amount) == (
        500_010,
        499_990,
        50_001,
    )


# The response deadline ---------------------------------------------------------------------------------


def test_unanswered_dispute_opened_by_the_client_refunds_the_client(world: World) -> None:
    client, freelancer, project = world.parties()
    milestone_id = drive(world, client, freelancer, project, S.SUBMITTED)
    client_before = world.balance(client)
    start = utcnow()
    opened = open_dispute(world, client, milestone_id, now=start)
    # The opener's own offer is not an answer.
    world.act(client, disputes.make_offer, opened.id, to_freelancer=50_000)
    deadline = start + timedelta(days=7)

    before = world.snapshot()
    with pytest.raises(InvalidState) as refused:
        world.act(None, disputes.resolve_unanswered, opened.id, now=deadline - timedelta(seconds=1))
    assert refused.value.code == "not_due"
    assert world.snapshot() == before

    resolved = world.act(None, disputes.resolve_unanswered, opened.id, now=deadline)
    assert (resolved.resolution, resolved.to_freelancer, resolved.to_client) == (
        Resolution.NO_RESPONSE,
        0,
        100_000,
    )
    assert world.get(milestone_id).status is S.RESOLVED
    assert money(world, client, freelancer, milestone_id) == (client_before + 100_000, 0, 0, 0)

    after = world.snapshot()
    with pytest.raises(InvalidState):
        world.act(None, disputes.resolve_unanswered, opened.id, now=deadline)
    assert world.snapshot() == after


def test_unanswered_dispute_opened_by_the_freelancer_releases_the_rest_less_fee(
    world: World,
) -> None:
    client, freelancer, project = world.parties(wallet=2_000_000)
    milestone_id = drive(world, client, freelancer, project, S.SUBMITTED, amount=1_000_000)
    world.act(client, milestones.release, milestone_id, amount=100_005)  # fee 10,001
    start = utcnow()
    opened = open_dispute(world, freelancer, milestone_id, now=start)

    world.act(None, disputes.resolve_unanswered, opened.id, now=start + timedelta(days=8))

    # All 1,000,000 released in the end, so 100,000 in fees in all.
    assert money(world, client, freelancer, milestone_id) == (1_000_000, 900_000, 0, 100_000)
    done = world.get(milestone_id)
    assert (done.status, done.released_amount, done.refunded_amount) == (S.RESOLVED, 1_000_000, 0)


def test_an_answer_from_the_other_party_stops_the_deadline(world: World) -> None:
    client, freelancer, project = world.parties()
    start = utcnow()
    late = start + timedelta(days=30)

    # An offer from the other party is an answer: the dispute stays open past the deadline.
    offered = drive(world, client, freelancer, project, S.SUBMITTED)
    first = open_dispute(world, freelancer, offered, now=start)
    world.act(client, disputes.make_offer, first.id, to_freelancer=10_000)
    assert dispute(world, client, first.id).responded_at is not None
    before = world.snapshot()
    with pytest.raises(InvalidState) as refused:
        world.act(None, disputes.resolve_unanswered, first.id, now=late)
    assert refused.value.code == "not_due"
    assert world.snapshot() == before
    assert dispute(world, client, first.id).status is DisputeStatus.OPEN

    # Accepting the opener's offer is an answer too.
    accepted = drive(world, client, freelancer, project, S.FUNDED)
    second = open_dispute(world, freelancer, accepted, now=start)
    offer = world.act(freelancer, disputes.make_offer, second.id, to_freelancer=80_000)
    assert dispute(world, client, second.id).responded_at is None
    held = money(world, client, freelancer, accepted)
    world.act(client, disputes.accept_offer, second.id, offer.id)
    assert dispute(world, client, second.id).responded_at is not None
    moved = money(world, client, freelancer, accepted)
    assert tuple(m - h for m, h in zip(moved, held, strict=True)) == (
        20_000,
        72_000,
        -100_000,
        8_000,
    )

    # A withdrawn dispute has nothing left to resolve.
    withdrawn = drive(world, client, freelancer, project, S.FUNDED)
    third = open_dispute(world, client, withdrawn, now=start)
    world.act(client, disputes.withdraw, third.id)
    before = world.snapshot()
    with pytest.raises(InvalidState):
        world.act(None, disputes.resolve_unanswered, third.id, now=late)
    assert world.snapshot() == before
    assert world.get(withdrawn).status is S.FUNDED


@pytest.mark.parametrize("ending", ["offer accepted", "resolved by staff", "withdrawn"])
def test_offers_still_open_when_the_dispute_ends_are_closed(world: World, ending: str) -> None:
    client, freelancer, project = world.parties()
    staff = world.user("staff", staff=True)
    milestone_id = drive(world, client, freelancer, project, S.SUBMITTED)
    opened = open_dispute(world, client, milestone_id)
    mine = world.act(client, disputes.make_offer, opened.id, to_freelancer=20_000)
    theirs = world.act(freelancer, disputes.make_offer, opened.id, to_freelancer=80_000)

    if ending == "offer accepted":
        world.act(freelancer, disputes.accept_offer, opened.id, mine.id)
        expected = {mine.id: OfferStatus.ACCEPTED, theirs.id: OfferStatus.CLOSED}
    elif ending == "resolved by staff":
        world.act(staff, disputes.resolve, opened.id, to_freelancer=50_000, to_client=50_000)
        expected = {mine.id: OfferStatus.CLOSED, theirs.id: OfferStatus.CLOSED}
    else:
        world.act(client, disputes.withdraw, opened.id)
        expected = {mine.id: OfferStatus.CLOSED, theirs.id: OfferStatus.CLOSED}

    offers = world.act(client, disputes.list_offers, opened.id)
    assert {offer.id: offer.status for offer in offers} == expected
    # Neither can be taken up any more by the party it was made to.
    for taker, offer in ((freelancer, mine), (client, theirs)):
        with pytest.raises(InvalidState):
            world.act(taker, disputes.accept_offer, opened.id, offer.id)
