"""The dashboard's deposit and payout forms: the amount as typed in the currency chosen (its code in any
case), a blank provider or bank account as the default."""

from __future__ import annotations

from milepost.kit.context import Context
from milepost.money import parse_amount
from milepost.wallets import service as wallets
from milepost.wallets.models import Deposit, Payout


def deposit(ctx: Context, *, amount: str, currency: str, provider: str) -> Deposit:
    code = currency.strip().upper()
    return wallets.create_deposit(
        ctx, amount=parse_amount(amount, code), currency=code, provider=provider or None
    )


def payout(
    ctx: Context, *, amount: str, currency: str, provider: str, destination_id: str
) -> Payout:
    code = currency.strip().upper()
    return wallets.create_payout(
        ctx,
        amount=parse_amount(amount, code),
        currency=code,
        provider=provider or None,
        destination_id=destination_id or None,
    )
