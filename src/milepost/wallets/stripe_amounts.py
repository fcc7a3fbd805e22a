"""Amounts as Stripe writes them, which is not always in the minor unit Milepost counts in.

Stripe counts most currencies in hundredths, the zero-decimal ones in whole units and the three-decimal
ones in thousandths (https://docs.stripe.com/currencies). Where its count differs from the minor unit
Milepost stores (Babel's precision, which is CLDR's: whole units for ISK, HUF, IDR, COP and others that
ISO 4217 gives two decimals), the amount is scaled: 1 króna, 1 forint, 1 rupiah is ``100`` at Stripe.
Some amounts Stripe will not take at all: three-decimal currencies move in steps of ten thousandths, and
payouts of HUF and TWD in whole units. Those are refused before any money moves, with the step in the
currency's format.
"""

from __future__ import annotations

import math

from milepost.kit.errors import ValidationFailed
from milepost.money import exponent, format_money

# The currencies Stripe counts in whole units, and in thousandths; every other one in hundredths.
ZERO_DECIMAL = frozenset(
    [
        "BIF",
        "CLP",
        "DJF",
        "GNF",
        "JPY",
        "KMF",
        "KRW",
        "MGA",
        "PYG",
        "RWF",
        "UGX",
        "VND",
        "VUV",
        "XAF",
        "XOF",
        "XPF",
    ]
)
THREE_DECIMAL = frozenset(["BHD", "JOD", "KWD", "OMR", "TND"])
# Stripe's smallest step, in its own count, where it is more than one.
_STEP = {currency: 10 for currency in THREE_DECIMAL}
_PAYOUT_STEP = {**_STEP, "HUF": 100, "TWD": 100}


def stripe_exponent(currency: str) -> int:
    if currency in ZERO_DECIMAL:
        return 0
    return 3 if currency in THREE_DECIMAL else 2


def to_stripe(amount: int, currency: str, *, payout: bool = False) -> int:
    """``amount`` (Milepost's minor units) as Stripe counts it; ValidationFailed (param ``amount``) when
    Stripe cannot move exactly that amount."""
    shift = stripe_exponent(currency) - exponent(currency)
    # Stripe's count is amount * up / down.
    up, down = int(10 ** max(shift, 0)), int(10 ** max(-shift, 0))
    step = (_PAYOUT_STEP if payout else _STEP).get(currency, 1)  # in Stripe's count
    if (amount * up) % (down * step):
        smallest = math.lcm(down * step, up) // up  # in Milepost's minor units
        what = "Payouts to Stripe" if payout else "Card deposits"
        raise ValidationFailed(
            f"{what} in {currency} go in steps of {format_money(smallest, currency)}.",
            param="amount",
        )
    return amount * up // down


def from_stripe(amount: int, currency: str, *, rounding_up: bool = False) -> int | None:
    """An amount Stripe reports, in Milepost's minor units: None if it is not a whole number of them,
    unless ``rounding_up`` (then the least whole number that covers it)."""
    shift = stripe_exponent(currency) - exponent(currency)
    if shift <= 0:
        return amount * int(10**-shift)
    whole, rest = divmod(amount, int(10**shift))
    if rest:
        return whole + 1 if rounding_up else None
    return whole
