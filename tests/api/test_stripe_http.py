"""Card deposits through Stripe, over real HTTP both ways: Milepost's server calls the stand-in through
the official ``stripe`` library, and the stand-in's events, signed by that library's own code, are posted
to Milepost's webhook endpoint. Nothing is credited until a signed event says the payment was made; each
event acts once; a bad signature moves nothing; an outage on either side loses nothing."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from milepost.kit.db import Database
from milepost.schedule.service import run_due
from milepost.settings import Settings
from milepost.wallets.models import Deposit
from tests.api.conftest import Client, LiveServer, assert_error
from tests.api.stripe_support import (
    USD,
    card_deposit,
    credited,
    entries,
    pending,
    person,
    stored_deposit,
    stripe_settings,
)
from tests.stripe_standin import StandIn


def test_a_card_deposit_is_credited_once_when_the_signed_event_says_it_was_paid(
    stripe_url: str, standin: StandIn, db: Database
) -> None:
    ana = person(stripe_url, "ana")
    deposit = card_deposit(ana, 250_000)
    assert (deposit["status"], deposit["provider"]) == ("pending", "stripe")
    session_id = deposit["reference"]
    session = standin.sessions[session_id]
    # The Checkout Session is the deposit, to the cent, and names it; the payer is sent to its page.
    assert (session["amount_total"], session["currency"]) == (250_000, "usd")
    assert session["metadata"] == {"deposit_id": deposit["id"]}
    assert deposit["payment_url"] == session["url"]
    assert session["success_url"] == "https://milepost.example/"
    (created,) = [r for r in standin.requests if r[1] == "/v1/checkout/sessions"]
    assert created[3] == f"milepost-deposit-{deposit['id']}"  # idempotent by the deposit
    assert credited(ana) == 0 and entries(db) == 0

    event = standin.paid(session_id)
    answer = standin.deliver(stripe_url, event)
    assert answer.status_code == 200, answer.text
    assert answer.json()["outcome"] == f"settled {deposit['id']}"
    assert pending(ana) == 250_000
    stored = stored_deposit(db, deposit["id"])
    assert (stored.status, stored.provider_payment_id) == ("succeeded", f"pi_{session_id}")

    # Stripe delivers at least once: the same event again is answered and does nothing.
    again = standin.deliver(stripe_url, event)
    assert again.status_code == 200, again.text
    assert again.json()["outcome"] == "duplicate: already received"
    assert pending(ana) == 250_000 and entries(db) == 1


def test_a_declined_card_credits_nothing_and_an_expired_page_closes_the_deposit(
    stripe_url: str, standin: StandIn, db: Database
) -> None:
    bo = person(stripe_url, "bo")
    deposit = card_deposit(bo, 9_900)
    session_id = deposit["reference"]

    declined = standin.deliver(stripe_url, standin.declined(session_id))
    assert declined.status_code == 200, declined.text
    assert declined.json()["outcome"] == "ignored: not an event Milepost acts on"
    assert credited(bo) == 0

    closed = standin.deliver(stripe_url, standin.expired(session_id))
    assert closed.json()["outcome"] == f"closed {deposit['id']}"
    stored = stored_deposit(db, deposit["id"])
    assert stored.status == "rejected"
    assert stored.rejection_reason == "The payment page expired before it was paid."
    news = bo.ok("GET", "/v1/notifications")["data"][0]
    assert news["kind"] == "card_deposit_failed"
    assert "$99.00" in news["title"] and "expired" in news["body"]

    # A payment event that comes after the page expired (late, or forged into the wrong order) finds the
    # deposit decided and credits nothing.
    late = standin.deliver(stripe_url, standin.paid(session_id))
    assert late.json()["outcome"] == f"ignored: deposit {deposit['id']} is rejected already"
    assert credited(bo) == 0 and entries(db) == 0


def test_a_delayed_payment_settles_whichever_of_its_events_comes_first(
    stripe_url: str, standin: StandIn, db: Database
) -> None:
    cy = person(stripe_url, "cy")
    in_order = card_deposit(cy, 10_000)
    waiting = standin.deliver(stripe_url, standin.completed_unpaid(in_order["reference"]))
    assert waiting.json()["outcome"].startswith("waiting:")
    assert credited(cy) == 0
    succeeded = standin.paid(in_order["reference"], kind="checkout.session.async_payment_succeeded")
    assert standin.deliver(stripe_url, succeeded).json()["outcome"] == f"settled {in_order['id']}"

    # Out of order: the money's event first, then the session's completion (still "unpaid" as sent).
    reversed_ = card_deposit(cy, 20_000)
    late_completion = standin.completed_unpaid(reversed_["reference"])
    first = standin.paid(reversed_["reference"], kind="checkout.session.async_payment_succeeded")
    assert standin.deliver(stripe_url, first).json()["outcome"] == f"settled {reversed_['id']}"
    assert standin.deliver(stripe_url, late_completion).json()["outcome"].startswith("ignored:")
    assert pending(cy) == 30_000 and entries(db) == 2


def test_an_event_not_signed_by_the_endpoints_secret_moves_nothing(
    stripe_url: str, standin: StandIn, db: Database
) -> None:
    di = person(stripe_url, "di")
    deposit = card_deposit(di, 5_000)
    event = standin.paid(deposit["reference"])
    forged = {
        "another secret": standin.signature(event, secret="whsec_someone_else"),
        "no header": "",
        "too old": standin.signature(event, at=int(time.time()) - 3_600),
        "another body": standin.signature(event.replace(b"5000", b"9000")),
    }
    for what, header in forged.items():
        refused = standin.deliver(stripe_url, event, signature=header)
        error = assert_error(refused, 400, "invalid_request", "bad_signature")
        assert "nothing was done" in error["message"], what
    tampered = event.replace(b'"amount_total": 5000', b'"amount_total": 9000')
    assert tampered != event
    assert_error(
        standin.deliver(stripe_url, tampered, signature=standin.signature(event)),
        400,
        "invalid_request",
        "bad_signature",
    )
    assert credited(di) == 0 and entries(db) == 0
    # The genuine event still works: refusals kept nothing, not even its id.
    assert standin.deliver(stripe_url, event).json()["outcome"] == f"settled {deposit['id']}"


def test_a_payment_that_is_not_the_deposits_amount_is_left_for_staff(
    stripe_url: str, standin: StandIn, db: Database
) -> None:
    ed = person(stripe_url, "ed")
    deposit = card_deposit(ed, 7_000)
    standin.sessions[deposit["reference"]]["amount_total"] = 700
    answer = standin.deliver(stripe_url, standin.paid(deposit["reference"]))
    assert answer.json()["outcome"].startswith("refused: the payment is not the deposit's amount")
    assert credited(ed) == 0 and entries(db) == 0


def test_a_stripe_outage_refuses_the_deposit_with_nothing_kept_and_a_missed_event_is_sent_again(
    db: Database, tmp_path: Path, standin: StandIn
) -> None:
    settings = stripe_settings(tmp_path, standin)
    with LiveServer(db, settings) as stripe_url:
        fay = person(stripe_url, "fay")
        standin.down = True
        refused = fay.post("/v1/deposits", {"amount": 4_000, "currency": USD, "provider": "stripe"})
        error = assert_error(refused, 503, "service_unavailable")
        assert "nothing was charged" in error["message"]
        with db.read_only() as session:
            assert session.scalar(select(func.count()).select_from(Deposit)) == 0
        standin.down = False
        deposit = card_deposit(fay, 4_000)
        event = standin.paid(deposit["reference"])
    # Milepost is down when Stripe sends the event: Stripe keeps it and sends it again later.
    assert available_after_restart(db, settings, fay, event, deposit["id"]) == 4_000


def available_after_restart(
    db: Database, settings: Settings, client: Client, event: bytes, deposit_id: str
) -> int:
    with LiveServer(db, settings) as stripe_url:
        answer = StandIn.deliver(stripe_url, event)
        assert answer.json()["outcome"] == f"settled {deposit_id}"
        return pending(Client(stripe_url, client.token, client.user))


def test_an_unsupported_currency_is_stripes_refusal_in_the_error_shape(
    stripe_url: str, standin: StandIn, db: Database
) -> None:
    gus = person(stripe_url, "gus")
    refused = gus.post("/v1/deposits", {"amount": 4_000, "currency": "CHF", "provider": "stripe"})
    error = assert_error(refused, 422, "validation", "provider_refused")
    assert "Stripe refused this deposit" in error["message"]
    with db.read_only() as session:
        assert session.scalar(select(func.count()).select_from(Deposit)) == 0


def test_stripe_needs_its_keys() -> None:
    with pytest.raises(ValueError, match="MILEPOST_STRIPE_SECRET_KEY and MILEPOST_STRIPE_WEBHOOK"):
        Settings(providers="stripe")


def test_a_deposit_whose_events_never_come_is_decided_by_looking_it_up(
    stripe_url: str, standin: StandIn, db: Database, tmp_path: Path
) -> None:
    ivy = person(stripe_url, "ivy")
    paid = card_deposit(ivy, 6_000)
    lost_event = standin.paid(paid["reference"])  # paid on Stripe; the event never arrives
    expired = card_deposit(ivy, 3_000)
    standin.expired(expired["reference"])
    still_open = card_deposit(ivy, 1_000)
    settings = stripe_settings(tmp_path, standin)

    def look_up(minutes: int) -> int:
        report = run_due(
            db,
            settings,
            datetime.now(UTC) + timedelta(minutes=minutes),
            deliver_emails=False,
            deliver_webhooks=False,
        )
        return report.deposits_looked_up

    assert look_up(0) == 0  # too recent: the events may still come
    assert look_up(16) == 2
    assert pending(ivy) == 6_000
    assert stored_deposit(db, expired["id"]).status == "rejected"
    assert stored_deposit(db, still_open["id"]).status == "pending"
    # The event, arriving at last, finds the deposit decided.
    late = standin.deliver(stripe_url, lost_event)
    assert late.json()["outcome"] == f"ignored: deposit {paid['id']} is succeeded already"
    assert look_up(16) == 0 and pending(ivy) == 6_000 and entries(db) == 1


@pytest.mark.parametrize(
    ("currency", "amount", "at_stripe"),
    [
        ("ISK", 5_000, 500_000),  # whole krónur here, hundredths at Stripe
        ("IDR", 150_000, 15_000_000),  # whole rupiah here (CLDR), hundredths at Stripe
        ("JPY", 5_000, 5_000),  # whole yen on both sides
        ("KWD", 12_340, 12_340),  # thousandths on both sides, in steps of ten
    ],
)
def test_a_card_deposit_is_charged_in_stripes_count_and_credited_in_milepost_s(
    stripe_url: str, standin: StandIn, db: Database, currency: str, amount: int, at_stripe: int
) -> None:
    """5,000 krónur must be 500000 at Stripe, or the payer would be charged 50 krónur."""
    ola = person(stripe_url, "ola")
    deposit = card_deposit(ola, amount, currency)
    session = standin.sessions[deposit["reference"]]
    assert (session["amount_total"], session["currency"]) == (at_stripe, currency.lower())
    answer = standin.deliver(stripe_url, standin.paid(deposit["reference"]))
    assert answer.json()["outcome"] == f"settled {deposit['id']}"
    assert pending(ola, currency) == amount

    # Taken back in full by a chargeback, in Stripe's count again.
    back = standin.deliver(stripe_url, standin.disputed(deposit["reference"]))
    assert back.json()["outcome"] == f"reversed {deposit['id']}: 0 lost"
    assert credited(ola, currency) == 0


def test_a_deposit_stripe_cannot_charge_exactly_is_refused_before_stripe_is_asked(
    stripe_url: str, standin: StandIn, db: Database
) -> None:
    ida = person(stripe_url, "ida")
    refused = ida.post("/v1/deposits", {"amount": 1_234, "currency": "KWD", "provider": "stripe"})
    error = assert_error(refused, 422, "validation", param="amount")
    assert error["message"] == "Card deposits in KWD go in steps of KWD0.010."
    assert not [r for r in standin.requests if r[1] == "/v1/checkout/sessions"]
    with db.read_only() as session:
        assert session.scalar(select(func.count()).select_from(Deposit)) == 0


def test_a_stripe_too_slow_to_answer_refuses_the_deposit_in_time_and_its_late_session_credits_nothing(
    db: Database, tmp_path: Path, standin: StandIn
) -> None:
    settings = stripe_settings(tmp_path, standin, stripe_timeout_seconds=1)
    with LiveServer(db, settings) as stripe_url:
        gil = person(stripe_url, "gil")
        standin.delay = 3
        started = time.monotonic()
        refused = gil.post("/v1/deposits", {"amount": 4_000, "currency": USD, "provider": "stripe"})
        waited = time.monotonic() - started
        error = assert_error(refused, 503, "service_unavailable")
        assert "nothing was charged" in error["message"]
        assert waited < 2.5, f"the deposit waited {waited:.1f} s for a Stripe that took 3"
        with db.read_only() as session:
            assert session.scalar(select(func.count()).select_from(Deposit)) == 0
        # Stripe made the session after all, once it got to it: paying it credits nobody here.
        deadline = time.monotonic() + 10
        while not standin.sessions and time.monotonic() < deadline:
            time.sleep(0.05)
        standin.delay = 0
        [late] = standin.sessions
        answer = standin.deliver(stripe_url, standin.paid(late))
        assert answer.json()["outcome"] == "ignored: no deposit of this installation"
        assert credited(gil) == 0 and entries(db) == 0
