"""The read models behind the web pages: dashboard figures, and the actions a page offers."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import pytest

from milepost.kit.errors import InvalidRequest, InvalidState, NotFound, PermissionDenied
from milepost.milestones import page_view, views
from milepost.milestones import service as milestones
from milepost.milestones.state import Action, MilestoneStatus, Role, allowed_actions, authorize
from tests.world import World


@pytest.mark.parametrize("has_freelancer", [True, False])
def test_allowed_actions_are_exactly_what_authorize_lets_through(has_freelancer: bool) -> None:
    for role, status in itertools.product(Role, MilestoneStatus):
        allowed = allowed_actions(role, status, project_has_freelancer=has_freelancer)
        for action in Action:
            try:
                authorize(action, role, status, project_has_freelancer=has_freelancer)
            except (PermissionDenied, InvalidState):
                assert action not in allowed, (action, role, status)
            else:
                assert action in allowed, (action, role, status)


def test_dashboard_totals_per_tab_and_overdue_first(world: World) -> None:
    client, freelancer, project = world.parties()
    today = datetime.now(UTC).date()
    later = world.milestone(client, project, 30_000, title="Later", fund_by=today + timedelta(20))
    late = world.milestone(client, project, 20_000, title="Late", fund_by=today - timedelta(2))
    submitted = world.milestone(client, project, 100_000, title="Delivered")
    world.act(client, milestones.fund, submitted.id)
    world.act(freelancer, milestones.submit, submitted.id, note="Done")
    part = world.milestone(client, project, 50_000, title="Paid in part")
    world.act(client, milestones.fund, part.id)
    world.act(client, milestones.release, part.id, amount=20_000)

    outgoing = world.act(client, views.dashboard, tab="outgoing")
    titles = [line.title for line in outgoing.milestones]
    assert titles[0] == "Late" and outgoing.milestones[0].overdue
    assert titles.index("Later") > 0 and not outgoing.milestones[titles.index("Later")].overdue
    [totals] = outgoing.totals
    assert (totals.currency, totals.in_escrow, totals.awaiting_review) == ("USD", 130_000, 100_000)
    assert totals.released_this_month == 20_000  # gross: what left escrow, fee included
    # Review due in 14 days, then funding due in 20; the overdue one is not "upcoming" but first above.
    assert [line.title for line in outgoing.upcoming] == ["Delivered", "Later"]
    assert {late.id, later.id} <= {line.id for line in outgoing.milestones}

    incoming = world.act(freelancer, views.dashboard, tab="incoming")
    assert {line.title for line in incoming.milestones} == set(titles)
    assert incoming.totals == outgoing.totals
    # The freelancer pays for nothing; the client earns nothing.
    assert world.act(freelancer, views.dashboard, tab="outgoing").milestones == []
    assert world.act(client, views.dashboard, tab="incoming").totals == []
    [balance] = world.act(freelancer, views.dashboard).balances
    assert balance.available == 18_000  # 20,000 less the 10% fee

    with pytest.raises(InvalidRequest):
        world.act(client, views.dashboard, tab="sideways")


def test_released_this_month_counts_only_this_month(world: World) -> None:
    client, _freelancer, project = world.parties()
    milestone = world.milestone(client, project, 40_000)
    world.act(client, milestones.fund, milestone.id)
    world.act(client, milestones.release, milestone.id, amount=10_000)
    next_month = datetime.now(UTC) + timedelta(days=40)
    later = world.act(client, views.dashboard, now=next_month)
    assert [(t.in_escrow, t.released_this_month) for t in later.totals] == [(30_000, 0)]


def test_the_milestone_page_offers_the_viewer_s_actions_and_hides_from_outsiders(
    world: World,
) -> None:
    client, freelancer, milestone = world.funded()
    outsider = world.user("outsider")
    as_client = world.act(client, page_view.milestone_page, milestone.id)
    as_freelancer = world.act(freelancer, page_view.milestone_page, milestone.id)
    assert as_client.role is Role.CLIENT and Action.SUBMIT not in as_client.actions
    assert Action.RELEASE in as_client.actions and Action.FUND not in as_client.actions
    assert Action.SUBMIT in as_freelancer.actions and Action.RELEASE not in as_freelancer.actions
    assert [event.action for event in as_client.events] == ["created", "funded"]
    assert as_client.to_fund is None
    with pytest.raises(NotFound):
        world.act(outsider, page_view.milestone_page, milestone.id)
    staff = world.act(world.user("staff", staff=True), page_view.milestone_page, milestone.id)
    assert staff.role is Role.STAFF and staff.actions == {Action.CANCEL}
