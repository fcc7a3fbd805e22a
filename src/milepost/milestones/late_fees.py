"""Late fee terms and what they have accrued. Pure functions of the terms and the date.

``{"type": "flat", "amount": int, "grace_days": int}``: the amount, once the fund-by date is more than
``grace_days`` behind.
``{"type": "percent", "rate_bps": int, "period_days": int, "grace_days": int, "cap_bps": int}``: ``rate_bps``
of the milestone amount for each whole ``period_days`` past the grace days, capped at ``cap_bps`` of it.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from milepost.kit import validate
from milepost.kit.errors import ValidationFailed
from milepost.money import fee_on, validate_amount

_FIELDS = {
    "flat": {"type", "amount", "grace_days"},
    "percent": {"type", "rate_bps", "period_days", "grace_days", "cap_bps"},
}


def validate_late_fee(value: Any) -> dict[str, Any] | None:
    if value is None:
        return None
    if not isinstance(value, dict) or value.get("type") not in _FIELDS:
        raise ValidationFailed(
            'late_fee must be {"type": "flat", ...} or {"type": "percent", ...}.', param="late_fee"
        )
    kind = value["type"]
    validate.only_known_fields(
        {f"late_fee.{key}": v for key, v in value.items()},
        {f"late_fee.{key}" for key in _FIELDS[kind]},
    )
    grace_days = validate.integer(
        value.get("grace_days", 0), "late_fee.grace_days", minimum=0, maximum=365
    )
    if kind == "flat":
        return {
            "type": "flat",
            "amount": validate_amount(value.get("amount"), param="late_fee.amount"),
            "grace_days": grace_days,
        }
    return {
        "type": "percent",
        "rate_bps": validate.integer(
            value.get("rate_bps"), "late_fee.rate_bps", minimum=1, maximum=10_000
        ),
        "period_days": validate.integer(
            value.get("period_days"), "late_fee.period_days", minimum=1, maximum=365
        ),
        "grace_days": grace_days,
        "cap_bps": validate.integer(
            value.get("cap_bps"), "late_fee.cap_bps", minimum=0, maximum=10_000
        ),
    }


def accrued_late_fee(
    terms: dict[str, Any] | None, amount: int, fund_by: date | None, today: date
) -> int:
    """The late fee accrued by ``today`` on a milestone of ``amount`` due to be funded by ``fund_by``."""
    if terms is None or fund_by is None:
        return 0
    days_late = (today - fund_by).days - int(terms["grace_days"])
    if days_late <= 0:
        return 0
    if terms["type"] == "flat":
        return int(terms["amount"])
    periods = days_late // int(terms["period_days"])
    return min(
        fee_on(amount, int(terms["rate_bps"]) * periods), fee_on(amount, int(terms["cap_bps"]))
    )
