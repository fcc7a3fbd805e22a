"""Manual rails that can say no, and providers as configuration: which providers are enabled, staff
rejecting a deposit that never arrived or failing a payout that bounced, and the bank accounts payouts go
to."""

from __future__ import annotations

import csv
import io
from typing import Any

import pytest
from pydantic import ValidationError
from sqlalchemy import select

from milepost.kit.db import Database
from milepost.kit.errors import InvalidState, PermissionDenied, ValidationFailed
from milepost.ledger.models import EntryKind, JournalEntry
from milepost.ledger.statement import my_statement, to_csv
from milepost.notifications.models import Notification
from milepost.settings import Settings
from milepost.users.models import User
from milepost.wallets import destinations
from milepost.wallets import service as wallets
from milepost.wallets.models import DepositStatus, PayoutStatus
from tests.world import World

IBAN = "DE89 3704 0044 0532 0130 00"


def notifications(world: World, user: User) -> list[Notification]:
    with world.db.read_only() as session:
        rows = session.scalars(
            select(Notification).where(Notification.user_id == user.id).order_by(Notification.id)
        )
        return list(rows)


# Providers are configuration --------------------------------------------------------------------------


def test_by_default_only_manual_is_enabled_and_sandbox_is_refused(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("MILEPOST_PROVIDERS", raising=False)
    assert Settings().enabled_providers == ("manual",)
    world = World(db, Settings(fee_bps=1000))
    user = world.user()
    before = world.snapshot()
    for action in (wallets.create_deposit, wallets.create_payout):
        with pytest.raises(ValidationFailed) as refused:
            world.act(user, action, amount=1_000_000, currency="USD", provider="sandbox")
        assert (refused.value.status, refused.value.param) == (422, "provider")
        assert "manual" in refused.value.message
    assert world.snapshot() == before
    assert world.balance(user) == 0


def test_the_default_provider_is_the_first_enabled_one(db: Database) -> None:
    manual_first = World(db, Settings(providers="manual,sandbox"))
    user = manual_first.user()
    deposit = manual_first.act(user, wallets.create_deposit, amount=5_000, currency="USD")
    assert (deposit.provider, deposit.status) == ("manual", DepositStatus.PENDING)
    assert manual_first.balance(user) == 0

    sandbox_first = World(db, Settings(providers=" sandbox , manual"))
    assert sandbox_first.settings.enabled_providers == ("sandbox", "manual")
    deposit = sandbox_first.act(user, wallets.create_deposit, amount=5_000, currency="USD")
    assert (deposit.provider, deposit.status) == ("sandbox", DepositStatus.SUCCEEDED)
    # Without a provider, a payout goes the default way too: manual needs a destination.
    with pytest.raises(ValidationFailed) as refused:
        manual_first.act(user, wallets.create_payout, amount=1_000, currency="USD")
    assert refused.value.param == "destination_id"


@pytest.mark.parametrize(
    ("value", "says"),
    [
        ("paypal", "unknown provider(s) paypal"),
        (
            "manual,stripe",
            "MILEPOST_STRIPE_SECRET_KEY and MILEPOST_STRIPE_WEBHOOK_SECRET are not set",
        ),
        ("", "at least one provider"),
        ("manual,,sandbox", "at least one provider"),
        ("manual,manual", "names a provider twice"),
        ("Manual", "unknown provider(s) Manual"),
    ],
)
def test_a_bad_providers_setting_stops_the_settings_loading(
    value: str, says: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MILEPOST_PROVIDERS", value)
    with pytest.raises(ValidationError) as refused:
        Settings()
    assert "MILEPOST_PROVIDERS" in str(refused.value)
    assert says in str(refused.value)


# Rejecting a deposit ------------------------------------------------------------------------------------


def test_staff_reject_a_pending_deposit_and_nothing_is_credited(world: World) -> None:
    user, staff = world.user("ann"), world.user("staff", staff=True)
    deposit = world.act(
        user, wallets.create_deposit, amount=75_000, currency="EUR", provider="manual"
    )
    before = world.snapshot()
    for who, reason, error in (
        (user, "mine", PermissionDenied),
        (staff, "", ValidationFailed),
        (staff, "   ", ValidationFailed),
        (staff, None, ValidationFailed),
        (staff, "x" * 501, ValidationFailed),
    ):
        with pytest.raises(error) as refused:
            world.act(who, wallets.reject_deposit, deposit.id, reason=reason)
        if error is ValidationFailed:
            assert refused.value.param == "reason"
        assert world.snapshot() == before

    rejected = world.act(
        staff, wallets.reject_deposit, deposit.id, reason="  No transfer with this reference.  "
    )
    assert rejected.status is DepositStatus.REJECTED
    assert rejected.rejection_reason == "No transfer with this reference."
    assert (rejected.rejected_by, rejected.succeeded_at) == (staff.id, None)
    assert rejected.rejected_at is not None
    assert world.balance(user, "EUR") == 0
    assert world.snapshot()["entries"] == before["entries"]  # no money moved at all

    [news] = notifications(world, user)
    assert news.kind == "deposit_rejected"
    assert "€750.00" in news.title
    assert "No transfer with this reference." in news.body
    assert deposit.reference in news.body

    after = world.snapshot()
    for action in (wallets.confirm_deposit, wallets.reject_deposit):
        kwargs: dict[str, Any] = {} if action is wallets.confirm_deposit else {"reason": "again"}
        with pytest.raises(InvalidState):
            world.act(staff, action, deposit.id, **kwargs)
        assert world.snapshot() == after
    assert world.balance(user, "EUR") == 0


def test_a_confirmed_deposit_cannot_be_rejected(world: World) -> None:
    user, staff = world.user(), world.user("staff", staff=True)
    deposit = world.act(user, wallets.create_deposit, amount=9_000, currency="USD")  # sandbox
    manual = world.act(
        user, wallets.create_deposit, amount=1_000, currency="USD", provider="manual"
    )
    world.act(staff, wallets.confirm_deposit, manual.id)
    before = world.snapshot()
    for settled in (deposit, manual):
        with pytest.raises(InvalidState) as refused:
            world.act(staff, wallets.reject_deposit, settled.id, reason="too late")
        assert (refused.value.status, refused.value.code) == (409, "invalid_state")
    assert world.snapshot() == before
    assert world.balance(user) == 10_000


# Failing a payout ---------------------------------------------------------------------------------------


def _pending_payout(world: World, amount: int = 20_000) -> tuple[User, User, Any]:
    user, staff = world.user("fred"), world.user("staff", staff=True)
    world.deposit(user, 50_000)
    account = world.destination(user)
    payout = world.act(
        user,
        wallets.create_payout,
        amount=amount,
        currency="USD",
        provider="manual",
        destination_id=account.id,
    )
    return user, staff, payout


def test_a_failed_payout_returns_the_money_to_the_wallet_in_one_entry(world: World) -> None:
    user, staff, payout = _pending_payout(world)
    assert world.balance(user) == 30_000
    assert world.account_balance("payout_clearing:manual:USD") == 20_000
    before = world.snapshot()
    for who, reason in ((user, "bounced"), (staff, "")):
        with pytest.raises((PermissionDenied, ValidationFailed)):
            world.act(who, wallets.fail_payout, payout.id, reason=reason)
        assert world.snapshot() == before

    failed = world.act(staff, wallets.fail_payout, payout.id, reason="Account closed (R02).")
    assert failed.status is PayoutStatus.FAILED
    assert (failed.failed_by, failed.failure_reason) == (staff.id, "Account closed (R02).")
    assert failed.paid_at is None
    assert world.balance(user) == 50_000
    assert world.account_balance("payout_clearing:manual:USD") == 0
    assert world.account_balance("external:manual:USD") == 0
    with world.db.read_only() as session:
        [entry] = session.scalars(
            select(JournalEntry).where(JournalEntry.kind == EntryKind.PAYOUT_FAILED)
        )
        assert sorted(p.amount for p in entry.postings) == [-20_000, 20_000]
    assert world.verify().ok

    [news] = notifications(world, user)
    assert news.kind == "payout_failed"
    assert "$200.00" in news.title and "back in your wallet" in news.title
    assert "Account closed (R02)." in news.body
    assert "DE89 •••• •••• 3000" in news.body
    assert "3704 0044" not in news.body  # never the full account number

    after = world.snapshot()
    for action in (wallets.mark_payout_paid, wallets.fail_payout):
        kwargs: dict[str, Any] = {} if action is wallets.mark_payout_paid else {"reason": "x"}
        with pytest.raises(InvalidState):
            world.act(staff, action, payout.id, **kwargs)
        assert world.snapshot() == after
    assert world.balance(user) == 50_000


def test_a_paid_payout_cannot_fail_and_its_owner_hears_it_was_sent(world: World) -> None:
    user, staff, payout = _pending_payout(world)
    world.act(staff, wallets.mark_payout_paid, payout.id)
    [news] = notifications(world, user)
    assert news.kind == "payout_paid"
    assert "$200.00" in news.title and "DE89 •••• •••• 3000" in news.body
    before = world.snapshot()
    with pytest.raises(InvalidState):
        world.act(staff, wallets.fail_payout, payout.id, reason="bounced after all")
    assert world.snapshot() == before
    assert world.balance(user) == 30_000
    # A sandbox payout is settled by the user's own request: no news for them.
    world.act(user, wallets.create_payout, amount=1_000, currency="USD", provider="sandbox")
    assert len(notifications(world, user)) == 1


def test_a_failed_payout_and_its_return_are_two_lines_of_the_statement(world: World) -> None:
    user, staff, payout = _pending_payout(world)
    world.act(staff, wallets.fail_payout, payout.id, reason="Bounced")
    rows = list(csv.DictReader(io.StringIO(to_csv(world.act(user, my_statement)))))
    assert [(row["entry_kind"], row["amount"], row["balance"]) for row in rows] == [
        ("deposit", "50000", "50000"),
        ("payout", "-20000", "30000"),
        ("payout_failed", "20000", "50000"),
    ]
    assert payout.id in rows[2]["memo"] and "failed" in rows[2]["memo"]
    assert {row["account"] for row in rows} == {f"user:{user.id}:USD"}


# Payout destinations ------------------------------------------------------------------------------------


def test_an_iban_destination_is_validated_stored_compact_and_shown_masked(world: World) -> None:
    user = world.user()
    account = world.destination(user, iban="de89 3704 0044 0532 0130 00", bic="cobadeffxxx")
    assert account.id.startswith("pdst_")
    assert (account.kind, account.iban, account.bic) == (
        "iban",
        "DE89370400440532013000",
        "COBADEFFXXX",
    )
    assert destinations.masked(account) == "DE89 •••• •••• 3000"
    assert account.label == "Bank account DE89 •••• •••• 3000"
    assert destinations.formatted_iban(account) == IBAN

    local = world.destination(
        user,
        account_number="0001234567",
        routing_number="021000021",
        label="Chase checking",
        holder_name="Ann Example",
    )
    assert (local.kind, local.account_number, local.routing_number) == (
        "local",
        "0001234567",
        "021000021",
    )
    assert destinations.masked(local) == "•••• 4567"
    page = world.act(user, destinations.list_destinations)
    assert [d.id for d in page.data] == [local.id, account.id]


@pytest.mark.parametrize(
    ("fields", "param"),
    [
        ({"iban": "DE89 3704 0044 0532 0130 01"}, "iban"),  # checksum
        ({"iban": "DE89 3704 0044 0532 0130"}, "iban"),  # length
        ({"iban": "XX89 3704 0044 0532 0130 00"}, "iban"),  # country
        ({"iban": IBAN, "bic": "NOTABIC"}, "bic"),
        ({"iban": IBAN, "holder_name": ""}, "holder_name"),
        ({"iban": IBAN, "holder_name": None}, "holder_name"),
        ({}, "iban"),
        ({"account_number": "12345678"}, "routing_number"),
        ({"routing_number": "021000021"}, "account_number"),
        ({"account_number": "12", "routing_number": "021000021"}, "account_number"),
        ({"account_number": "12345678", "routing_number": "0!"}, "routing_number"),
        ({"iban": IBAN, "account_number": "12345678", "routing_number": "021000021"}, "iban"),
        ({"iban": IBAN, "label": "x" * 101}, "label"),
    ],
)
def test_bad_bank_details_are_refused_and_nothing_is_kept(
    world: World, fields: dict[str, Any], param: str
) -> None:
    user = world.user()
    values = {"holder_name": "Ann", **fields}
    before = world.snapshot()
    with pytest.raises(ValidationFailed) as refused:
        world.act(user, destinations.add_destination, **values)
    assert (refused.value.status, refused.value.param) == (422, param)
    assert world.snapshot() == before


def test_a_manual_payout_names_one_of_the_users_own_destinations(world: World) -> None:
    ann, bob = world.user("ann"), world.user("bob")
    world.deposit(ann, 10_000)
    bobs = world.destination(bob)
    removed = world.destination(ann)
    world.act(ann, destinations.remove_destination, removed.id)
    before = world.snapshot()
    for destination_id in (None, "", bobs.id, removed.id, "pdst_nope", 7):
        with pytest.raises(ValidationFailed) as refused:
            world.act(
                ann,
                wallets.create_payout,
                amount=1_000,
                currency="USD",
                provider="manual",
                destination_id=destination_id,
            )
        assert (refused.value.status, refused.value.param) == (422, "destination_id")
        assert world.snapshot() == before
    assert world.balance(ann) == 10_000
    # Bob's account is not Ann's to see or remove either.
    assert world.act(ann, destinations.list_destinations).data == []
    with pytest.raises(Exception) as hidden:
        world.act(ann, destinations.remove_destination, bobs.id)
    assert getattr(hidden.value, "status", None) == 404

    # A sandbox payout needs no destination.
    sent = world.act(ann, wallets.create_payout, amount=1_000, currency="USD", provider="sandbox")
    assert (sent.status, sent.destination_id) == (PayoutStatus.PAID, None)


def test_a_removed_destination_still_shows_on_its_pending_payout(world: World) -> None:
    user, staff, payout = _pending_payout(world)
    world.act(user, destinations.remove_destination, payout.destination_id)
    assert world.act(user, destinations.list_destinations).data == []
    view = world.act(staff, wallets.get_payout, payout.id)
    assert view.full and view.payout.destination is not None
    assert view.payout.destination.iban == "DE89370400440532013000"
    assert not world.act(user, wallets.get_payout, payout.id).full
    with pytest.raises(Exception) as hidden:
        world.act(world.user("eve"), wallets.get_payout, payout.id)
    assert getattr(hidden.value, "status", None) == 404
