"""Payouts to freelancers through Stripe Connect, over real HTTP against the stand-in: the freelancer
sets up an account on Stripe's pages, a payout waits until the worker sends it as a transfer (each
payout's id its idempotency key), and a transfer Stripe refuses gives the money back to the wallet. The
story of the issue: card money in, through escrow, out by Connect, the ledger verifying."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from milepost.kit.db import Database
from milepost.schedule.service import preview_due, run_due
from milepost.wallets.stripe_provider import send_due_payouts
from tests.api.conftest import Client, assert_error
from tests.api.stripe_support import USD, available, card_deposit, person, stripe_settings
from tests.stripe_standin import CONNECT_WEBHOOK_SECRET, StandIn


def earn(
    stripe_url: str,
    standin: StandIn,
    db: Database,
    tmp_path: Path,
    client: Client,
    freelancer: Client,
    amount: int,
) -> None:
    """The client pays by card, the money clears, funds a milestone of ``amount`` and the client
    approves it: the freelancer's wallet holds the amount less the 10% fee."""
    project = client.ok(
        "POST", "/v1/projects", {"title": "Site", "currency": USD, "freelancer_id": freelancer.id}
    )
    milestone = client.ok(
        "POST", f"/v1/projects/{project['id']}/milestones", {"title": "M1", "amount": amount}
    )
    deposit = card_deposit(client, amount)
    assert standin.deliver(stripe_url, standin.paid(deposit["reference"])).status_code == 200
    # Card money waits out its clearing hold (5 days) before it may fund escrow (the default).
    assert available(client, field="pending") == amount and available(client) == 0
    refused = client.post(f"/v1/milestones/{milestone['id']}/fund")
    assert_error(refused, 402, "insufficient_funds")
    # The dry run says what the worker will do, and does none of it.
    later = datetime.now(UTC) + timedelta(days=5)
    preview = preview_due(db, stripe_settings(tmp_path, standin), later)
    assert preview.deposits_to_clear == 1
    assert "1 deposits to clear" in preview.lines()[0]
    assert available(client, field="pending") == amount
    assert tick(db, tmp_path, standin, days=5) == (1, 0)
    assert available(client) == amount and available(client, field="pending") == 0
    client.ok("POST", f"/v1/milestones/{milestone['id']}/fund")
    freelancer.ok(
        "POST",
        f"/v1/milestones/{milestone['id']}/submissions",
        {"note": "Done", "evidence": [{"type": "text", "text": "Delivered"}]},
    )
    released = client.ok("POST", f"/v1/milestones/{milestone['id']}/approve")
    assert released["status"] == "released"


def onboard(stripe_url: str, standin: StandIn, freelancer: Client) -> str:
    account = freelancer.ok("POST", "/v1/payout-accounts/stripe")
    answer = standin.deliver(
        stripe_url, standin.onboarded(account["account_id"]), secret=CONNECT_WEBHOOK_SECRET
    )
    assert answer.json()["outcome"] == f"account {account['account_id']} can be paid"
    return str(account["account_id"])


def waiting_payout(
    stripe_url: str, standin: StandIn, db: Database, tmp_path: Path, earned: int, paid: int
) -> tuple[Client, dict[str, Any]]:
    """A freelancer who earned ``earned`` (less the fee), set up for Stripe, with a Stripe payout of
    ``paid`` waiting for the worker."""
    client, freelancer = person(stripe_url, "client"), person(stripe_url, "freelancer")
    earn(stripe_url, standin, db, tmp_path, client, freelancer, earned)
    onboard(stripe_url, standin, freelancer)
    payout: dict[str, Any] = freelancer.ok(
        "POST", "/v1/payouts", {"amount": paid, "currency": USD, "provider": "stripe"}
    )
    return freelancer, payout


def tick(db: Database, tmp_path: Path, standin: StandIn, days: int = 0) -> tuple[int, int]:
    """The worker's run, ``days`` from now: (deposits cleared, Stripe payouts sent or refused)."""
    report = run_due(
        db,
        stripe_settings(tmp_path, standin),
        datetime.now(UTC) + timedelta(days=days),
        deliver_emails=False,
        deliver_webhooks=False,
    )
    return report.deposits_cleared, report.payouts_sent


def test_card_money_goes_through_escrow_and_out_to_the_freelancers_stripe_account(
    stripe_url: str, standin: StandIn, db: Database, tmp_path: Path
) -> None:
    dana, priya = person(stripe_url, "dana"), person(stripe_url, "priya")
    earn(stripe_url, standin, db, tmp_path, dana, priya, 100_000)
    assert available(priya) == 90_000

    # No Stripe account yet: refused, nothing moves.
    early = priya.post("/v1/payouts", {"amount": 90_000, "currency": USD, "provider": "stripe"})
    assert_error(early, 422, "validation", "payout_account_not_ready", "provider")

    account = priya.ok("POST", "/v1/payout-accounts/stripe")
    assert account["payouts_enabled"] is False
    assert account["onboarding_url"] == f"{standin.base_url}/onboard/{account['account_id']}"
    assert standin.accounts[account["account_id"]]["metadata"] == {"user_id": priya.id}
    # Asking again gives a new link to the same account, never a second account.
    assert priya.ok("POST", "/v1/payout-accounts/stripe")["account_id"] == account["account_id"]
    assert len(standin.accounts) == 1
    not_yet = priya.post("/v1/payouts", {"amount": 90_000, "currency": USD, "provider": "stripe"})
    assert_error(not_yet, 422, "validation", "payout_account_not_ready")

    onboard_answer = standin.deliver(
        stripe_url, standin.onboarded(account["account_id"]), secret=CONNECT_WEBHOOK_SECRET
    )
    assert onboard_answer.status_code == 200, onboard_answer.text
    [listed] = priya.ok("GET", "/v1/payout-accounts")["data"]
    assert (listed["payouts_enabled"], listed["onboarding_url"]) == (True, None)

    payout = priya.ok(
        "POST", "/v1/payouts", {"amount": 90_000, "currency": USD, "provider": "stripe"}
    )
    assert (payout["status"], payout["provider"]) == ("pending", "stripe")
    assert available(priya) == 0 and standin.transfers == {}  # recorded first, sent by the worker
    preview = preview_due(db, stripe_settings(tmp_path, standin), datetime.now(UTC))
    assert (preview.payouts_to_send, preview.deposits_to_clear) == (1, 0)
    assert standin.transfers == {}  # a dry run sends nothing

    assert tick(db, tmp_path, standin) == (0, 1)
    [transfer] = standin.transfers.values()
    assert (transfer["amount"], transfer["currency"], transfer["destination"]) == (
        90_000,
        "usd",
        account["account_id"],
    )
    sent = [r for r in standin.requests if r[1] == "/v1/transfers"]
    assert [r[3] for r in sent] == [f"milepost-payout-{payout['id']}"]
    paid = priya.ok("GET", f"/v1/payouts/{payout['id']}")
    assert (paid["status"], paid["reference"]) == ("paid", transfer["id"])
    assert priya.ok("GET", "/v1/notifications")["data"][0]["kind"] == "payout_paid"

    assert tick(db, tmp_path, standin) == (0, 0)  # nothing sent twice
    assert len(standin.transfers) == 1

    # Another card deposit of the client's is charged back before it clears: taken back from that
    # money, nothing lost, the client's payouts held; the ledger verifies (as after every test).
    second = card_deposit(dana, 30_000)
    standin.deliver(stripe_url, standin.paid(second["reference"]))
    assert available(dana, field="pending") == 30_000
    back = standin.deliver(stripe_url, standin.disputed(second["reference"]))
    assert back.json()["outcome"] == f"reversed {second['id']}: 0 lost"
    assert available(dana, field="pending") == 0 and available(dana) == 0
    held = dana.post("/v1/payouts", {"amount": 1, "currency": USD, "provider": "manual"})
    assert_error(held, 403, "permission", "payouts_held")
    assert available(priya) == 0  # the freelancer's paid-out earnings are untouched


def test_a_transfer_stripe_refuses_fails_the_payout_and_gives_the_money_back(
    stripe_url: str, standin: StandIn, db: Database, tmp_path: Path
) -> None:
    fay, payout = waiting_payout(stripe_url, standin, db, tmp_path, 20_000, 18_000)
    standin.refuse_transfers = "Insufficient funds in Stripe account."
    assert tick(db, tmp_path, standin) == (0, 1)
    failed = fay.ok("GET", f"/v1/payouts/{payout['id']}")
    assert failed["status"] == "failed"
    assert failed["failure_reason"] == (
        "Stripe refused the transfer: Insufficient funds in Stripe account."
    )
    assert available(fay) == 18_000
    news = fay.ok("GET", "/v1/notifications")["data"][0]
    assert news["kind"] == "payout_failed" and "$180.00" in news["title"]


def test_a_stripe_outage_keeps_the_payout_pending_until_it_can_be_sent_once(
    stripe_url: str, standin: StandIn, db: Database, tmp_path: Path
) -> None:
    hana, payout = waiting_payout(stripe_url, standin, db, tmp_path, 10_000, 9_000)
    standin.down = True
    assert tick(db, tmp_path, standin) == (0, 0)
    assert hana.ok("GET", f"/v1/payouts/{payout['id']}")["status"] == "pending"
    standin.down = False
    assert tick(db, tmp_path, standin) == (0, 1)
    assert hana.ok("GET", f"/v1/payouts/{payout['id']}")["status"] == "paid"
    assert len(standin.transfers) == 1 and available(hana) == 0


def test_two_workers_sending_at_once_send_each_payout_once(
    stripe_url: str, standin: StandIn, db: Database, tmp_path: Path
) -> None:
    ivy, jon = person(stripe_url, "ivy"), person(stripe_url, "jon")
    earn(stripe_url, standin, db, tmp_path, ivy, jon, 50_000)
    onboard(stripe_url, standin, jon)
    payouts = [
        jon.ok("POST", "/v1/payouts", {"amount": 15_000, "currency": USD, "provider": "stripe"})
        for _ in range(3)
    ]
    settings = stripe_settings(tmp_path, standin)
    done: list[int] = []
    start = threading.Barrier(2)

    def worker() -> None:
        start.wait()
        done.append(send_due_payouts(db, settings))

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sum(done) == 3  # each payout settled by exactly one of them
    assert len(standin.transfers) == 3  # Stripe made one transfer per payout (the same keys)
    for payout in payouts:
        assert jon.ok("GET", f"/v1/payouts/{payout['id']}")["status"] == "paid"
    assert available(jon) == 0


def test_staff_cannot_mark_a_stripe_payout_paid_by_hand(
    stripe_url: str, standin: StandIn, db: Database, tmp_path: Path
) -> None:
    from milepost.users.service import create_user
    from tests.api.conftest import PASSWORD

    kim, lou = person(stripe_url, "kim"), person(stripe_url, "lou")
    earn(stripe_url, standin, db, tmp_path, kim, lou, 10_000)
    onboard(stripe_url, standin, lou)
    payout = lou.ok("POST", "/v1/payouts", {"amount": 9_000, "currency": USD, "provider": "stripe"})
    with db.unit_of_work() as session:
        create_user(
            session, email="staff@example.com", name="Staff", password=PASSWORD, is_staff=True
        )
    token: dict[str, Any] = Client(stripe_url).ok(
        "POST", "/v1/tokens", {"email": "staff@example.com", "password": PASSWORD}
    )
    staff = Client(stripe_url, token["token"], token["user"])
    refused = staff.post(f"/v1/payouts/{payout['id']}/mark-paid")
    error = assert_error(refused, 409, "conflict", "invalid_state")
    assert (
        error["message"] == "Only bank transfer payouts wait for staff to mark them paid or failed."
    )
    assert lou.ok("GET", f"/v1/payouts/{payout['id']}")["status"] == "pending"
