"""Staff's list of manual bank transfers waiting on them: deposits to confirm, payouts to mark paid."""

from __future__ import annotations

from datetime import timedelta

import pytest

from milepost.kit.errors import PermissionDenied
from milepost.kit.time import utcnow
from milepost.wallets import service as wallets
from milepost.web.views.pending_transfers import describe_age, pending_transfers
from tests.world import World


def test_pending_manual_transfers_oldest_first(world: World) -> None:
    staff = world.user("staff", staff=True)
    ann, bob = world.user("ann"), world.user("bob")
    now = utcnow()
    newer = world.act(
        ann, wallets.create_deposit, amount=5_000, currency="USD", provider="manual", now=now
    )
    older = world.act(
        bob,
        wallets.create_deposit,
        amount=7_000,
        currency="EUR",
        provider="manual",
        now=now - timedelta(days=3),
    )
    world.act(ann, wallets.create_deposit, amount=1_000, currency="USD")  # sandbox: settled at once
    confirmed = world.act(
        ann, wallets.create_deposit, amount=2_000, currency="USD", provider="manual"
    )
    world.act(staff, wallets.confirm_deposit, confirmed.id)
    account = world.destination(ann)
    payout = world.act(
        ann,
        wallets.create_payout,
        amount=500,
        currency="USD",
        provider="manual",
        destination_id=account.id,
    )

    pending = world.act(staff, pending_transfers)
    assert [(d.id, d.user_name, d.amount, d.currency, d.age) for d in pending.deposits] == [
        (older.id, "Bob", 7_000, "EUR", "3 days"),
        (newer.id, "Ann", 5_000, "USD", "under an hour"),
    ]
    assert pending.deposits[0].reference == older.reference
    assert [(p.id, p.amount, p.reference) for p in pending.payouts] == [
        (payout.id, 500, payout.reference)
    ]

    world.act(staff, wallets.mark_payout_paid, payout.id)
    assert world.act(staff, pending_transfers).payouts == []


def test_only_staff_see_pending_transfers(world: World) -> None:
    with pytest.raises(PermissionDenied):
        world.act(world.user("ann"), pending_transfers)


@pytest.mark.parametrize(
    ("age", "text"),
    [
        (timedelta(minutes=59), "under an hour"),
        (timedelta(hours=1), "1 hour"),
        (timedelta(hours=23, minutes=59), "23 hours"),
        (timedelta(days=1), "1 day"),
        (timedelta(days=12, hours=5), "12 days"),
    ],
)
def test_describe_age(age: timedelta, text: str) -> None:
    assert describe_age(age) == text


def test_pending_transfers_page_oldest_first_each_once(world: World) -> None:
    staff = world.user("staff", staff=True)
    ann = world.user("ann")
    world.deposit(ann, 1_000_000)  # sandbox: settled, never waiting
    account = world.destination(ann)
    now = utcnow()
    # Five of each, two pairs at the same moment (the id breaks the tie), one of each settled meanwhile.
    moments = [now - timedelta(days=3)] * 2 + [now - timedelta(days=1)] + [now] * 2
    deposits, payouts = [], []
    for n, when in enumerate(moments):
        deposits.append(
            world.act(
                ann,
                wallets.create_deposit,
                amount=1_000 + n,
                currency="USD",
                provider="manual",
                now=when,
            ).id
        )
        payouts.append(
            world.act(
                ann,
                wallets.create_payout,
                amount=100 + n,
                currency="USD",
                provider="manual",
                destination_id=account.id,
                now=when,
            ).id
        )
    world.act(staff, wallets.confirm_deposit, deposits[2])
    world.act(staff, wallets.mark_payout_paid, payouts[2])

    def every_page(kind: str) -> list[list[str]]:
        pages: list[list[str]] = []
        after = None
        while True:
            cursors = {"deposits_after": None, "payouts_after": None, f"{kind}_after": after}
            page = world.act(
                staff,
                pending_transfers,
                limit=2,
                deposits_after=cursors["deposits_after"],
                payouts_after=cursors["payouts_after"],
            )
            lines, more = (
                (page.deposits, page.more_deposits)
                if kind == "deposits"
                else (page.payouts, page.more_payouts)
            )
            pages.append([line.id for line in lines])
            if not more:
                return pages
            after = lines[-1].id

    for kind, made in (("deposits", deposits), ("payouts", payouts)):
        waiting = [made[n] for n in (0, 1, 3, 4)]
        expected = [made_id for _, made_id in sorted((moments[made.index(i)], i) for i in waiting)]
        pages = every_page(kind)
        assert [len(page) for page in pages] == [2, 2], kind  # four waiting: two full pages
        assert [made_id for page in pages for made_id in page] == expected, kind
        assert every_page(kind) == pages  # the same pages every time
