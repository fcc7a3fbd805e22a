"""Deposits taken back after they were credited, over real HTTP: a card chargeback from the stand-in's
signed ``charge.dispute.created``, and a bank transfer that bounced, recorded by staff. The money comes
back from the deposit's money not cleared, then the wallet (pending bank-transfer payouts called back
first); the rest is the platform's recorded loss, never a negative balance; escrow is not touched; the
owner's payouts are held until staff lift the hold; owner and staff are told. The ledger verifies after
each test (the fixture)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import select

from milepost.kit.db import Database
from milepost.schedule.service import run_due
from milepost.users.service import create_user
from milepost.wallets.models import DepositReversal
from tests.api.conftest import PASSWORD, Client, assert_error
from tests.api.stripe_support import (
    USD,
    available,
    card_deposit,
    pending,
    person,
    stored_deposit,
    stripe_settings,
)
from tests.stripe_standin import StandIn

IBAN = "DE89370400440532013000"


def staff_member(stripe_url: str, db: Database) -> Client:
    with db.unit_of_work() as session:
        create_user(
            session, email="staff@example.com", name="Sam", password=PASSWORD, is_staff=True
        )
    token: dict[str, Any] = Client(stripe_url).ok(
        "POST", "/v1/tokens", {"email": "staff@example.com", "password": PASSWORD}
    )
    return Client(stripe_url, token["token"], token["user"])


def paid_by_card(stripe_url: str, standin: StandIn, client: Client, amount: int) -> dict[str, Any]:
    deposit = card_deposit(client, amount)
    assert standin.deliver(stripe_url, standin.paid(deposit["reference"])).status_code == 200
    return deposit


def reversal_of(db: Database, deposit_id: str) -> DepositReversal:
    with db.read_only() as session:
        reversal = session.scalar(
            select(DepositReversal).where(DepositReversal.deposit_id == deposit_id)
        )
        assert reversal is not None
        return reversal


def test_a_chargeback_on_money_not_cleared_takes_that_money_back_and_holds_payouts(
    stripe_url: str, standin: StandIn, db: Database
) -> None:
    sam = staff_member(stripe_url, db)
    ana = person(stripe_url, "ana")
    deposit = paid_by_card(stripe_url, standin, ana, 40_000)
    assert pending(ana) == 40_000

    event = standin.disputed(deposit["reference"])
    answer = standin.deliver(stripe_url, event)
    assert answer.status_code == 200, answer.text
    assert answer.json()["outcome"] == f"reversed {deposit['id']}: 0 lost"
    assert (pending(ana), available(ana)) == (0, 0)
    assert stored_deposit(db, deposit["id"]).status == "reversed"
    reversal = reversal_of(db, deposit["id"])
    assert (reversal.from_pending, reversal.from_available, reversal.loss) == (40_000, 0, 0)
    assert reversal.provider_reference is not None and reversal.provider_reference.startswith("dp_")

    news = ana.ok("GET", "/v1/notifications")["data"][0]
    assert news["kind"] == "deposit_reversed" and "$400.00" in news["title"]
    assert "disputed (fraudulent)" in news["body"]
    staff_news = sam.ok("GET", "/v1/notifications")["data"][0]
    assert staff_news["kind"] == "staff_deposit_reversed"
    assert "$0.00 is the platform's loss" in staff_news["body"]

    # The same event again does nothing; another dispute event for it finds it reversed.
    assert standin.deliver(stripe_url, event).json()["outcome"] == "duplicate: already received"
    again = standin.deliver(stripe_url, standin.disputed(deposit["reference"]))
    assert again.json()["outcome"] == f"ignored: deposit {deposit['id']} is reversed"

    refused = ana.post("/v1/payouts", {"amount": 1, "currency": USD, "provider": "manual"})
    error = assert_error(refused, 403, "permission", "payouts_held")
    assert "held until Milepost staff review it" in error["message"]


def test_a_chargeback_after_the_money_was_spent_recovers_what_it_can_and_records_the_loss(
    stripe_url: str, standin: StandIn, db: Database, tmp_path: Path
) -> None:
    sam = staff_member(stripe_url, db)
    dana, priya = person(stripe_url, "dana"), person(stripe_url, "priya")
    deposit = paid_by_card(stripe_url, standin, dana, 100_000)
    run_due(
        db,
        stripe_settings(tmp_path, standin),
        datetime.now(UTC) + timedelta(days=5),
        deliver_emails=False,
        deliver_webhooks=False,
    )
    assert available(dana) == 100_000
    project = dana.ok(
        "POST", "/v1/projects", {"title": "Site", "currency": USD, "freelancer_id": priya.id}
    )
    milestone = dana.ok(
        "POST", f"/v1/projects/{project['id']}/milestones", {"title": "M1", "amount": 70_000}
    )
    dana.ok("POST", f"/v1/milestones/{milestone['id']}/fund")
    account = dana.ok(
        "POST",
        "/v1/payout-destinations",
        {"label": "Main", "holder_name": "Dana", "iban": IBAN},
    )
    payout = dana.ok(
        "POST",
        "/v1/payouts",
        {"amount": 20_000, "currency": USD, "provider": "manual", "destination_id": account["id"]},
    )
    assert available(dana) == 10_000

    answer = standin.deliver(stripe_url, standin.disputed(deposit["reference"]))
    assert answer.json()["outcome"] == f"reversed {deposit['id']}: 70000 lost"
    reversal = reversal_of(db, deposit["id"])
    # The payout waiting for staff was called back into the wallet, then the wallet emptied; the
    # escrow stays the milestone's, so 70,000 is the platform's loss.
    assert (reversal.from_pending, reversal.from_available, reversal.payouts_failed) == (
        0,
        30_000,
        20_000,
    )
    assert reversal.loss == 70_000
    assert available(dana) == 0
    called_back = dana.ok("GET", f"/v1/payouts/{payout['id']}")
    assert called_back["status"] == "failed"
    assert called_back["failure_reason"].startswith("Held: a deposit was taken back")
    assert dana.ok("GET", f"/v1/milestones/{milestone['id']}")["escrow_balance"] == 70_000
    assert sam.ok("GET", "/v1/ledger/verify")["ok"] is True

    # Staff lift the hold: payouts are accepted again (and refused only for want of money).
    sam.ok("DELETE", f"/v1/users/{dana.id}/payout-hold", status=204)
    after = dana.post(
        "/v1/payouts",
        {"amount": 1, "currency": USD, "provider": "manual", "destination_id": account["id"]},
    )
    assert_error(after, 402, "insufficient_funds")


def test_staff_record_a_bank_transfer_that_bounced(
    stripe_url: str, standin: StandIn, db: Database
) -> None:
    sam = staff_member(stripe_url, db)
    eve = person(stripe_url, "eve")
    deposit = eve.ok(
        "POST", "/v1/deposits", {"amount": 25_000, "currency": USD, "provider": "manual"}
    )
    sam.ok("POST", f"/v1/deposits/{deposit['id']}/confirm")
    assert available(eve) == 25_000

    refused = eve.post(f"/v1/deposits/{deposit['id']}/bounce", {"reason": "returned"})
    assert_error(refused, 403, "permission", "staff_only")
    bounced = sam.ok(
        "POST", f"/v1/deposits/{deposit['id']}/bounce", {"reason": "returned by the payer's bank"}
    )
    assert (bounced["amount"], bounced["from_available"], bounced["loss"]) == (25_000, 25_000, 0)
    assert available(eve) == 0
    twice = sam.post(f"/v1/deposits/{deposit['id']}/bounce", {"reason": "again"})
    assert_error(twice, 409, "conflict", "invalid_state")

    card = paid_by_card(stripe_url, standin, eve, 5_000)
    not_a_transfer = sam.post(f"/v1/deposits/{card['id']}/bounce", {"reason": "no"})
    assert_error(not_a_transfer, 409, "conflict", "invalid_state")


def test_a_dispute_won_gives_the_money_back_once_and_a_lost_one_changes_nothing(
    stripe_url: str, standin: StandIn, db: Database, tmp_path: Path
) -> None:
    sam = staff_member(stripe_url, db)
    dana, priya = person(stripe_url, "dana"), person(stripe_url, "priya")
    won = paid_by_card(stripe_url, standin, dana, 100_000)
    lost = paid_by_card(stripe_url, standin, dana, 30_000)
    run_due(
        db,
        stripe_settings(tmp_path, standin),
        datetime.now(UTC) + timedelta(days=5),
        deliver_emails=False,
        deliver_webhooks=False,
    )
    project = dana.ok(
        "POST", "/v1/projects", {"title": "Site", "currency": USD, "freelancer_id": priya.id}
    )
    milestone = dana.ok(
        "POST", f"/v1/projects/{project['id']}/milestones", {"title": "M1", "amount": 90_000}
    )
    dana.ok("POST", f"/v1/milestones/{milestone['id']}/fund")
    assert available(dana) == 40_000

    # Both payments are disputed: 40,000 is recovered from the wallet, 90,000 is the platform's loss.
    standin.deliver(stripe_url, standin.disputed(won["reference"]))
    standin.deliver(stripe_url, standin.disputed(lost["reference"]))
    first, second = reversal_of(db, won["id"]), reversal_of(db, lost["id"])
    assert (first.from_available, first.loss, second.from_available, second.loss) == (
        40_000,
        60_000,
        0,
        30_000,
    )
    assert available(dana) == 0

    # The first dispute is won: its loss is made good first, the rest goes back to the wallet.
    closed = standin.dispute_closed(str(first.provider_reference))
    answer = standin.deliver(stripe_url, closed)
    assert answer.json()["outcome"] == f"gave back {won['id']}: 60000 of the loss made good"
    assert available(dana) == 40_000 and pending(dana) == 0
    assert reversal_of(db, won["id"]).reinstated_at is not None
    told = dana.ok("GET", "/v1/notifications")["data"][0]
    assert told["kind"] == "deposit_reinstated"
    assert "$400.00 is back in your" in told["body"]
    # The other deposit stays taken back, so payouts stay held.
    held = dana.post("/v1/payouts", {"amount": 1, "currency": USD, "provider": "manual"})
    assert_error(held, 403, "permission", "payouts_held")

    # The same event again, and a replay with a new id, give nothing back twice.
    assert standin.deliver(stripe_url, closed).json()["outcome"] == "duplicate: already received"
    replay = standin.deliver(stripe_url, standin.dispute_closed(str(first.provider_reference)))
    assert replay.json()["outcome"] == f"ignored: deposit {won['id']} was given back already"
    assert available(dana) == 40_000

    # The second is lost: the money stays taken back.
    ended = standin.deliver(
        stripe_url, standin.dispute_closed(str(second.provider_reference), status="lost")
    )
    assert (
        ended.json()["outcome"] == f"ignored: the dispute ended lost; {lost['id']} stays reversed"
    )
    assert available(dana) == 40_000
    report = sam.ok("GET", "/v1/ledger/verify")
    assert report["ok"] is True, report
