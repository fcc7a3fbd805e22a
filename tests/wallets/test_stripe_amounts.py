"""Amounts in Stripe's count: scaled where Stripe counts a currency otherwise than Milepost does, exact
both ways, and refused with the currency's own step where Stripe cannot move the amount."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from milepost.kit.errors import ValidationFailed
from milepost.money import exponent
from milepost.wallets.stripe_amounts import from_stripe, stripe_exponent, to_stripe

SOME = ["USD", "EUR", "JPY", "KRW", "ISK", "HUF", "IDR", "COP", "KWD", "BHD", "TWD", "UGX", "CLP"]


@pytest.mark.parametrize(
    ("currency", "ours", "theirs"),
    [
        ("USD", 1_050, 1_050),  # $10.50: cents on both sides
        ("JPY", 500, 500),  # ¥500: zero-decimal on both sides
        ("ISK", 5, 500),  # 5 krónur: Stripe keeps two decimals for it
        ("HUF", 1_000, 100_000),  # 1,000 forints
        ("IDR", 10_000, 1_000_000),  # 10,000 rupiah
        ("KWD", 5_120, 5_120),  # 5.120 KWD
    ],
)
def test_known_amounts(currency: str, ours: int, theirs: int) -> None:
    assert to_stripe(ours, currency) == theirs
    assert from_stripe(theirs, currency) == ours


@given(st.sampled_from(SOME), st.integers(min_value=1, max_value=10**12))
def test_what_stripe_takes_comes_back_exactly(currency: str, amount: int) -> None:
    try:
        theirs = to_stripe(amount, currency)
    except ValidationFailed:
        # Only a three-decimal amount off Stripe's step of ten is refused for a deposit.
        assert stripe_exponent(currency) == 3 and amount % 10
        return
    assert from_stripe(theirs, currency) == amount
    assert theirs == amount * 10 ** (stripe_exponent(currency) - exponent(currency))


def test_what_stripe_cannot_move_is_refused_in_the_currencys_format() -> None:
    with pytest.raises(ValidationFailed, match=r"Card deposits in KWD go in steps of KWD0\.010\."):
        to_stripe(5_124, "KWD")
    # Payouts of TWD go in whole dollars; deposits of it may carry cents.
    assert to_stripe(1_050, "TWD") == 1_050
    with pytest.raises(
        ValidationFailed, match=r"Payouts to Stripe in TWD go in steps of NT\$1\.00"
    ):
        to_stripe(1_050, "TWD", payout=True)
    assert to_stripe(1_000, "TWD", payout=True) == 1_000
    # HUF payouts are whole forints at Stripe, which is all Milepost counts in.
    assert to_stripe(7, "HUF", payout=True) == 700


def test_a_fraction_of_milepost_s_unit_is_none_or_rounded_up() -> None:
    assert from_stripe(550, "ISK") is None
    assert from_stripe(550, "ISK", rounding_up=True) == 6
