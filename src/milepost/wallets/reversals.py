"""Deposits taken back after they were credited: a card payment charged back (Stripe's
``charge.dispute.created``), a bank transfer that bounced after staff confirmed it.

The money goes back out to where it came from (the provider's outside account), and is taken, in this
order, from:

1. the deposit's own money not cleared yet (wallets/clearing.py), which is exactly this money;
2. its owner's available balance, after calling back their pending bank-transfer payouts in that
   currency (each fails, its money returns to the wallet, and they are told why);
3. what is left is the platform's loss (``platform_loss``), recorded with the reversal: never a
   negative user balance, never money made up.

Escrow is never touched: it is the milestone's, promised to the freelancer. Everything is one balanced
entry (``deposit_reversed``), with a ``DepositReversal`` row saying where each part came from. The
owner's further payouts are held until staff lift the hold; the owner and every staff member are told.

A card dispute decided for the platform (Stripe's ``charge.dispute.closed``, ``won``) gives the money
back, once (``reinstate_deposit``): the platform's loss on it is made good first, the rest goes to the
owner's available balance (the dispute is over: nothing of it can be taken back again), in one
``deposit_reinstated`` entry. The owner's payouts are no longer held if no other deposit of theirs stays
taken back.
"""

from __future__ import annotations

from sqlalchemy import select

from milepost.events import Notice, notify
from milepost.kit import validate
from milepost.kit.context import Context
from milepost.kit.errors import InvalidState, NotFound, PermissionDenied
from milepost.kit.ids import new_id
from milepost.kit.lookup import one_or_404
from milepost.ledger.models import EntryKind
from milepost.ledger.service import (
    Leg,
    external_account,
    lock_accounts,
    loss_account,
    pending_account,
    post,
    user_account,
)
from milepost.users.models import User
from milepost.wallets.models import Deposit, DepositReversal, Payout, PayoutStatus
from milepost.wallets.providers import ManualProvider
from milepost.wallets.state import DEPOSITS, DepositStatus

MAX_REASON_LENGTH = 500
HELD = "A deposit of yours was taken back ({why}); payouts are held until Milepost staff review it."


def reverse_deposit(
    ctx: Context,
    deposit: Deposit,
    *,
    amount: int,
    reason: str,
    provider_reference: str | None = None,
) -> DepositReversal:
    """Take ``amount`` (at most the deposit) of a succeeded deposit back; the caller holds its row lock.
    A deposit is reversed once: a second reversal is InvalidState."""
    if deposit.status is not DepositStatus.SUCCEEDED:
        raise InvalidState(
            f"Only a credited deposit can be taken back; this one is {deposit.status}."
        )
    amount = min(amount, deposit.amount)
    currency = deposit.currency
    owner = ctx.session.get(User, deposit.user_id)
    assert owner is not None
    payouts_failed = _call_back_payouts(ctx, deposit.user_id, currency, reason)
    # Deposits, then accounts: the order the clearing work and funding lock them in.
    available_ref = user_account(deposit.user_id, currency)
    pending_ref = pending_account(deposit.user_id, currency)
    accounts = lock_accounts(ctx, [available_ref, pending_ref])
    from_pending = min(deposit.uncleared, accounts[pending_ref.key].balance, amount)
    from_available = min(accounts[available_ref.key].balance, amount - from_pending)
    loss = amount - from_pending - from_available
    legs: list[Leg] = [
        (external_account(deposit.provider, currency), amount),
        (pending_ref, -from_pending),
        (available_ref, -from_available),
        (loss_account(currency), -loss),
    ]
    entry = post(
        ctx,
        EntryKind.DEPOSIT_REVERSED,
        legs,
        memo=f"deposit {deposit.id} taken back ({reason})"[:500],
    )
    deposit.uncleared -= from_pending
    DEPOSITS.move(deposit, DepositStatus.REVERSED)
    reversal = DepositReversal(
        id=new_id("rev"),
        deposit_id=deposit.id,
        provider_reference=provider_reference,
        reason=reason,
        currency=currency,
        amount=amount,
        from_pending=from_pending,
        from_available=from_available,
        payouts_failed=payouts_failed,
        loss=loss,
        entry_id=entry.id,
        created_at=ctx.now,
        created_by=ctx.actor_id,
    )
    ctx.session.add(reversal)
    owner.payouts_held_reason = HELD.format(why=reason)[:500]
    _tell(ctx, deposit, reversal)
    return reversal


def reinstate_deposit(ctx: Context, reversal: DepositReversal) -> DepositReversal:
    """Give back what ``reversal`` took (its card dispute was won); the caller holds its deposit's row
    lock. Once: a second call is InvalidState."""
    if reversal.reinstated_at is not None:
        raise InvalidState("This deposit was given back already.")
    deposit = ctx.session.get(Deposit, reversal.deposit_id)
    assert deposit is not None
    owner = ctx.session.get(User, deposit.user_id)
    assert owner is not None
    currency = reversal.currency
    to_wallet = reversal.from_pending + reversal.from_available
    available_ref = user_account(owner.id, currency)
    lock_accounts(ctx, [available_ref])
    entry = post(
        ctx,
        EntryKind.DEPOSIT_REINSTATED,
        [
            (external_account(deposit.provider, currency), -reversal.amount),
            (available_ref, to_wallet),
            (loss_account(currency), reversal.loss),
        ],
        memo=f"deposit {deposit.id} given back (its dispute was decided for the platform)",
    )
    reversal.reinstated_at = ctx.now
    reversal.reinstated_entry_id = entry.id
    standing = ctx.session.scalar(
        select(DepositReversal.id)
        .join(Deposit, Deposit.id == DepositReversal.deposit_id)
        .where(
            Deposit.user_id == owner.id,
            DepositReversal.reinstated_at.is_(None),
            DepositReversal.id != reversal.id,
        )
        .limit(1)
    )
    resumed = standing is None and owner.payouts_held_reason is not None
    if resumed:
        owner.payouts_held_reason = None
    data = {
        "deposit_id": deposit.id,
        "amount": reversal.amount,
        "currency": currency,
        "to_wallet": to_wallet,
        "loss_recovered": reversal.loss,
        "payouts_resumed": resumed,
    }
    _tell_owner_and_staff(
        ctx, deposit, (Notice.DEPOSIT_REINSTATED, Notice.STAFF_DEPOSIT_REINSTATED), data
    )
    return reversal


def _tell_owner_and_staff(
    ctx: Context, deposit: Deposit, notices: tuple[Notice, Notice], data: dict[str, object]
) -> None:
    """The deposit's owner gets the first notice, staff the second (with whose deposit it was), each
    once per deposit."""
    owner_notice, staff_notice = notices
    notify(
        ctx,
        owner_notice,
        user_ids=[deposit.user_id],
        data=data,
        key=f"{owner_notice.value}:{deposit.id}",
    )
    notify(
        ctx,
        staff_notice,
        user_ids=_staff_ids(ctx),
        data={**data, "user_id": deposit.user_id},
        key=f"{staff_notice.value}:{deposit.id}",
    )


def _staff_ids(ctx: Context) -> list[str]:
    return list(ctx.session.scalars(select(User.id).where(User.is_staff.is_(True))).all())


def _call_back_payouts(ctx: Context, user_id: str, currency: str, reason: str) -> int:
    """Fail the owner's pending bank-transfer payouts in ``currency`` (staff have not sent them): their
    money returns to the wallet, where the reversal can take it; returns how much. A pending Stripe
    payout is left alone: the worker may be sending it at this moment, outside any transaction, and
    failing it here could record as returned money that Stripe has already transferred."""
    from milepost.wallets.transfers import MANUAL_PAYOUT

    payouts = ctx.session.scalars(
        select(Payout)
        .where(
            Payout.user_id == user_id,
            Payout.currency == currency,
            Payout.status == PayoutStatus.PENDING,
            Payout.provider == ManualProvider.name,
        )
        .order_by(Payout.id)
        .with_for_update()
    ).all()
    total = 0
    for payout in payouts:
        MANUAL_PAYOUT.close_pending(
            ctx, payout, f"Held: a deposit was taken back ({reason}).", Notice.PAYOUT_FAILED
        )
        total += payout.amount
    return total


def _tell(ctx: Context, deposit: Deposit, reversal: DepositReversal) -> None:
    data = {
        "deposit_id": deposit.id,
        "amount": reversal.amount,
        "currency": deposit.currency,
        "reason": reversal.reason,
        "from_wallet": reversal.from_pending + reversal.from_available,
        "loss": reversal.loss,
    }
    _tell_owner_and_staff(
        ctx, deposit, (Notice.DEPOSIT_REVERSED, Notice.STAFF_DEPOSIT_REVERSED), data
    )


def bounce_deposit(ctx: Context, deposit_id: str, *, reason: object) -> DepositReversal:
    """Staff: a confirmed bank transfer came back (the payer's bank returned it). Taken back like a
    chargeback."""
    ctx.require_staff("record a bounced deposit")
    why = validate.text(reason, "reason", max_length=MAX_REASON_LENGTH)
    deposit = one_or_404(
        ctx.session,
        select(Deposit).where(Deposit.id == deposit_id),
        lock=True,
        missing="No such deposit.",
    )
    if deposit.provider != "manual":
        raise InvalidState(
            "Only a bank transfer bounces; a card payment is taken back by its provider."
        )
    return reverse_deposit(ctx, deposit, amount=deposit.amount, reason=why)


def lift_payout_hold(ctx: Context, user_id: str) -> User:
    """Staff: the user's payouts may go again."""
    ctx.require_staff("lift a payout hold")
    user = ctx.session.get(User, user_id)
    if user is None:
        raise NotFound("No such user.", param="user_id")
    user.payouts_held_reason = None
    return user


def check_payouts_allowed(user: User) -> None:
    """Refuse a payout while the user's payouts are held."""
    if user.payouts_held_reason:
        raise PermissionDenied(user.payouts_held_reason, code="payouts_held")
