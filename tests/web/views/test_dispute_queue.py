"""Staff's dispute centre: the queue's order and flags, the detail read model, and resolving by typing the
freelancer's part."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from milepost.disputes import service as disputes
from milepost.disputes.models import DisputeStatus, Resolution
from milepost.kit.errors import InvalidRequest, NotFound, PermissionDenied, ValidationFailed
from milepost.kit.time import utcnow
from milepost.milestones import service as milestones
from milepost.milestones.state import MilestoneStatus
from milepost.schedule.service import run_due
from milepost.users.models import User
from milepost.web.forms import dispute as dispute_forms
from milepost.web.views import dispute_queue as queue
from tests.world import World

DAY = timedelta(days=1)


def test_the_queue_lists_open_disputes_overdue_first_then_by_deadline(world: World) -> None:
    staff = world.user("staff", staff=True)
    # Opened first, but recently: not overdue.
    _, recent_freelancer, recent = world.submitted(100_000, title="Recent")
    recent_dispute = world.act(recent_freelancer, disputes.open_dispute, recent.id, reason="Unpaid")
    # Opened 15 days ago (the client answered with an offer): past the 14-day mediation window.
    client, freelancer, old = world.submitted(80_000, title="Old")
    opened_at = utcnow() - 15 * DAY
    old_dispute = world.act(client, disputes.open_dispute, old.id, reason="Broken", now=opened_at)
    world.act(freelancer, disputes.make_offer, old_dispute.id, to_freelancer=40_000, now=opened_at)
    # A withdrawn dispute is not in the queue.
    _, other_freelancer, other = world.submitted(50_000, title="Withdrawn")
    withdrawn = world.act(other_freelancer, disputes.open_dispute, other.id, reason="Oops")
    world.act(other_freelancer, disputes.withdraw, withdrawn.id)

    lines = world.act(staff, queue.dispute_queue).data
    assert [(line.dispute_id, line.overdue) for line in lines] == [
        (old_dispute.id, True),
        (recent_dispute.id, False),
    ]
    assert (lines[0].milestone_title, lines[0].escrow, lines[0].answered) == ("Old", 80_000, True)
    assert (lines[0].client_name, lines[0].freelancer_name) == ("Client", "Freelancer")
    assert (lines[1].opener_role, lines[1].answered) == ("freelancer", False)

    # The scheduler's stamp keeps it flagged the same way.
    report = run_due(world.db, world.settings, utcnow(), deliver_emails=False)
    assert [h.action for h in report.done] == ["dispute_overdue"]
    assert [line.overdue for line in world.act(staff, queue.dispute_queue).data] == [True, False]


def test_only_staff_see_the_queue_and_the_detail(world: World) -> None:
    client, freelancer, milestone = world.submitted()
    dispute = world.act(client, disputes.open_dispute, milestone.id, reason="Broken")
    for user in (client, freelancer, world.user("outsider")):
        with pytest.raises(PermissionDenied):
            world.act(user, queue.dispute_queue)
        with pytest.raises(PermissionDenied):
            world.act(user, queue.dispute_detail, dispute.id)
    with pytest.raises(NotFound):
        world.act(world.user("staff", staff=True), queue.dispute_detail, "dsp_nope")


def test_the_detail_has_terms_evidence_offers_fees_and_timeline(world: World) -> None:
    staff = world.user("staff", staff=True)
    client, freelancer, funded = world.funded(
        100_000, acceptance_criteria=["Loads in 2 s"], required_evidence=["A demo link"]
    )
    world.act(
        freelancer,
        milestones.submit,
        funded.id,
        note="First go",
        evidence=[{"type": "link", "url": "https://example.com/demo"}],
    )
    world.act(client, milestones.request_changes, funded.id, reason="Too slow")
    world.act(
        freelancer,
        milestones.submit,
        funded.id,
        note="Faster now",
        evidence=[{"type": "text", "text": "Measured 1.2 s"}],
    )
    dispute = world.act(client, disputes.open_dispute, funded.id, reason="Still slow")
    world.act(freelancer, disputes.make_offer, dispute.id, to_freelancer=70_000)

    detail = world.act(staff, queue.dispute_detail, dispute.id)
    assert detail.is_open and not detail.overdue
    assert (detail.client.id, detail.freelancer.id, detail.opener.id) == (
        client.id,
        freelancer.id,
        client.id,
    )
    assert detail.milestone.acceptance_criteria == ["Loads in 2 s"]
    assert [(s.revision, s.note) for s in detail.submissions] == [
        (1, "First go"),
        (2, "Faster now"),
    ]
    assert [(e.kind, e.text, e.href) for s in detail.submissions for e in s.evidence] == [
        ("link", "https://example.com/demo", "https://example.com/demo"),
        ("text", "Measured 1.2 s", None),
    ]
    # 10% fee (the world's setting), taken from the freelancer's part.
    assert (detail.escrow, detail.fee_rate_bps, detail.fee_percent) == (100_000, 1000, "10")
    assert detail.fee_if_all_to_freelancer == 10_000
    assert [(o.offer.to_freelancer, o.to_client, o.fee) for o in detail.offers] == [
        (70_000, 30_000, 7_000)
    ]
    assert [e.action for e in detail.events][-2:] == ["dispute_opened", "settlement_offered"]

    # Once resolved, each offer still shows the split it proposed, and no fee preview.
    world.act(staff, dispute_forms.resolve_with_freelancer_part, dispute.id, to_freelancer="500.00")
    detail = world.act(staff, queue.dispute_detail, dispute.id)
    assert not detail.is_open and detail.escrow == 0
    assert [(o.offer.to_freelancer, o.to_client, o.fee) for o in detail.offers] == [
        (70_000, 30_000, None)
    ]


def test_staff_resolve_by_typing_the_freelancers_part(world: World) -> None:
    staff = world.user("staff", staff=True)
    client, freelancer, milestone = world.submitted(100_000)
    dispute = world.act(client, disputes.open_dispute, milestone.id, reason="Half done")
    client_before = world.balance(client)

    resolved = world.act(
        staff,
        dispute_forms.resolve_with_freelancer_part,
        dispute.id,
        to_freelancer="600.00",
        note="Fair",
    )
    assert (resolved.status, resolved.resolution) == (DisputeStatus.RESOLVED, Resolution.STAFF)
    assert (resolved.to_freelancer, resolved.to_client) == (60_000, 40_000)
    assert world.balance(freelancer) == 54_000  # less the 10% fee on the freelancer's part
    assert world.balance(client) == client_before + 40_000
    assert world.get(milestone.id).status is MilestoneStatus.RESOLVED


@pytest.mark.parametrize("typed", ["0", "0.00"])
def test_nothing_to_the_freelancer_is_a_valid_ruling(world: World, typed: str) -> None:
    staff = world.user("staff", staff=True)
    client, freelancer, milestone = world.submitted(100_000)
    dispute = world.act(client, disputes.open_dispute, milestone.id, reason="Nothing delivered")
    resolved = world.act(
        staff, dispute_forms.resolve_with_freelancer_part, dispute.id, to_freelancer=typed
    )
    assert (resolved.to_freelancer, resolved.to_client) == (0, 100_000)
    assert world.balance(freelancer) == 0


@pytest.mark.parametrize(
    ("typed", "message"),
    [
        ("1000.01", "The escrow holds $1,000.00; the freelancer's part cannot be more than that."),
        (
            "-5",
            "Write amounts like 1,234.50 (a point before the cents; commas only between thousands).",
        ),
        (
            "10.001",
            "USD amounts have at most 2 decimal places. Write amounts like 1,234.50 (a point "
            "before the cents; commas only between thousands).",
        ),
        (
            "12,50",
            "Write amounts like 1,234.50 (a point before the cents; commas only between thousands).",
        ),
    ],
)
def test_a_bad_split_is_refused_and_changes_nothing(world: World, typed: str, message: str) -> None:
    staff = world.user("staff", staff=True)
    client, _, milestone = world.submitted(100_000)
    dispute = world.act(client, disputes.open_dispute, milestone.id, reason="Broken")
    before = world.snapshot()
    with pytest.raises(ValidationFailed) as refused:
        world.act(
            staff, dispute_forms.resolve_with_freelancer_part, dispute.id, to_freelancer=typed
        )
    assert (refused.value.message, refused.value.param) == (message, "to_freelancer")
    assert world.snapshot() == before


def test_only_staff_resolve(world: World) -> None:
    client, freelancer, milestone = world.submitted(100_000)
    dispute = world.act(client, disputes.open_dispute, milestone.id, reason="Broken")
    before = world.snapshot()
    for user in (client, freelancer):
        with pytest.raises(PermissionDenied):
            world.act(
                user, dispute_forms.resolve_with_freelancer_part, dispute.id, to_freelancer="1.00"
            )
    assert world.snapshot() == before


def test_staff_who_are_a_party_leave_the_ruling_to_someone_else(world: World) -> None:
    staff_client, freelancer = world.user("staff", staff=True), world.user("freelancer")
    world.deposit(staff_client, 100_000)
    project = world.project(staff_client, freelancer)
    milestone = world.milestone(staff_client, project, 100_000)
    world.act(staff_client, milestones.fund, milestone.id)
    dispute = world.act(freelancer, disputes.open_dispute, milestone.id, reason="Unpaid")
    before = world.snapshot()
    # The form and the service answer alike: 403 staff_is_party (a party may see it, not rule on it).
    for resolve, kwargs in (
        (dispute_forms.resolve_with_freelancer_part, {"to_freelancer": "0"}),
        (disputes.resolve, {"to_freelancer": 0, "to_client": 100_000}),
    ):
        with pytest.raises(PermissionDenied) as refused:
            world.act(staff_client, resolve, dispute.id, **kwargs)
        assert (refused.value.status, refused.value.code, refused.value.message) == (
            403,
            "staff_is_party",
            "You are the client on this milestone: another staff member must resolve it.",
        )
        assert world.snapshot() == before
    detail = world.act(staff_client, queue.dispute_detail, dispute.id)
    assert detail.resolve_refused == (
        "You are the client on this milestone: another staff member must resolve it."
    )
    other_staff = world.user("staff", staff=True)
    assert world.act(other_staff, queue.dispute_detail, dispute.id).resolve_refused is None


def _open_disputes(world: World, opened_at: list[datetime]) -> list[str]:
    """One open dispute per time given, on milestones of one project; the disputes' ids, in that order."""
    client, freelancer, project = world.parties(wallet=10_000_000)
    opened = []
    for n, when in enumerate(opened_at):
        milestone = world.milestone(client, project, 10_000 + n, title=f"Part {n}")
        world.act(client, milestones.fund, milestone.id, now=when - 2 * DAY)
        world.act(freelancer, milestones.submit, milestone.id, note="Done", now=when - DAY)
        opened.append(
            world.act(client, disputes.open_dispute, milestone.id, reason="No", now=when).id
        )
    return opened


def _every_page(world: World, staff: User, limit: int) -> list[list[queue.QueueLine]]:
    pages, after = [], None
    while True:
        page = world.act(staff, queue.dispute_queue, starting_after=after, limit=limit)
        pages.append(page.data)
        if not page.has_more:
            return pages
        after = page.data[-1].dispute_id


def test_the_queue_pages_through_every_open_dispute_once_in_a_stable_order(world: World) -> None:
    staff = world.user("staff", staff=True)
    now = utcnow()
    # Three pairs opened at the same moment (the same deadline: the id breaks the tie), two of them
    # past the mediation window; a resolved dispute in between is in no page.
    moments = [now - 20 * DAY] * 2 + [now - 16 * DAY] + [now - DAY] * 2 + [now] * 2
    ids = _open_disputes(world, moments)
    _, other_freelancer, other = world.submitted(30_000, title="Withdrawn")
    withdrawn = world.act(other_freelancer, disputes.open_dispute, other.id, reason="Oops")
    world.act(other_freelancer, disputes.withdraw, withdrawn.id)
    expected = [dispute_id for _, dispute_id in sorted(zip(moments, ids, strict=True))]

    pages = _every_page(world, staff, limit=3)
    assert [len(page) for page in pages] == [3, 3, 1]
    seen = [line.dispute_id for page in pages for line in page]
    assert seen == expected  # none missing, none twice, by deadline then id
    assert [line.overdue for page in pages for line in page] == [True] * 3 + [False] * 4
    # The same pages every time.
    assert _every_page(world, staff, limit=3) == pages
    # A page that ends exactly at the last dispute says there is no more.
    assert [len(page) for page in _every_page(world, staff, limit=7)] == [7]
    # A "next page" link naming no dispute is refused, naming its parameter.
    with pytest.raises(InvalidRequest) as refused:
        world.act(staff, queue.dispute_queue, starting_after="dsp_nope")
    assert refused.value.param == "disputes_after"
