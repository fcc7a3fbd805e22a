"""Disputes: open, offer a settlement, accept it, withdraw, or have staff resolve with a split.

Each action's preconditions are named guards beside it, raising the errors the API answers with; the
action runs them before it changes anything, and ``available_actions`` runs the very same guards to tell a
page what to offer (the milestone page's offer, accept and withdraw forms, the staff page's resolve form).
Statuses change only through ``disputes.state``; the milestone moves only through the milestones
service's public ``authorize_action`` and ``transition``.

Lock order: the milestone row, then the dispute row, then (inside the ledger) accounts by key.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import select, update

from milepost.disputes.models import (
    Dispute,
    DisputeMessage,
    DisputeStatus,
    OfferStatus,
    Resolution,
    SettlementOffer,
)
from milepost.disputes.state import set_offer_status, set_status
from milepost.events import EventAction
from milepost.files import service as files
from milepost.files.models import DisputeMessageFile
from milepost.kit import validate
from milepost.kit.context import Context
from milepost.kit.errors import (
    InvalidState,
    MilepostError,
    NotFound,
    PermissionDenied,
    ValidationFailed,
)
from milepost.kit.ids import new_id
from milepost.kit.lookup import one_or_404
from milepost.kit.pagination import Page, paginate
from milepost.ledger.models import EntryKind
from milepost.ledger.service import escrow_account, fee_account, post, user_account
from milepost.milestones.access import MilestoneAccess, load_milestone
from milepost.milestones.guards import authorize_action
from milepost.milestones.models import Milestone
from milepost.milestones.service import record_in_place, transition, validate_evidence
from milepost.milestones.state import Action, MilestoneStatus, Role
from milepost.money import format_money, validate_amount, validate_currency
from milepost.settings import Settings

PARTIES = (Role.CLIENT, Role.FREELANCER)


def open_dispute(ctx: Context, milestone_id: str, *, reason: object) -> Dispute:
    """A party disputes the milestone: the escrow freezes until the dispute ends."""
    access = load_milestone(ctx, milestone_id, lock=True)
    authorize_action(access, Action.OPEN_DISPUTE)  # a party, a state that allows it, two parties
    why = validate.text(reason, "reason", max_length=20_000)
    milestone = access.milestone
    dispute = Dispute(
        id=new_id("dsp"),
        milestone_id=milestone.id,
        opened_by=ctx.require_actor().id,
        opener_role=access.role,
        reason=why,
        status=DisputeStatus.OPEN,
        status_before=milestone.status,
        respond_by=ctx.now + timedelta(days=response_days(ctx.settings, responder(access.role))),
        mediation_due_at=ctx.now + timedelta(days=ctx.settings.dispute_mediation_days),
        created_at=ctx.now,
    )
    ctx.session.add(dispute)
    transition(
        ctx,
        access,
        MilestoneStatus.DISPUTED,
        EventAction.DISPUTE_OPENED,
        data={"dispute_id": dispute.id, "reason": why},
    )
    ctx.session.flush()
    return dispute


def responder(opener_role: str) -> Role:
    """Who must answer a dispute: the party who did not open it."""
    return Role.CLIENT if opener_role == Role.FREELANCER else Role.FREELANCER


def response_days(settings: Settings, role: Role) -> int:
    """The response window of the party who must answer, in days: each role's own setting if there is
    one (``dispute_client_response_days``, ``dispute_freelancer_response_days``), else
    ``dispute_response_days``."""
    own = (
        settings.dispute_client_response_days
        if role is Role.CLIENT
        else settings.dispute_freelancer_response_days
    )
    return settings.dispute_response_days if own is None else own


def awaiting_response_from(dispute: Dispute) -> Role | None:
    """The party whose answer the open dispute waits for (the response window runs), or None."""
    if dispute.status is not DisputeStatus.OPEN or dispute.responded_at is not None:
        return None
    return responder(dispute.opener_role)


@dataclass
class DisputeAccess:
    dispute: Dispute
    milestone_access: MilestoneAccess
    actor_id: str | None
    is_staff: bool

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
    # The dispute row after the milestone's (the lock order); it exists, its id was just read.
    dispute = one_or_404(
        ctx.session,
        select(Dispute).where(Dispute.id == dispute_id),
        lock=lock,
        missing="No such dispute.",
    )
    actor = ctx.actor
    return DisputeAccess(dispute, access, ctx.actor_id, actor is not None and actor.is_staff)


# Guards: each action's preconditions, run by the action and by available_actions ------------------------


def dispute_open(access: DisputeAccess) -> None:
    """Every action but reading needs the dispute still open."""
    if access.dispute.status is not DisputeStatus.OPEN:
        raise InvalidState(f"This dispute is {access.dispute.status}.")


def a_party(access: DisputeAccess) -> None:
    """Settlement offers are between the client and the freelancer."""
    if access.role not in PARTIES:
        raise PermissionDenied(
            "Only the client or the freelancer can offer a settlement.", code="parties_only"
        )


def the_opener(access: DisputeAccess) -> None:
    """Only the party who opened the dispute may take it back."""
    if access.actor_id != access.dispute.opened_by:
        raise PermissionDenied(
            "Only the party who opened the dispute can withdraw it.",
            code="only_opener_can_withdraw",
        )


def a_party_or_staff(access: DisputeAccess) -> None:
    """The dispute's conversation is between the parties and staff (anyone else cannot see it: 404)."""
    if access.role not in (*PARTIES, Role.STAFF):
        raise PermissionDenied(
            "Only the parties and staff can write in a dispute.", code="parties_and_staff_only"
        )


def staff_not_a_party(access: DisputeAccess) -> None:
    """Staff rule on disputes, and never on one of their own: a staff member who is the client or the
    freelancer of the milestone may see it, but another staff member must resolve it (403, as for any
    party that may see an object but not do this)."""
    if not access.is_staff:
        raise PermissionDenied("Only staff can resolve a dispute.", code="staff_only")
    if access.role is not Role.STAFF:
        raise PermissionDenied(
            f"You are the {access.role} on this milestone: another staff member must resolve it.",
            code="staff_is_party",
        )


def the_other_party(access: DisputeAccess, offer: SettlementOffer) -> None:
    """An offer is accepted by the party who did not make it."""
    if access.role not in PARTIES or access.role == offer.maker_role:
        raise PermissionDenied(
            "Only the other party can accept an offer.", code="only_other_party_can_accept"
        )


def offer_open(offer: SettlementOffer) -> None:
    if offer.status is not OfferStatus.OPEN:
        raise InvalidState(f"This offer is {offer.status}.")


class DisputeAction(StrEnum):
    POST_MESSAGE = "post_message"
    MAKE_OFFER = "make_offer"
    WITHDRAW = "withdraw"
    RESOLVE = "resolve"  # staff


# The guards of each action, in the order they are checked (the role first, then the state).
GUARDS: dict[DisputeAction, tuple[Callable[[DisputeAccess], None], ...]] = {
    DisputeAction.POST_MESSAGE: (a_party_or_staff, dispute_open),
    DisputeAction.MAKE_OFFER: (a_party, dispute_open),
    DisputeAction.WITHDRAW: (the_opener, dispute_open),
    DisputeAction.RESOLVE: (staff_not_a_party, dispute_open),
}


def authorize_dispute_action(access: DisputeAccess, action: DisputeAction) -> None:
    """Raise unless the actor may take ``action`` on the dispute now."""
    for guard in GUARDS[action]:
        guard(access)


def authorize_accept(access: DisputeAccess, offer: SettlementOffer) -> None:
    """Raise unless the actor may accept ``offer`` now: the other party, while dispute and offer are
    open."""
    the_other_party(access, offer)
    dispute_open(access)
    offer_open(offer)


@dataclass(frozen=True)
class DisputeActions:
    """What the actor may do with a dispute now, as the services would answer."""

    actions: frozenset[DisputeAction]
    acceptable_offers: frozenset[str]  # the ids of the offers the actor may accept
    refusals: dict[DisputeAction, MilepostError]  # why each other action would be refused


def _refusal(check: Callable[..., None], *args: Any) -> MilepostError | None:
    """The error ``check(*args)`` raises to refuse, or None."""
    try:
        check(*args)
    except (PermissionDenied, InvalidState) as error:
        return error
    return None


def available_actions_for(
    access: DisputeAccess, offers: list[SettlementOffer] | None = None
) -> DisputeActions:
    """What the actor may do with the loaded dispute (and which of ``offers`` they may accept): the
    guards the actions run, run here too."""
    refusals: dict[DisputeAction, MilepostError] = {}
    for action in DisputeAction:
        error = _refusal(authorize_dispute_action, access, action)
        if error is not None:
            refusals[action] = error
    acceptable = frozenset(
        offer.id for offer in offers or [] if _refusal(authorize_accept, access, offer) is None
    )
    return DisputeActions(
        actions=frozenset(set(DisputeAction) - set(refusals)),
        acceptable_offers=acceptable,
        refusals=refusals,
    )


def available_actions(ctx: Context, dispute_id: str) -> DisputeActions:
    """What the actor may do with the dispute now; NotFound for anyone who is not a party or staff."""
    access = load_dispute(ctx, dispute_id, lock=False)
    return available_actions_for(access, list_offers(ctx, dispute_id))


# Actions ----------------------------------------------------------------------------------------------


def _is_opener(ctx: Context, dispute: Dispute) -> bool:
    return ctx.actor_id == dispute.opened_by


def make_offer(ctx: Context, dispute_id: str, *, to_freelancer: object) -> SettlementOffer:
    """A party proposes how to split what is left in escrow; it replaces their earlier open offer."""
    access = load_dispute(ctx, dispute_id, lock=True)
    authorize_dispute_action(access, DisputeAction.MAKE_OFFER)
    dispute = access.dispute
    escrow = access.milestone_access.milestone.escrow_balance
    currency = access.milestone_access.milestone.currency
    amount = validate_amount(to_freelancer, param="to_freelancer", allow_zero=True)
    if amount > escrow:
        raise ValidationFailed(
            f"The escrow holds {format_money(escrow, currency)}; an offer cannot give "
            "the freelancer more.",
            param="to_freelancer",
        )
    for earlier in ctx.session.scalars(
        select(SettlementOffer).where(
            SettlementOffer.dispute_id == dispute.id,
            SettlementOffer.made_by == ctx.actor_id,
            SettlementOffer.status == OfferStatus.OPEN,
        )
    ):
        set_offer_status(earlier, OfferStatus.SUPERSEDED)
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
    record_in_place(
        ctx,
        access.milestone_access,
        EventAction.SETTLEMENT_OFFERED,
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


MAX_MESSAGE_LENGTH = 20_000


def post_message(
    ctx: Context, dispute_id: str, *, body: object, attachments: object = None
) -> DisputeMessage:
    """A party or staff writes in the open dispute, with attachments (evidence items, as for a
    delivery: files must be the author's own uploads). A message from the party who must answer is
    their answer: the response window stops. Recorded as the milestone's ``dispute_message`` event
    (its hash covers the text), which notifies the parties and goes to their webhooks."""
    access = load_dispute(ctx, dispute_id, lock=True)
    authorize_dispute_action(access, DisputeAction.POST_MESSAGE)
    dispute = access.dispute
    text = validate.text(body, "body", max_length=MAX_MESSAGE_LENGTH)
    items = validate_evidence(attachments, "attachments", "attachment")
    file_ids = files.check_evidence_files(ctx, items, "attachments")
    message = DisputeMessage(
        id=new_id("dmsg"),
        dispute_id=dispute.id,
        author_id=ctx.require_actor().id,
        author_role=access.role,
        body=text,
        attachments=items,
        created_at=ctx.now,
    )
    ctx.session.add(message)
    if file_ids:
        ctx.session.flush()  # the message row first: no ORM relationship orders these inserts
        ctx.session.add_all(
            DisputeMessageFile(message_id=message.id, file_id=file_id) for file_id in file_ids
        )
    if access.role == awaiting_response_from(dispute):
        dispute.responded_at = ctx.now
    record_in_place(
        ctx,
        access.milestone_access,
        EventAction.DISPUTE_MESSAGE,
        data={
            "dispute_id": dispute.id,
            "message_id": message.id,
            "author_role": str(access.role),
            "body": text,
            "attachments": items,
        },
    )
    ctx.session.flush()
    return message


def list_messages(ctx: Context, dispute_id: str) -> list[DisputeMessage]:
    """The dispute's conversation, oldest first: the parties and staff."""
    access = load_dispute(ctx, dispute_id, lock=False)
    return list(
        ctx.session.scalars(
            select(DisputeMessage)
            .where(DisputeMessage.dispute_id == access.dispute.id)
            .order_by(DisputeMessage.id)
        )
    )


def list_for_staff(
    ctx: Context,
    *,
    status: DisputeStatus | None = DisputeStatus.OPEN,
    overdue: bool | None = None,
    awaiting_answer: bool | None = None,
    currency: str | None = None,
    limit: int = 20,
    starting_after: str | None = None,
) -> Page[Dispute]:
    """Staff's queue over the API, newest first: by status (default open; None: all), overdue (past
    the mediation window, flagged by the time-driven work), awaiting an answer (open, the response
    window running) and the milestone's currency."""
    ctx.require_staff("see the dispute queue")
    query = select(Dispute)
    if status is not None:
        query = query.where(Dispute.status == status)
    if overdue is not None:
        query = query.where(
            Dispute.overdue_at.is_not(None) if overdue else Dispute.overdue_at.is_(None)
        )
    if awaiting_answer is not None:
        waiting = (Dispute.status == DisputeStatus.OPEN) & Dispute.responded_at.is_(None)
        query = query.where(waiting if awaiting_answer else ~waiting)
    if currency is not None:
        query = query.where(
            Dispute.milestone_id.in_(
                select(Milestone.id).where(Milestone.currency == validate_currency(currency))
            )
        )
    return paginate(ctx.session, query, Dispute.id, limit=limit, starting_after=starting_after)


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
    offer = one_or_404(
        ctx.session,
        select(SettlementOffer).where(
            SettlementOffer.id == offer_id, SettlementOffer.dispute_id == dispute.id
        ),
        lock=True,
        missing="No such offer.",
        param="offer_id",
    )
    authorize_accept(access, offer)
    escrow = access.milestone_access.milestone.escrow_balance
    set_offer_status(offer, OfferStatus.ACCEPTED)
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
    authorize_dispute_action(access, DisputeAction.WITHDRAW)
    dispute = access.dispute
    set_status(dispute, DisputeStatus.WITHDRAWN)
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
    transition(
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
    ctx.require_actor()
    access = load_dispute(ctx, dispute_id, lock=True)
    authorize_dispute_action(access, DisputeAction.RESOLVE)
    dispute = access.dispute
    freelancer_part = validate_amount(to_freelancer, param="to_freelancer", allow_zero=True)
    client_part = validate_amount(to_client, param="to_client", allow_zero=True)
    escrow = access.milestone_access.milestone.escrow_balance
    currency = access.milestone_access.milestone.currency
    if freelancer_part + client_part != escrow:
        raise ValidationFailed(
            f"The split adds up to {format_money(freelancer_part + client_part, currency)}; "
            f"the escrow holds {format_money(escrow, currency)}.",
            code="split_must_equal_escrow",
            param="to_client",
        )
    dispute.resolution_note = validate.text(note, "note", max_length=20_000, required=False)
    _settle(ctx, access, freelancer_part, client_part, Resolution.STAFF)
    return dispute


# Time-driven ------------------------------------------------------------------------------------------


def flag_overdue(ctx: Context, dispute_id: str) -> Dispute:
    """Time-driven: a dispute still open after the mediation window goes to staff's queue as overdue,
    recorded as ``dispute_overdue``. Once only: a flagged dispute is not due again."""
    access = load_dispute(ctx, dispute_id, lock=True)
    if access.role is not Role.SYSTEM:
        raise PermissionDenied("Disputes turn overdue by the clock only.", code="system_only")
    dispute_open(access)
    dispute = access.dispute
    if dispute.overdue_at is not None or ctx.now < dispute.mediation_due_at:
        raise InvalidState("This dispute is flagged already, or not due yet.", code="not_due")
    dispute.overdue_at = ctx.now
    record_in_place(
        ctx,
        access.milestone_access,
        EventAction.DISPUTE_OVERDUE,
        data={
            "dispute_id": dispute.id,
            "mediation_due_at": dispute.mediation_due_at.isoformat(),
        },
    )
    return dispute


def resolve_unanswered(ctx: Context, dispute_id: str) -> Dispute:
    """Time-driven: the other party let the response window pass, so the opener's side wins."""
    access = load_dispute(ctx, dispute_id, lock=True)
    dispute = access.dispute
    dispute_open(access)
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
    fee = milestone.fee_on_release(to_freelancer)
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
    set_status(dispute, DisputeStatus.RESOLVED)
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
    transition(
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
