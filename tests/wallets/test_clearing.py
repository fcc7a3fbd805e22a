"""The clearing hold, through the services on both databases: card money waits in the pending balance
until its hold ends, cannot be paid out meanwhile, funds escrow only where the installation allows it
(available money first, then the oldest deposits), clears exactly once, and the ledger checks that the
pending balance is what the deposits have not cleared."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta

import pytest
from sqlalchemy import select

from milepost.kit.context import Context
from milepost.kit.errors import InsufficientFunds
from milepost.kit.ids import new_id
from milepost.kit.time import utcnow
from milepost.ledger.service import pending_account
from milepost.milestones import service as milestones
from milepost.settings import Settings
from milepost.users.models import User
from milepost.wallets import service as wallets
from milepost.wallets.clearing import clear_due
from milepost.wallets.models import Deposit, DepositStatus
from milepost.wallets.transfers import settle_deposit
from tests.ledger.test_verify import run_sql
from tests.world import World

USD = "USD"


def card_world(world: World, *, fund_from_pending: bool = False) -> World:
    settings = Settings(
        fee_bps=1000,
        providers="sandbox,manual",
        clearing_days={"stripe": 5},
        fund_from_pending=fund_from_pending,
    )
    return World(world.db, settings)


def card_paid(world: World, user: User, amount: int, at: datetime | None = None) -> Deposit:
    """A card deposit Stripe said was paid (what the webhook does, without Stripe)."""
    with world.db.unit_of_work() as session:
        ctx = Context(session, None, now=at or utcnow(), settings=world.settings)
        deposit = Deposit(
            id=new_id("dep"),
            user_id=user.id,
            amount=amount,
            currency=USD,
            provider="stripe",
            status=DepositStatus.PENDING,
            reference=f"cs_test_{new_id('x')}",
            created_at=ctx.now,
        )
        session.add(deposit)
        settle_deposit(ctx, deposit)
        return deposit


def pending(world: World, user: User) -> int:
    return world.account_balance(pending_account(user.id, USD).key)


def uncleared(world: World, deposit: Deposit) -> int:
    with world.db.read_only() as session:
        return int(session.scalar(select(Deposit.uncleared).where(Deposit.id == deposit.id)) or 0)


def test_card_money_waits_its_hold_cannot_be_paid_out_and_clears_once(world: World) -> None:
    cards = card_world(world)
    ana = cards.user("ana")
    deposit = card_paid(cards, ana, 50_000)
    assert (cards.balance(ana), pending(cards, ana)) == (0, 50_000)
    [balance] = cards.act(ana, wallets.balances, ana.id)
    assert (balance.available, balance.pending) == (0, 50_000)

    with pytest.raises(InsufficientFunds):
        cards.act(ana, wallets.create_payout, amount=1, currency=USD, provider="sandbox")

    assert deposit.clears_at is not None
    assert clear_due(cards.db, cards.settings, deposit.clears_at - timedelta(seconds=1)) == 0
    assert pending(cards, ana) == 50_000
    assert clear_due(cards.db, cards.settings, deposit.clears_at) == 1
    assert (cards.balance(ana), pending(cards, ana)) == (50_000, 0)
    assert clear_due(cards.db, cards.settings, deposit.clears_at + timedelta(days=30)) == 0
    assert cards.balance(ana) == 50_000
    cards.act(ana, wallets.create_payout, amount=50_000, currency=USD, provider="sandbox")
    assert cards.verify().ok


def test_by_default_money_not_cleared_does_not_fund_escrow(world: World) -> None:
    cards = card_world(world)
    client, freelancer = cards.user("client"), cards.user("freelancer")
    project = cards.project(client, freelancer)
    milestone = cards.milestone(client, project, 30_000)
    card_paid(cards, client, 30_000)
    with pytest.raises(InsufficientFunds):
        cards.act(client, milestones.fund, milestone.id)
    assert cards.get(milestone.id).status == "draft"
    assert cards.act(client, wallets.funding_shortfall, cards.get(milestone.id)) == 30_000


def test_funding_from_pending_takes_the_available_money_first_then_the_oldest_deposits(
    world: World,
) -> None:
    cards = card_world(world, fund_from_pending=True)
    client, freelancer = cards.user("client"), cards.user("freelancer")
    cards.deposit(client, 10_000)  # sandbox: available at once
    start = utcnow()
    older = card_paid(cards, client, 20_000, at=start - timedelta(days=1))
    newer = card_paid(cards, client, 20_000, at=start)
    project = cards.project(client, freelancer)
    milestone = cards.milestone(client, project, 35_000)
    assert cards.act(client, wallets.funding_shortfall, cards.get(milestone.id)) == 0

    cards.act(client, milestones.fund, milestone.id)
    # 10,000 available, then 20,000 of the older deposit and 5,000 of the newer one.
    assert (cards.balance(client), pending(cards, client)) == (0, 15_000)
    assert (uncleared(cards, older), uncleared(cards, newer)) == (0, 15_000)
    assert cards.verify().ok

    # The older deposit has nothing left to clear; the newer one clears what is left of it.
    assert newer.clears_at is not None
    assert clear_due(cards.db, cards.settings, newer.clears_at) == 1
    assert (cards.balance(client), pending(cards, client)) == (15_000, 0)
    assert cards.verify().ok


def test_funding_from_pending_still_refuses_what_neither_balance_holds(world: World) -> None:
    cards = card_world(world, fund_from_pending=True)
    client, freelancer = cards.user("client"), cards.user("freelancer")
    deposit = card_paid(cards, client, 20_000)
    milestone = cards.milestone(client, cards.project(client, freelancer), 25_000)
    with pytest.raises(InsufficientFunds):
        cards.act(client, milestones.fund, milestone.id)
    assert (pending(cards, client), uncleared(cards, deposit)) == (20_000, 20_000)


@pytest.mark.tampers
def test_verify_catches_a_pending_balance_that_is_not_what_the_deposits_owe(
    world: World,
) -> None:
    cards = card_world(world)
    ana = cards.user("ana")
    deposit = card_paid(cards, ana, 40_000)
    assert cards.verify().ok
    assert run_sql(cards.db, "UPDATE deposits SET uncleared = 1000 WHERE id = :id", id=deposit.id)
    assert cards.verify().problems == [
        f"user {ana.id}'s money not cleared holds 40000 USD but their deposits not cleared come to "
        "1000"
    ]


def test_two_workers_clearing_and_a_funding_racing_for_the_same_pending_money_lose_nothing(
    world: World,
) -> None:
    cards = card_world(world, fund_from_pending=True)
    client, freelancer = cards.user("client"), cards.user("freelancer")
    start = utcnow()
    deposits = [card_paid(cards, client, 10_000, at=start - timedelta(days=6)) for _ in range(3)]
    milestone = cards.milestone(client, cards.project(client, freelancer), 15_000)
    barrier = threading.Barrier(3)
    cleared: list[int] = []
    errors: list[BaseException] = []

    def clearing() -> None:
        barrier.wait()
        cleared.append(clear_due(cards.db, cards.settings, start))

    def funding() -> None:
        barrier.wait()
        try:
            cards.act(client, milestones.fund, milestone.id)
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=target) for target in (clearing, clearing, funding)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors
    assert sum(cleared) <= 3  # each deposit cleared by one worker at most
    # Whichever came first, the client had 30,000 and escrow took 15,000 of it.
    assert cards.balance(client) + pending(cards, client) == 15_000
    assert cards.get(milestone.id).status == "funded"
    assert clear_due(cards.db, cards.settings, start) + sum(cleared) <= 3
    assert pending(cards, client) == 0
    assert sum(uncleared(cards, deposit) for deposit in deposits) == 0
    assert cards.verify().ok
