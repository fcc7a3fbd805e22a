"""Wallets: deposits in, payouts out, and the balances a user sees."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import selectinload

from milepost.kit.context import Context
from milepost.kit.errors import NotFound, ValidationFailed
from milepost.kit.ids import new_id
from milepost.ledger.models import Account, AccountKind, EntryKind
from milepost.ledger.service import (
    AccountRef,
    clearing_account,
    pending_account,
    post,
    user_account,
)
from milepost.milestones.models import Milestone, escrow_held, holds_escrow
from milepost.milestones.service import amount_to_fund
from milepost.money import validate_amount, validate_currency
from milepost.projects.models import Project
from milepost.wallets.destinations import own_destination
from milepost.wallets.models import Deposit, DepositStatus, Payout, PayoutStatus
from milepost.wallets.providers import ManualProvider, get_provider
from milepost.wallets.reversals import check_payouts_allowed
from milepost.wallets.state import DepositAction, PayoutAction
from milepost.wallets.transfers import (
    MANUAL_DEPOSIT,
    MANUAL_PAYOUT,
    settle_deposit,
    settle_payout,
)


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
        ctx, deposit_id=deposit.id, amount=amount, currency=currency
    )
    deposit.reference = outcome.reference
    deposit.payment_url = outcome.payment_url
    ctx.session.add(deposit)
    if outcome.settled:
        settle_deposit(ctx, deposit)
    ctx.session.flush()
    return deposit


def confirm_deposit(ctx: Context, deposit_id: str) -> Deposit:
    """Staff confirm that a manual deposit's money has arrived."""
    return MANUAL_DEPOSIT.run_settle(ctx, deposit_id)


def reject_deposit(ctx: Context, deposit_id: str, *, reason: object) -> Deposit:
    """Staff close a manual deposit whose money never arrived (or cannot be matched). Nothing was credited,
    so no money moves; the user is told why."""
    return MANUAL_DEPOSIT.run_close(ctx, deposit_id, reason)


def available_deposit_actions(ctx: Context, deposit: Deposit) -> frozenset[DepositAction]:
    """What the actor may do to ``deposit`` now (staff: confirm or reject a pending one)."""
    return MANUAL_DEPOSIT.available_actions(ctx, deposit)


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
    check_payouts_allowed(user)
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
    outcome = payment_provider.start_payout(
        ctx, payout_id=payout.id, amount=amount, currency=currency
    )
    payout.reference = outcome.reference
    ctx.session.add(payout)
    if outcome.settled:
        settle_payout(ctx, payout)
    ctx.session.flush()
    return payout


def mark_payout_paid(ctx: Context, payout_id: str) -> Payout:
    """Staff record that a manual payout has been sent."""
    return MANUAL_PAYOUT.run_settle(ctx, payout_id)


def fail_payout(ctx: Context, payout_id: str, *, reason: object) -> Payout:
    """Staff record that a manual payout did not reach the user (bounced, refused by the bank). The amount
    goes back from the provider's clearing account to the user's available balance, in one entry."""
    return MANUAL_PAYOUT.run_close(ctx, payout_id, reason)


def available_payout_actions(ctx: Context, payout: Payout) -> frozenset[PayoutAction]:
    """What the actor may do to ``payout`` now (staff: mark a pending one paid or failed)."""
    return MANUAL_PAYOUT.available_actions(ctx, payout)


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


@dataclass(frozen=True)
class Balance:
    currency: str
    available: int
    escrow_outgoing: int  # held in escrow for milestones this user funds as client
    escrow_incoming: int  # held in escrow for milestones this user works on as freelancer
    pending: int = (
        0  # arrived by a method that can be reversed, not cleared yet (wallets/clearing.py)
    )


def available_balance(ctx: Context, user_id: str, currency: str) -> int:
    """What the user's wallet holds free to spend in ``currency``."""
    return _balance(ctx, user_account(user_id, currency))


def _balance(ctx: Context, ref: AccountRef) -> int:
    balance = ctx.session.scalar(select(Account.balance).where(Account.key == ref.key))
    return int(balance or 0)


def funding_shortfall(ctx: Context, milestone: Milestone) -> int:
    """What the client's wallet lacks to fund the milestone now (its amount and any late fee accrued);
    0 when it holds enough."""
    needed = amount_to_fund(milestone, ctx)[0]
    spendable = available_balance(ctx, milestone.client_id, milestone.currency)
    if ctx.settings.fund_from_pending:
        spendable += _balance(ctx, pending_account(milestone.client_id, milestone.currency))
    return max(0, needed - spendable)


def balances(ctx: Context, user_id: str) -> list[Balance]:
    """The user's available balance and what escrow holds for them either way, per currency. The escrow
    sums read only the milestones whose escrow holds money (the others add nothing), through a partial
    index: the open ones, not every milestone the user ever had."""
    # The wallet's two parts, available and not cleared yet, in one read.
    available: dict[str, int] = {}
    pending: dict[str, int] = {}
    for kind, currency, balance in ctx.session.execute(
        select(Account.kind, Account.currency, Account.balance).where(
            Account.kind.in_((AccountKind.USER, AccountKind.PENDING)), Account.user_id == user_id
        )
    ):
        if kind is AccountKind.USER:
            available[currency] = int(balance)
        elif balance:
            pending[currency] = int(balance)
    escrow = escrow_held()
    outgoing = dict(
        ctx.session.execute(
            select(Milestone.currency, func.sum(escrow))
            .where(Milestone.client_id == user_id, holds_escrow())
            .group_by(Milestone.currency)
        ).all()
    )
    incoming = dict(
        ctx.session.execute(
            select(Milestone.currency, func.sum(escrow))
            .join(Project, Project.id == Milestone.project_id)
            .where(Project.freelancer_id == user_id, holds_escrow())
            .group_by(Milestone.currency)
        ).all()
    )
    currencies = sorted(
        set(available)
        | set(pending)
        | {c for c, v in outgoing.items() if v}
        | {c for c, v in incoming.items() if v}
    )
    return [
        Balance(
            currency=currency,
            available=int(available.get(currency) or 0),
            escrow_outgoing=int(outgoing.get(currency) or 0),
            escrow_incoming=int(incoming.get(currency) or 0),
            pending=pending.get(currency, 0),
        )
        for currency in currencies
    ]
