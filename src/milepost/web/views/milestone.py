"""Read model for the milestone's web page: everything it shows and what the viewer may do there.

The page only lays this out; every figure and every "may this viewer do that" is decided here, from the
same rules the services enforce (``state.authorize`` and the extra checks of the cancellation, dispute
and feedback services), so that the page offers a form exactly when the service would accept it.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from sqlalchemy import select

from milepost.audit.models import MilestoneEvent
from milepost.audit.service import list_events
from milepost.disputes import service as disputes
from milepost.disputes.models import Dispute, DisputeStatus, OfferStatus, SettlementOffer
from milepost.feedback.models import Feedback
from milepost.feedback.service import list_feedback
from milepost.kit.context import Context
from milepost.milestones.access import load_milestone
from milepost.milestones.models import Milestone
from milepost.milestones.service import amount_to_fund
from milepost.milestones.state import TERMINAL, Action, MilestoneStatus, Role, allowed_actions
from milepost.projects.models import Project
from milepost.receipts.service import Receipt, list_receipts
from milepost.review.service import ReviewContext, Revision, review_context

S = MilestoneStatus


class Form(StrEnum):
    """The page's forms that are not milestone actions of the state machine."""

    MAKE_OFFER = "make_offer"
    ACCEPT_OFFER = "accept_offer"
    WITHDRAW_DISPUTE = "withdraw_dispute"
    LEAVE_FEEDBACK = "leave_feedback"


@dataclass(frozen=True)
class OfferLine:
    offer: SettlementOffer
    to_client: int  # the rest of the escrow (what the client gets back if it is accepted)
    may_accept: bool


@dataclass(frozen=True)
class DisputePanel:
    dispute: Dispute
    opened_by_viewer: bool
    offers: list[OfferLine]  # newest first


@dataclass(frozen=True)
class MilestonePage:
    milestone: Milestone
    project: Project
    role: Role
    events: list[MilestoneEvent]
    # What this viewer may do now: the state machine's answer, narrowed by the services' own checks
    # (a pending cancellation request, a project without a freelancer).
    actions: frozenset[Action]
    to_fund: int | None  # what funding would take now (amount + accrued late fee), while a draft
    forms: frozenset[Form]  # the other forms the viewer may use now
    submissions: list[Revision]  # newest first
    review: ReviewContext | None  # the checklist, while the delivery awaits review
    review_time_left: str | None  # "3 days 4 hours", while under review
    dispute: DisputePanel | None  # the latest dispute, if there ever was one
    receipts: list[Receipt]
    feedback: list[Feedback]

    @property
    def offered(self) -> frozenset[str]:
        """The names of every form the page shows (for placing a refused form's message)."""
        return frozenset(self.actions) | frozenset(self.forms)


def milestone_page(ctx: Context, milestone_id: str) -> MilestonePage:
    """The milestone as its page shows it; NotFound for anyone who is not a party (staff see all)."""
    access = load_milestone(ctx, milestone_id, lock=False)
    milestone, project, role = access.milestone, access.project, access.role
    has_freelancer = project.freelancer_id is not None
    actions = set(allowed_actions(role, milestone.status, project_has_freelancer=has_freelancer))
    # milestones.request_cancellation / answer_cancellation and disputes.open_dispute check these too.
    if milestone.cancellation_requested or not has_freelancer:
        actions.discard(Action.REQUEST_CANCELLATION)
    if not milestone.cancellation_requested:
        actions.discard(Action.ANSWER_CANCELLATION)
    if not has_freelancer:
        actions.discard(Action.OPEN_DISPUTE)

    context = review_context(ctx, milestone.id)
    under_review = milestone.status is S.SUBMITTED
    seconds_left = context.review_time.seconds_left
    panel = _dispute_panel(ctx, milestone, role)
    feedback = list_feedback(ctx, milestone.id)
    forms: set[Form] = set()
    if panel is not None and panel.dispute.status is DisputeStatus.OPEN:
        if role in disputes.PARTIES:
            forms.add(Form.MAKE_OFFER)
        if panel.opened_by_viewer:
            forms.add(Form.WITHDRAW_DISPUTE)
        if any(line.may_accept for line in panel.offers):
            forms.add(Form.ACCEPT_OFFER)
    # feedback.leave_feedback: a party, once, after the milestone ended, with someone to rate.
    if (
        role in (Role.CLIENT, Role.FREELANCER)
        and milestone.status in TERMINAL
        and has_freelancer
        and all(item.author_id != ctx.actor_id for item in feedback)
    ):
        forms.add(Form.LEAVE_FEEDBACK)
    return MilestonePage(
        milestone=milestone,
        project=project,
        role=role,
        events=list_events(ctx, milestone.id),
        actions=frozenset(actions),
        to_fund=amount_to_fund(milestone, ctx)[0] if milestone.status is S.DRAFT else None,
        forms=frozenset(forms),
        submissions=list(reversed(context.revisions)),
        review=context if under_review and context.submission is not None else None,
        review_time_left=(
            duration_text(seconds_left) if under_review and seconds_left is not None else None
        ),
        dispute=panel,
        receipts=list_receipts(ctx, milestone.id),
        feedback=feedback,
    )


def _dispute_panel(ctx: Context, milestone: Milestone, role: Role) -> DisputePanel | None:
    dispute = ctx.session.scalar(
        select(Dispute)
        .where(Dispute.milestone_id == milestone.id)
        .order_by(Dispute.created_at.desc(), Dispute.id.desc())
        .limit(1)
    )
    if dispute is None:
        return None
    is_open = dispute.status is DisputeStatus.OPEN
    # While open nothing can leave the escrow; once settled, the split says what it held.
    escrow = (
        (dispute.to_freelancer or 0) + (dispute.to_client or 0)
        if dispute.status is DisputeStatus.RESOLVED
        else milestone.escrow_balance
    )
    offers = [
        OfferLine(
            offer=offer,
            to_client=escrow - offer.to_freelancer,
            # disputes.accept_offer: the other party, an open offer of an open dispute.
            may_accept=is_open
            and offer.status is OfferStatus.OPEN
            and role in disputes.PARTIES
            and role != offer.maker_role,
        )
        for offer in reversed(disputes.list_offers(ctx, dispute.id))
    ]
    return DisputePanel(
        dispute=dispute, opened_by_viewer=dispute.opened_by == ctx.actor_id, offers=offers
    )


def duration_text(seconds: int) -> str:
    """A time left in words, to the hour ("2 days 5 hours", "45 minutes", "no time")."""
    days, rest = divmod(seconds, 86_400)
    hours, rest = divmod(rest, 3_600)
    minutes = rest // 60
    parts = []
    if days:
        parts.append(f"{days} day{'s' if days != 1 else ''}")
    if hours:
        parts.append(f"{hours} hour{'s' if hours != 1 else ''}")
    if not days and minutes:
        parts.append(f"{minutes} minute{'s' if minutes != 1 else ''}")
    return " ".join(parts) or "no time"
