"""A milestone's terms: what may be written, validated once for create and edit alike."""

from __future__ import annotations

from typing import Any

from milepost.kit import validate
from milepost.kit.errors import ValidationFailed
from milepost.milestones.late_fees import validate_late_fee
from milepost.money import validate_amount

DEFAULT_REVIEW_PERIOD_DAYS = 14
DEFAULT_RELEASE_DELAY_DAYS = 0

TERM_FIELDS = frozenset(
    {
        "title",
        "description",
        "amount",
        "due_date",
        "fund_by",
        "acceptance_criteria",
        "required_evidence",
        "exclusions",
        "dependencies",
        "review_period_days",
        "release_delay_days",
        "late_fee",
    }
)


def validate_terms(values: dict[str, Any], *, creating: bool) -> dict[str, Any]:
    """Return the given terms validated and normalised; on create, fill in the defaults."""
    validate.only_known_fields(values, TERM_FIELDS)
    if creating:
        values = {
            "description": None,
            "acceptance_criteria": None,
            "required_evidence": None,
            "exclusions": None,
            "dependencies": None,
            "review_period_days": DEFAULT_REVIEW_PERIOD_DAYS,
            "release_delay_days": DEFAULT_RELEASE_DELAY_DAYS,
            **values,
        }
    problems = validate.Problems()
    if creating:
        for required in ("title", "amount"):
            if values.get(required) is None:
                problems.found.append(
                    ValidationFailed(f"{required} is required.", code="missing", param=required)
                )
    terms: dict[str, Any] = {}
    for name, value in values.items():
        if creating and value is None and name in ("title", "amount"):
            continue  # said above
        terms[name] = problems.check(_term, name, value)
    problems.done()
    return terms


def _term(name: str, value: Any) -> Any:
    if name == "title":
        return validate.text(value, name, max_length=200)
    if name == "description":
        return validate.text(value, name, max_length=20_000, required=False)
    if name == "amount":
        return validate_amount(value)
    if name in ("due_date", "fund_by"):
        return validate.optional_date(value, name)
    if name in ("acceptance_criteria", "required_evidence", "exclusions", "dependencies"):
        return validate.text_list(value, name)
    if name == "review_period_days":
        return validate.integer(value, name, minimum=1, maximum=90)
    if name == "release_delay_days":
        return validate.integer(value, name, minimum=0, maximum=30)
    return validate_late_fee(value)
