"""The milestone page's forms: what they send (a delivery's note, links, text and uploaded files; amounts as
typed in the milestone's currency) turned into service calls. The services stay the authority on every
rule."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select

from milepost.disputes import service as disputes
from milepost.disputes.models import Dispute, DisputeMessage, DisputeStatus, SettlementOffer
from milepost.feedback import service as feedback
from milepost.feedback.models import Feedback
from milepost.kit.context import Context
from milepost.kit.errors import InvalidState, ValidationFailed
from milepost.milestones import service as milestones
from milepost.milestones.access import load_milestone
from milepost.milestones.guards import authorize_action
from milepost.milestones.models import Milestone, Submission
from milepost.milestones.state import Action
from milepost.money import parse_amount
from milepost.wallets import service as wallets
from milepost.wallets.providers import instant_providers
from milepost.web.forms.dispute import write_in_dispute
from milepost.web.uploads import Upload, links_and_files


def submit_delivery(
    ctx: Context,
    milestone_id: str,
    *,
    note: str,
    links: str,
    text: str,
    uploads: Sequence[Upload],
) -> Submission:
    """The delivery form, as one submission: the links (one per line), the uploaded files (now the
    freelancer's), then the text, in one unit of work (a refused submission leaves no file rows)."""
    evidence = links_and_files(ctx, links, uploads)
    if text.strip():
        evidence.append({"type": "text", "text": text})
    return milestones.submit(ctx, milestone_id, note=note, evidence=evidence)


def open_dispute_id(ctx: Context, milestone_id: str) -> str:
    """The id of the milestone's open dispute, for the forms that act on it."""
    milestone = load_milestone(ctx, milestone_id, lock=False).milestone
    dispute_id = ctx.session.scalar(
        select(Dispute.id).where(
            Dispute.milestone_id == milestone.id, Dispute.status == DisputeStatus.OPEN
        )
    )
    if dispute_id is None:
        raise InvalidState("This milestone has no open dispute.", code="no_open_dispute")
    return dispute_id


def deposit_and_fund(ctx: Context, milestone_id: str, *, provider: str) -> Milestone:
    """Fund with what the wallet holds, depositing first what it lacks, in one unit of work: a deposit
    that does not settle at once (a bank transfer) cannot pay for a funding now, so it is refused, and a
    refused funding keeps no deposit either."""
    access = load_milestone(ctx, milestone_id, lock=False)
    authorize_action(access, Action.FUND)
    milestone = access.milestone
    short = wallets.funding_shortfall(ctx, milestone)
    if short:
        if provider not in instant_providers(ctx.settings.enabled_providers):
            raise ValidationFailed(
                "A bank transfer arrives in a day or two: deposit it from the dashboard, and fund "
                "this milestone once staff have confirmed it.",
                code="deposit_not_instant",
                param="provider",
            )
        wallets.create_deposit(ctx, amount=short, currency=milestone.currency, provider=provider)
    return milestones.fund(ctx, milestone_id)


def release(ctx: Context, milestone_id: str, *, amount: str) -> Milestone:
    """Release part or all of the escrow: the amount is typed in the milestone's currency."""
    currency = milestones.get_milestone(ctx, milestone_id).currency
    return milestones.release(ctx, milestone_id, amount=parse_amount(amount, currency))


def cancel(ctx: Context, milestone_id: str, *, reason: str) -> Milestone:
    """The reason is optional: a blank one is none."""
    return milestones.cancel(ctx, milestone_id, reason=reason or None)


def make_offer(ctx: Context, milestone_id: str, *, amount: str) -> SettlementOffer:
    """Offer the freelancer a part of the escrow, typed in the milestone's currency."""
    currency = milestones.get_milestone(ctx, milestone_id).currency
    return disputes.make_offer(
        ctx,
        open_dispute_id(ctx, milestone_id),
        # Offering the freelancer nothing (all back to the client) is a valid offer.
        to_freelancer=parse_amount(amount, currency, param="to_freelancer", allow_zero=True),
    )


def accept_offer(ctx: Context, milestone_id: str, offer_id: str) -> Dispute:
    return disputes.accept_offer(ctx, open_dispute_id(ctx, milestone_id), offer_id)


def post_dispute_message(
    ctx: Context, milestone_id: str, *, body: str, links: str, uploads: Sequence[Upload]
) -> DisputeMessage:
    """Write in the milestone's open dispute, with links and files attached."""
    return write_in_dispute(
        ctx, open_dispute_id(ctx, milestone_id), body=body, links=links, uploads=uploads
    )


def withdraw_dispute(ctx: Context, milestone_id: str) -> Dispute:
    return disputes.withdraw(ctx, open_dispute_id(ctx, milestone_id))


def leave_feedback(ctx: Context, milestone_id: str, *, rating: str, comment: str) -> Feedback:
    # A rating that is not a number goes through as typed, for the service to refuse.
    value: object = int(rating) if rating.strip().isdigit() else rating
    return feedback.leave_feedback(ctx, milestone_id, rating=value, comment=comment)
