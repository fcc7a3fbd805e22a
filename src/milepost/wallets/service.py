"""Wallets: deposits in, payouts out, and the balances a user sees."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select

from milepost.kit.context import Context
from milepost.kit.errors import InvalidState, NotFound, PermissionDenied
from milepost.kit.ids import new_id
from milepost.ledger.models import Account, AccountKind, EntryKind
from milepost.ledger.service import clearing_account, external_account, post, user_account
from milepost.milestones.models import Milestone
from milepost.money import validate_amount, validate_currency
from milepost.projects.models import Project
from milepost.wallets.models import Deposit, DepositStatus, Payout, PayoutStatus
from milepost.wallets.providers import get_provider


def _require_staff(ctx: Context, what: str) -> None:
    if not ctx.require_actor().is_staff:
        raise PermissionDenied(f"Only staff can {what}.", code="staff_only")


def create_deposit(
    ctx: Context, *, amount: object, currency: object, provider: object = "sandbox"
) -> Deposit:
    user = ctx.require_actor()
    amount = validate_amount(amount)
    currency = validate_currency(currency)
    payment_provider = get_provider(provider)
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


def confirm_deposit(ctx: Context, deposit_id: str) -> Deposit:
    """Staff confirm that a manual deposit's money has arrived."""
    _require_staff(ctx, "confirm deposits")
    deposit = ctx.session.scalar(
        select(Deposit)
        .where(Deposit.id == deposit_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    if deposit is None:
        raise NotFound("No such deposit.", param="id")
    if deposit.status is not DepositStatus.PENDING:
        raise InvalidState("This deposit is confirmed already.")
    deposit.confirmed_by = ctx.actor_id
    _settle_deposit(ctx, deposit)
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
    ctx: Context, *, amount: object, currency: object, provider: object = "sandbox"
) -> Payout:
    """Withdraw earnings. The money leaves the available balance at once (402 if it is not there)."""
    user = ctx.require_actor()
    amount = validate_amount(amount)
    currency = validate_currency(currency)
    payment_provider = get_provider(provider)
    payout = Payout(
        id=new_id("po"),
        user_id=user.id,
        amount=amount,
        currency=currency,
        provider=payment_provider.name,
        status=PayoutStatus.PENDING,
        created_at=ctx.now,
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


def mark_payout_paid(ctx: Context, payout_id: str) -> Payout:
    """Staff record that a manual payout has been sent."""
    _require_staff(ctx, "mark payouts paid")
    payout = ctx.session.scalar(
        select(Payout)
        .where(Payout.id == payout_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    if payout is None:
        raise NotFound("No such payout.", param="id")
    if payout.status is not PayoutStatus.PENDING:
        raise InvalidState("This payout is marked paid already.")
    payout.marked_paid_by = ctx.actor_id
    _settle_payout(ctx, payout)
    return payout


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
