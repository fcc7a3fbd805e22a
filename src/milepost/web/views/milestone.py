"""Read model for the milestone's web page: everything it shows and what the viewer may do there.

The page only lays this out; every figure is decided here, and every "may this viewer do that" is asked
of the services' own guards (``milestones.guards.available_actions_for``,
``disputes.service.available_actions_for``, ``feedback.service.may_leave_feedback``), which run the very
code the actions run: the page offers a form exactly when the service would accept it, and derives no
rule of its own.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from sqlalchemy import select

from milepost.audit.models import MilestoneEvent
from milepost.audit.service import list_events
from milepost.disputes import service as disputes
from milepost.disputes.models import Dispute, DisputeStatus, SettlementOffer
from milepost.disputes.service import DisputeAction
from milepost.feedback.models import Feedback
from milepost.feedback.service import list_feedback, may_leave_feedback
from milepost.kit.context import Context
from milepost.milestones.access import load_milestone
from milepost.milestones.guards import available_actions_for
from milepost.milestones.models import Milestone
from milepost.milestones.service import amount_to_fund
from milepost.milestones.state import Action, MilestoneStatus, Role
from milepost.money import fee_on
from milepost.projects.models import Project
from milepost.receipts.service import Receipt, list_receipts
from milepost.review.service import ChangeRequest, ReviewContext, Revision, review_context
from milepost.wallets.providers import ManualProvider, instant_providers
from milepost.wallets.service import available_balance, funding_shortfall
from milepost.web.views.conversation import MessageView, conversation

S = MilestoneStatus


class Form(StrEnum):
    """The page's forms that are not milestone actions of the state machine."""

    MAKE_OFFER = "make_offer"
    ACCEPT_OFFER = "accept_offer"
    WITHDRAW_DISPUTE = "withdraw_dispute"
    POST_MESSAGE = "post_message"  # in the dispute's conversation
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
    messages: list[MessageView]  # the conversation, oldest first


@dataclass(frozen=True)
class NetPay:
    """What the freelancer is paid of the milestone, after the platform fee: received so far, and still
    to come from what the escrow holds (or will hold once funded, the late fee included)."""

    received: int
    to_come: int
    fee_to_come: int

    @property
    def total(self) -> int:
        return self.received + self.to_come


def net_pay(ctx: Context, milestone: Milestone) -> NetPay:
    """The fee is the release's own (``Milestone.fee_on_release``); before funding, at today's rate,
    on what funding would take now."""
    received = milestone.released_amount - milestone.fee_amount
    if milestone.status is S.DRAFT:
        gross = amount_to_fund(milestone, ctx)[0]
        fee = fee_on(gross, ctx.settings.fee_bps)
    elif milestone.status in (S.CANCELLED, S.RELEASED, S.RESOLVED, S.DISPUTED):
        # Ended; or frozen, for the dispute to decide (its panel shows the offers).
        gross, fee = 0, 0
    else:
        gross = milestone.escrow_balance
        fee = milestone.fee_on_release(gross)
    return NetPay(received=received, to_come=gross - fee, fee_to_come=fee)


@dataclass(frozen=True)
class MilestonePage:
    milestone: Milestone
    project: Project
    role: Role
    events: list[MilestoneEvent]
    # What this viewer may do now: the milestone guards' answer (the state table and each action's
    # guards, as the services run them).
    actions: frozenset[Action]
    to_fund: int | None  # what funding would take now (amount + accrued late fee), while a draft
    net: NetPay | None  # what the freelancer is paid, after the fee (the freelancer's page only)
    # While the viewer may fund: what their wallet holds in the milestone's currency and what it lacks
    # to fund now (0: enough), and the enabled
    # providers that credit a deposit at once (to deposit what it lacks and fund in one step).
    wallet: int | None
    shortfall: int | None
    instant_providers: tuple[str, ...]
    bank_transfers: bool  # deposits by bank transfer are enabled (staff confirm them)
    forms: frozenset[Form]  # the other forms the viewer may use now
    submissions: list[Revision]  # newest first
    changes_asked: ChangeRequest | None  # what the client asked to change, while they wait for it
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
    context = review_context(ctx, milestone.id)
    under_review = milestone.status is S.SUBMITTED
    seconds_left = context.review_time.seconds_left
    panel, dispute_actions = _dispute_panel(ctx, milestone)
    feedback = list_feedback(ctx, milestone.id)
    actions = available_actions_for(access)
    may_fund = Action.FUND in actions
    forms: set[Form] = set()
    if dispute_actions is not None:
        if DisputeAction.MAKE_OFFER in dispute_actions.actions:
            forms.add(Form.MAKE_OFFER)
        if DisputeAction.WITHDRAW in dispute_actions.actions:
            forms.add(Form.WITHDRAW_DISPUTE)
        if DisputeAction.POST_MESSAGE in dispute_actions.actions:
            forms.add(Form.POST_MESSAGE)
        if dispute_actions.acceptable_offers:
            forms.add(Form.ACCEPT_OFFER)
    if may_leave_feedback(ctx, access):
        forms.add(Form.LEAVE_FEEDBACK)
    return MilestonePage(
        milestone=milestone,
        project=project,
        role=role,
        events=list_events(ctx, milestone.id),
        actions=actions,
        to_fund=amount_to_fund(milestone, ctx)[0] if milestone.status is S.DRAFT else None,
        net=net_pay(ctx, milestone) if role is Role.FREELANCER else None,
        wallet=(
            available_balance(ctx, milestone.client_id, milestone.currency) if may_fund else None
        ),
        shortfall=funding_shortfall(ctx, milestone) if may_fund else None,
        instant_providers=instant_providers(ctx.settings.enabled_providers),
        bank_transfers=ManualProvider.name in ctx.settings.enabled_providers,
        forms=frozenset(forms),
        submissions=list(reversed(context.revisions)),
        changes_asked=(
            context.revisions[-1].changes_requested
            if milestone.status is S.CHANGES_REQUESTED and context.revisions
            else None
        ),
        review=context if under_review and context.submission is not None else None,
        review_time_left=(
            duration_text(seconds_left) if under_review and seconds_left is not None else None
        ),
        dispute=panel,
        receipts=list_receipts(ctx, milestone.id),
        feedback=feedback,
    )


def _dispute_panel(
    ctx: Context, milestone: Milestone
) -> tuple[DisputePanel | None, disputes.DisputeActions | None]:
    """The latest dispute as the page shows it, and what the viewer may do with it (the dispute
    service's answer, offer by offer)."""
    dispute = ctx.session.scalar(
        select(Dispute)
        .where(Dispute.milestone_id == milestone.id)
        .order_by(Dispute.created_at.desc(), Dispute.id.desc())
        .limit(1)
    )
    if dispute is None:
        return None, None
    access = disputes.load_dispute(ctx, dispute.id, lock=False)
    offers = disputes.list_offers(ctx, dispute.id)
    allowed = disputes.available_actions_for(access, offers)
    # While open nothing can leave the escrow; once settled, the split says what it held.
    escrow = (
        (dispute.to_freelancer or 0) + (dispute.to_client or 0)
        if dispute.status is DisputeStatus.RESOLVED
        else milestone.escrow_balance
    )
    lines = [
        OfferLine(
            offer=offer,
            to_client=escrow - offer.to_freelancer,
            may_accept=offer.id in allowed.acceptable_offers,
        )
        for offer in reversed(offers)
    ]
    panel = DisputePanel(
        dispute=dispute,
        opened_by_viewer=dispute.opened_by == ctx.actor_id,
        offers=lines,
        messages=conversation(ctx, dispute.id),
    )
    return panel, allowed


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
