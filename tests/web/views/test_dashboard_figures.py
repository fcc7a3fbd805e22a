"""The dashboard's and the wallet's figures, now summed by the database, are the figures of each milestone
added up: checked on milestones whose answer is written out, and against the rules applied one milestone
(one posting) at a time on a generated history of every kind of milestone (bench/data_growth.py)."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from bench.data_growth import generate
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import ColumnElement, and_, or_, select

from milepost.disputes import service as disputes
from milepost.kit.context import Context
from milepost.kit.db import Database
from milepost.kit.time import as_utc
from milepost.ledger.models import Account, AccountKind, EntryKind, JournalEntry, Posting
from milepost.milestones import service as milestones
from milepost.milestones.late_fees import accrued_late_fee, validate_late_fee
from milepost.milestones.models import Milestone
from milepost.milestones.service import amount_to_fund
from milepost.milestones.state import TERMINAL, MilestoneStatus
from milepost.projects.models import Project
from milepost.users.models import User
from milepost.wallets.service import Balance, balances
from milepost.web.views import dashboard as views
from tests.world import World

S = MilestoneStatus
NOW = datetime(2026, 11, 18, 15, 0, tzinfo=UTC)  # a Wednesday: this week runs from Monday the 16th
TODAY = NOW.date()
CRITERIA = ["It works"]


def _series(chart: views.Chart) -> dict[str, tuple[int, ...]]:
    return {series.key: series.values for series in chart.series}


def _week(day: date) -> int:
    """The forecast week ``day`` falls in, counted from this one."""
    return (day - date(2026, 11, 16)).days // 7


def test_the_forecast_adds_up_milestones_that_share_a_week_and_counts_each_undated_one(
    world: World,
) -> None:
    client, freelancer, project = world.parties(wallet=5_000_000)

    def draft(amount: int, **terms: object) -> Milestone:
        return world.act(
            client,
            milestones.create_milestone,
            project.id,
            amount=amount,
            title=f"M {amount}",
            acceptance_criteria=CRITERIA,
            now=NOW,
            **terms,
        )

    in_ten_days = TODAY + timedelta(days=10)
    draft(1_000, fund_by=in_ten_days)
    draft(2_000, fund_by=in_ten_days + timedelta(days=1))  # the same week
    # Late fee terms on a draft not yet due: nothing has accrued, funding takes the amount.
    draft(4_000, fund_by=in_ten_days, late_fee={"type": "flat", "amount": 300, "grace_days": 0})
    # Overdue by three days, past its grace: funding takes the amount and the flat fee, due now.
    draft(
        10_000,
        fund_by=TODAY - timedelta(days=3),
        late_fee={"type": "flat", "amount": 500, "grace_days": 0},
    )
    draft(20_000, fund_by=TODAY - timedelta(days=2))  # overdue, no late fee terms
    for amount in (30_000, 40_000):
        draft(amount)  # no date: undated
    funded = [draft(amount, due_date=TODAY + timedelta(days=15)) for amount in (50_000, 60_000)]
    undated_funded = draft(70_000)
    for milestone in [*funded, undated_funded]:
        world.act(client, milestones.fund, milestone.id, now=NOW)
    world.act(client, milestones.release, funded[0].id, amount=5_000, now=NOW)

    forecast = world.act(client, views.dashboard, now=NOW).forecast
    [chart] = forecast.charts
    to_fund, to_release = _series(chart)["to_fund"], _series(chart)["to_release"]
    assert to_fund[0] == 10_500 + 20_000  # overdue: due now, late fee included
    assert to_fund[_week(in_ten_days)] == 1_000 + 2_000 + 4_000
    assert sum(to_fund) == 10_500 + 20_000 + 7_000
    assert to_release[_week(TODAY + timedelta(days=15))] == 45_000 + 60_000  # what escrow holds
    assert sum(to_release) == 105_000
    assert forecast.undated == 3  # two drafts and a funded milestone without a date, one by one
    incoming = world.act(freelancer, views.dashboard, tab="incoming", now=NOW).forecast
    assert [_series(c) for c in incoming.charts] == [_series(chart)] and incoming.undated == 3


_LATE_FEE_TERMS = st.one_of(
    st.none(),
    st.fixed_dictionaries(
        {
            "type": st.just("flat"),
            "amount": st.integers(1, 10**9),
            "grace_days": st.integers(0, 365),
        }
    ),
    st.fixed_dictionaries(
        {
            "type": st.just("percent"),
            "rate_bps": st.integers(1, 10_000),
            "period_days": st.integers(1, 365),
            "grace_days": st.integers(0, 365),
            "cap_bps": st.integers(0, 10_000),
        }
    ),
)


@given(
    terms=_LATE_FEE_TERMS,
    amount=st.integers(1, 10**12),
    days_ahead=st.one_of(st.none(), st.integers(1, 3_000)),
    today=st.dates(date(2000, 1, 1), date(2090, 1, 1)),
)
def test_no_late_fee_accrues_on_a_draft_whose_funding_is_not_due(
    terms: dict[str, Any] | None, amount: int, days_ahead: int | None, today: date
) -> None:
    """What the forecast sums without amount_to_fund (drafts not funding_overdue) takes its amount."""
    fund_by = None if days_ahead is None else today + timedelta(days=days_ahead)
    validated = validate_late_fee(terms)
    assert accrued_late_fee(validated, amount, fund_by, today) == 0


def test_a_review_deadline_lands_in_the_week_of_the_viewer_s_calendar(world: World) -> None:
    client, freelancer, project = world.parties()
    milestone = world.milestone(client, project, 25_000)
    world.act(client, milestones.fund, milestone.id, now=NOW)
    # Submitted so that the review period (14 days) ends on Sunday 6 December at 20:00 UTC, which is
    # already Monday the 7th in Auckland.
    submitted_at = datetime(2026, 11, 22, 20, 0, tzinfo=UTC)
    world.act(freelancer, milestones.submit, milestone.id, note="Done", now=submitted_at)
    assert world.get(milestone.id).review_due_at == datetime(2026, 12, 6, 20, 0, tzinfo=UTC)

    def week_of_release(zone: str) -> date:
        with world.db.unit_of_work() as session:
            user = session.get(User, client.id)
            assert user is not None
            user.time_zone = zone
        [chart] = world.act(client, views.dashboard, now=submitted_at).forecast.charts
        [week] = [w for w, v in zip(chart.weeks, _series(chart)["to_release"], strict=True) if v]
        return week

    assert week_of_release("UTC") == date(2026, 11, 30)
    assert week_of_release("Pacific/Auckland") == date(2026, 12, 7)


def test_escrow_totals_and_balances_per_currency_count_only_what_escrow_holds(
    world: World,
) -> None:
    client, freelancer, usd = world.parties(wallet=1_000_000)
    world.deposit(client, 500_000, "EUR")
    eur = world.project(client, freelancer, "EUR")
    staff = world.user("staff", staff=True)

    def funded(project: Project, amount: int) -> Milestone:
        milestone = world.milestone(client, project, amount)
        world.act(client, milestones.fund, milestone.id, now=NOW)
        return milestone

    partly = funded(usd, 30_000)
    world.act(client, milestones.release, partly.id, amount=10_000, now=NOW)  # 20,000 left
    delivered = funded(usd, 15_000)
    world.act(freelancer, milestones.submit, delivered.id, note="Done", now=NOW)
    released = funded(usd, 40_000)
    world.act(client, milestones.release, released.id, now=NOW)  # nothing left
    cancelled = funded(usd, 8_000)
    world.act(freelancer, milestones.cancel, cancelled.id, now=NOW)  # refunded: nothing left
    disputed = funded(eur, 12_000)
    world.act(client, disputes.open_dispute, disputed.id, reason="Late", now=NOW)  # frozen, held
    world.milestone(client, usd, 99_000)  # a draft holds nothing
    world.funded(77_000)  # somebody else's

    [eur_totals, usd_totals] = world.act(client, views.dashboard, now=NOW).totals
    assert (usd_totals.currency, usd_totals.in_escrow, usd_totals.awaiting_review) == (
        "USD",
        20_000 + 15_000,
        15_000,
    )
    assert usd_totals.released_this_month == 10_000 + 40_000  # gross; the refund is no release
    assert (eur_totals.currency, eur_totals.in_escrow, eur_totals.awaiting_review) == (
        "EUR",
        12_000,
        0,
    )
    assert eur_totals.released_this_month == 0
    fee = 1_000 + 4_000  # 10% of the 10,000 and the 40,000 released
    assert world.act(client, lambda ctx: balances(ctx, client.id)) == [
        Balance("EUR", 500_000 - 12_000, escrow_outgoing=12_000, escrow_incoming=0),
        Balance(
            "USD", 1_000_000 - 30_000 - 15_000 - 40_000, escrow_outgoing=35_000, escrow_incoming=0
        ),
    ]
    assert world.act(freelancer, lambda ctx: balances(ctx, freelancer.id)) == [
        Balance("EUR", 0, escrow_outgoing=0, escrow_incoming=12_000),
        Balance("USD", 50_000 - fee, escrow_outgoing=0, escrow_incoming=35_000),
    ]
    assert world.act(staff, lambda ctx: balances(ctx, staff.id)) == []


def test_the_list_is_the_newest_milestones_however_far_back_they_go(world: World) -> None:
    client, freelancer, project = world.parties()

    def created(at: datetime, title: str) -> None:
        world.act(
            client,
            milestones.create_milestone,
            project.id,
            amount=1_000,
            title=title,
            acceptance_criteria=CRITERIA,
            now=at,
        )

    # A quiet party: three milestones years apart, all listed, newest first.
    for days in (2_000, 400, 10):
        created(NOW - timedelta(days=days), f"{days} days ago")
    expected = ["10 days ago", "400 days ago", "2000 days ago"]
    for user, tab in ((client, "outgoing"), (freelancer, "incoming")):
        listed = world.act(
            user, views.newest_milestones, views.dashboard_party(user.id, tab), now=NOW
        )
        assert [milestone.title for milestone, _ in listed] == expected
    # A busy one: the last DASHBOARD_LIMIT of them, though most are older than the first window.
    for minutes in range(views.DASHBOARD_LIMIT):
        created(NOW - timedelta(days=70, minutes=minutes), f"old {minutes}")
    for hours in range(5):
        created(NOW - timedelta(hours=hours + 1), f"new {hours}")
    newest = [f"new {hours}" for hours in range(5)] + ["10 days ago"]
    newest += [f"old {minutes}" for minutes in range(views.DASHBOARD_LIMIT - len(newest))]
    for user, tab in ((client, "outgoing"), (freelancer, "incoming")):
        listed = world.act(
            user, views.newest_milestones, views.dashboard_party(user.id, tab), now=NOW
        )
        assert [milestone.title for milestone, _ in listed] == newest


# Against the rules one milestone at a time, on a generated history ---------------------------------------


def _forecast_one_by_one(
    ctx: Context, party: ColumnElement[bool], tab: views.Tab, zone: ZoneInfo
) -> views.Forecast:
    """Every open milestone read, and placed by expected_payment with what amount_to_fund says."""
    today = as_utc(ctx.now).astimezone(zone).date()
    flows: list[views.Flow] = []
    undated = 0
    for milestone in ctx.session.scalars(
        select(Milestone)
        .join(Project, Project.id == Milestone.project_id)
        .where(party, Milestone.status.not_in([*TERMINAL, S.DISPUTED]))
    ):
        to_fund = amount_to_fund(milestone, ctx)[0] if milestone.status is S.DRAFT else 0
        expected = views.expected_payment(milestone, to_fund, zone)
        if expected is None:
            continue
        kind, amount, day = expected
        if day is None:
            undated += 1
        else:
            flows.append(views.Flow(max(day, today), milestone.currency, kind, amount))
    weeks = views.weeks_from(today, views.FORECAST_WEEKS)
    return views.Forecast(views.bucket_by_week(flows, weeks, views.FORECAST_SERIES[tab]), undated)


def _history_one_by_one(
    ctx: Context, party: ColumnElement[bool], zone: ZoneInfo
) -> list[views.Chart]:
    """Every posting on the tab's escrow accounts (and a split's client leg) of the last 12 weeks."""
    today = as_utc(ctx.now).astimezone(zone).date()
    weeks = views.weeks_from(today - timedelta(weeks=views.HISTORY_WEEKS - 1), views.HISTORY_WEEKS)
    rows = ctx.session.execute(
        select(
            JournalEntry.kind,
            JournalEntry.created_at,
            Account.kind,
            Posting.currency,
            Posting.amount,
        )
        .join(Posting, Posting.entry_id == JournalEntry.id)
        .join(Account, Account.id == Posting.account_id)
        .join(Milestone, Milestone.id == JournalEntry.milestone_id)
        .join(Project, Project.id == Milestone.project_id)
        .where(
            party,
            JournalEntry.created_at >= datetime.combine(weeks[0], time.min, tzinfo=zone),
            or_(
                and_(Account.kind == AccountKind.ESCROW, Account.milestone_id == Milestone.id),
                and_(
                    JournalEntry.kind == EntryKind.DISPUTE_SPLIT,
                    Account.kind == AccountKind.USER,
                    Account.user_id == Milestone.client_id,
                ),
            ),
        )
    ).all()
    flows = views.escrow_flows([tuple(row) for row in rows], zone)  # type: ignore[misc]
    return views.bucket_by_week(flows, weeks, views.HISTORY_SERIES)


def _totals_one_by_one(ctx: Context, party: ColumnElement[bool]) -> dict[str, tuple[int, int]]:
    """(in escrow, awaiting review) per currency, every milestone of the tab read."""
    sums: dict[str, tuple[int, int]] = {}
    for milestone in ctx.session.scalars(
        select(Milestone).join(Project, Project.id == Milestone.project_id).where(party)
    ):
        held, awaiting = sums.get(milestone.currency, (0, 0))
        submitted = milestone.escrow_balance if milestone.status is S.SUBMITTED else 0
        sums[milestone.currency] = (held + milestone.escrow_balance, awaiting + submitted)
    return {currency: pair for currency, pair in sums.items() if pair[0]}


@pytest.mark.parametrize("zone", ["UTC", "Pacific/Auckland"])
def test_dashboard_figures_equal_the_rules_applied_to_every_milestone(
    db: Database, db_url: str, zone: str
) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    data = generate(db_url, 400, now=now)
    with db.unit_of_work() as session:
        for user in session.scalars(select(User)):
            user.time_zone = zone
    checked = 0
    for user_id, tab in (
        (data.client_id, views.Tab.OUTGOING),
        (data.client_id, views.Tab.INCOMING),
        (data.freelancer_id, views.Tab.INCOMING),
        (data.freelancer_id, views.Tab.OUTGOING),
    ):
        with db.read_only() as session:
            ctx = Context(session, session.get(User, user_id), now=now)
            party = views.dashboard_party(user_id, tab)
            dashboard = views.dashboard(ctx, tab=tab)
            assert dashboard.forecast == _forecast_one_by_one(ctx, party, tab, ZoneInfo(zone))
            assert dashboard.history == _history_one_by_one(ctx, party, ZoneInfo(zone))
            assert {t.currency: (t.in_escrow, t.awaiting_review) for t in dashboard.totals} == (
                _totals_one_by_one(ctx, party)
            )
            checked += len(dashboard.forecast.charts) + len(dashboard.history)
            held = {
                currency: held for currency, (held, _) in _totals_one_by_one(ctx, party).items()
            }
            escrow = {
                b.currency: b.escrow_outgoing if tab is views.Tab.OUTGOING else b.escrow_incoming
                for b in dashboard.balances
            }
            assert {c: v for c, v in escrow.items() if v} == held
    # The generated history has something in every chart of both parties: the test compared figures.
    assert checked == 8
