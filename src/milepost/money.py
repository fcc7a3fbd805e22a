"""Money: integers in a currency's minor unit, never floats.

Exponents come from Babel's CLDR tables (USD 2, JPY 0, KWD 3). Rounding is half-up in exactly one helper,
``round_half_up``; every fee in Milepost goes through ``fee_on``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from decimal import Decimal
from functools import cache, lru_cache
from typing import Any

from babel.core import get_global
from babel.numbers import (
    format_currency,
    get_currency_precision,
    get_currency_symbol,
    get_territory_currencies,
    list_currencies,
)

from milepost.kit.errors import ValidationFailed

MAX_AMOUNT = 10**12
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
            f"Amount must not exceed {MAX_AMOUNT:,} minor units ({MAX_AMOUNT // 100:,}.00 in a "
            "currency with cents, such as USD).",
            code="invalid_amount",
            param=param,
        )
    return value


def parse_amount(
    text: Any, currency: Any, *, param: str = "amount", allow_zero: bool = False
) -> int:
    """Minor units from an amount as people type it in ``currency`` ("1,500.50" USD -> 150050).

    The one reader of typed amounts: every form goes through it. Only what cannot be misread is taken:
    digits with a point before the decimals, commas only as whole thousands groups ("1,234,567.50"),
    at most the currency's decimals (JPY none, KWD 3), optionally after the currency's own symbol or
    code ("$5,000", "USD 5,000", as ``format_money`` writes it). Anything else is refused, never
    guessed: "12,50" may be twelve and a half or 1,250 depending on who typed it, and money must not be
    multiplied by 100 because of a reading. ``allow_zero`` for the amounts where nothing is a valid
    answer (a dispute's part for one side)."""
    # The currency of something that already exists (a project's): known is enough, so that an amount
    # in a currency withdrawn since the project began can still be read.
    code = _check_code(currency, "currency")
    places = exponent(code)
    number = _strip_currency(text.strip(), code) if isinstance(text, str) else ""
    # Longer than any amount up to MAX_AMOUNT can be written: refused before any arithmetic.
    match = _AMOUNT.fullmatch(number) if len(number) <= 40 else None
    if match is None:
        raise ValidationFailed(_how_to_write(code), code="invalid_amount", param=param)
    whole, fraction = match["whole"].replace(",", ""), match["fraction"] or ""
    if len(fraction) > places:
        allowed = f"at most {places} decimal places" if places else "no decimal places"
        raise ValidationFailed(
            f"{code} amounts have {allowed}. {_how_to_write(code)}",
            code="invalid_amount",
            param=param,
        )
    minor = int(whole) * 10**places + int(fraction.ljust(places, "0") or "0")
    if minor > MAX_AMOUNT:  # said in the currency the person typed in, not in minor units
        raise ValidationFailed(
            f"Amounts go up to {format_money(MAX_AMOUNT, code)}.",
            code="invalid_amount",
            param=param,
        )
    return validate_amount(minor, param=param, allow_zero=allow_zero)


# Plain digits ("1234.50") or whole thousands groups ("1,234.50"); ASCII digits only (``\d`` would take
# "٣"), no signs, exponents, spaces or decimal commas.
_AMOUNT = re.compile(
    r"(?P<whole>[0-9]+|[0-9]{1,3}(?:,[0-9]{3})+)(?:\.(?P<fraction>[0-9]+))?", re.ASCII
)


def _strip_currency(text: str, code: str) -> str:
    """The number after an optional leading symbol or code of ``code`` ("$5,000", "USD 5,000",
    "KWD1,000.000"). Another currency's mark stays, and the number is then refused: a "$" on a EUR
    form is not a euro."""
    for mark in sorted({code, currency_symbol(code)}, key=len, reverse=True):
        if text.startswith(mark):
            return text[len(mark) :].lstrip()
    return text


@cache
def currency_symbol(code: str) -> str:
    """The symbol ``format_money`` writes before an amount in ``code``: "$", "€", "KWD"."""
    return str(get_currency_symbol(_check_code(code, "currency"), locale="en"))


def _how_to_write(code: str) -> str:
    """How to write an amount in ``code``, with an example of its decimals: "1,234.50", "1,234"."""
    places = exponent(code)
    example = f"{Decimal('1234.5').quantize(Decimal(1).scaleb(-places)):,f}" if places else "1,234"
    if places == 0:
        rule = "whole units, no decimal point"
    elif places == 2:
        rule = "a point before the cents"
    else:
        rule = f"a point before the {places} decimals"
    return f"Write amounts like {example} ({rule}; commas only between thousands)."


def exponent(currency: str) -> int:
    """Number of decimal places of the currency's minor unit (USD 2, JPY 0, KWD 3)."""
    # Known, not necessarily tender: stored amounts in a since-withdrawn currency must still show.
    return int(get_currency_precision(_check_code(currency, "currency")))


def to_decimal(amount: int, currency: str) -> Decimal:
    return Decimal(amount).scaleb(-exponent(currency))


def format_money(amount: int, currency: str, locale: str = "en_US") -> str:
    """Format minor units for people: 1500000 USD -> '$15,000.00', 1500 JPY -> '¥1,500'."""
    return _formatted(amount, currency, locale)


@lru_cache(maxsize=4096)
def _formatted(amount: int, currency: str, locale: str) -> str:
    # Remembered for the last few thousand amounts: Babel takes some 80 µs a call, and one change's
    # notifications, pages and errors write the same few amounts several times over.
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
