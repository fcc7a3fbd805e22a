"""Money: integers in a currency's minor unit, never floats.

Exponents come from Babel's CLDR tables (USD 2, JPY 0, KWD 3). Rounding is half-up in exactly one helper,
``round_half_up``; every fee in Milepost goes through ``fee_on``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from decimal import Decimal
from functools import cache
from typing import Any

from babel.core import get_global
from babel.numbers import (
    format_currency,
    get_currency_precision,
    get_territory_currencies,
    list_currencies,
)

from milepost.kit.errors import ValidationFailed

MAX_AMOUNT = 10**12
_PLAIN_AMOUNT = re.compile(r"[0-9]{1,16}(\.[0-9]{1,16})?")
BPS_DENOMINATOR = 10_000


@cache
def _known_currencies() -> frozenset[str]:
    return frozenset(list_currencies())


@cache
def legal_tender() -> frozenset[str]:
    """The currencies that are legal tender somewhere today, by CLDR's territory tables.

    ISO 4217 also lists codes that are not money anyone can be paid in: ``XXX`` (no currency), ``XTS``
    (testing), the metals ``XAU``/``XAG``/``XPT``/``XPD``, units of account such as ``XDR``, ``XSU``,
    ``XUA``, ``XBA``..``XBD``, fund codes (``USN``, ``BOV``, ``CLF``) and withdrawn ones (``HRK``).
    The real currencies whose codes start with X (``XOF``, ``XAF``, ``XCD``, ``XPF``) are tender in
    their territories and so are in this set. Computed once per process.
    """
    territories = get_global("territory_currencies")
    return frozenset(
        code
        for territory in territories
        for code in get_territory_currencies(territory, tender=True)
    )


def _check_code(code: Any, param: str) -> str:
    if not isinstance(code, str) or len(code) != 3 or not code.isalpha() or not code.isupper():
        raise ValidationFailed(
            "Currency must be an upper-case ISO 4217 code such as USD.",
            code="invalid_currency",
            param=param,
        )
    if code not in _known_currencies():
        raise ValidationFailed(f"Unknown currency {code}.", code="invalid_currency", param=param)
    return code


def validate_currency(code: Any, *, param: str = "currency") -> str:
    """Return the code if it is the ISO 4217 code of legal tender (what new projects, deposits and
    payouts may use); refuse anything else, the ISO codes that are not money included."""
    known = _check_code(code, param)
    if known not in legal_tender():
        raise ValidationFailed(
            f"{known} is not a currency that can be paid in; use the ISO 4217 code of legal tender "
            "such as USD or EUR.",
            code="invalid_currency",
            param=param,
        )
    return known


def validate_amount(value: Any, *, param: str = "amount", allow_zero: bool = False) -> int:
    """Return ``value`` if it is a whole number of minor units in range; refuse floats, strings, bools."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValidationFailed(
            "Amount must be an integer number of minor units (cents for USD).",
            code="invalid_amount",
            param=param,
        )
    if value < 0 or (value == 0 and not allow_zero):
        raise ValidationFailed(
            "Amount must be positive." if not allow_zero else "Amount must not be negative.",
            code="invalid_amount",
            param=param,
        )
    if value > MAX_AMOUNT:
        raise ValidationFailed(
            f"Amount must not exceed {MAX_AMOUNT} minor units.", code="invalid_amount", param=param
        )
    return value


def parse_amount(
    text: Any, currency: Any, *, param: str = "amount", allow_zero: bool = False
) -> int:
    """Minor units from an amount as people type it ("1,500.50" USD -> 150050); refuse more decimals
    than the currency has, and anything that is not a plain positive number (no signs, no exponents).
    ``allow_zero`` for the amounts where nothing is a valid answer (a dispute's part for one side)."""
    # The currency of something that already exists (a project's): known is enough, so that an amount
    # in a currency withdrawn since the project began can still be read.
    code = _check_code(currency, "currency")
    cleaned = text.strip().replace(",", "") if isinstance(text, str) else ""
    if not _PLAIN_AMOUNT.fullmatch(cleaned):
        raise ValidationFailed(
            "Enter an amount such as 150.00.", code="invalid_amount", param=param
        )
    minor = Decimal(cleaned).scaleb(exponent(code))
    if minor != minor.to_integral_value():
        raise ValidationFailed(
            f"{code} amounts have at most {exponent(code)} decimal places.",
            code="invalid_amount",
            param=param,
        )
    return validate_amount(int(minor), param=param, allow_zero=allow_zero)


def exponent(currency: str) -> int:
    """Number of decimal places of the currency's minor unit (USD 2, JPY 0, KWD 3)."""
    # Known, not necessarily tender: stored amounts in a since-withdrawn currency must still show.
    return int(get_currency_precision(_check_code(currency, "currency")))


def to_decimal(amount: int, currency: str) -> Decimal:
    return Decimal(amount).scaleb(-exponent(currency))


def format_money(amount: int, currency: str, locale: str = "en_US") -> str:
    """Format minor units for people: 1500000 USD -> '$15,000.00', 1500 JPY -> '¥1,500'."""
    return str(
        format_currency(to_decimal(amount, currency), currency, locale=locale, currency_digits=True)
    )


def round_half_up(numerator: int, denominator: int) -> int:
    """Round numerator/denominator to the nearest integer, halves away from zero. Integers only."""
    if denominator <= 0:
        raise ValueError("denominator must be positive")
    quotient, remainder = divmod(abs(numerator), denominator)
    if 2 * remainder >= denominator:
        quotient += 1
    return quotient if numerator >= 0 else -quotient


def fee_on(amount: int, rate_bps: int) -> int:
    """The platform fee on ``amount`` at ``rate_bps`` basis points, rounded half-up."""
    return round_half_up(amount * rate_bps, BPS_DENOMINATOR)


def cumulative_fee(released_before: int, released_now: int, fee_taken: int, rate_bps: int) -> int:
    """Fee due on a release of ``released_now``, given what was released and charged before.

    Computed on the cumulative amount so that a milestone paid in parts costs exactly what it would cost
    paid at once: fee(total) == sum of the fees of the parts.
    """
    return fee_on(released_before + released_now, rate_bps) - fee_taken


def allocate(total: int, weights: Sequence[int]) -> list[int]:
    """Split ``total`` in proportion to ``weights`` (largest remainder); the parts always add up to it."""
    if not weights or any(weight < 0 for weight in weights) or sum(weights) <= 0:
        raise ValueError("weights must be non-negative with a positive sum")
    weight_sum = sum(weights)
    floors = [total * weight // weight_sum for weight in weights]
    remainders = [total * weight % weight_sum for weight in weights]
    shortfall = total - sum(floors)
    # Hand the leftover units to the largest remainders; ties go to the earlier part.
    order = sorted(range(len(weights)), key=lambda index: (-remainders[index], index))
    for index in order[:shortfall]:
        floors[index] += 1
    return floors
