"""Staff's to-do list of bank transfers: manual deposits waiting to be confirmed (or rejected) and manual
payouts waiting to be marked paid (or failed), oldest first (the longest-waiting customer comes first).
Each payout carries its destination in full: staff are the ones who send the money.

Only the ``manual`` provider waits on staff; other providers settle themselves. Each line carries the
actions staff may take on it, as the service's guards answer (``available_deposit_actions``,
``available_payout_actions``): the page offers those forms and no others. Staff only: anyone else is refused
with PermissionDenied, as ``confirm_deposit`` and ``mark_payout_paid`` refuse them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import selectinload

from milepost.kit.context import Context
from milepost.kit.pagination import key_of, keyset
from milepost.users.models import User
from milepost.wallets import service as wallets
from milepost.wallets.destinations import formatted_iban
from milepost.wallets.models import Deposit, DepositStatus, Payout, PayoutDestination, PayoutStatus
from milepost.wallets.providers import ManualProvider

STAFF_CONFIRMED = ManualProvider.name


def describe_age(age: timedelta) -> str:
    """How long something has waited, as people say it: "3 days", "5 hours", "under an hour"."""
    if age >= timedelta(days=1):
        days = age.days
        return f"{days} day{'s' if days != 1 else ''}"
    hours = int(age.total_seconds() // 3600)
    if hours >= 1:
        return f"{hours} hour{'s' if hours != 1 else ''}"
    return "under an hour"


@dataclass(frozen=True)
class BankDetails:
    """Everything staff need to send a bank transfer: never shown to anyone but staff."""

    label: str
    holder_name: str
    iban: str | None  # in groups of four
    bic: str | None
    account_number: str | None
    routing_number: str | None
    removed: bool  # the user removed it after asking for this payout: still where it goes

    @classmethod
    def of(cls, destination: PayoutDestination) -> BankDetails:
        return cls(
            label=destination.label,
            holder_name=destination.holder_name,
            iban=formatted_iban(destination),
            bic=destination.bic,
            account_number=destination.account_number,
            routing_number=destination.routing_number,
            removed=destination.removed_at is not None,
        )


@dataclass(frozen=True)
class PendingTransfer:
    id: str
    user_name: str
    user_email: str
    amount: int
    currency: str
    reference: str
    created_at: datetime
    age: str
    actions: frozenset[str]  # what staff may do to it now (``DepositAction``, ``PayoutAction``)
    destination: BankDetails | None = None  # payouts only


@dataclass(frozen=True)
class PendingTransfers:
    """A page of each list; ``more_*``: there are older ones after the last line."""

    deposits: list[PendingTransfer]
    payouts: list[PendingTransfer]
    more_deposits: bool = False
    more_payouts: bool = False


TRANSFERS_PAGE = 50  # deposits (and payouts) per page


def pending_transfers(
    ctx: Context,
    *,
    deposits_after: str | None = None,
    payouts_after: str | None = None,
    limit: int = TRANSFERS_PAGE,
) -> PendingTransfers:
    """Manual deposits to confirm and manual payouts to mark paid, each oldest first, a page of each:
    ``deposits_after`` and ``payouts_after`` are the last lines of the previous pages."""
    ctx.require_staff("see pending transfers")
    deposit_order = (Deposit.created_at, Deposit.id)
    deposits = keyset(
        ctx.session,
        select(Deposit, User)
        .join(User, User.id == Deposit.user_id)
        .where(Deposit.status == DepositStatus.PENDING, Deposit.provider == STAFF_CONFIRMED),
        deposit_order,
        limit=limit,
        after=None
        if deposits_after is None
        else key_of(ctx.session, deposit_order, Deposit.id, deposits_after, param="deposits_after"),
    )
    payout_order = (Payout.created_at, Payout.id)
    payouts = keyset(
        ctx.session,
        select(Payout, User)
        .join(User, User.id == Payout.user_id)
        .where(Payout.status == PayoutStatus.PENDING, Payout.provider == STAFF_CONFIRMED)
        .options(selectinload(Payout.destination)),
        payout_order,
        limit=limit,
        after=None
        if payouts_after is None
        else key_of(ctx.session, payout_order, Payout.id, payouts_after, param="payouts_after"),
    )
    return PendingTransfers(
        deposits=[_line(ctx, deposit, user) for deposit, user in deposits.data],
        payouts=[_line(ctx, payout, user) for payout, user in payouts.data],
        more_deposits=deposits.has_more,
        more_payouts=payouts.has_more,
    )


def _line(ctx: Context, transfer: Deposit | Payout, user: User) -> PendingTransfer:
    if isinstance(transfer, Payout):
        destination = transfer.destination
        actions: frozenset[str] = wallets.available_payout_actions(ctx, transfer)
    else:
        destination = None
        actions = wallets.available_deposit_actions(ctx, transfer)
    return PendingTransfer(
        id=transfer.id,
        user_name=user.name,
        user_email=user.email,
        amount=transfer.amount,
        currency=transfer.currency,
        reference=transfer.reference,
        created_at=transfer.created_at,
        age=describe_age(ctx.now - transfer.created_at),
        actions=actions,
        destination=None if destination is None else BankDetails.of(destination),
    )
