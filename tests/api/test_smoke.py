"""The server answers in the API's shape."""

from __future__ import annotations

from typing import Any

from tests.api.conftest import Client


def test_unknown_route_and_missing_token_answer_in_the_error_shape(base_url: str) -> None:
    anonymous = Client(base_url)
    missing = anonymous.get("/v1/nowhere")
    assert missing.status_code == 404
    assert missing.json()["error"]["type"] == "not_found"
    unauthenticated = anonymous.get("/v1/me")
    assert unauthenticated.status_code == 401
    assert unauthenticated.json()["error"]["code"] == "missing_token"
    assert unauthenticated.headers["x-request-id"].startswith("req_")


def test_sign_up_sign_in_deposit_and_see_the_balance(sign_up: Any) -> None:
    alice = sign_up("alice")
    assert alice.ok("GET", "/v1/me")["id"] == alice.id
    deposit = alice.ok("POST", "/v1/deposits", {"amount": 12_345, "currency": "USD"})
    assert deposit["status"] == "succeeded"
    balances = alice.ok("GET", "/v1/balances")["data"]
    assert balances == [
        {
            "object": "balance",
            "currency": "USD",
            "available": 12_345,
            "escrow_outgoing": 0,
            "escrow_incoming": 0,
            "pending": 0,
        }
    ]
