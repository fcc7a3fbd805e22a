"""Wallets: deposits in, payouts out, and the balances a user sees."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import selectinload

from milepost.events import Notice, notify
from milepost.kit import validate
from milepost.kit.context import Context
from milepost.kit.errors import InvalidState, NotFound, PermissionDenied, ValidationFailed
from milepost.kit.ids import new_id
from milepost.ledger.models import Account, AccountKind, EntryKind
from milepost.ledger.service import clearing_account, external_account, post, user_account
from milepost.milestones.models import Milestone
from milepost.money import validate_amount, validate_currency
from milepost.projects.models import Project
from milepost.wallets.destinations import masked, own_destination
from milepost.wallets.models import Deposit, DepositStatus, Payout, PayoutStatus
from milepost.wallets.providers import ManualProvider, get_provider

MAX_REASON_LENGTH = 500


def _require_staff(ctx: Context, what: str) -> None:
    if not ctx.require_actor().is_staff:
        raise PermissionDenied(f"Only staff can {what}.", code="staff_only")


def create_deposit(
    ctx: Context, *, amount: object, currency: object, provider: object = None
) -> Deposit:
    """Pay money in through ``provider`` (None: the first enabled one, ``MILEPOST_PROVIDERS``)."""
    user = ctx.require_actor()
    amount = validate_amount(amount)
    currency = validate_currency(currency)
    payment_provider = get_provider(provider, ctx.settings.enabled_providers)
    deposit = Deposit(
        id=new_id("dep"),
        user_id=user.id,
        amount=amount,
        currency=currency,
        provider=payment_provider.name,
        status=DepositStatus.PENDING,
        created_at=ctx.now,
    )
    outcome = payment_provider.start_deposit(
        deposit_id=deposit.id, amount=amount, currency=currency
    )
    deposit.reference = outcome.reference
    ctx.session.add(deposit)
    if outcome.settled:
        _settle_deposit(ctx, deposit)
    ctx.session.flush()
    return deposit


def _pending_deposit(ctx: Context, deposit_id: str) -> Deposit:
    """The deposit, locked, if it is still waiting for staff; else NotFound or InvalidState."""
    deposit = ctx.session.scalar(
        select(Deposit)
        .where(Deposit.id == deposit_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    if deposit is None:
        raise NotFound("No such deposit.", param="id")
    if deposit.status is DepositStatus.SUCCEEDED:
        raise InvalidState("This deposit is confirmed already.")
    if deposit.status is DepositStatus.REJECTED:
        raise InvalidState("This deposit was rejected; it cannot change any more.")
    return deposit


def confirm_deposit(ctx: Context, deposit_id: str) -> Deposit:
    """Staff confirm that a manual deposit's money has arrived."""
    _require_staff(ctx, "confirm deposits")
    deposit = _pending_deposit(ctx, deposit_id)
    deposit.confirmed_by = ctx.actor_id
    _settle_deposit(ctx, deposit)
    return deposit


def reject_deposit(ctx: Context, deposit_id: str, *, reason: object) -> Deposit:
    """Staff close a manual deposit whose money never arrived (or cannot be matched). Nothing was credited,
    so no money moves; the user is told why."""
    _require_staff(ctx, "reject deposits")
    why = validate.text(reason, "reason", max_length=MAX_REASON_LENGTH)
    deposit = _pending_deposit(ctx, deposit_id)
    if deposit.provider != ManualProvider.name:
        # Another provider's pending deposit is that provider's to settle or refuse, not staff's.
        raise InvalidState("Only bank transfer deposits wait for staff to confirm or reject.")
    deposit.status = DepositStatus.REJECTED
    deposit.rejected_at = ctx.now
    deposit.rejected_by = ctx.actor_id
    deposit.rejection_reason = why
    notify(
        ctx,
        Notice.DEPOSIT_REJECTED,
        user_ids=[deposit.user_id],
        data={
            "deposit_id": deposit.id,
            "amount": deposit.amount,
            "currency": deposit.currency,
            "reference": deposit.reference,
            "reason": why,
        },
        key=f"deposit_rejected:{deposit.id}",
    )
    return deposit


def _settle_deposit(ctx: Context, deposit: Deposit) -> None:
    entry = post(
        ctx,
        EntryKind.DEPOSIT,
        [
            (external_account(deposit.provider, deposit.currency), -deposit.amount),
            (user_account(deposit.user_id, deposit.currency), deposit.amount),
        ],
        memo=f"deposit {deposit.id} ({deposit.reference})",
    )
    deposit.status = DepositStatus.SUCCEEDED
    deposit.succeeded_at = ctx.now
    deposit.entry_id = entry.id


def create_payout(
    ctx: Context,
    *,
    amount: object,
    currency: object,
    provider: object = None,
    destination_id: object = None,
) -> Payout:
    """Withdraw earnings through ``provider`` (None: the first enabled one). The money leaves the available
    balance at once (402 if it is not there). A ``manual`` payout names one of the user's payout
    destinations, the bank account staff send it to."""
    user = ctx.require_actor()
    amount = validate_amount(amount)
    currency = validate_currency(currency)
    payment_provider = get_provider(provider, ctx.settings.enabled_providers)
    destination = None
    if destination_id is not None and destination_id != "":
        try:
            destination = own_destination(ctx, destination_id, param="destination_id")
        except NotFound:
            # A field of the request rather than the object acted on: 422, as for any bad field.
            raise ValidationFailed(
                "No such payout destination of yours; list them with GET /v1/payout-destinations.",
                code="unknown_destination",
                param="destination_id",
            ) from None
    elif payment_provider.name == ManualProvider.name:
        raise ValidationFailed(
            "A bank transfer payout needs a destination: add a bank account "
            "(POST /v1/payout-destinations) and send its id as destination_id.",
            code="missing",
            param="destination_id",
        )
    payout = Payout(
        id=new_id("po"),
        user_id=user.id,
        amount=amount,
        currency=currency,
        provider=payment_provider.name,
        status=PayoutStatus.PENDING,
        created_at=ctx.now,
        destination_id=destination.id if destination is not None else None,
    )
    post(
        ctx,
        EntryKind.PAYOUT,
        [
            (user_account(user.id, currency), -amount),
            (clearing_account(payment_provider.name, currency), amount),
        ],
        memo=f"payout {payout.id}",
    )
    outcome = payment_provider.start_payout(payout_id=payout.id, amount=amount, currency=currency)
    payout.reference = outcome.reference
    ctx.session.add(payout)
    if outcome.settled:
        _settle_payout(ctx, payout)
    ctx.session.flush()
    return payout


def _pending_payout(ctx: Context, payout_id: str) -> Payout:
    """The payout, locked, if it is still waiting for staff; else NotFound or InvalidState."""
    payout = ctx.session.scalar(
        select(Payout)
        .where(Payout.id == payout_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    if payout is None:
        raise NotFound("No such payout.", param="id")
    if payout.status is PayoutStatus.PAID:
        raise InvalidState("This payout is marked paid already.")
    if payout.status is PayoutStatus.FAILED:
        raise InvalidState("This payout failed and its money went back to the wallet already.")
    return payout


def mark_payout_paid(ctx: Context, payout_id: str) -> Payout:
    """Staff record that a manual payout has been sent."""
    _require_staff(ctx, "mark payouts paid")
    payout = _pending_payout(ctx, payout_id)
    payout.marked_paid_by = ctx.actor_id
    _settle_payout(ctx, payout)
    notify(
        ctx,
        Notice.PAYOUT_PAID,
        user_ids=[payout.user_id],
        data=_payout_data(payout),
        key=f"payout_paid:{payout.id}",
    )
    return payout


def fail_payout(ctx: Context, payout_id: str, *, reason: object) -> Payout:
    """Staff record that a manual payout did not reach the user (bounced, refused by the bank). The amount
    goes back from the provider's clearing account to the user's available balance, in one entry."""
    _require_staff(ctx, "mark payouts failed")
    why = validate.text(reason, "reason", max_length=MAX_REASON_LENGTH)
    payout = _pending_payout(ctx, payout_id)
    if payout.provider != ManualProvider.name:
        raise InvalidState("Only bank transfer payouts wait for staff to mark them paid or failed.")
    post(
        ctx,
        EntryKind.PAYOUT_FAILED,
        [
            (clearing_account(payout.provider, payout.currency), -payout.amount),
            (user_account(payout.user_id, payout.currency), payout.amount),
        ],
        memo=f"payout {payout.id} failed, returned to the wallet ({payout.reference})",
    )
    payout.status = PayoutStatus.FAILED
    payout.failed_at = ctx.now
    payout.failed_by = ctx.actor_id
    payout.failure_reason = why
    notify(
        ctx,
        Notice.PAYOUT_FAILED,
        user_ids=[payout.user_id],
        data={**_payout_data(payout), "reason": why},
        key=f"payout_failed:{payout.id}",
    )
    return payout


def _payout_data(payout: Payout) -> dict[str, object]:
    return {
        "payout_id": payout.id,
        "amount": payout.amount,
        "currency": payout.currency,
        "reference": payout.reference,
        "destination": None if payout.destination is None else masked(payout.destination),
    }


@dataclass(frozen=True)
class PayoutView:
    """A payout as one person may see it: ``full`` (staff) shows the destination's whole account."""

    payout: Payout
    full: bool


def get_payout(ctx: Context, payout_id: str) -> PayoutView:
    """The owner's payout (destination masked) or, for staff, any payout with its full destination;
    anyone else's does not exist."""
    actor = ctx.require_actor()
    payout = ctx.session.get(Payout, payout_id, options=[selectinload(Payout.destination)])
    if payout is None or not (actor.is_staff or payout.user_id == actor.id):
        raise NotFound("No such payout.", param="id")
    return PayoutView(payout, full=actor.is_staff)


def _settle_payout(ctx: Context, payout: Payout) -> None:
    post(
        ctx,
        EntryKind.PAYOUT_PAID,
        [
            (clearing_account(payout.provider, payout.currency), -payout.amount),
            (external_account(payout.provider, payout.currency), payout.amount),
        ],
        memo=f"payout {payout.id} paid ({payout.reference})",
    )
    payout.status = PayoutStatus.PAID
    payout.paid_at = ctx.now


@dataclass(frozen=True)
class Balance:
    currency: str
    available: int
    escrow_outgoing: int  # held in escrow for milestones this user funds as client
    escrow_incoming: int  # held in escrow for milestones this user works on as freelancer


def balances(ctx: Context, user_id: str) -> list[Balance]:
    available = dict(
        ctx.session.execute(
            select(Account.currency, Account.balance).where(
                Account.kind == AccountKind.USER, Account.user_id == user_id
            )
        ).all()
    )
    escrow = Milestone.funded_amount - Milestone.released_amount - Milestone.refunded_amount
    outgoing = dict(
        ctx.session.execute(
            select(Milestone.currency, func.sum(escrow))
            .where(Milestone.client_id == user_id)
            .group_by(Milestone.currency)
        ).all()
    )
    incoming = dict(
        ctx.session.execute(
            select(Milestone.currency, func.sum(escrow))
            .join(Project, Project.id == Milestone.project_id)
            .where(Project.freelancer_id == user_id)
            .group_by(Milestone.currency)
        ).all()
    )
    currencies = sorted(
        set(available)
        | {c for c, v in outgoing.items() if v}
        | {c for c, v in incoming.items() if v}
    )
    return [
        Balance(
            currency=currency,
            available=int(available.get(currency) or 0),
            escrow_outgoing=int(outgoing.get(currency) or 0),
            escrow_incoming=int(incoming.get(currency) or 0),
        )
        for currency in currencies
    ]
