"""The clearing hold: money that came in by a method that can be reversed weeks later (a card can be
charged back) waits in the wallet's pending balance before it can be paid out.

A deposit through such a provider (``MILEPOST_CLEARING_DAYS``, Stripe 5 days by default) is credited to
the user's ``pending`` account rather than their available balance, and records how much of the pending
balance is still its own (``uncleared``) and when it clears (``clears_at``). At that moment the time-driven
work moves what is left of it to the available balance (a ``cleared`` entry). Payouts draw only on the
available balance. Funding escrow may draw on pending money when ``MILEPOST_FUND_FROM_PENDING`` says so
(the available balance first, then the oldest deposits not cleared yet); by default it may not (see
settings.py for why).

``ledger verify`` checks that each user's pending account holds exactly what their deposits have not
cleared.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from sqlalchemy import Select, select

from milepost.kit.context import Context
from milepost.kit.db import Database
from milepost.ledger.models import EntryKind
from milepost.ledger.service import Leg, lock_accounts, pending_account, post, user_account
from milepost.settings import Settings
from milepost.wallets.models import Deposit

log = logging.getLogger("milepost.wallets")

# Deposits cleared per run at most (the next run takes the rest).
BATCH = 500


def clearing_days(settings: Settings, provider: str) -> int:
    return settings.clearing_days.get(provider, 0)


def credit(ctx: Context, deposit: Deposit) -> Leg:
    """Where a deposit's money goes when it arrives: the pending balance until it clears, for a
    provider with a clearing hold; else straight to the available balance."""
    days = clearing_days(ctx.settings, deposit.provider)
    if not days:
        return (user_account(deposit.user_id, deposit.currency), deposit.amount)
    deposit.clears_at = ctx.now + timedelta(days=days)
    deposit.uncleared = deposit.amount
    return (pending_account(deposit.user_id, deposit.currency), deposit.amount)


def due_to_clear(now: datetime) -> Select[str]:
    """The deposits whose hold is over at ``now`` with money still not cleared, oldest hold first."""
    return (
        select(Deposit.id)
        .where(Deposit.uncleared > 0, Deposit.clears_at <= now)
        .order_by(Deposit.clears_at, Deposit.id)
    )


def clear_due(db: Database, settings: Settings, now: datetime) -> int:
    """Move what is left of each deposit whose hold is over to its owner's available balance, each in
    its own unit of work, under the deposit's row lock (two workers never clear one twice). Returns
    how many deposits cleared."""
    with db.read_only() as session:
        due = list(session.scalars(due_to_clear(now).limit(BATCH)))
    cleared = 0
    for deposit_id in due:
        try:
            with db.unit_of_work() as session:
                ctx = Context(session, None, now=now, settings=settings)
                deposit = session.get(Deposit, deposit_id, with_for_update=True)
                if deposit is None or deposit.uncleared <= 0 or deposit.clears_at is None:
                    continue
                if deposit.clears_at > ctx.now:
                    continue
                post(
                    ctx,
                    EntryKind.CLEARED,
                    [
                        (pending_account(deposit.user_id, deposit.currency), -deposit.uncleared),
                        (user_account(deposit.user_id, deposit.currency), deposit.uncleared),
                    ],
                    memo=f"deposit {deposit.id} cleared",
                )
                deposit.uncleared = 0
                deposit.cleared_at = ctx.now
                cleared += 1
        except Exception:
            log.exception("clearing a deposit failed", extra={"fields": {"deposit": deposit_id}})
    return cleared


def funding_legs(ctx: Context, client_id: str, currency: str, total: int) -> list[Leg]:
    """Where a funding of ``total`` comes from: the client's available balance; with
    ``fund_from_pending``, what it lacks from their money not cleared yet, the oldest deposits first
    (each deposit's share of the pending balance goes down by what it gave). When even both are short,
    the available balance alone is named and the ledger refuses it as a short wallet."""
    whole = [(user_account(client_id, currency), -total)]
    if not ctx.settings.fund_from_pending:
        return whole
    # Deposits before accounts: the order in which the clearing work and chargebacks lock them too.
    deposits = list(
        ctx.session.scalars(
            select(Deposit)
            .where(
                Deposit.user_id == client_id,
                Deposit.currency == currency,
                Deposit.uncleared > 0,
            )
            .order_by(Deposit.clears_at, Deposit.id)
            .with_for_update()
        )
    )
    available_ref, pending_ref = (
        user_account(client_id, currency),
        pending_account(client_id, currency),
    )
    accounts = lock_accounts(ctx, [available_ref, pending_ref])
    short = total - accounts[available_ref.key].balance
    if short <= 0 or short > accounts[pending_ref.key].balance:
        return whole
    left = short
    for deposit in deposits:
        taken = min(deposit.uncleared, left)
        deposit.uncleared -= taken
        left -= taken
        if not left:
            break
    return [(available_ref, -(total - short)), (pending_ref, -short)]
