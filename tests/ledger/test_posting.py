"""Entries written in the same unit of work as the rows they depend on.

The ledger flushes the unit of work before it reads accounts or writes an entry only when something it
reads or refers to waits there (ledger/service.py); everything else goes in the one flush at commit.
These are the cases where it must flush: a row an entry refers to that is not written yet, and a balance
changed in memory by an earlier entry of the same unit of work. The ledger verifies after each test.
"""

from __future__ import annotations

from milepost.kit.context import Context
from milepost.kit.db import Database
from milepost.kit.ids import new_id
from milepost.kit.time import utcnow
from milepost.ledger.models import EntryKind
from milepost.ledger.service import post, user_account
from milepost.users.models import User
from tests.world import World


def test_an_entry_can_pay_a_user_added_in_the_same_unit_of_work(world: World, db: Database) -> None:
    payer = world.user("payer")
    world.deposit(payer, 10_000)
    with db.unit_of_work() as session:
        ctx = Context(session, session.get(User, payer.id), settings=world.settings)
        newcomer = User(
            id=new_id("usr"),
            email=f"newcomer-{new_id('x')}@example.com",
            name="Newcomer",
            password_hash="-",
            is_staff=False,
            time_zone="UTC",
            created_at=utcnow(),
        )
        session.add(newcomer)  # not flushed: the entry's new wallet refers to this row
        post(
            ctx,
            EntryKind.BONUS,
            [(user_account(payer.id, "USD"), -2_500), (user_account(newcomer.id, "USD"), 2_500)],
            memo="a gift",
        )
    assert world.balance(payer) == 7_500
    assert world.balance(newcomer) == 2_500


def test_two_entries_on_one_wallet_in_one_unit_of_work_both_count(
    world: World, db: Database
) -> None:
    payer, first, second = world.user("payer"), world.user("first"), world.user("second")
    world.deposit(payer, 10_000)
    with db.unit_of_work() as session:
        ctx = Context(session, session.get(User, payer.id), settings=world.settings)
        for payee, amount in ((first, 3_000), (second, 4_000)):
            # The second entry reads the payer's wallet again, with the first debit not yet written.
            post(
                ctx,
                EntryKind.BONUS,
                [(user_account(payer.id, "USD"), -amount), (user_account(payee.id, "USD"), amount)],
                memo="a gift",
            )
    assert [world.balance(user) for user in (payer, first, second)] == [3_000, 3_000, 4_000]
