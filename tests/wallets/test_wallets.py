"""Wallets: deposits and payouts through the sandbox and manual providers, and the balances users see."""

from __future__ import annotations

import re
from typing import Any

import pytest

from milepost.kit.errors import InsufficientFunds, InvalidState, PermissionDenied, ValidationFailed
from milepost.milestones import service as milestones
from milepost.wallets import service as wallets
from milepost.wallets.models import DepositStatus, PayoutStatus
from milepost.wallets.service import Balance
from tests.world import World


def test_sandbox_deposits_settle_at_once_manual_ones_when_staff_confirm(world: World) -> None:
    user, staff = world.user(), world.user("staff", staff=True)
    # A sandbox deposit is there at once, from the outside world.
    instant = world.act(user, wallets.create_deposit, amount=250_000, currency="USD")
    assert (instant.status, instant.provider, instant.amount) == (
        DepositStatus.SUCCEEDED,
        "sandbox",
        250_000,
    )
    assert world.balance(user) == 250_000
    assert world.account_balance("external:sandbox:USD") == -250_000

    deposit = world.act(
        user, wallets.create_deposit, amount=75_000, currency="EUR", provider="manual"
    )
    assert deposit.status is DepositStatus.PENDING
    assert re.fullmatch(r"MP-[A-Z2-9]{10}", deposit.reference)
    assert world.balance(user, "EUR") == 0

    before = world.snapshot()
    with pytest.raises(PermissionDenied) as refused:
        world.act(user, wallets.confirm_deposit, deposit.id)
    assert (refused.value.status, refused.value.code) == (403, "staff_only")
    assert world.snapshot() == before

    confirmed = world.act(staff, wallets.confirm_deposit, deposit.id)
    assert (confirmed.status, confirmed.confirmed_by) == (DepositStatus.SUCCEEDED, staff.id)
    assert world.balance(user, "EUR") == 75_000
    assert world.account_balance("external:manual:EUR") == -75_000

    after = world.snapshot()
    with pytest.raises(InvalidState):
        world.act(staff, wallets.confirm_deposit, deposit.id)
    assert world.snapshot() == after
    assert world.balance(user, "EUR") == 75_000


def test_deposits_and_payouts_refuse_bad_input(world: World) -> None:
    user = world.user()
    world.deposit(user, 10_000)
    before = world.snapshot()
    refusals: list[tuple[dict[str, Any], str, str]] = [
        ({"amount": 100.0}, "amount", "invalid_amount"),
        ({"amount": "100"}, "amount", "invalid_amount"),
        ({"amount": True}, "amount", "invalid_amount"),
        ({"amount": None}, "amount", "invalid_amount"),
        ({"amount": 0}, "amount", "invalid_amount"),
        ({"amount": -100}, "amount", "invalid_amount"),
        ({"amount": 10**12 + 1}, "amount", "invalid_amount"),
        ({"currency": "usd"}, "currency", "invalid_currency"),
        ({"currency": "ABC"}, "currency", "invalid_currency"),
        ({"currency": "US"}, "currency", "invalid_currency"),
        ({"provider": "paypal"}, "provider", "unknown_provider"),
        ({"provider": 7}, "provider", "unknown_provider"),
        ({"provider": "Sandbox"}, "provider", "unknown_provider"),
    ]
    for action in (wallets.create_deposit, wallets.create_payout):
        for fields, param, code in refusals:
            values = {"amount": 100, "currency": "USD", **fields}
            with pytest.raises(ValidationFailed) as refused:
                world.act(user, action, **values)
            assert (refused.value.status, refused.value.param, refused.value.code) == (
                422,
                param,
                code,
            ), (action.__name__, fields)
            assert world.snapshot() == before, (action.__name__, fields)
    # The largest amount allowed is accepted.
    world.act(user, wallets.create_deposit, amount=10**12, currency="USD")
    assert world.balance(user) == 10**12 + 10_000


def test_a_payout_cannot_exceed_the_available_balance(world: World) -> None:
    client, freelancer, milestone = world.funded(300_000)
    assert world.balance(client) == 700_000
    accounts = {user.id: world.destination(user).id for user in (client, freelancer)}
    before = world.snapshot()
    # Money in escrow is not available.
    for user, amount in ((client, 700_001), (freelancer, 1), (client, 1_000_000)):
        for provider in ("sandbox", "manual"):
            with pytest.raises(InsufficientFunds) as refused:
                world.act(
                    user,
                    wallets.create_payout,
                    amount=amount,
                    currency="USD",
                    provider=provider,
                    destination_id=accounts[user.id],
                )
            assert refused.value.status == 402
            assert world.snapshot() == before
    # Nor is money in another currency.
    with pytest.raises(InsufficientFunds):
        world.act(client, wallets.create_payout, amount=1, currency="EUR")
    assert world.snapshot() == before
    assert world.account_balance(f"escrow:{milestone.id}:USD") == 300_000


def test_sandbox_payouts_leave_at_once_manual_ones_when_staff_mark_them_paid(
    world: World,
) -> None:
    client, user, milestone = world.submitted(100_000)
    staff = world.user("staff", staff=True)
    world.act(client, milestones.approve, milestone.id)
    assert world.balance(user) == 90_000

    sent = world.act(user, wallets.create_payout, amount=40_000, currency="USD")
    assert (sent.status, sent.amount, sent.user_id) == (PayoutStatus.PAID, 40_000, user.id)
    assert world.balance(user) == 50_000
    assert world.account_balance("payout_clearing:sandbox:USD") == 0
    # 1,000,000 came in from the sandbox; 40,000 went back out.
    assert world.account_balance("external:sandbox:USD") == -1_000_000 + 40_000

    account = world.destination(user)
    payout = world.act(
        user,
        wallets.create_payout,
        amount=20_000,
        currency="USD",
        provider="manual",
        destination_id=account.id,
    )
    assert payout.status is PayoutStatus.PENDING
    # The money leaves the available balance at once and waits in clearing.
    assert world.balance(user) == 30_000
    assert world.account_balance("payout_clearing:manual:USD") == 20_000
    assert world.account_balance("external:manual:USD") == 0

    before = world.snapshot()
    with pytest.raises(PermissionDenied) as refused:
        world.act(user, wallets.mark_payout_paid, payout.id)
    assert refused.value.code == "staff_only"
    assert world.snapshot() == before

    paid = world.act(staff, wallets.mark_payout_paid, payout.id)
    assert (paid.status, paid.marked_paid_by) == (PayoutStatus.PAID, staff.id)
    assert world.balance(user) == 30_000
    assert world.account_balance("payout_clearing:manual:USD") == 0
    assert world.account_balance("external:manual:USD") == 20_000

    after = world.snapshot()
    with pytest.raises(InvalidState):
        world.act(staff, wallets.mark_payout_paid, payout.id)
    assert world.snapshot() == after


def test_balances_show_available_and_escrow_both_ways_in_every_currency(world: World) -> None:
    """JPY has no minor unit, USD two decimals, KWD three: amounts are minor units in each."""
    client, freelancer = world.user("client"), world.user("freelancer")
    cases = {
        # currency: (deposit, milestone amount, released part, fee on it)
        "JPY": (50_000, 10_005, 1_005, 101),  # 1,005 yen: fee 100.5 -> 101
        "USD": (500_000, 100_000, 12_345, 1_235),  # $123.45: fee 12.345 -> 12.35
        "KWD": (90_000, 40_000, 10_005, 1_001),  # 10.005 KWD: fee 1.0005 -> 1.001
    }
    for currency, (deposit, amount, part, _) in cases.items():
        world.deposit(client, deposit, currency)
        project = world.project(client, freelancer, currency)
        milestone = world.milestone(client, project, amount)
        world.act(client, milestones.fund, milestone.id)
        world.act(client, milestones.release, milestone.id, amount=part)

    expected = [
        Balance(
            currency=currency,
            available=deposit - amount,
            escrow_outgoing=amount - part,
            escrow_incoming=0,
        )
        for currency, (deposit, amount, part, _) in sorted(cases.items())
    ]
    assert world.act(client, wallets.balances, client.id) == expected
    assert world.act(freelancer, wallets.balances, freelancer.id) == [
        Balance(
            currency=currency,
            available=part - fee,
            escrow_outgoing=0,
            escrow_incoming=amount - part,
        )
        for currency, (_, amount, part, fee) in sorted(cases.items())
    ]
    for currency, (_, _, _, fee) in cases.items():
        assert world.account_balance(f"platform_fee:{currency}") == fee

    # A user with nothing has no balances.
    assert world.act(client, wallets.balances, world.user("nobody").id) == []
