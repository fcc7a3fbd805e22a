"""Only real money: the ISO 4217 codes that are not legal tender are refused; every HTML response carries
the pages' security headers."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.api.conftest import assert_error

# ISO 4217 codes that nobody can be paid in: no currency, testing, metals, units of account, funds.
NOT_MONEY = [
    "XXX", "XTS", "XAU", "XAG", "XPT", "XPD", "XDR", "XBA", "XBB", "XBC", "XBD", "XSU", "XUA",
    "USN", "BOV",
]  # fmt: skip
# Real currencies whose codes start with X (West and Central African CFA francs, East Caribbean dollar,
# CFP franc), and the ones the tests and the demo use.
REAL = ["XOF", "XAF", "XCD", "XPF", "USD", "EUR", "GBP", "JPY", "KWD", "BHD", "CHF"]


def test_codes_that_are_not_money_are_refused_for_projects_deposits_and_payouts(
    sign_up: Any,
) -> None:
    alice = sign_up("alice")
    alice.ok("POST", "/v1/deposits", {"amount": 10_000, "currency": "USD"})
    for code in NOT_MONEY:
        for path, body in (
            ("/v1/deposits", {"amount": 100, "currency": code}),
            ("/v1/payouts", {"amount": 100, "currency": code}),
            ("/v1/projects", {"title": "Gold", "currency": code}),
        ):
            refused = alice.post(path, body)
            error = assert_error(refused, 422, "validation", "invalid_currency", "currency")
            assert code in error["message"], (path, error)
    # Nothing was made: no project, no deposit, no payout, no balance in another currency.
    assert alice.ok("GET", "/v1/projects")["data"] == []
    assert [row["currency"] for row in alice.ok("GET", "/v1/balances")["data"]] == ["USD"]
    assert len(alice.ok("GET", "/v1/ledger/entries")["data"]) == 1


@pytest.mark.parametrize("code", REAL)
def test_real_currencies_stay_accepted(sign_up: Any, code: str) -> None:
    alice = sign_up("alice")
    deposit = alice.ok("POST", "/v1/deposits", {"amount": 10_000, "currency": code})
    assert deposit["currency"] == code
    project = alice.ok("POST", "/v1/projects", {"title": "Work", "currency": code})
    assert project["currency"] == code
    payout = alice.ok("POST", "/v1/payouts", {"amount": 1_000, "currency": code})
    assert payout["currency"] == code


def _assert_page_headers(response: httpx.Response) -> None:
    assert response.headers["content-type"].startswith("text/html"), response.headers
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["referrer-policy"] == "same-origin"
    assert "frame-ancestors 'none'" in response.headers["content-security-policy"]
    assert "no-store" in response.headers["cache-control"]


def test_every_html_response_carries_the_security_headers(base_url: str) -> None:
    http = httpx.Client(base_url=base_url, headers={"Accept": "text/html"})
    missing = http.get("/no-such-page")
    assert missing.status_code == 404
    _assert_page_headers(missing)
    assert "default-src 'self'" in missing.headers["content-security-policy"]
    login = http.get("/login")
    assert login.status_code == 200
    _assert_page_headers(login)
    # The 413 page for a web form, made before any route runs.
    too_large = http.post(
        "/login",
        content=b"x" * (2 * 1024 * 1024),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert too_large.status_code == 413
    _assert_page_headers(too_large)
    # The API reference: Swagger UI and Redoc from this server's own copies, nothing from elsewhere.
    for path in ("/docs", "/redoc"):
        docs = http.get(path)
        assert docs.status_code == 200
        _assert_page_headers(docs)
        csp = docs.headers["content-security-policy"]
        assert "script-src 'self';" in csp and "http" not in csp
    # JSON is left alone.
    api = http.get("/v1/no-such-endpoint")
    assert api.headers["content-type"].startswith("application/json")
    assert "x-frame-options" not in api.headers
