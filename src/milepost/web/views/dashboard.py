"""Read model for the dashboard: milestones by tab, totals, the money charts and the cash-flow forecast.

The pages only lay these out; every figure and every "may this viewer do that" is decided here.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from enum import StrEnum
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, Row, and_, case, false, func, not_, null, or_, select
from sqlalchemy.orm import QueryableAttribute, selectinload

from milepost.kit.context import Context
from milepost.kit.db import plan_as_index_reads
from milepost.kit.errors import InvalidRequest
from milepost.kit.time import as_utc
from milepost.ledger.models import Account, AccountKind, EntryKind, JournalEntry, Posting
from milepost.milestones.models import Milestone, escrow_held, funding_overdue, holds_escrow
from milepost.milestones.service import amount_to_fund
from milepost.milestones.state import TERMINAL, MilestoneStatus
from milepost.projects.models import Project
from milepost.wallets.models import Deposit, DepositStatus, Payout, PayoutStatus
from milepost.wallets.service import Balance, balances
from milepost.web.views.attention import Item, Side, needs_you

S = MilestoneStatus
DASHBOARD_LIMIT = 200


class Tab(StrEnum):
    OUTGOING = "outgoing"  # milestones the viewer pays for, as client
    INCOMING = "incoming"  # milestones the viewer is paid for, as freelancer


@dataclass(frozen=True)
class MilestoneLine:
    id: str
    title: str
    project_title: str
    status: MilestoneStatus
    amount: int
    currency: str
    escrow_balance: int
    # The date that matters next: fund-by for a draft, the review deadline for a submission, else the
    # delivery due date.
    next_date: date | None
    next_date_label: str
    overdue: bool


@dataclass(frozen=True)
class Totals:
    currency: str
    in_escrow: int
    awaiting_review: int  # escrow of milestones delivered and waiting for the client's decision
    released_this_month: int  # gross, fee included
    fees_this_month: int  # the platform fee those releases took

    @property
    def received_this_month(self) -> int:
        """What the freelancer received of this month's releases, after the fee."""
        return self.released_this_month - self.fees_this_month


@dataclass(frozen=True)
class Dashboard:
    tab: Tab
    needs_you: list[Item]  # what waits for the viewer, on any side (``attention.needs_you``)
    milestones: list[MilestoneLine]  # overdue first, then by the next date
    upcoming: list[MilestoneLine]  # open milestones with a date still ahead, soonest first
    totals: list[Totals]
    balances: list[Balance]
    history: list[Chart]  # money over time, one chart per currency
    forecast: Forecast
    pending_deposits: list[Deposit]
    pending_payouts: list[Payout]


def _next_date(milestone: Milestone) -> tuple[date | None, str]:
    if milestone.status is S.DRAFT:
        return milestone.fund_by, "fund by"
    if milestone.status is S.SUBMITTED and milestone.review_due_at is not None:
        return milestone.review_due_at.date(), "review by"
    if milestone.status in (S.FUNDED, S.CHANGES_REQUESTED):
        return milestone.due_date, "due"
    return None, ""


def _line(milestone: Milestone, project_title: str, today: date) -> MilestoneLine:
    next_date, label = _next_date(milestone)
    overdue = (
        milestone.status not in TERMINAL
        and next_date is not None
        # The fund-by day itself is already "due" (the first reminder goes out that day).
        and (next_date <= today if milestone.status is S.DRAFT else next_date < today)
    )
    return MilestoneLine(
        id=milestone.id,
        title=milestone.title,
        project_title=project_title,
        status=milestone.status,
        amount=milestone.amount,
        currency=milestone.currency,
        escrow_balance=milestone.escrow_balance,
        next_date=next_date,
        next_date_label=label,
        overdue=overdue,
    )


def parse_tab(value: object) -> Tab:
    if value is None or value == "":
        return Tab.OUTGOING
    if value not in set(Tab):
        raise InvalidRequest("tab must be outgoing or incoming.", param="tab")
    return Tab(str(value))


def dashboard_party(user_id: str, tab: object) -> ColumnElement[bool]:
    """The milestones of a tab: those the user pays for (outgoing) or works on (incoming, through the
    projects: a query with it joins Project)."""
    if parse_tab(tab) is Tab.OUTGOING:
        return Milestone.client_id == user_id
    return Project.freelancer_id == user_id


def default_tab(ctx: Context, user_id: str, waiting: list[Item]) -> Tab:
    """The side the person uses: the side of what needs them first; else incoming for someone who only
    works as a freelancer; else outgoing."""
    for item in waiting:
        if item.side is Side.FREELANCER:
            return Tab.INCOMING
        if item.side is Side.CLIENT:
            return Tab.OUTGOING
    pays = ctx.session.scalar(select(Milestone.id).where(Milestone.client_id == user_id).limit(1))
    if pays is None:
        works = ctx.session.scalar(
            select(Project.id).where(Project.freelancer_id == user_id).limit(1)
        )
        if works is not None:
            return Tab.INCOMING
    return Tab.OUTGOING


def dashboard(ctx: Context, *, tab: object = None) -> Dashboard:
    """The signed-in user's dashboard for one tab (by default the side they use: ``default_tab``);
    what needs them and their wallet balances, whatever the tab."""
    actor = ctx.require_actor()
    waiting = needs_you(ctx)
    chosen = default_tab(ctx, actor.id, waiting) if tab in (None, "") else parse_tab(tab)
    zone = ZoneInfo(actor.time_zone or "UTC")
    party = dashboard_party(actor.id, chosen)
    today = ctx.now.date()
    lines = [_line(milestone, title, today) for milestone, title in newest_milestones(ctx, party)]
    far = date.max
    ordered = sorted(
        lines,
        key=lambda line: (
            not line.overdue,
            line.status in TERMINAL,
            line.next_date or far,
        ),
    )
    upcoming = sorted(
        (line for line in lines if line.next_date is not None and not line.overdue),
        key=lambda line: line.next_date or far,
    )[:5]
    return Dashboard(
        tab=chosen,
        needs_you=waiting,
        milestones=ordered,
        upcoming=upcoming,
        totals=_totals(ctx, party, ctx.now),
        balances=balances(ctx, actor.id),
        history=money_over_time(ctx, party, zone),
        forecast=cash_flow_forecast(ctx, party, chosen, zone),
        pending_deposits=pending_deposits(ctx, actor.id),
        pending_payouts=pending_payouts(ctx, actor.id),
    )


# How far back the list looks first, then further while it finds fewer than DASHBOARD_LIMIT.
LIST_WINDOWS = (timedelta(days=60), timedelta(days=730), None)


def newest_milestones(ctx: Context, party: ColumnElement[bool]) -> Sequence[Row[Milestone, str]]:
    """The tab's DASHBOARD_LIMIT newest milestones (with their project's title), newest first.

    Looked for in the last LIST_WINDOWS first: a full list found there is the list (whatever lies
    before the window is older than all of it), and for a busy party it is all there, so the read is of
    what the list shows rather than of every milestone. A party with fewer recent ones takes a wider
    window, at last no bound at all. The client's milestones are read in order of creation straight from
    an index; the freelancer's come through their projects, an index per project."""
    query = (
        select(Milestone, Project.title)
        .join(Project, Project.id == Milestone.project_id)
        .where(party)
        .order_by(Milestone.created_at.desc(), Milestone.id)
        .limit(DASHBOARD_LIMIT)
    )
    for window in LIST_WINDOWS:
        bounded = query if window is None else query.where(Milestone.created_at >= ctx.now - window)
        rows = ctx.session.execute(bounded).all()
        if len(rows) == DASHBOARD_LIMIT:
            break
    return rows


def _totals(ctx: Context, party: ColumnElement[bool], now: datetime) -> list[Totals]:
    """Figures over every milestone of the tab (not only the ones listed), per currency. The escrow sums
    read only the milestones whose escrow holds money (the others add nothing), through a partial index;
    the releases, only this month's entries."""
    escrow = escrow_held()
    in_escrow: dict[str, int] = {}
    awaiting: dict[str, int] = {}
    for currency, held, submitted in ctx.session.execute(
        select(
            Milestone.currency,
            func.sum(escrow),
            func.sum(case((Milestone.status == S.SUBMITTED, escrow), else_=0)),
        )
        .join(Project, Project.id == Milestone.project_id)
        .where(party, holds_escrow())
        .group_by(Milestone.currency)
    ).all():
        in_escrow[currency] = int(held or 0)
        awaiting[currency] = int(submitted or 0)
    month_start = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    # What this month's releases took out of the escrow accounts (gross), and the platform fee they
    # took of it (the freelancer received the rest): one pass over their postings.
    released: dict[str, int] = {}
    fees: dict[str, int] = {}
    for currency, gross, fee in ctx.session.execute(
        select(
            Posting.currency,
            func.sum(case((Account.kind == AccountKind.ESCROW, -Posting.amount), else_=0)),
            func.sum(case((Account.kind == AccountKind.PLATFORM_FEE, Posting.amount), else_=0)),
        )
        .join(JournalEntry, JournalEntry.id == Posting.entry_id)
        .join(Account, Account.id == Posting.account_id)
        .join(Milestone, Milestone.id == JournalEntry.milestone_id)
        .join(Project, Project.id == Milestone.project_id)
        .where(
            JournalEntry.kind == EntryKind.RELEASE,
            JournalEntry.created_at >= month_start,
            Account.kind.in_([AccountKind.ESCROW, AccountKind.PLATFORM_FEE]),
            party,
        )
        .group_by(Posting.currency)
    ).all():
        released[currency], fees[currency] = int(gross or 0), int(fee or 0)
    currencies = sorted(
        {c for c, v in in_escrow.items() if v} | {c for c, v in released.items() if v}
    )
    return [
        Totals(
            currency=currency,
            in_escrow=in_escrow.get(currency, 0),
            awaiting_review=awaiting.get(currency, 0),
            released_this_month=released.get(currency, 0),
            fees_this_month=fees.get(currency, 0),
        )
        for currency in currencies
    ]


# Charts: money over time and the cash-flow forecast ------------------------------------------------------

HISTORY_WEEKS = 12
FORECAST_WEEKS = 8


@dataclass(frozen=True)
class Series:
    key: str  # funded, released, refunded; to_fund, to_release
    label: str
    values: tuple[int, ...]  # one per bucket, minor units


@dataclass(frozen=True)
class Chart:
    """Figures per week for one currency: ``weeks`` are the Mondays that start each bucket."""

    currency: str
    weeks: tuple[date, ...]
    series: tuple[Series, ...]


@dataclass(frozen=True)
class Flow:
    """One movement into or out of a milestone's escrow, on the viewer's calendar day."""

    day: date
    currency: str
    kind: str  # a series key
    amount: int


HISTORY_SERIES = {
    "funded": "Funded into escrow",
    "released": "Released from escrow",
    "refunded": "Refunded from escrow",
}
FORECAST_SERIES = {
    Tab.OUTGOING: {"to_fund": "You fund into escrow", "to_release": "Released from escrow"},
    Tab.INCOMING: {"to_fund": "Funded into escrow for you", "to_release": "Released to you"},
}


def week_start(day: date) -> date:
    """Weeks run Monday to Sunday (ISO 8601)."""
    return day - timedelta(days=day.weekday())


def weeks_from(first: date, count: int) -> tuple[date, ...]:
    start = week_start(first)
    return tuple(start + timedelta(weeks=index) for index in range(count))


def bucket_by_week(
    flows: Iterable[Flow], weeks: tuple[date, ...], series: dict[str, str]
) -> list[Chart]:
    """Sum flows into weekly buckets, one chart per currency that has any flow in range.

    Per bucket, not cumulative: "how much moved that week" is the question a dashboard answers, and a
    running total would hide a small refund under a large funding. Flows outside ``weeks`` are ignored.
    """
    index = {week: position for position, week in enumerate(weeks)}
    sums: dict[str, dict[str, list[int]]] = {}
    for flow in flows:
        position = index.get(week_start(flow.day))
        if position is None or flow.kind not in series or flow.amount == 0:
            continue
        per_kind = sums.setdefault(flow.currency, {key: [0] * len(weeks) for key in series})
        per_kind[flow.kind][position] += flow.amount
    return [
        Chart(
            currency=currency,
            weeks=weeks,
            series=tuple(
                Series(key, label, tuple(sums[currency][key])) for key, label in series.items()
            ),
        )
        for currency in sorted(sums)
    ]


class WeekBuckets:
    """Weeks as SQL sees them, so that the database sums per week: a date or a moment (in ``zone``)
    becomes the number of its week, 0 for the first (or before it), ``len(weeks)`` after the last, NULL
    for none; and a number becomes a day of that week again (no earlier than ``not_before``), which
    puts whatever was summed under it in the same week as each of its parts."""

    def __init__(
        self, weeks: tuple[date, ...], zone: ZoneInfo, *, not_before: date | None = None
    ) -> None:
        after = weeks[-1] + timedelta(weeks=1)
        self.days = [max(week, not_before or week) for week in weeks] + [after]
        self.day_bounds = [*weeks[1:], after]
        self.moment_bounds = [
            datetime.combine(day, time.min, tzinfo=zone) for day in self.day_bounds
        ]
        self.zone = zone

    def of(self, column: QueryableAttribute[Any], *, moments: bool = False) -> ColumnElement[Any]:
        bounds: list[Any] = self.moment_bounds if moments else self.day_bounds
        return case(
            (column.is_(None), null()),
            *((column < bound, week) for week, bound in enumerate(bounds)),
            else_=len(bounds),
        )

    def day(self, week: int | None) -> date | None:
        return None if week is None else self.days[week]

    def moment(self, week: int | None) -> datetime | None:
        return None if week is None else datetime.combine(self.days[week], time.min, self.zone)


def _local_day(moment: datetime, zone: ZoneInfo) -> date:
    return as_utc(moment).astimezone(zone).date()


def money_over_time(ctx: Context, party: ColumnElement[bool], zone: ZoneInfo) -> list[Chart]:
    """Funded, released and refunded per week over the last 12 weeks (this one included), from the
    ledger's postings on the escrow accounts of the tab's milestones. Weeks rather than months: a
    project's milestones are weeks apart, so months would pile most of it into one or two bars; and the
    forecast uses the same weeks (in the viewer's time zone, Monday first).

    A dispute split takes money out of escrow to both sides: the client's share counts as refunded, the
    rest (fee included) as released, as ``Milestone.released_amount``/``refunded_amount`` count them.
    Releases are gross (fee included), as in the totals.
    """
    today = _local_day(ctx.now, zone)
    weeks = weeks_from(today - timedelta(weeks=HISTORY_WEEKS - 1), HISTORY_WEEKS)
    since = datetime.combine(weeks[0], time.min, tzinfo=zone)
    buckets = WeekBuckets(weeks, zone)
    plan_as_index_reads(ctx.session)  # a few thousand postings through indexes (kit/db.py)
    # The postings summed per week in the database (as many rows as weeks, kinds and currencies, however
    # many postings): escrow_flows reads each sum as one posting made on the first day of its week.
    postings = (
        select(
            JournalEntry.kind.label("entry_kind"),
            buckets.of(JournalEntry.created_at, moments=True).label("week"),
            Account.kind.label("account_kind"),
            Posting.currency,
            Posting.amount,
        )
        .join(Posting, Posting.entry_id == JournalEntry.id)
        .join(Account, Account.id == Posting.account_id)
        .join(Milestone, Milestone.id == JournalEntry.milestone_id)
        .join(Project, Project.id == Milestone.project_id)
        .where(
            party,
            JournalEntry.created_at >= since,
            JournalEntry.kind.in_(
                [EntryKind.FUND, EntryKind.RELEASE, EntryKind.REFUND, EntryKind.DISPUTE_SPLIT]
            ),
            or_(
                and_(Account.kind == AccountKind.ESCROW, Account.milestone_id == Milestone.id),
                # A split's refund leg: the client's own account, in the same entry.
                and_(
                    JournalEntry.kind == EntryKind.DISPUTE_SPLIT,
                    Account.kind == AccountKind.USER,
                    Account.user_id == Milestone.client_id,
                ),
            ),
        )
        .subquery()
    )
    keys = (postings.c.entry_kind, postings.c.week, postings.c.account_kind, postings.c.currency)
    sums = ctx.session.execute(select(*keys, func.sum(postings.c.amount)).group_by(*keys)).all()
    rows = [
        (
            EntryKind(entry_kind),
            buckets.moment(week) or since,
            AccountKind(account_kind),
            currency,
            int(amount),
        )
        for entry_kind, week, account_kind, currency, amount in sums
    ]
    return bucket_by_week(escrow_flows(rows, zone), weeks, HISTORY_SERIES)


def escrow_flows(
    rows: Iterable[tuple[EntryKind, datetime, AccountKind, str, int]], zone: ZoneInfo
) -> list[Flow]:
    """Postings (entry kind, when, account kind, currency, amount) as funded/released/refunded flows."""
    flows: list[Flow] = []
    for entry_kind, created_at, account_kind, currency, amount in rows:
        day = _local_day(created_at, zone)
        if entry_kind is EntryKind.FUND and account_kind is AccountKind.ESCROW:
            flows.append(Flow(day, currency, "funded", amount))
        elif entry_kind is EntryKind.RELEASE and account_kind is AccountKind.ESCROW:
            flows.append(Flow(day, currency, "released", -amount))
        elif entry_kind is EntryKind.REFUND and account_kind is AccountKind.ESCROW:
            flows.append(Flow(day, currency, "refunded", -amount))
        elif entry_kind is EntryKind.DISPUTE_SPLIT:
            # Escrow out (negative) counts as released; the client's leg moves it to refunded.
            if account_kind is AccountKind.ESCROW:
                flows.append(Flow(day, currency, "released", -amount))
            else:
                flows.append(Flow(day, currency, "released", -amount))
                flows.append(Flow(day, currency, "refunded", amount))
    return flows


@dataclass(frozen=True)
class Forecast:
    charts: list[Chart]
    undated: int  # open milestones that have no date to place their payment on


class Payable(Protocol):
    """What ``expected_payment`` reads of a milestone (a ``Milestone``, or ``OpenMilestones`` alike)."""

    @property
    def status(self) -> MilestoneStatus: ...
    @property
    def fund_by(self) -> date | None: ...
    @property
    def due_date(self) -> date | None: ...
    @property
    def review_due_at(self) -> datetime | None: ...
    @property
    def release_due_at(self) -> datetime | None: ...
    @property
    def escrow_balance(self) -> int: ...


def expected_payment(
    milestone: Payable, to_fund: int, zone: ZoneInfo
) -> tuple[str, int, date | None] | None:
    """(series key, amount, day) of the next payment a milestone expects; None when none is expected
    (ended, disputed: frozen, or nothing left in escrow). The day is None when the terms give none.

    Drafts are funded by their fund-by date, else their due date, with ``to_fund`` (amount plus accrued
    late fee). A submission is released when its review period lapses (auto-approval), an approval with a
    release delay when the delay ends, funded work by its due date; each with what its escrow holds.
    """
    status = milestone.status
    if status is S.DRAFT:
        return "to_fund", to_fund, milestone.fund_by or milestone.due_date
    if milestone.escrow_balance == 0:
        return None
    moment = {S.SUBMITTED: milestone.review_due_at, S.APPROVED: milestone.release_due_at}.get(
        status
    )
    if moment is not None:
        return "to_release", milestone.escrow_balance, _local_day(moment, zone)
    if status in (S.FUNDED, S.CHANGES_REQUESTED):
        return "to_release", milestone.escrow_balance, milestone.due_date
    return None


# What the forecast looks at: every milestone not ended and not frozen by a dispute.
FORECAST_STATUSES = frozenset(S) - TERMINAL - {S.DISPUTED}


@dataclass(frozen=True)
class OpenMilestones:
    """Open milestones of one status and currency whose dates fall in the same forecast weeks (and that
    all hold escrow, or none does), summed: what ``expected_payment`` reads of one of them, with the
    dates moved to the first day of their week that is not past (the week is all the forecast keeps),
    and the sums of their amounts (``to_fund``, for drafts that owe no late fee) and escrow."""

    status: MilestoneStatus
    currency: str
    fund_by: date | None
    due_date: date | None
    review_due_at: datetime | None
    release_due_at: datetime | None
    escrow_balance: int
    to_fund: int
    count: int


def open_milestones(
    ctx: Context, party: ColumnElement[bool], weeks: WeekBuckets
) -> list[OpenMilestones]:
    """The tab's open milestones (FORECAST_STATUSES) summed per status, currency and forecast week of
    each date, in SQL: as many rows as there are such groups, however many milestones they hold. Drafts
    whose funding is overdue are left out (see ``cash_flow_forecast``)."""
    bucketed = (
        select(
            Milestone.status,
            Milestone.currency,
            weeks.of(Milestone.fund_by).label("fund_by"),
            weeks.of(Milestone.due_date).label("due_date"),
            weeks.of(Milestone.review_due_at, moments=True).label("review_due_at"),
            weeks.of(Milestone.release_due_at, moments=True).label("release_due_at"),
            case((holds_escrow(), 1), else_=0).label("holding"),
            Milestone.amount,
            escrow_held().label("escrow"),
        )
        .join(Project, Project.id == Milestone.project_id)
        .where(
            party,
            Milestone.status.in_(sorted(FORECAST_STATUSES)),
            # Not "overdue" may be unknown (NULL: no fund-by date): such a draft is not overdue.
            not_(func.coalesce(funding_overdue(ctx.now.date()), false())),
        )
        .subquery()
    )
    keys = (
        bucketed.c.status,
        bucketed.c.currency,
        bucketed.c.fund_by,
        bucketed.c.due_date,
        bucketed.c.review_due_at,
        bucketed.c.release_due_at,
        bucketed.c.holding,
    )
    rows = ctx.session.execute(
        select(
            *keys,
            func.sum(bucketed.c.escrow).label("escrow_sum"),
            func.sum(bucketed.c.amount).label("amount_sum"),
            func.count().label("milestones"),
        ).group_by(*keys)
    ).all()
    return [
        OpenMilestones(
            status=MilestoneStatus(row.status),
            currency=row.currency,
            fund_by=weeks.day(row.fund_by),
            due_date=weeks.day(row.due_date),
            review_due_at=weeks.moment(row.review_due_at),
            release_due_at=weeks.moment(row.release_due_at),
            escrow_balance=int(row.escrow_sum),
            to_fund=int(row.amount_sum),
            count=int(row.milestones),
        )
        for row in rows
    ]


def cash_flow_forecast(
    ctx: Context, party: ColumnElement[bool], tab: Tab, zone: ZoneInfo
) -> Forecast:
    """Upcoming payments of the tab's open milestones over the next 8 weeks (this one first), per
    currency. Payments already overdue count in this week: they are due now.

    The database sums the open milestones whose payment only a week can tell apart (``open_milestones``),
    and ``expected_payment`` places each sum. Drafts whose funding is overdue are read one by one instead:
    only they may owe a late fee (none accrues before the fund-by date), and ``amount_to_fund`` says what
    each takes; a draft not yet due takes its amount."""
    today = _local_day(ctx.now, zone)
    weeks = weeks_from(today, FORECAST_WEEKS)
    flows: list[Flow] = []
    undated = 0

    def add(milestone: Payable, currency: str, to_fund: int, count: int) -> None:
        nonlocal undated
        expected = expected_payment(milestone, to_fund, zone)
        if expected is None:
            return
        kind, amount, day = expected
        if day is None:
            undated += count
        else:
            flows.append(Flow(max(day, today), currency, kind, amount))

    for group in open_milestones(ctx, party, WeekBuckets(weeks, zone, not_before=today)):
        add(group, group.currency, group.to_fund, group.count)
    overdue_drafts = ctx.session.scalars(
        select(Milestone)
        .join(Project, Project.id == Milestone.project_id)
        .where(party, funding_overdue(ctx.now.date()))
    )
    for draft in overdue_drafts:
        add(draft, draft.currency, amount_to_fund(draft, ctx)[0], 1)
    return Forecast(bucket_by_week(flows, weeks, FORECAST_SERIES[tab]), undated)


# Wallet: deposits and payouts still waiting for staff ----------------------------------------------------


def pending_deposits(ctx: Context, user_id: str) -> list[Deposit]:
    """Manual deposits not yet confirmed: the user needs their reference for the bank transfer."""
    return list(
        ctx.session.scalars(
            select(Deposit)
            .where(Deposit.user_id == user_id, Deposit.status == DepositStatus.PENDING)
            .order_by(Deposit.created_at.desc(), Deposit.id)
        )
    )


def pending_payouts(ctx: Context, user_id: str) -> list[Payout]:
    return list(
        ctx.session.scalars(
            select(Payout)
            .where(Payout.user_id == user_id, Payout.status == PayoutStatus.PENDING)
            .options(selectinload(Payout.destination))  # shown after the read ends
            .order_by(Payout.created_at.desc(), Payout.id)
        )
    )
