"""A milestone's terms: validated when written, editable by the client while draft, frozen from funding
on; and late fee terms, which add to what funding takes and go to the freelancer with the milestone."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from milepost.audit import service as audit
from milepost.kit.errors import (
    InsufficientFunds,
    InvalidState,
    NotFound,
    PermissionDenied,
    ValidationFailed,
)
from milepost.milestones import service as milestones
from milepost.milestones.late_fees import accrued_late_fee
from tests.world import World

DROP = object()  # leave the field out
VALID: dict[str, Any] = {"title": "Logo", "amount": 50_000}
FLAT = {"type": "flat", "amount": 5_000, "grace_days": 2}
PERCENT = {"type": "percent", "rate_bps": 150, "period_days": 7, "grace_days": 3, "cap_bps": 500}


# (changes to VALID, error code, param)
INVALID_TERMS: list[tuple[dict[str, Any], str, str]] = [
    ({"title": DROP}, "missing", "title"),
    ({"title": None}, "missing", "title"),
    ({"title": "   "}, "missing", "title"),
    ({"title": "x" * 201}, "invalid_value", "title"),
    ({"title": 42}, "invalid_value", "title"),
    ({"amount": DROP}, "missing", "amount"),
    ({"amount": None}, "missing", "amount"),
    ({"amount": 12.5}, "invalid_amount", "amount"),
    ({"amount": 100.0}, "invalid_amount", "amount"),
    ({"amount": "100"}, "invalid_amount", "amount"),
    ({"amount": True}, "invalid_amount", "amount"),
    ({"amount": 0}, "invalid_amount", "amount"),
    ({"amount": -100}, "invalid_amount", "amount"),
    ({"amount": 10**12 + 1}, "invalid_amount", "amount"),
    ({"amout": 50_000}, "unknown_field", "amout"),
    ({"currency": "EUR"}, "unknown_field", "currency"),
    ({"review_period_days": 0}, "invalid_value", "review_period_days"),
    ({"review_period_days": 91}, "invalid_value", "review_period_days"),
    ({"review_period_days": "14"}, "invalid_value", "review_period_days"),
    ({"review_period_days": 14.0}, "invalid_value", "review_period_days"),
    ({"review_period_days": None}, "invalid_value", "review_period_days"),
    ({"release_delay_days": -1}, "invalid_value", "release_delay_days"),
    ({"release_delay_days": 31}, "invalid_value", "release_delay_days"),
    ({"due_date": "2030-02-30"}, "invalid_value", "due_date"),
    ({"due_date": "next week"}, "invalid_value", "due_date"),
    ({"due_date": 20300101}, "invalid_value", "due_date"),
    ({"fund_by": "01/03/2030"}, "invalid_value", "fund_by"),
    ({"acceptance_criteria": "It works"}, "invalid_value", "acceptance_criteria"),
    ({"acceptance_criteria": ["It works", " "]}, "missing", "acceptance_criteria[1]"),
    ({"required_evidence": [7]}, "invalid_value", "required_evidence[0]"),
    ({"late_fee": "5%"}, "invalid_value", "late_fee"),
    ({"late_fee": {"type": "daily", "amount": 100}}, "invalid_value", "late_fee"),
    ({"late_fee": {"amount": 100}}, "invalid_value", "late_fee"),
    ({"late_fee": {"type": "flat"}}, "invalid_amount", "late_fee.amount"),
    ({"late_fee": {**FLAT, "amount": 50.5}}, "invalid_amount", "late_fee.amount"),
    ({"late_fee": {**FLAT, "amount": 0}}, "invalid_amount", "late_fee.amount"),
    ({"late_fee": {**FLAT, "rate_bps": 100}}, "unknown_field", "late_fee.rate_bps"),
    ({"late_fee": {**FLAT, "grace_days": -1}}, "invalid_value", "late_fee.grace_days"),
    ({"late_fee": {**PERCENT, "grace_days": 366}}, "invalid_value", "late_fee.grace_days"),
    ({"late_fee": {**PERCENT, "rate_bps": 0}}, "invalid_value", "late_fee.rate_bps"),
    ({"late_fee": {**PERCENT, "rate_bps": 1.5}}, "invalid_value", "late_fee.rate_bps"),
    ({"late_fee": {**PERCENT, "period_days": 0}}, "invalid_value", "late_fee.period_days"),
    ({"late_fee": {**PERCENT, "cap_bps": 10_001}}, "invalid_value", "late_fee.cap_bps"),
    (
        {"late_fee": {k: v for k, v in PERCENT.items() if k != "cap_bps"}},
        "invalid_value",
        "late_fee.cap_bps",
    ),
    ({"late_fee": {**PERCENT, "amount": 100}}, "unknown_field", "late_fee.amount"),
]


def _terms(changes: dict[str, Any]) -> dict[str, Any]:
    merged = {**VALID, **changes}
    return {name: value for name, value in merged.items() if value is not DROP}


def test_invalid_terms_are_refused_naming_the_field_and_nothing_is_created(world: World) -> None:
    client, _, project = world.parties()
    before = world.snapshot()
    for changes, code, param in INVALID_TERMS:
        with pytest.raises(ValidationFailed) as refused:
            world.act(client, milestones.create_milestone, project.id, **_terms(changes))
        error = refused.value
        assert (error.status, error.code, error.param) == (422, code, param), changes
        assert world.snapshot() == before, changes


def test_invalid_edits_are_refused_the_same_way_and_change_nothing(world: World) -> None:
    client, _, project = world.parties()
    milestone = world.milestone(client, project, 50_000, title="Logo")
    before = world.snapshot()
    for changes, code, param in INVALID_TERMS:
        if DROP in changes.values() or None in changes.values():
            continue  # an edit names only what changes (there, None is a wrong value, not missing)
        with pytest.raises(ValidationFailed) as refused:
            world.act(client, milestones.update_terms, milestone.id, **changes)
        assert (refused.value.code, refused.value.param) == (code, param), changes
        assert world.snapshot() == before, changes


def test_valid_terms_at_the_limits_are_kept_as_written(world: World) -> None:
    client, _, project = world.parties()
    smallest = world.milestone(
        client,
        project,
        1,
        title="  Smallest  ",
        review_period_days=1,
        release_delay_days=0,
        due_date="2030-02-28",
        fund_by=date(2030, 1, 31),
    )
    largest = world.milestone(
        client,
        project,
        10**12,
        review_period_days=90,
        release_delay_days=30,
        acceptance_criteria=["Loads in 2s", "Works offline"],
        required_evidence=["Screenshot"],
        late_fee={"type": "flat", "amount": 1_000},
    )
    defaults = world.milestone(client, project, 500)

    small, large, plain = (world.get(m.id) for m in (smallest, largest, defaults))
    assert (small.title, small.amount, small.review_period_days, small.release_delay_days) == (
        "Smallest",
        1,
        1,
        0,
    )
    assert (small.due_date, small.fund_by) == (date(2030, 2, 28), date(2030, 1, 31))
    assert (large.amount, large.review_period_days, large.release_delay_days) == (10**12, 90, 30)
    assert large.acceptance_criteria == ["Loads in 2s", "Works offline"]
    assert large.late_fee == {"type": "flat", "amount": 1_000, "grace_days": 0}
    assert (plain.review_period_days, plain.release_delay_days, plain.late_fee) == (14, 0, None)
    assert all(str(m.status) == "draft" and m.currency == "USD" for m in (small, large, plain))
    assert world.balance(client) == 1_000_000  # creating moves no money


# Editing ------------------------------------------------------------------------------------------


def test_the_client_edits_terms_while_draft_and_funding_takes_the_new_amount(
    world: World,
) -> None:
    client, _, project = world.parties()
    milestone = world.milestone(client, project, 50_000, title="Logo")

    world.act(
        client,
        milestones.update_terms,
        milestone.id,
        title="Logo and favicon",
        amount=80_000,
        due_date="2030-05-01",
        acceptance_criteria=["SVG and PNG"],
        review_period_days=7,
        late_fee=FLAT,
    )

    edited = world.get(milestone.id)
    assert (edited.title, edited.amount, edited.due_date) == (
        "Logo and favicon",
        80_000,
        date(2030, 5, 1),
    )
    assert (edited.acceptance_criteria, edited.review_period_days, edited.late_fee) == (
        ["SVG and PNG"],
        7,
        FLAT,
    )
    [_created, event] = world.act(client, audit.list_events, milestone.id)
    assert (event.action, event.actor_id, event.from_status, event.to_status) == (
        "terms_edited",
        client.id,
        "draft",
        "draft",
    )
    assert event.data["changed"] == {
        "title": "Logo and favicon",
        "amount": 80_000,
        "due_date": "2030-05-01",
        "acceptance_criteria": ["SVG and PNG"],
        "review_period_days": 7,
        "late_fee": FLAT,
    }

    # Writing the same terms again changes nothing and records nothing.
    before = world.snapshot()
    world.act(
        client, milestones.update_terms, milestone.id, amount=80_000, title="Logo and favicon"
    )
    assert world.snapshot() == before

    world.act(client, milestones.fund, milestone.id)
    assert world.balance(client) == 1_000_000 - 80_000
    assert world.account_balance(f"escrow:{milestone.id}:USD") == 80_000


def test_terms_are_frozen_from_funding_on(world: World) -> None:
    client, _, milestone = world.funded(50_000)
    before = world.snapshot()
    for changes in (
        {"amount": 1},
        {"title": "Cheaper"},
        {"late_fee": FLAT},
        {"review_period_days": 90},
    ):
        with pytest.raises(InvalidState) as refused:
            world.act(client, milestones.update_terms, milestone.id, **changes)
        assert (refused.value.status, refused.value.code) == (409, "invalid_state")
        assert world.snapshot() == before
    assert (world.get(milestone.id).amount, world.get(milestone.id).title) == (50_000, "Milestone")


def test_only_the_client_creates_and_edits_milestones(world: World) -> None:
    client, freelancer, project = world.parties()
    staff, outsider = world.user("staff", staff=True), world.user("outsider")
    open_project = world.project(client)  # no freelancer yet: open for proposals
    milestone = world.milestone(client, project, 50_000)
    before = world.snapshot()

    refusals = [
        (freelancer, project.id, PermissionDenied, "only_client_can_create"),
        (staff, project.id, PermissionDenied, "only_client_can_create"),
        (outsider, project.id, NotFound, "not_found"),
        (outsider, open_project.id, NotFound, "not_found"),
        (client, "prj_does_not_exist", NotFound, "not_found"),
    ]
    for user, project_id, error, code in refusals:
        with pytest.raises(error) as refused:
            world.act(user, milestones.create_milestone, project_id, **VALID)
        assert refused.value.code == code, (user.name, project_id)
        assert world.snapshot() == before

    for user, error, code in [
        (freelancer, PermissionDenied, "only_client_can_edit"),
        (staff, PermissionDenied, "only_client_can_edit"),
        (outsider, NotFound, "not_found"),
    ]:
        with pytest.raises(error) as refused:
            world.act(user, milestones.update_terms, milestone.id, amount=1)
        assert (refused.value.status, refused.value.code) == (error.status, code), user.name
        assert world.snapshot() == before


# Late fees ----------------------------------------------------------------------------------------

FUND_BY = date(2030, 3, 1)


def _late_milestone(world: World, client: Any, project: Any, late_fee: dict[str, Any]) -> str:
    created_at = datetime(2030, 2, 1, tzinfo=UTC)
    milestone = world.act(
        client,
        milestones.create_milestone,
        project.id,
        title="Late",
        amount=100_000,
        fund_by=FUND_BY.isoformat(),
        late_fee=late_fee,
        now=created_at,
    )
    return milestone.id


def _day(day: int) -> datetime:
    """Noon, ``day`` days after the fund-by date."""
    return datetime(2030, 3, 1, 12, 0, tzinfo=UTC) + timedelta(days=day)


# (late fee terms, days after fund-by when funded, late fee, platform fee on the total)
LATE_FUNDING = [
    (FLAT, -1, 0, 10_000),  # funded early
    (FLAT, 2, 0, 10_000),  # within the grace days
    (FLAT, 3, 5_000, 10_500),
    (PERCENT, 9, 0, 10_000),  # 6 days past the grace: not yet a whole week
    (PERCENT, 20, 3_000, 10_300),  # 17 days past the grace: 2 weeks of 1.5%
    (PERCENT, 60, 5_000, 10_500),  # 8 weeks would be 12%: capped at 5%
]


def test_funding_late_adds_the_accrued_late_fee_which_goes_to_the_freelancer(
    world: World,
) -> None:
    for late_fee, days_late, expected_fee, platform_fee in LATE_FUNDING:
        case = f"{late_fee['type']} late fee, funded {days_late} days after fund-by"
        client, freelancer, project = world.parties()
        fee_before = world.account_balance("platform_fee:USD")
        mid = _late_milestone(world, client, project, late_fee)

        world.act(client, milestones.fund, mid, now=_day(days_late))

        funded = world.get(mid)
        total = 100_000 + expected_fee
        assert (funded.late_fee_amount, funded.funded_amount, funded.amount) == (
            expected_fee,
            total,
            100_000,
        ), case
        assert world.balance(client) == 1_000_000 - total, case
        assert world.account_balance(f"escrow:{mid}:USD") == total, case
        [*_, event] = world.act(client, audit.list_events, mid)
        assert (event.action, event.amount, event.data) == (
            "funded",
            total,
            {"late_fee": expected_fee},
        ), case

        # The late fee goes to the freelancer with the milestone; the platform's 10% is on the total.
        world.act(freelancer, milestones.submit, mid, note="Done")
        world.act(client, milestones.approve, mid)
        assert world.balance(freelancer) == total - platform_fee, case
        assert world.account_balance("platform_fee:USD") - fee_before == platform_fee, case
        assert world.get(mid).fee_amount == platform_fee, case


def test_a_late_fee_the_wallet_cannot_cover_is_refused_and_changes_nothing(world: World) -> None:
    client, _, project = world.parties(wallet=102_000)
    mid = _late_milestone(world, client, project, FLAT)
    before = world.snapshot()
    with pytest.raises(InsufficientFunds) as refused:
        world.act(client, milestones.fund, mid, now=_day(10))
    assert (refused.value.status, refused.value.code) == (402, "insufficient_funds")
    assert world.snapshot() == before
    # On time, the same wallet covers the milestone.
    world.act(client, milestones.fund, mid, now=_day(0))
    assert world.balance(client) == 2_000


def test_cancelling_a_late_funded_milestone_refunds_the_late_fee_too(world: World) -> None:
    client, freelancer, project = world.parties()
    mid = _late_milestone(world, client, project, PERCENT)
    world.act(client, milestones.fund, mid, now=_day(20))
    world.act(freelancer, milestones.cancel, mid, reason="Too late now")
    cancelled = world.get(mid)
    assert (str(cancelled.status), cancelled.refunded_amount) == ("cancelled", 103_000)
    assert world.balance(client) == 1_000_000


# accrued_late_fee, the pure function ----------------------------------------------------------------

D = date(2030, 3, 1)


def _after(days: int) -> date:
    return date.fromordinal(D.toordinal() + days)


@pytest.mark.parametrize(
    ("terms", "amount", "fund_by", "today", "expected"),
    [
        (None, 100_000, D, _after(100), 0),
        (FLAT, 100_000, None, _after(100), 0),
        (FLAT, 100_000, D, _after(-5), 0),
        (FLAT, 100_000, D, D, 0),
        (FLAT, 100_000, D, _after(2), 0),
        (FLAT, 100_000, D, _after(3), 5_000),
        (FLAT, 100_000, D, _after(365), 5_000),  # flat: once, not per day
        ({**FLAT, "grace_days": 0}, 100_000, D, _after(1), 5_000),
        (PERCENT, 100_000, D, _after(3), 0),
        (PERCENT, 100_000, D, _after(9), 0),
        (PERCENT, 100_000, D, _after(10), 1_500),  # one whole week past the grace
        (PERCENT, 100_000, D, _after(16), 1_500),
        (PERCENT, 100_000, D, _after(17), 3_000),
        (PERCENT, 100_000, D, _after(24), 4_500),
        (PERCENT, 100_000, D, _after(31), 5_000),  # 6% capped at 5%
        (PERCENT, 100_000, D, _after(1000), 5_000),
        ({**PERCENT, "cap_bps": 0}, 100_000, D, _after(100), 0),
        ({**PERCENT, "rate_bps": 50}, 100, D, _after(10), 1),  # 0.5 rounds half up
        ({**PERCENT, "rate_bps": 50}, 99, D, _after(10), 0),  # 0.495 rounds down
        ({**PERCENT, "rate_bps": 150, "cap_bps": 10_000}, 333, D, _after(10), 5),  # 4.995
    ],
)
def test_accrued_late_fee(
    terms: dict[str, Any] | None, amount: int, fund_by: date | None, today: date, expected: int
) -> None:
    assert accrued_late_fee(terms, amount, fund_by, today) == expected
