"""Providers as configuration and the manual rails over HTTP: a production server refuses the sandbox,
staff reject deposits and fail payouts, users keep payout destinations that only staff see in full."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from milepost.kit.db import Database
from milepost.settings import Settings
from milepost.wallets.models import Deposit
from tests.api.conftest import PASSWORD, Client, LiveServer, assert_error

USD = "USD"
IBAN = "DE89370400440532013000"


def available(client: Client, currency: str = USD) -> int:
    for balance in client.ok("GET", "/v1/balances")["data"]:
        if balance["currency"] == currency:
            return int(balance["available"])
    return 0


def deposits(db: Database) -> int:
    with db.read_only() as session:
        return int(session.scalar(select(func.count()).select_from(Deposit)) or 0)


def test_a_production_server_refuses_sandbox_money(db: Database, tmp_path: Path) -> None:
    """Out of the box (MILEPOST_PROVIDERS unset: manual only) nobody can create money."""
    settings = Settings(fee_bps=1000, files_dir=str(tmp_path / "files"), providers="manual")
    with LiveServer(db, settings) as url:
        anonymous = Client(url)
        anonymous.ok(
            "POST", "/v1/users", {"email": "eve@example.com", "name": "Eve", "password": PASSWORD}
        )
        token = anonymous.ok(
            "POST", "/v1/tokens", {"email": "eve@example.com", "password": PASSWORD}
        )
        eve = Client(url, token["token"], token["user"])
        for path in ("/v1/deposits", "/v1/payouts"):
            refused = eve.post(
                path, {"amount": 100_000_000, "currency": USD, "provider": "sandbox"}
            )
            error = assert_error(refused, 422, "validation", "unknown_provider", "provider")
            assert "manual" in error["message"]
        assert available(eve) == 0
        assert deposits(db) == 0
        assert eve.ok("GET", "/v1/ledger/entries")["data"] == []

        # No provider: the first enabled one, a bank transfer waiting for staff.
        pending = eve.ok("POST", "/v1/deposits", {"amount": 5_000, "currency": USD})
        assert (pending["provider"], pending["status"]) == ("manual", "pending")
        assert available(eve) == 0


def test_staff_reject_a_deposit_over_http(sign_up: Any) -> None:
    ann, staff = sign_up("ann"), sign_up("staff", staff=True)
    deposit = ann.ok(
        "POST", "/v1/deposits", {"amount": 25_000, "currency": USD, "provider": "manual"}
    )
    path = f"/v1/deposits/{deposit['id']}/reject"
    for body in ({}, {"reason": ""}, {"reason": "  "}, {"reason": 5}):
        assert_error(staff.post(path, body), 422, "validation", param="reason")
    assert_error(staff.post("/v1/deposits/dep_nope/reject", {"reason": "x"}), 404, "not_found")

    rejected = staff.ok("POST", path, {"reason": "No transfer arrived in 30 days."})
    assert rejected["status"] == "rejected"
    assert rejected["rejection_reason"] == "No transfer arrived in 30 days."
    assert rejected["rejected_by"] == staff.id and rejected["rejected_at"]
    assert rejected["succeeded_at"] is None
    assert available(ann) == 0

    for again in (
        staff.post(path, {"reason": "again"}),
        staff.post(f"/v1/deposits/{deposit['id']}/confirm"),
    ):
        assert_error(again, 409, "conflict", "invalid_state")
    assert available(ann) == 0

    [news] = ann.ok("GET", "/v1/notifications")["data"]
    assert news["kind"] == "deposit_rejected"
    assert "No transfer arrived in 30 days." in news["body"]

    confirmed = ann.ok(
        "POST", "/v1/deposits", {"amount": 1_000, "currency": USD, "provider": "manual"}
    )
    staff.ok("POST", f"/v1/deposits/{confirmed['id']}/confirm")
    late = staff.post(f"/v1/deposits/{confirmed['id']}/reject", {"reason": "too late"})
    assert_error(late, 409, "conflict", "invalid_state")
    assert available(ann) == 1_000
    assert staff.ok("GET", "/v1/ledger/verify")["ok"] is True


def test_payout_destinations_and_failing_a_payout_over_http(sign_up: Any) -> None:
    fred, staff, other = sign_up("fred"), sign_up("staff", staff=True), sign_up("other")
    fred.ok("POST", "/v1/deposits", {"amount": 50_000, "currency": USD})

    bad = fred.post(
        "/v1/payout-destinations", {"holder_name": "Fred", "iban": "DE89370400440532013001"}
    )
    assert_error(bad, 422, "validation", "invalid_iban", "iban")
    short = fred.post("/v1/payout-destinations", {"holder_name": "Fred", "iban": "DE8937040044"})
    assert_error(short, 422, "validation", param="iban")
    nameless = fred.post("/v1/payout-destinations", {"iban": IBAN})
    assert_error(nameless, 422, "validation", param="holder_name")
    assert fred.ok("GET", "/v1/payout-destinations")["data"] == []

    account = fred.ok(
        "POST",
        "/v1/payout-destinations",
        {
            "holder_name": "Fred Example",
            "iban": "DE89 3704 0044 0532 0130 00",
            "bic": "COBADEFFXXX",
        },
    )
    assert account["id"].startswith("pdst_")
    assert (account["object"], account["type"], account["masked"]) == (
        "payout_destination",
        "iban",
        "DE89 •••• •••• 3000",
    )
    assert IBAN not in str(account) and "0532" not in str(account)
    local = fred.ok(
        "POST",
        "/v1/payout-destinations",
        {
            "holder_name": "Fred Example",
            "label": "Checking",
            "account_number": "000123456789",
            "routing_number": "021000021",
        },
    )
    assert (local["type"], local["masked"], local["label"]) == ("local", "•••• 6789", "Checking")
    listed = fred.ok("GET", "/v1/payout-destinations")["data"]
    assert [d["id"] for d in listed] == [local["id"], account["id"]]
    assert "021000021" not in str(listed) and "000123456789" not in str(listed)
    assert other.ok("GET", "/v1/payout-destinations")["data"] == []

    # A manual payout must name one of the caller's own destinations.
    manual = {"amount": 20_000, "currency": USD, "provider": "manual"}
    missing = fred.post("/v1/payouts", manual)
    assert_error(missing, 422, "validation", param="destination_id")
    not_yours = other.post("/v1/payouts", {**manual, "destination_id": account["id"]})
    assert_error(not_yours, 422, "validation", param="destination_id")
    assert available(fred) == 50_000

    payout = fred.ok("POST", "/v1/payouts", {**manual, "destination_id": account["id"]})
    assert payout["status"] == "pending"
    assert payout["destination"]["masked"] == "DE89 •••• •••• 3000"
    assert "iban" not in payout["destination"] and IBAN not in str(payout)
    assert available(fred) == 30_000
    assert "iban" not in fred.ok("GET", f"/v1/payouts/{payout['id']}")["destination"]

    # Staff see where to send the money, in full.
    seen = staff.ok("GET", f"/v1/payouts/{payout['id']}")["destination"]
    assert (seen["iban"], seen["bic"], seen["holder_name"]) == (
        "DE89 3704 0044 0532 0130 00",
        "COBADEFFXXX",
        "Fred Example",
    )
    assert_error(other.get(f"/v1/payouts/{payout['id']}"), 404, "not_found")

    path = f"/v1/payouts/{payout['id']}/fail"
    assert_error(staff.post(path, {}), 422, "validation", param="reason")
    failed = staff.ok("POST", path, {"reason": "Account closed"})
    assert (failed["status"], failed["failure_reason"], failed["failed_by"]) == (
        "failed",
        "Account closed",
        staff.id,
    )
    assert available(fred) == 50_000
    for again in (staff.post(path, {"reason": "x"}), staff.post(f"{path[:-5]}/mark-paid")):
        assert_error(again, 409, "conflict", "invalid_state")
    assert available(fred) == 50_000
    kinds = [n["kind"] for n in fred.ok("GET", "/v1/notifications")["data"]]
    assert kinds == ["payout_failed"]

    # Paid, then it cannot fail; removing a destination hides it but not its payouts.
    second = fred.ok("POST", "/v1/payouts", {**manual, "destination_id": local["id"]})
    assert staff.ok("GET", f"/v1/payouts/{second['id']}")["destination"]["routing_number"] == (
        "021000021"
    )
    assert staff.ok("POST", f"/v1/payouts/{second['id']}/mark-paid")["status"] == "paid"
    late = staff.post(f"/v1/payouts/{second['id']}/fail", {"reason": "bounced"})
    assert_error(late, 409, "conflict", "invalid_state")
    assert available(fred) == 30_000
    assert_error(
        other.delete(f"/v1/payout-destinations/{local['id']}"), 404, "not_found", param="id"
    )
    assert fred.ok("DELETE", f"/v1/payout-destinations/{local['id']}") == {
        "id": local["id"],
        "deleted": True,
    }
    assert [d["id"] for d in fred.ok("GET", "/v1/payout-destinations")["data"]] == [account["id"]]
    assert fred.ok("GET", f"/v1/payouts/{second['id']}")["destination"]["masked"] == "•••• 6789"
    gone = fred.post("/v1/payouts", {**manual, "amount": 1, "destination_id": local["id"]})
    assert_error(gone, 422, "validation", param="destination_id")

    # A sandbox payout needs no destination (where the sandbox is enabled, as in these tests).
    sent = fred.ok("POST", "/v1/payouts", {"amount": 1_000, "currency": USD, "provider": "sandbox"})
    assert (sent["status"], sent["destination"]) == ("paid", None)
    assert staff.ok("GET", "/v1/ledger/verify")["ok"] is True
