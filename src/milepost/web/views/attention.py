"""What needs the signed-in person now, first thing on the dashboard: as a client (a delivery to review,
a release asked for, a funding due, a dispute to answer), as a freelancer (changes asked for, a
cancellation asked for, a delivery due, a dispute to answer), offers and milestone requests to answer,
and as staff (disputes past mediation,
transfers to confirm).

Each item is read from the state the services keep (statuses, deadlines, open disputes and their
answers); the milestone page the item links to offers the form that deals with it, by the services' own
guards. Overdue first, then by deadline.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum

from sqlalchemy import ColumnElement, and_, func, or_, select

from milepost.audit.models import MilestoneEvent
from milepost.disputes.models import Dispute, DisputeStatus, OfferStatus, SettlementOffer
from milepost.events import EventAction
from milepost.kit.context import Context
from milepost.milestones.models import Milestone
from milepost.milestones.service import amount_to_fund
from milepost.milestones.state import MilestoneStatus, Role
from milepost.money import format_money
from milepost.projects import offers
from milepost.projects.models import MilestoneRequest, Project
from milepost.projects.state import MilestoneRequestStatus
from milepost.wallets.models import Deposit, DepositStatus, Payout, PayoutStatus
from milepost.web.views.milestone import duration_text
from milepost.web.views.pending_transfers import STAFF_CONFIRMED

S = MilestoneStatus
SOON = timedelta(days=7)  # a funding or a delivery due within a week needs attention now
LIMIT = 50  # items of one kind, at most


class Side(StrEnum):
    CLIENT = "client"
    FREELANCER = "freelancer"
    STAFF = "staff"


@dataclass(frozen=True)
class Item:
    side: Side
    what: str  # "Review the delivery of “Logo”"
    detail: str  # "$1,000.00 in escrow; 2 days 4 hours left, then it is approved and released"
    href: str
    due: datetime | None  # the deadline, if there is one (the end of the day, for a date)
    overdue: bool
    timed: bool = False  # the deadline is a moment to show (a date's is in ``detail`` already)


def needs_you(ctx: Context) -> list[Item]:
    """Everything that waits for the signed-in person, overdue first, then soonest deadline first."""
    actor = ctx.require_actor()
    items = [
        *_as_client(ctx, actor.id),
        *_as_freelancer(ctx, actor.id),
        *_disputes_to_answer(ctx, actor.id),
        *_project_answers(ctx, actor.id),
        *(_as_staff(ctx) if actor.is_staff else []),
    ]
    latest = datetime.max.replace(tzinfo=UTC)
    return sorted(items, key=lambda item: (not item.overdue, item.due or latest))


def _title(milestone: Milestone) -> str:
    return f"“{milestone.title}”"


def _money(milestone: Milestone, amount: int) -> str:
    return format_money(amount, milestone.currency)


def _end_of(day: date) -> datetime:
    return datetime.combine(day, time.max, tzinfo=UTC)


def _asked_to_release() -> ColumnElement[bool]:
    """The freelancer asked for the release since the last delivery (or since funding, before any)."""
    return (
        select(MilestoneEvent.id)
        .where(
            MilestoneEvent.milestone_id == Milestone.id,
            MilestoneEvent.action == EventAction.RELEASE_REQUESTED,
            MilestoneEvent.created_at >= func.coalesce(Milestone.submitted_at, Milestone.funded_at),
        )
        .exists()
    )


def _as_client(ctx: Context, user_id: str) -> list[Item]:
    """One read: the client's deliveries to review, fundings due soon, and release requests. Filtered in
    SQL on the (client, status) index, without an order to sort all their milestones by (the list is
    sorted by deadline afterwards)."""
    now, soon = ctx.now, ctx.now.date() + SOON
    asked = _asked_to_release()
    query = (
        select(Milestone, Project.title, asked.label("asked"))
        .join(Project, Project.id == Milestone.project_id)
        .where(
            Milestone.client_id == user_id,
            # The open statuses first, for the index to find; then which of them need the client.
            Milestone.status.in_([S.SUBMITTED, S.DRAFT, S.FUNDED, S.CHANGES_REQUESTED]),
            or_(
                Milestone.status == S.SUBMITTED,
                and_(Milestone.status == S.DRAFT, Milestone.fund_by <= soon),
                and_(Milestone.status.in_([S.FUNDED, S.CHANGES_REQUESTED]), asked),
            ),
        )
        .limit(LIMIT)
    )
    items: list[Item] = []
    for milestone, project, was_asked in ctx.session.execute(query).all():
        href = f"/milestones/{milestone.id}"
        if milestone.status is S.SUBMITTED and milestone.review_due_at is not None:
            left = max(0, int((milestone.review_due_at - now).total_seconds()))
            nudged = " The freelancer asks you to release it." if was_asked else ""
            items.append(
                Item(
                    Side.CLIENT,
                    f"Review the delivery of {_title(milestone)}",
                    f"{project}: {_money(milestone, milestone.escrow_balance)} in escrow; "
                    f"{duration_text(left)} left, then it is approved and released "
                    f"automatically.{nudged}",
                    href,
                    milestone.review_due_at,
                    False,
                    timed=True,
                )
            )
        elif milestone.status is S.DRAFT and milestone.fund_by is not None:
            late = milestone.fund_by <= now.date()
            total = amount_to_fund(milestone, ctx)[0]
            items.append(
                Item(
                    Side.CLIENT,
                    f"Fund {_title(milestone)}",
                    f"{project}: {_money(milestone, total)} "
                    f"{'was due' if late else 'is due'} by {milestone.fund_by.isoformat()}.",
                    href,
                    _end_of(milestone.fund_by),
                    late,
                )
            )
        elif was_asked:
            items.append(
                Item(
                    Side.CLIENT,
                    f"The freelancer asks you to release {_title(milestone)}",
                    f"{project}: {_money(milestone, milestone.escrow_balance)} in escrow.",
                    href,
                    None,
                    False,
                )
            )
    return items


def _as_freelancer(ctx: Context, user_id: str) -> list[Item]:
    items: list[Item] = []
    today, soon = ctx.now.date(), ctx.now.date() + SOON
    query = (
        select(Milestone, Project.title)
        .join(Project, Project.id == Milestone.project_id)
        .where(
            Project.freelancer_id == user_id,
            or_(
                Milestone.status == S.CHANGES_REQUESTED,
                and_(
                    Milestone.status == S.FUNDED,
                    or_(Milestone.cancellation_requested, Milestone.due_date <= soon),
                ),
            ),
        )
        .limit(LIMIT)
    )
    for milestone, project in ctx.session.execute(query).all():
        href = f"/milestones/{milestone.id}"
        due = milestone.due_date
        late = due is not None and due < today
        when = "" if due is None else f" Delivery {'was due' if late else 'is due'} {due}."
        if milestone.cancellation_requested:
            items.append(
                Item(
                    Side.FREELANCER,
                    f"The client asks to cancel {_title(milestone)}",
                    f"{project}: accept (the client gets "
                    f"{_money(milestone, milestone.escrow_balance)} back) or decline.",
                    href,
                    None,
                    False,
                )
            )
        if milestone.status is S.CHANGES_REQUESTED:
            items.append(
                Item(
                    Side.FREELANCER,
                    f"The client asked for changes to {_title(milestone)}",
                    f"{project}: deliver again.{when}",
                    href,
                    None if due is None else _end_of(due),
                    late,
                )
            )
        elif due is not None and due <= soon:
            items.append(
                Item(
                    Side.FREELANCER,
                    f"Deliver {_title(milestone)}",
                    f"{project}: {_money(milestone, milestone.escrow_balance)} in escrow.{when}",
                    href,
                    _end_of(due),
                    late,
                )
            )
    return items


def _project_answers(ctx: Context, user_id: str) -> list[Item]:
    """Offers of a project waiting for this person's answer (made to their account or their address),
    and milestone requests waiting for theirs as a project's client."""
    items = [
        Item(
            Side.FREELANCER,
            f"Answer the offer of “{project.title}”",
            "The client offers you this project: accept it to become its freelancer, or decline.",
            f"/projects/{project.id}#offers",
            None,
            False,
        )
        for offer in offers.offers_for_me(ctx)[:LIMIT]
        if (project := ctx.session.get(Project, offer.project_id)) is not None
    ]
    requests = (
        select(MilestoneRequest, Project)
        .join(Project, Project.id == MilestoneRequest.project_id)
        .where(
            Project.client_id == user_id,
            MilestoneRequest.status == MilestoneRequestStatus.PENDING,
        )
        .order_by(MilestoneRequest.created_at, MilestoneRequest.id)
        .limit(LIMIT)
    )
    items += [
        Item(
            Side.CLIENT,
            f"Answer the milestone request “{request.terms.get('title')}”",
            f"{project.title}: the freelancer asks for a new milestone of "
            f"{format_money(int(request.terms.get('amount') or 0), project.currency)}. Accept it as "
            "a draft, or reject it.",
            f"/projects/{project.id}#milestone-requests",
            None,
            False,
        )
        for request, project in ctx.session.execute(requests).all()
    ]
    return items


def _disputes_to_answer(ctx: Context, user_id: str) -> list[Item]:
    """Open disputes the other party opened and this person has not answered yet, and settlement offers
    the other party made that are still open."""
    mine_as_client = and_(Milestone.client_id == user_id, Dispute.opener_role == Role.FREELANCER)
    mine_as_freelancer = and_(Project.freelancer_id == user_id, Dispute.opener_role == Role.CLIENT)
    offers = (
        select(SettlementOffer, Milestone, Project.title)
        .join(Dispute, Dispute.id == SettlementOffer.dispute_id)
        .join(Milestone, Milestone.id == Dispute.milestone_id)
        .join(Project, Project.id == Milestone.project_id)
        .where(
            Dispute.status == DisputeStatus.OPEN,
            SettlementOffer.status == OfferStatus.OPEN,
            SettlementOffer.made_by != user_id,
            or_(Milestone.client_id == user_id, Project.freelancer_id == user_id),
        )
        .order_by(SettlementOffer.created_at, SettlementOffer.id)
        .limit(LIMIT)
    )
    items = [
        Item(
            Side.CLIENT if milestone.client_id == user_id else Side.FREELANCER,
            f"Answer the settlement offer on {_title(milestone)}",
            f"{project}: the {offer.maker_role} offers "
            f"{_money(milestone, offer.to_freelancer)} to the freelancer and "
            f"{_money(milestone, milestone.escrow_balance - offer.to_freelancer)} back to the "
            "client. Accept it, or make your own offer.",
            f"/milestones/{milestone.id}#dispute",
            None,
            False,
        )
        for offer, milestone, project in ctx.session.execute(offers).all()
    ]
    query = (
        select(Dispute, Milestone, Project.title)
        .join(Milestone, Milestone.id == Dispute.milestone_id)
        .join(Project, Project.id == Milestone.project_id)
        .where(
            Dispute.status == DisputeStatus.OPEN,
            Dispute.responded_at.is_(None),
            or_(mine_as_client, mine_as_freelancer),
        )
        .order_by(Dispute.respond_by, Dispute.id)
        .limit(LIMIT)
    )
    for dispute, milestone, project in ctx.session.execute(query).all():
        side = Side.CLIENT if milestone.client_id == user_id else Side.FREELANCER
        items.append(
            Item(
                side,
                f"Answer the dispute on {_title(milestone)}",
                f"{project}: without an answer by then, the {dispute.opener_role} wins "
                f"{_money(milestone, milestone.escrow_balance)}.",
                f"/milestones/{milestone.id}#dispute",
                dispute.respond_by,
                dispute.respond_by <= ctx.now,
                timed=True,
            )
        )
    return items


def _as_staff(ctx: Context) -> list[Item]:
    items = []
    # Past the mediation window, as the staff queue counts it (``dispute_queue``).
    waiting = ctx.session.scalar(
        select(func.count()).where(
            Dispute.status == DisputeStatus.OPEN,
            or_(Dispute.overdue_at.is_not(None), Dispute.mediation_due_at <= ctx.now),
        )
    )
    if waiting:
        items.append(
            Item(
                Side.STAFF,
                f"{waiting} dispute{'s wait' if waiting != 1 else ' waits'} for a staff decision",
                "Past the mediation window: the parties did not settle.",
                "/staff",
                None,
                True,
            )
        )
    deposits = ctx.session.scalar(
        select(func.count()).where(
            Deposit.status == DepositStatus.PENDING, Deposit.provider == STAFF_CONFIRMED
        )
    )
    payouts = ctx.session.scalar(
        select(func.count()).where(
            Payout.status == PayoutStatus.PENDING, Payout.provider == STAFF_CONFIRMED
        )
    )
    deposits, payouts = deposits or 0, payouts or 0
    transfers = deposits + payouts
    if transfers:
        items.append(
            Item(
                Side.STAFF,
                f"{transfers} bank transfer{'s' if transfers != 1 else ''} to confirm or send",
                f"{deposits} deposit{'s' if deposits != 1 else ''} to confirm, "
                f"{payouts} payout{'s' if payouts != 1 else ''} to send.",
                "/staff",
                None,
                False,
            )
        )
    return items
