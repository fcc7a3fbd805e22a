"""Money helpers, no database: allocation, fees, rounding, amounts and currencies (property-based)."""

from __future__ import annotations

import itertools
import math
from decimal import ROUND_HALF_UP, Decimal, localcontext
from fractions import Fraction

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from milepost.kit.errors import ValidationFailed
from milepost.money import (
    MAX_AMOUNT,
    allocate,
    cumulative_fee,
    exponent,
    fee_on,
    format_money,
    parse_amount,
    round_half_up,
    validate_amount,
    validate_currency,
)

amounts = st.integers(min_value=1, max_value=MAX_AMOUNT)
rates = st.integers(min_value=0, max_value=10_000)


# allocate -----------------------------------------------------------------------------------------------


@given(
    total=st.integers(min_value=0, max_value=MAX_AMOUNT),
    weights=st.lists(st.integers(min_value=0, max_value=10**9), min_size=1, max_size=12).filter(
        lambda weights: sum(weights) > 0
    ),
)
@example(total=100, weights=[1, 1, 1])
@example(total=1, weights=[1, 1])
@example(total=5, weights=[0, 3, 0, 3])
def test_allocate_parts_add_up_and_stay_near_the_exact_share(
    total: int, weights: list[int]
) -> None:
    parts = allocate(total, weights)

    assert len(parts) == len(weights)
    assert sum(parts) == total
    assert all(isinstance(part, int) and part >= 0 for part in parts)
    for part, weight in zip(parts, weights, strict=True):
        exact = Fraction(total * weight, sum(weights))
        assert abs(part - exact) < 1, (part, exact)
        if weight == 0:
            assert part == 0


def test_allocate_hands_leftovers_to_the_largest_remainders_earlier_first() -> None:
    assert allocate(100, [1, 1, 1]) == [34, 33, 33]
    assert allocate(10, [1, 2]) == [3, 7]
    assert allocate(0, [5, 5]) == [0, 0]


@pytest.mark.parametrize("weights", [[], [0, 0], [1, -1], [-3]])
def test_allocate_refuses_weights_without_a_positive_sum(weights: list[int]) -> None:
    with pytest.raises(ValueError):
        allocate(100, weights)


# Fees ---------------------------------------------------------------------------------------------------


@st.composite
def split_amounts(draw: st.DrawFn) -> tuple[int, list[int]]:
    """An amount and a split of it into 1..10 positive parts."""
    amount = draw(st.one_of(st.integers(1, 1_000), st.integers(1, MAX_AMOUNT)))
    count = draw(st.integers(1, min(10, amount)))
    cuts = sorted(
        draw(st.sets(st.integers(1, amount - 1), min_size=count - 1, max_size=count - 1))
        if count > 1
        else set()
    )
    bounds = [0, *cuts, amount]
    return amount, [b - a for a, b in itertools.pairwise(bounds)]


@given(split=split_amounts(), rate_bps=rates)
@example(split=(10, [5, 5]), rate_bps=1000)  # 0.5 + 0.5: per-part rounding would charge 2
@example(split=(3, [1, 1, 1]), rate_bps=5000)
def test_cumulative_fee_over_parts_equals_the_fee_on_the_whole(
    split: tuple[int, list[int]], rate_bps: int
) -> None:
    amount, parts = split
    assert sum(parts) == amount and all(part > 0 for part in parts)

    released = fee_taken = 0
    for part in parts:
        step = cumulative_fee(released, part, fee_taken, rate_bps)
        assert 0 <= step <= part  # never negative, never more than the part released
        released += part
        fee_taken += step

    assert fee_taken == fee_on(amount, rate_bps)


@given(amount=st.integers(0, MAX_AMOUNT), rate_bps=rates)
def test_fee_on_is_the_half_up_rounded_rate_of_the_amount(amount: int, rate_bps: int) -> None:
    fee = fee_on(amount, rate_bps)
    exact = Fraction(amount * rate_bps, 10_000)
    assert abs(fee - exact) <= Fraction(1, 2)
    assert 0 <= fee <= amount
    if exact - math.floor(exact) == Fraction(1, 2):
        assert fee == math.ceil(exact)


def test_fee_examples() -> None:
    assert fee_on(100_000, 1000) == 10_000
    assert fee_on(5, 1000) == 1  # 0.5 rounds up
    assert fee_on(4, 1000) == 0
    assert fee_on(12_345, 0) == 0
    assert fee_on(12_345, 10_000) == 12_345


# Rounding -----------------------------------------------------------------------------------------------


@given(
    numerator=st.integers(-(10**18), 10**18),
    denominator=st.integers(1, 10**12),
)
@example(numerator=5, denominator=10)
@example(numerator=-5, denominator=10)
@example(numerator=15, denominator=10)
@example(numerator=-25, denominator=10)
@example(numerator=1, denominator=3)
@example(numerator=2, denominator=3)
@example(numerator=0, denominator=7)
def test_round_half_up_matches_decimal_round_half_up(numerator: int, denominator: int) -> None:
    with localcontext() as context:
        context.prec = 80
        expected = (Decimal(numerator) / Decimal(denominator)).quantize(
            Decimal(1), rounding=ROUND_HALF_UP
        )
    result = round_half_up(numerator, denominator)
    assert isinstance(result, int)
    assert result == int(expected)


@pytest.mark.parametrize("denominator", [0, -1, -10_000])
def test_round_half_up_refuses_a_denominator_that_is_not_positive(denominator: int) -> None:
    with pytest.raises(ValueError):
        round_half_up(10, denominator)


# Amounts ------------------------------------------------------------------------------------------------


@given(value=amounts)
@example(value=1)
@example(value=MAX_AMOUNT)
def test_validate_amount_accepts_whole_minor_units_in_range(value: int) -> None:
    assert validate_amount(value) == value


@given(
    value=st.one_of(
        st.floats(allow_nan=True, allow_infinity=True),
        st.booleans(),
        st.text(max_size=12),
        st.integers(max_value=0),
        st.integers(min_value=MAX_AMOUNT + 1),
        st.decimals(allow_nan=False),
        st.none(),
        st.lists(st.integers(1, 10), max_size=2),
    )
)
@example(value=1.0)
@example(value=100.0)
@example(value=True)
@example(value=False)
@example(value="100")
@example(value=None)
@example(value=0)
@example(value=-1)
@example(value=MAX_AMOUNT + 1)
def test_validate_amount_refuses_everything_else(value: object) -> None:
    with pytest.raises(ValidationFailed) as raised:
        validate_amount(value)
    assert raised.value.code == "invalid_amount"
    assert raised.value.param == "amount"


def test_validate_amount_allows_zero_only_when_asked() -> None:
    assert validate_amount(0, allow_zero=True) == 0
    with pytest.raises(ValidationFailed):
        validate_amount(0)
    with pytest.raises(ValidationFailed):
        validate_amount(-1, allow_zero=True)
    with pytest.raises(ValidationFailed):
        validate_amount(False, allow_zero=True)


# Currencies ---------------------------------------------------------------------------------------------

EXPONENTS = {"JPY": 0, "USD": 2, "EUR": 2, "KWD": 3, "BHD": 3}


@pytest.mark.parametrize(("currency", "digits"), sorted(EXPONENTS.items()))
def test_exponent_comes_from_the_currency_table(currency: str, digits: int) -> None:
    assert validate_currency(currency) == currency
    assert exponent(currency) == digits


@pytest.mark.parametrize(
    ("amount", "currency", "shown"),
    [
        (1500, "JPY", "¥1,500"),
        (150000, "USD", "$1,500.00"),
        (150000, "EUR", "€1,500.00"),
        (1500, "KWD", "KWD1.500"),
        (1, "BHD", "BHD0.001"),
        (5, "USD", "$0.05"),
        (1_500_000, "USD", "$15,000.00"),
    ],
)
def test_format_money_examples(amount: int, currency: str, shown: str) -> None:
    assert format_money(amount, currency) == shown


@given(amount=st.integers(0, MAX_AMOUNT), currency=st.sampled_from(sorted(EXPONENTS)))
def test_format_money_shows_the_minor_units_exactly(amount: int, currency: str) -> None:
    shown = format_money(amount, currency)
    digits = EXPONENTS[currency]
    number = shown.lstrip("$€¥ABDHKUWY")  # the symbol or code in front
    if digits == 0:
        assert "." not in number
    else:
        whole, _, fraction = number.rpartition(".")
        assert len(fraction) == digits, shown
        assert whole  # at least "0" before the point
    # The digits shown, read back, are the amount in minor units: nothing rounded away or added.
    assert int("".join(c for c in number if c.isdigit())) == amount


@given(code=st.text(alphabet="abcdefghijklmnopqrstuvwxyz", min_size=3, max_size=3))
def test_lower_case_codes_are_refused(code: str) -> None:
    with pytest.raises(ValidationFailed) as raised:
        validate_currency(code)
    assert raised.value.code == "invalid_currency"


@pytest.mark.parametrize(
    "code", ["usd", "Usd", "jpy", "US", "USDD", "", "US1", "ZZZ", "QQQ", "ABC", None, 840]
)
def test_malformed_and_unknown_currencies_are_refused(code: object) -> None:
    with pytest.raises(ValidationFailed) as raised:
        validate_currency(code)
    assert raised.value.code == "invalid_currency"
    with pytest.raises(ValidationFailed):
        exponent(code)  # type: ignore[arg-type]
    with pytest.raises(ValidationFailed):
        format_money(100, code)  # type: ignore[arg-type]


# parse_amount: the one reader of typed amounts -----------------------------------------------------------

# A sample of the currencies the app takes, every exponent among them (JPY 0, KWD and BHD 3).
PARSED = ["USD", "EUR", "JPY", "KWD", "GBP", "CHF", "BHD", "INR", "CAD"]


@pytest.mark.parametrize(
    ("text", "currency", "minor"),
    [
        ("1,500.50", "USD", 150050),
        ("150", "USD", 15000),
        (" 0.01 ", "USD", 1),
        ("1500", "JPY", 1500),
        ("1.234", "KWD", 1234),
        ("$5,000", "USD", 500000),
        ("USD 5,000", "USD", 500000),
        ("€12.50", "EUR", 1250),
        ("€ 12.50", "EUR", 1250),
        ("1,250.00", "EUR", 125000),
        ("1,234,567.8", "GBP", 123456780),
        ("¥150,000", "JPY", 150000),
        ("KWD1,000.500", "KWD", 1000500),
        ("CHF 99.95", "CHF", 9995),
        ("CA$10", "CAD", 1000),
        ("1.2", "USD", 120),
    ],
)
def test_parse_amount_reads_what_people_type(text: str, currency: str, minor: int) -> None:
    assert parse_amount(text, currency) == minor


# Decimal commas, misplaced groups, spaces, signs, exponents, other scripts' digits: each could be read
# more than one way or is not an amount at all. None is guessed.
AMBIGUOUS = [
    "12,50",
    "0,99",
    "1,2,3,4",
    "1.234,56",
    "1 234",
    "--5",
    "1e3",
    "",
    "   ",
    "٣",
    "\uff11\uff12",  # full-width digits
    "12,5",
    "1,23",
    "1234,567",
    "1,0000",
    ",500",
    "1,",
    "1.",
    ".50",
    "1.2.3",
    "12,3.4.5",
    "+5",
    "-5",
    "5-",
    "NaN",
    "Infinity",
    "0x10",
    "1_000",
    "ten",
    "5 $",
]


@pytest.mark.parametrize("currency", PARSED)
@pytest.mark.parametrize("text", AMBIGUOUS)
def test_parse_amount_refuses_what_could_be_misread(text: str, currency: str) -> None:
    with pytest.raises(ValidationFailed) as refused:
        parse_amount(text, currency, allow_zero=True)
    assert refused.value.code == "invalid_amount"
    assert refused.value.message.startswith("Write amounts like 1,234")


@given(
    whole=st.integers(0, 999),
    decimals=st.text(alphabet="0123456789", min_size=1, max_size=2),
    currency=st.sampled_from(PARSED),
)
@example(whole=12, decimals="50", currency="EUR")
@example(whole=0, decimals="99", currency="EUR")
def test_a_decimal_comma_is_never_read_as_thousands(
    whole: int, decimals: str, currency: str
) -> None:
    """ "12,50" is refused, never read as 1,250: money multiplied by 100 by a reading."""
    with pytest.raises(ValidationFailed):
        parse_amount(f"{whole},{decimals}", currency, allow_zero=True)


@pytest.mark.parametrize(
    ("currency", "message"),
    [
        (
            "EUR",
            "Write amounts like 1,234.50 (a point before the cents; commas only between thousands).",
        ),
        (
            "USD",
            "Write amounts like 1,234.50 (a point before the cents; commas only between thousands).",
        ),
        (
            "JPY",
            "Write amounts like 1,234 (whole units, no decimal point; commas only between thousands).",
        ),
        (
            "KWD",
            "Write amounts like 1,234.500 (a point before the 3 decimals; commas only between thousands).",
        ),
    ],
)
def test_a_refusal_shows_how_to_write_an_amount_in_the_currency(
    currency: str, message: str
) -> None:
    with pytest.raises(ValidationFailed) as refused:
        parse_amount("12,50", currency, param="release")
    assert refused.value.message == message
    assert refused.value.param == "release"


@pytest.mark.parametrize(
    ("text", "currency"),
    [("$5", "EUR"), ("€5", "USD"), ("£5", "JPY"), ("USD 5", "EUR"), ("¥5", "CNY"), ("$5", "CAD")],
)
def test_another_currencys_symbol_or_code_is_refused(text: str, currency: str) -> None:
    with pytest.raises(ValidationFailed):
        parse_amount(text, currency)


@pytest.mark.parametrize(
    ("text", "currency", "allowed"),
    [
        ("1.005", "USD", "at most 2 decimal places"),
        ("12.500", "EUR", "at most 2 decimal places"),
        ("1.5", "JPY", "no decimal places"),
        ("100.0", "JPY", "no decimal places"),
        ("1.0005", "KWD", "at most 3 decimal places"),
    ],
)
def test_more_decimals_than_the_currency_has_are_refused(
    text: str, currency: str, allowed: str
) -> None:
    with pytest.raises(ValidationFailed) as refused:
        parse_amount(text, currency)
    assert allowed in refused.value.message
    assert "Write amounts like" in refused.value.message


@given(amount=st.integers(0, MAX_AMOUNT), currency=st.sampled_from(PARSED))
@example(amount=0, currency="USD")
@example(amount=MAX_AMOUNT, currency="JPY")
@example(amount=1, currency="KWD")
@example(amount=123_456_789_012, currency="BHD")
def test_what_format_money_writes_reads_back_as_the_same_minor_units(
    amount: int, currency: str
) -> None:
    assert parse_amount(format_money(amount, currency), currency, allow_zero=True) == amount


@given(amount=st.integers(0, MAX_AMOUNT), currency=st.sampled_from(PARSED))
@example(amount=5, currency="USD")
@example(amount=1_000_000, currency="KWD")
def test_plain_digits_with_the_currencys_decimals_read_back(amount: int, currency: str) -> None:
    places = exponent(currency)
    whole, fraction = divmod(amount, 10**places)
    plain = f"{whole}.{fraction:0{places}d}" if places else str(whole)
    assert parse_amount(plain, currency, allow_zero=True) == amount
    assert parse_amount(f"{whole:,}" + plain[len(str(whole)) :], currency, allow_zero=True) == (
        amount
    )


@pytest.mark.parametrize(
    ("text", "currency"),
    [
        ("1.5", "usd"),
        (None, "USD"),
        (1500, "USD"),
        ("1" * 41, "USD"),
        ("10,000,000,000.01", "USD"),  # one cent over MAX_AMOUNT
    ],
)
def test_parse_amount_refuses_what_is_not_a_plain_amount(text: object, currency: str) -> None:
    with pytest.raises(ValidationFailed):
        parse_amount(text, currency)


def test_parse_amount_takes_zero_only_when_asked() -> None:
    for typed in ("0", "0.00", "0,000"):
        with pytest.raises(ValidationFailed):
            parse_amount(typed, "USD")
        assert parse_amount(typed, "USD", allow_zero=True) == 0
    assert parse_amount("1,250.50", "USD", allow_zero=True) == 125_050
    for typed in ("-5", "1.005", "", "ten"):
        with pytest.raises(ValidationFailed):
            parse_amount(typed, "USD", allow_zero=True)


@pytest.mark.parametrize(
    "code",
    ["XXX", "XTS", "XAU", "XAG", "XPT", "XPD", "XDR", "XBA", "XBB", "XBC", "XBD", "XSU", "XUA",
     "USN", "BOV", "HRK"],
)  # fmt: skip
def test_iso_codes_that_are_not_legal_tender_are_refused(code: str) -> None:
    with pytest.raises(ValidationFailed) as raised:
        validate_currency(code)
    assert (raised.value.code, raised.value.param) == ("invalid_currency", "currency")


@pytest.mark.parametrize(
    "code", ["XOF", "XAF", "XCD", "XPF", "USD", "EUR", "GBP", "JPY", "KWD", "BHD", "CHF", "INR"]
)
def test_legal_tender_is_accepted_including_real_x_currencies(code: str) -> None:
    assert validate_currency(code) == code


def test_amounts_in_a_withdrawn_currency_still_show() -> None:
    # A project begun in kuna (replaced by the euro in 2023) keeps its figures readable.
    assert exponent("HRK") == 2
    assert format_money(150_000, "HRK").endswith("1,500.00")
