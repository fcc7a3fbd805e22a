"""Read models for the web pages: the dashboard's figures and everything a milestone page shows.

The pages only lay these out; every figure and every "may this viewer do that" is decided here.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum

from sqlalchemy import ColumnElement, case, func, select

from milepost.kit.context import Context
from milepost.kit.errors import InvalidRequest
from milepost.ledger.models import Account, AccountKind, EntryKind, JournalEntry, Posting
from milepost.milestones.models import Milestone
from milepost.milestones.state import TERMINAL, MilestoneStatus
from milepost.projects.models import Project
from milepost.wallets.service import Balance, balances

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


@dataclass(frozen=True)
class Dashboard:
    tab: Tab
    milestones: list[MilestoneLine]  # overdue first, then by the next date
    upcoming: list[MilestoneLine]  # open milestones with a date still ahead, soonest first
    totals: list[Totals]
    balances: list[Balance]


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


def dashboard(ctx: Context, *, tab: object = None) -> Dashboard:
    """The signed-in user's dashboard for one tab; wallet balances are the user's, whatever the tab."""
    actor = ctx.require_actor()
    chosen = parse_tab(tab)
    party = (
        Milestone.client_id == actor.id
        if chosen is Tab.OUTGOING
        else Project.freelancer_id == actor.id
    )
    rows = ctx.session.execute(
        select(Milestone, Project.title)
        .join(Project, Project.id == Milestone.project_id)
        .where(party)
        .order_by(Milestone.created_at.desc(), Milestone.id)
        .limit(DASHBOARD_LIMIT)
    ).all()
    today = ctx.now.date()
    lines = [_line(milestone, title, today) for milestone, title in rows]
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
        milestones=ordered,
        upcoming=upcoming,
        totals=_totals(ctx, party, ctx.now),
        balances=balances(ctx, actor.id),
    )


def _totals(ctx: Context, party: ColumnElement[bool], now: datetime) -> list[Totals]:
    """Figures over every milestone of the tab (not only the ones listed), per currency."""
    escrow = Milestone.funded_amount - Milestone.released_amount - Milestone.refunded_amount
    in_escrow: dict[str, int] = {}
    awaiting: dict[str, int] = {}
    for currency, held, submitted in ctx.session.execute(
        select(
            Milestone.currency,
            func.sum(escrow),
            func.sum(case((Milestone.status == S.SUBMITTED, escrow), else_=0)),
        )
        .join(Project, Project.id == Milestone.project_id)
        .where(party)
        .group_by(Milestone.currency)
    ).all():
        in_escrow[currency] = int(held or 0)
        awaiting[currency] = int(submitted or 0)
    month_start = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    # What left the escrow accounts to the freelancer this month (a release takes it out of escrow).
    released = {
        currency: -int(total)
        for currency, total in ctx.session.execute(
            select(Posting.currency, func.sum(Posting.amount))
            .join(JournalEntry, JournalEntry.id == Posting.entry_id)
            .join(Account, Account.id == Posting.account_id)
            .join(Milestone, Milestone.id == Account.milestone_id)
            .join(Project, Project.id == Milestone.project_id)
            .where(
                JournalEntry.kind == EntryKind.RELEASE,
                JournalEntry.created_at >= month_start,
                Account.kind == AccountKind.ESCROW,
                party,
            )
            .group_by(Posting.currency)
        ).all()
    }
    currencies = sorted(
        {c for c, v in in_escrow.items() if v} | {c for c, v in released.items() if v}
    )
    return [
        Totals(
            currency=currency,
            in_escrow=in_escrow.get(currency, 0),
            awaiting_review=awaiting.get(currency, 0),
            released_this_month=released.get(currency, 0),
        )
        for currency in currencies
    ]
