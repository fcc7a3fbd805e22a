"""Disputes: open, offer a settlement, accept it, withdraw, or have staff resolve with a split.

Lock order: the milestone row, then the dispute row, then (inside the ledger) accounts by key.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import select, update

from milepost.audit import service as audit
from milepost.disputes.models import (
    Dispute,
    DisputeStatus,
    OfferStatus,
    Resolution,
    SettlementOffer,
)
from milepost.events import EventAction
from milepost.kit import validate
from milepost.kit.context import Context
from milepost.kit.errors import InvalidState, NotFound, PermissionDenied, ValidationFailed
from milepost.kit.ids import new_id
from milepost.ledger.models import EntryKind
from milepost.ledger.service import escrow_account, fee_account, post, user_account
from milepost.milestones.access import MilestoneAccess, load_milestone
from milepost.milestones.service import _authorize, _transition
from milepost.milestones.state import Action, MilestoneStatus, Role
from milepost.money import cumulative_fee, validate_amount

PARTIES = (Role.CLIENT, Role.FREELANCER)


def open_dispute(ctx: Context, milestone_id: str, *, reason: object) -> Dispute:
    access = load_milestone(ctx, milestone_id, lock=True)
    _authorize(access, Action.OPEN_DISPUTE)
    why = validate.text(reason, "reason", max_length=20_000)
    access.freelancer_id  # noqa: B018 -- a dispute needs two parties
    milestone = access.milestone
    dispute = Dispute(
        id=new_id("dsp"),
        milestone_id=milestone.id,
        opened_by=ctx.require_actor().id,
        opener_role=access.role,
        reason=why,
        status=DisputeStatus.OPEN,
        status_before=milestone.status,
        respond_by=ctx.now + timedelta(days=ctx.settings.dispute_response_days),
        mediation_due_at=ctx.now + timedelta(days=ctx.settings.dispute_mediation_days),
        created_at=ctx.now,
    )
    ctx.session.add(dispute)
    _transition(
        ctx,
        access,
        MilestoneStatus.DISPUTED,
        EventAction.DISPUTE_OPENED,
        data={"dispute_id": dispute.id, "reason": why},
    )
    ctx.session.flush()
    return dispute


@dataclass
class DisputeAccess:
    dispute: Dispute
    milestone_access: MilestoneAccess

    @property
    def role(self) -> Role:
        return self.milestone_access.role


def load_dispute(ctx: Context, dispute_id: str, *, lock: bool) -> DisputeAccess:
    milestone_id = ctx.session.scalar(select(Dispute.milestone_id).where(Dispute.id == dispute_id))
    if milestone_id is None:
        raise NotFound("No such dispute.", param="id")
    try:
        access = load_milestone(ctx, milestone_id, lock=lock)
    except NotFound:
        raise NotFound("No such dispute.", param="id") from None
    query = select(Dispute).where(Dispute.id == dispute_id)
    if lock:
        query = query.with_for_update().execution_options(populate_existing=True)
    dispute = ctx.session.scalar(query)
    assert dispute is not None
    return DisputeAccess(dispute, access)


def _require_open(dispute: Dispute) -> None:
    if dispute.status is not DisputeStatus.OPEN:
        raise InvalidState(f"This dispute is {dispute.status}.")


def _is_opener(ctx: Context, dispute: Dispute) -> bool:
    return ctx.actor_id == dispute.opened_by


def make_offer(ctx: Context, dispute_id: str, *, to_freelancer: object) -> SettlementOffer:
    """A party proposes how to split what is left in escrow; it replaces their earlier open offer."""
    access = load_dispute(ctx, dispute_id, lock=True)
    if access.role not in PARTIES:
        raise PermissionDenied(
            "Only the client or the freelancer can offer a settlement.", code="parties_only"
        )
    dispute = access.dispute
    _require_open(dispute)
    escrow = access.milestone_access.milestone.escrow_balance
    amount = validate_amount(to_freelancer, param="to_freelancer", allow_zero=True)
    if amount > escrow:
        raise ValidationFailed(
            f"The escrow holds {escrow}; an offer cannot give the freelancer more.",
            param="to_freelancer",
        )
    for earlier in ctx.session.scalars(
        select(SettlementOffer).where(
            SettlementOffer.dispute_id == dispute.id,
            SettlementOffer.made_by == ctx.actor_id,
            SettlementOffer.status == OfferStatus.OPEN,
        )
    ):
        earlier.status = OfferStatus.SUPERSEDED
    offer = SettlementOffer(
        id=new_id("ofr"),
        dispute_id=dispute.id,
        made_by=ctx.require_actor().id,
        maker_role=access.role,
        to_freelancer=amount,
        status=OfferStatus.OPEN,
        created_at=ctx.now,
    )
    ctx.session.add(offer)
    if not _is_opener(ctx, dispute) and dispute.responded_at is None:
        dispute.responded_at = ctx.now
    milestone = access.milestone_access.milestone
    audit.record(
        ctx,
        milestone,
        EventAction.SETTLEMENT_OFFERED,
        role=access.role,
        from_status=milestone.status,
        to_status=milestone.status,
        amount=amount,
        data={
            "dispute_id": dispute.id,
            "offer_id": offer.id,
            "to_freelancer": amount,
            "to_client": escrow - amount,
        },
    )
    ctx.session.flush()
    return offer


def list_offers(ctx: Context, dispute_id: str) -> list[SettlementOffer]:
    access = load_dispute(ctx, dispute_id, lock=False)
    return list(
        ctx.session.scalars(
            select(SettlementOffer)
            .where(SettlementOffer.dispute_id == access.dispute.id)
            .order_by(SettlementOffer.id)
        )
    )


def accept_offer(ctx: Context, dispute_id: str, offer_id: str) -> Dispute:
    """The other party accepts an open offer: the dispute is resolved with that split."""
    access = load_dispute(ctx, dispute_id, lock=True)
    dispute = access.dispute
    offer = ctx.session.scalar(
        select(SettlementOffer)
        .where(SettlementOffer.id == offer_id, SettlementOffer.dispute_id == dispute.id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    if offer is None:
        raise NotFound("No such offer.", param="offer_id")
    if access.role not in PARTIES or access.role == offer.maker_role:
        raise PermissionDenied(
            "Only the other party can accept an offer.", code="only_other_party_can_accept"
        )
    _require_open(dispute)
    if offer.status is not OfferStatus.OPEN:
        raise InvalidState(f"This offer is {offer.status}.")
    escrow = access.milestone_access.milestone.escrow_balance
    offer.status = OfferStatus.ACCEPTED
    offer.accepted_at = ctx.now
    if not _is_opener(ctx, dispute) and dispute.responded_at is None:
        dispute.responded_at = ctx.now
    _settle(
        ctx, access, offer.to_freelancer, escrow - offer.to_freelancer, Resolution.OFFER_ACCEPTED
    )
    return dispute


def withdraw(ctx: Context, dispute_id: str) -> Dispute:
    """The opener withdraws: the milestone returns to the state it was in."""
    access = load_dispute(ctx, dispute_id, lock=True)
    dispute = access.dispute
    if not _is_opener(ctx, dispute):
        raise PermissionDenied(
            "Only the party who opened the dispute can withdraw it.",
            code="only_opener_can_withdraw",
        )
    _require_open(dispute)
    dispute.status = DisputeStatus.WITHDRAWN
    dispute.ended_at = ctx.now
    _close_open_offers(ctx, dispute)
    # The clocks stood still while the dispute was open: a review period or release delay that was
    # running resumes with the time it had left, rather than lapsing the moment the dispute ends.
    milestone = access.milestone_access.milestone
    paused_for = ctx.now - dispute.created_at
    if milestone.review_due_at is not None:
        milestone.review_due_at += paused_for
    if milestone.release_due_at is not None:
        milestone.release_due_at += paused_for
    _transition(
        ctx,
        access.milestone_access,
        dispute.status_before,
        EventAction.DISPUTE_WITHDRAWN,
        data={"dispute_id": dispute.id},
    )
    return dispute


def resolve(
    ctx: Context, dispute_id: str, *, to_freelancer: object, to_client: object, note: object = None
) -> Dispute:
    """Staff split what is left in escrow; the two parts must add up to it exactly."""
    actor = ctx.require_actor()
    access = load_dispute(ctx, dispute_id, lock=True)
    if not actor.is_staff or access.role is not Role.STAFF:
        raise PermissionDenied("Only staff can resolve a dispute.", code="staff_only")
    dispute = access.dispute
    _require_open(dispute)
    freelancer_part = validate_amount(to_freelancer, param="to_freelancer", allow_zero=True)
    client_part = validate_amount(to_client, param="to_client", allow_zero=True)
    escrow = access.milestone_access.milestone.escrow_balance
    if freelancer_part + client_part != escrow:
        raise ValidationFailed(
            f"The split adds up to {freelancer_part + client_part}; the escrow holds {escrow}.",
            code="split_must_equal_escrow",
            param="to_client",
        )
    dispute.resolution_note = validate.text(note, "note", max_length=20_000, required=False)
    _settle(ctx, access, freelancer_part, client_part, Resolution.STAFF)
    return dispute


def resolve_unanswered(ctx: Context, dispute_id: str) -> Dispute:
    """Time-driven: the other party let the response window pass, so the opener's side wins."""
    access = load_dispute(ctx, dispute_id, lock=True)
    dispute = access.dispute
    _require_open(dispute)
    if dispute.responded_at is not None or ctx.now < dispute.respond_by:
        raise InvalidState("The other party answered, or still may.", code="not_due")
    escrow = access.milestone_access.milestone.escrow_balance
    other = "client" if dispute.opener_role == Role.FREELANCER else "freelancer"
    reason = (
        f"The {other} did not answer within the response window "
        f"(by {dispute.respond_by.isoformat()}), so the dispute is resolved for the "
        f"{dispute.opener_role} who opened it."
    )
    dispute.resolution_note = reason
    if dispute.opener_role == Role.FREELANCER:
        _settle(ctx, access, escrow, 0, Resolution.NO_RESPONSE, reason=reason)
    else:
        _settle(ctx, access, 0, escrow, Resolution.NO_RESPONSE, reason=reason)
    return dispute


def _settle(
    ctx: Context,
    access: DisputeAccess,
    to_freelancer: int,
    to_client: int,
    resolution: Resolution,
    *,
    reason: str | None = None,
) -> None:
    milestone_access = access.milestone_access
    milestone = milestone_access.milestone
    dispute = access.dispute
    fee = cumulative_fee(
        milestone.released_amount, to_freelancer, milestone.fee_amount, milestone.fee_rate_bps or 0
    )
    post(
        ctx,
        EntryKind.DISPUTE_SPLIT,
        [
            (escrow_account(milestone.id, milestone.currency), -(to_freelancer + to_client)),
            (user_account(milestone_access.freelancer_id, milestone.currency), to_freelancer - fee),
            (fee_account(milestone.currency), fee),
            (user_account(milestone.client_id, milestone.currency), to_client),
        ],
        milestone_id=milestone.id,
        memo=f"dispute {dispute.id} resolved ({resolution})",
    )
    milestone.released_amount += to_freelancer
    milestone.refunded_amount += to_client
    milestone.fee_amount += fee
    dispute.status = DisputeStatus.RESOLVED
    _close_open_offers(ctx, dispute)
    dispute.resolution = resolution
    dispute.to_freelancer = to_freelancer
    dispute.to_client = to_client
    dispute.resolved_by = ctx.actor_id
    dispute.ended_at = ctx.now
    data: dict[str, object] = {
        "dispute_id": dispute.id,
        "resolution": resolution,
        "to_freelancer": to_freelancer,
        "to_client": to_client,
        "fee": fee,
    }
    if reason is not None:
        data["reason"] = reason
    _transition(
        ctx,
        milestone_access,
        MilestoneStatus.RESOLVED,
        EventAction.DISPUTE_RESOLVED,
        amount=to_freelancer + to_client,
        data=data,
    )


def _close_open_offers(ctx: Context, dispute: Dispute) -> None:
    """A dispute that ends leaves no offer open: whatever was not accepted can no longer be."""
    ctx.session.execute(
        update(SettlementOffer)
        .where(
            SettlementOffer.dispute_id == dispute.id,
            SettlementOffer.status == OfferStatus.OPEN,
        )
        .values(status=OfferStatus.CLOSED)
        .execution_options(synchronize_session="fetch")
    )


def get_dispute(ctx: Context, dispute_id: str) -> Dispute:
    return load_dispute(ctx, dispute_id, lock=False).dispute
