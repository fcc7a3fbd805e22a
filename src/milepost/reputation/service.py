"""A user's reputation, computed when asked from the records themselves: the feedback table, the milestones,
the disputes, the ledger's postings and the milestones' audit events. Nothing is counted up as things happen,
so nothing can drift from what really happened.

The figures, exactly:

``rating_average``, ``ratings``
    The mean (half-up to two decimals) and the number of the ratings others gave the user; null mean when
    there are none.

``completion_rate`` (the user as freelancer)
    completed / ended, over the milestones of projects whose freelancer the user is, that ended (released,
    cancelled or resolved) after having been funded, and after the project was awarded to the user (the
    accepted proposal's time, or the project's creation when it named the freelancer at once). A draft
    cancelled before any money was committed, or a milestone the client cancelled before there was a
    freelancer, says nothing about the freelancer. Completed: released, or resolved with the freelancer
    getting at least half of the escrow in dispute. Null when no milestone counts; four decimals.

``on_time_payment_rate`` (the user as client)
    on time / assessed, over the user's milestones. A milestone is assessed on its funding when it has a
    fund-by date and was funded, or is still unfunded after that date (a draft past its fund-by date, or one
    cancelled after it). Funding is on time when it happened on or before the fund-by date (UTC days).
    It is assessed on its reviews for every delivery whose review ended or is overdue: a review is on time
    when the client's decision (or whatever else moved the milestone out of ``submitted``) came within the
    review period, read from the audit events; an automatic approval because the period lapsed, a later
    decision, or a review still pending past its due time is late. A milestone is on time when every part
    of it that was assessed was on time. Null when nothing was assessed; four decimals.

``total_earned`` (per currency)
    What reached the user's wallet as a freelancer, net of the platform fee: the credits to the user's
    available account from releases, from their share of dispute splits, and from bonuses.

``total_paid`` (per currency)
    What the user paid freelancers as a client, gross (the platform fee is taken from the freelancer's
    side): the amounts released from the user's milestones, the freelancer's part of dispute splits, and
    bonuses. Money still in escrow, and money refunded, is not paid.

``disputes``
    ``opened``: disputes the user opened (whatever became of them). ``lost``: disputes on the user's
    milestones (as client or freelancer) that were resolved (by settlement, by staff or for lack of an
    answer) with the user getting less than half of the escrow in dispute.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal

from sqlalchemy import func, or_, select

from milepost.audit.models import MilestoneEvent
from milepost.disputes.models import Dispute, DisputeStatus
from milepost.events import EventAction
from milepost.feedback.models import Feedback
from milepost.kit.context import Context
from milepost.kit.errors import NotFound
from milepost.ledger.models import Account, AccountKind, EntryKind, JournalEntry, Posting
from milepost.milestones.models import Milestone
from milepost.milestones.state import TERMINAL, MilestoneStatus
from milepost.projects.models import Project, Proposal, ProposalStatus
from milepost.users.models import User

S = MilestoneStatus


@dataclass(frozen=True)
class Ratio:
    numerator: int
    denominator: int

    @property
    def rate(self) -> float | None:
        return None if self.denominator == 0 else _round(self.numerator, self.denominator, 4)


@dataclass
class Reputation:
    user_id: str
    ratings: int
    rating_sum: int
    completion: Ratio
    on_time_payment: Ratio
    total_earned: dict[str, int] = field(default_factory=dict)
    total_paid: dict[str, int] = field(default_factory=dict)
    disputes_opened: int = 0
    disputes_lost: int = 0

    @property
    def rating_average(self) -> float | None:
        return None if self.ratings == 0 else _round(self.rating_sum, self.ratings, 2)


def _round(numerator: int, denominator: int, places: int) -> float:
    quotient = Decimal(numerator) / Decimal(denominator)
    return float(quotient.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP))


def reputation(ctx: Context, user_id: str) -> Reputation:
    """Any signed-in user may read anyone's reputation; an unknown user is 404."""
    ctx.require_actor()
    user = ctx.session.get(User, user_id)
    if user is None:
        raise NotFound("No such user.", param="id")
    count, total = ctx.session.execute(
        select(func.count(Feedback.id), func.coalesce(func.sum(Feedback.rating), 0)).where(
            Feedback.subject_id == user.id
        )
    ).one()
    opened, lost = dispute_counts(ctx, user.id)
    return Reputation(
        user_id=user.id,
        ratings=int(count),
        rating_sum=int(total),
        completion=completion(ctx, user.id),
        on_time_payment=on_time_payment(ctx, user.id),
        total_earned=total_earned(ctx, user.id),
        total_paid=total_paid(ctx, user.id),
        disputes_opened=opened,
        disputes_lost=lost,
    )


# As freelancer -----------------------------------------------------------------------------------------


def _freelancer_got_half(dispute: Dispute) -> bool:
    to_freelancer = dispute.to_freelancer or 0
    return 2 * to_freelancer >= to_freelancer + (dispute.to_client or 0)


def completion(ctx: Context, user_id: str) -> Ratio:
    rows = ctx.session.execute(
        select(Milestone, Project)
        .join(Project, Project.id == Milestone.project_id)
        .where(
            Project.freelancer_id == user_id,
            Milestone.status.in_(TERMINAL),
            Milestone.funded_at.is_not(None),
        )
    ).all()
    if not rows:
        return Ratio(0, 0)
    accepted = dict(
        ctx.session.execute(
            select(Proposal.project_id, Proposal.decided_at).where(
                Proposal.freelancer_id == user_id, Proposal.status == ProposalStatus.ACCEPTED
            )
        ).all()
    )
    resolved = _resolved_disputes(ctx, [milestone.id for milestone, _ in rows])
    ended = completed = 0
    for milestone, project in rows:
        awarded_at: datetime = accepted.get(project.id) or project.created_at
        if milestone.ended_at is None or milestone.ended_at < awarded_at:
            continue
        ended += 1
        if milestone.status is S.RELEASED:
            completed += 1
        elif milestone.status is S.RESOLVED:
            dispute = resolved.get(milestone.id)
            completed += dispute is not None and _freelancer_got_half(dispute)
    return Ratio(completed, ended)


def _resolved_disputes(ctx: Context, milestone_ids: Iterable[str]) -> dict[str, Dispute]:
    ids = list(milestone_ids)
    if not ids:
        return {}
    return {
        dispute.milestone_id: dispute
        for dispute in ctx.session.scalars(
            select(Dispute).where(
                Dispute.milestone_id.in_(ids), Dispute.status == DisputeStatus.RESOLVED
            )
        )
    }


# As client ---------------------------------------------------------------------------------------------


def _funding_on_time(milestone: Milestone, today: date) -> bool | None:
    """True or False when the funding can be judged, None when it cannot (yet)."""
    if milestone.fund_by is None:
        return None
    if milestone.funded_at is not None:
        return milestone.funded_at.date() <= milestone.fund_by
    if milestone.status is S.DRAFT:
        return False if today > milestone.fund_by else None
    # Cancelled without ever being funded: late only if the fund-by date had passed by then.
    ended = milestone.ended_at.date() if milestone.ended_at else today
    return False if ended > milestone.fund_by else None


def _reviews_on_time(
    milestone: Milestone, events: list[MilestoneEvent], now: datetime
) -> list[bool]:
    """One verdict per delivery whose review ended or is overdue, read from the audit events."""
    period = timedelta(days=milestone.review_period_days)
    verdicts: list[bool] = []
    due: datetime | None = None
    in_review = False
    for event in events:
        if event.action == EventAction.SUBMITTED:
            due = event.created_at + period
        if in_review and event.to_status is not None and event.to_status != S.SUBMITTED:
            assert due is not None
            verdicts.append(event.action != EventAction.AUTO_APPROVED and event.created_at <= due)
            in_review = False
        if event.to_status == S.SUBMITTED and event.from_status != S.SUBMITTED:
            in_review = True
    if in_review and due is not None and now > due:
        verdicts.append(False)  # still waiting for a decision after the review period
    return verdicts


def on_time_payment(ctx: Context, user_id: str) -> Ratio:
    milestones = list(ctx.session.scalars(select(Milestone).where(Milestone.client_id == user_id)))
    reviewed = [milestone.id for milestone in milestones if milestone.submitted_at is not None]
    events: dict[str, list[MilestoneEvent]] = defaultdict(list)
    if reviewed:
        for event in ctx.session.scalars(
            select(MilestoneEvent)
            .where(MilestoneEvent.milestone_id.in_(reviewed))
            .order_by(MilestoneEvent.milestone_id, MilestoneEvent.seq)
        ):
            events[event.milestone_id].append(event)
    assessed = on_time = 0
    for milestone in milestones:
        verdicts = _reviews_on_time(milestone, events.get(milestone.id, []), ctx.now)
        funding = _funding_on_time(milestone, ctx.now.date())
        if funding is not None:
            verdicts.append(funding)
        if verdicts:
            assessed += 1
            on_time += all(verdicts)
    return Ratio(on_time, assessed)


# Money -------------------------------------------------------------------------------------------------


def total_earned(ctx: Context, user_id: str) -> dict[str, int]:
    """Credits to the user's wallets from releases, bonuses, and dispute splits of others' milestones."""
    rows = ctx.session.execute(
        select(Posting.currency, Posting.amount, JournalEntry.kind, Milestone.client_id)
        .join(Account, Account.id == Posting.account_id)
        .join(JournalEntry, JournalEntry.id == Posting.entry_id)
        .outerjoin(Milestone, Milestone.id == JournalEntry.milestone_id)
        .where(
            Account.user_id == user_id,
            Account.kind == AccountKind.USER,
            Posting.amount > 0,
            JournalEntry.kind.in_([EntryKind.RELEASE, EntryKind.DISPUTE_SPLIT, EntryKind.BONUS]),
        )
    ).all()
    earned: dict[str, int] = defaultdict(int)
    for currency, amount, kind, client_id in rows:
        if kind is EntryKind.DISPUTE_SPLIT and client_id == user_id:
            continue  # the client's share of a split is a refund, not earnings
        earned[currency] += amount
    return dict(sorted(earned.items()))


def total_paid(ctx: Context, user_id: str) -> dict[str, int]:
    """Gross amounts paid out of the user's milestones to their freelancers, plus bonuses paid."""
    paid: dict[str, int] = defaultdict(int)
    # In a release or a dispute split, what left the escrow for the freelancer is the freelancer's credit
    # plus the platform fee: every posting except the escrow's own and the client's refunded share.
    from_milestones = ctx.session.execute(
        select(Posting.currency, func.sum(Posting.amount))
        .join(Account, Account.id == Posting.account_id)
        .join(JournalEntry, JournalEntry.id == Posting.entry_id)
        .join(Milestone, Milestone.id == JournalEntry.milestone_id)
        .where(
            Milestone.client_id == user_id,
            JournalEntry.kind.in_([EntryKind.RELEASE, EntryKind.DISPUTE_SPLIT]),
            Account.kind != AccountKind.ESCROW,
            or_(Account.user_id.is_(None), Account.user_id != user_id),
        )
        .group_by(Posting.currency)
    ).all()
    bonuses = ctx.session.execute(
        select(Posting.currency, -func.sum(Posting.amount))
        .join(Account, Account.id == Posting.account_id)
        .join(JournalEntry, JournalEntry.id == Posting.entry_id)
        .where(
            Account.user_id == user_id,
            Account.kind == AccountKind.USER,
            JournalEntry.kind == EntryKind.BONUS,
            Posting.amount < 0,
        )
        .group_by(Posting.currency)
    ).all()
    for currency, amount in [*from_milestones, *bonuses]:
        paid[currency] += int(amount or 0)
    return {currency: amount for currency, amount in sorted(paid.items()) if amount}


# Disputes ----------------------------------------------------------------------------------------------


def dispute_counts(ctx: Context, user_id: str) -> tuple[int, int]:
    """(disputes the user opened, resolved disputes the user lost)."""
    opened = ctx.session.scalar(select(func.count(Dispute.id)).where(Dispute.opened_by == user_id))
    rows = ctx.session.execute(
        select(Dispute, Milestone.client_id)
        .join(Milestone, Milestone.id == Dispute.milestone_id)
        .join(Project, Project.id == Milestone.project_id)
        .where(
            Dispute.status == DisputeStatus.RESOLVED,
            or_(Milestone.client_id == user_id, Project.freelancer_id == user_id),
        )
    ).all()
    lost = 0
    for dispute, client_id in rows:
        to_freelancer, to_client = dispute.to_freelancer or 0, dispute.to_client or 0
        share = to_client if client_id == user_id else to_freelancer
        lost += 2 * share < to_freelancer + to_client
    return int(opened or 0), lost
