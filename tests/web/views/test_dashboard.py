"""The read models behind the web pages: dashboard figures, and the actions a page offers."""

from __future__ import annotations

import itertools
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from milepost.disputes import service as disputes
from milepost.kit.errors import InvalidRequest, InvalidState, NotFound, PermissionDenied
from milepost.milestones import service as milestones
from milepost.milestones.models import Milestone
from milepost.milestones.state import Action, MilestoneStatus, Role, allowed_actions, authorize
from milepost.users.models import User
from milepost.web.views import dashboard as views
from milepost.web.views import milestone as page_view
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


# Dashboard charts: money over time and the cash-flow forecast ------------------------------------------

NOW = datetime(2026, 11, 18, 15, 0, tzinfo=UTC)  # a Wednesday


def _series(chart: views.Chart) -> dict[str, tuple[int, ...]]:
    return {series.key: series.values for series in chart.series}


def _expected(
    weeks: tuple[date, ...], movements: list[tuple[datetime, str, int]], keys: tuple[str, ...]
) -> dict[str, tuple[int, ...]]:
    """Per-week sums written out from what the test did, to compare the read model with."""
    sums = {key: [0] * len(weeks) for key in keys}
    for moment, key, amount in movements:
        monday = moment.date() - timedelta(days=moment.weekday())
        if monday in weeks:
            sums[key][weeks.index(monday)] += amount
    return {key: tuple(values) for key, values in sums.items()}


def test_money_over_time_sums_escrow_movements_per_week(world: World) -> None:
    client, freelancer, project = world.parties(wallet=2_000_000)
    staff = world.user("staff", staff=True)
    funded_at, first_release_at, last_week, yesterday = (
        NOW - timedelta(days=20),
        NOW - timedelta(days=9),
        NOW - timedelta(days=8),
        NOW - timedelta(days=1),
    )

    def funded(amount: int, at: datetime) -> Milestone:
        milestone = world.milestone(client, project, amount, title=f"M {amount}")
        world.act(client, milestones.fund, milestone.id, now=at)
        return milestone

    paid = funded(30_000, funded_at)
    world.act(client, milestones.release, paid.id, amount=10_000, now=first_release_at)
    world.act(client, milestones.release, paid.id, now=yesterday)
    cancelled = funded(50_000, funded_at)
    world.act(freelancer, milestones.cancel, cancelled.id, now=last_week)
    split = funded(60_000, funded_at)
    dispute = world.act(freelancer, disputes.open_dispute, split.id, reason="Unpaid", now=last_week)
    world.act(
        staff, disputes.resolve, dispute.id, to_freelancer=45_000, to_client=15_000, now=yesterday
    )
    old = funded(40_000, NOW - timedelta(weeks=14))  # funded before the chart's first week
    world.act(client, milestones.release, old.id, now=yesterday)
    # Somebody else's milestone in the same weeks is not the viewer's business.
    world.funded(70_000)

    paid, cancelled, split, old = (world.get(m.id) for m in (paid, cancelled, split, old))
    movements = [
        (funded_at, "funded", paid.funded_amount),
        (funded_at, "funded", cancelled.funded_amount),
        (funded_at, "funded", split.funded_amount),
        (old.funded_at or NOW, "funded", old.funded_amount),
        (first_release_at, "released", 10_000),
        (yesterday, "released", paid.released_amount - 10_000),
        (last_week, "refunded", cancelled.refunded_amount),
        (yesterday, "released", split.released_amount),
        (yesterday, "refunded", split.refunded_amount),
        (yesterday, "released", old.released_amount),
    ]
    outgoing = world.act(client, views.dashboard, now=NOW)
    [chart] = outgoing.history
    assert chart.currency == "USD" and len(chart.weeks) == views.HISTORY_WEEKS
    assert chart.weeks[-1] == date(2026, 11, 16) and chart.weeks[0] == date(2026, 8, 31)
    assert _series(chart) == _expected(chart.weeks, movements, ("funded", "released", "refunded"))
    # The one funded fourteen weeks ago shows only its release; the split counts on both sides.
    assert sum(_series(chart)["funded"]) == 30_000 + 50_000 + 60_000
    assert split.refunded_amount == 15_000 and split.released_amount == 45_000
    # The freelancer sees the same movements on the incoming tab; nothing on the outgoing one.
    assert world.act(freelancer, views.dashboard, tab="incoming", now=NOW).history == [chart]
    assert world.act(freelancer, views.dashboard, tab="outgoing", now=NOW).history == []


def test_money_over_time_weeks_follow_the_viewer_s_time_zone(world: World) -> None:
    client, _freelancer, project = world.parties()
    milestone = world.milestone(client, project, 25_000)
    sunday_evening_utc = datetime(2026, 11, 15, 20, 0, tzinfo=UTC)  # Monday morning in Auckland
    world.act(client, milestones.fund, milestone.id, now=sunday_evening_utc)

    def funded_by_week(zone: str) -> dict[date, int]:
        with world.db.unit_of_work() as session:
            user = session.get(User, client.id)
            assert user is not None
            user.time_zone = zone
        [chart] = world.act(client, views.dashboard, now=NOW).history
        return {w: v for w, v in zip(chart.weeks, _series(chart)["funded"], strict=True) if v}

    assert funded_by_week("UTC") == {date(2026, 11, 9): 25_000}
    assert funded_by_week("Pacific/Auckland") == {date(2026, 11, 16): 25_000}


def test_bucket_by_week_ignores_flows_outside_the_weeks_and_splits_currencies() -> None:
    weeks = views.weeks_from(date(2026, 11, 4), 2)  # a Wednesday: weeks start on Mondays
    assert weeks == (date(2026, 11, 2), date(2026, 11, 9))
    flows = [
        views.Flow(date(2026, 11, 8), "USD", "funded", 100),
        views.Flow(date(2026, 11, 2), "USD", "funded", 50),
        views.Flow(date(2026, 11, 15), "EUR", "released", 70),
        views.Flow(date(2026, 11, 16), "USD", "funded", 999),  # after the last week
        views.Flow(date(2026, 11, 1), "JPY", "funded", 5),  # before the first week
    ]
    charts = views.bucket_by_week(flows, weeks, views.HISTORY_SERIES)
    assert [c.currency for c in charts] == ["EUR", "USD"]
    eur, usd = (_series(c) for c in charts)
    assert usd == {"funded": (150, 0), "released": (0, 0), "refunded": (0, 0)}
    assert eur == {"funded": (0, 0), "released": (0, 70), "refunded": (0, 0)}
    assert views.bucket_by_week([], weeks, views.HISTORY_SERIES) == []


def test_the_forecast_places_each_open_milestone_s_next_payment_in_its_week(world: World) -> None:
    client, freelancer, project = world.parties(wallet=2_000_000)
    today = NOW.date()

    def make(amount: int, **terms: object) -> Milestone:
        return world.act(
            client,
            milestones.create_milestone,
            project.id,
            amount=amount,
            title=f"M {amount}",
            acceptance_criteria=["It works"],
            now=NOW,
            **terms,
        )

    to_fund = make(11_000, fund_by=today + timedelta(days=10))
    overdue = make(12_000, fund_by=today - timedelta(days=3))
    by_due_date = make(13_000, due_date=today + timedelta(days=12))
    make(14_000)  # no date at all
    working = make(15_000, due_date=today + timedelta(days=30))
    far = make(16_000, due_date=today + timedelta(days=90))  # past the forecast's eight weeks
    delivered = make(17_000)
    delayed = make(18_000, release_delay_days=3)
    disputed = make(19_000, due_date=today + timedelta(days=5))
    for milestone in (working, far, delivered, delayed, disputed):
        world.act(client, milestones.fund, milestone.id, now=NOW)
    for milestone in (delivered, delayed):
        world.act(freelancer, milestones.submit, milestone.id, note="Done", now=NOW)
    world.act(client, milestones.approve, delayed.id, now=NOW)
    world.act(client, disputes.open_dispute, disputed.id, reason="Late", now=NOW)

    to_fund, overdue, by_due_date, working, delivered, delayed = (
        world.get(m.id) for m in (to_fund, overdue, by_due_date, working, delivered, delayed)
    )
    assert delivered.review_due_at is not None and delayed.release_due_at is not None
    at = datetime.combine
    movements = [
        (at(to_fund.fund_by or today, NOW.timetz()), "to_fund", to_fund.amount),
        (NOW, "to_fund", overdue.amount),  # overdue: due now
        (at(by_due_date.due_date or today, NOW.timetz()), "to_fund", by_due_date.amount),
        (at(working.due_date or today, NOW.timetz()), "to_release", working.escrow_balance),
        (delivered.review_due_at, "to_release", delivered.escrow_balance),
        (delayed.release_due_at, "to_release", delayed.escrow_balance),
    ]
    outgoing = world.act(client, views.dashboard, now=NOW)
    [chart] = outgoing.forecast.charts
    assert chart.weeks[0] == date(2026, 11, 16) and len(chart.weeks) == views.FORECAST_WEEKS
    assert _series(chart) == _expected(chart.weeks, movements, ("to_fund", "to_release"))
    assert sum(_series(chart)["to_release"]) == 15_000 + 17_000 + 18_000  # not the far or disputed
    assert outgoing.forecast.undated == 1
    incoming = world.act(freelancer, views.dashboard, tab="incoming", now=NOW).forecast
    [incoming_chart] = incoming.charts
    assert _series(incoming_chart) == _series(chart)
    assert [s.label for s in incoming_chart.series] == [
        "Funded into escrow for you",
        "Released to you",
    ]


def test_expected_payment_of_ended_and_disputed_milestones_is_none() -> None:
    zone = ZoneInfo("UTC")
    base = {"amount": 10_000, "currency": "USD", "due_date": date(2026, 12, 1)}
    for status in (
        MilestoneStatus.RELEASED,
        MilestoneStatus.CANCELLED,
        MilestoneStatus.RESOLVED,
        MilestoneStatus.DISPUTED,
    ):
        milestone = Milestone(status=status, funded_amount=10_000, released_amount=0, **base)
        milestone.refunded_amount = 0
        assert views.expected_payment(milestone, 0, zone) is None, status
    funded = Milestone(
        status=MilestoneStatus.FUNDED, funded_amount=10_000, released_amount=4_000, **base
    )
    funded.refunded_amount = 0
    assert views.expected_payment(funded, 0, zone) == ("to_release", 6_000, date(2026, 12, 1))
    draft = Milestone(status=MilestoneStatus.DRAFT, fund_by=None, **base)
    assert views.expected_payment(draft, 10_500, zone) == ("to_fund", 10_500, date(2026, 12, 1))
