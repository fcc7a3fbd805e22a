"""Every failure answers in the error shape, with the status API.md gives it; request ids and request logs."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from milepost.kit.db import Database
from milepost.kit.http import ApiDep
from milepost.settings import Settings
from tests.api.conftest import Client, LiveServer, assert_error, capture_logs

MIB = 1024 * 1024


def balance(client: Client, currency: str = "USD") -> int:
    rows = client.ok("GET", "/v1/balances")["data"]
    return sum(row["available"] for row in rows if row["currency"] == currency)


@pytest.fixture
def request_log() -> Iterator[list[str]]:
    """The ``milepost.requests`` logger's output while the test runs, formatted as the server does."""
    with capture_logs("milepost.requests") as lines:
        yield lines


def logged_requests(lines: list[str], count: int) -> list[dict[str, Any]]:
    """The request log's entries, once there are ``count`` of them: a request's line is written just after
    its response has gone out, so the client can be a moment ahead of it."""
    deadline = time.monotonic() + 5
    while True:
        entries = [json.loads(line) for line in list(lines)]
        requests = [entry for entry in entries if entry["message"] == "request"]
        if len(requests) >= count or time.monotonic() > deadline:
            return requests
        time.sleep(0.01)


# --- bodies --------------------------------------------------------------------------------------


def test_malformed_json_is_400_and_json_that_is_not_an_object_is_422(sign_up: Any) -> None:
    alice = sign_up("alice")
    for raw in (b'{"amount": 100, "currency": "USD"', b"{amount: 1}", b"\xff\xfe", b"nul"):
        response = alice.post(
            "/v1/deposits", content=raw, headers={"Content-Type": "application/json"}
        )
        assert_error(response, 400, "invalid_request", "malformed_json")

    for body in ([], [{"amount": 100, "currency": "USD"}], "USD", 100, True):
        assert_error(alice.post("/v1/deposits", body), 422, "validation")
    # No body at all, or JSON null.
    assert_error(alice.post("/v1/deposits"), 422, "validation")
    assert_error(
        alice.post("/v1/deposits", content=b"null", headers={"Content-Type": "application/json"}),
        422,
        "validation",
    )
    assert alice.ok("GET", "/v1/balances")["data"] == []


def test_bad_amounts_currencies_and_providers_are_422_naming_the_field(sign_up: Any) -> None:
    alice = sign_up("alice")
    alice.ok("POST", "/v1/deposits", {"amount": 10_000, "currency": "USD"})
    bad_amounts: list[Any] = [
        1.5,
        100.0,
        "100",
        True,
        False,
        None,
        [100],
        {"value": 100},
        -1,
        0,
        10**12 + 1,
        10**20,
        10**40,
    ]
    for path in ("/v1/deposits", "/v1/payouts"):
        for amount in bad_amounts:
            response = alice.post(path, {"amount": amount, "currency": "USD"})
            assert_error(response, 422, "validation", param="amount")
        # Raw JSON numbers that Python would also read as floats.
        for raw in (b"1e3", b"1.0E2", b"NaN", b"Infinity", b"-0.0"):
            response = alice.post(
                path,
                content=b'{"amount": ' + raw + b', "currency": "USD"}',
                headers={"Content-Type": "application/json"},
            )
            assert response.status_code in (400, 422), (raw, response.text)
            assert response.json()["error"]["type"] in ("invalid_request", "validation")
    assert balance(alice) == 10_000
    for currency in ("QQQ", "usd", "US", "USDD", "", 840, None):
        response = alice.post("/v1/deposits", {"amount": 100, "currency": currency})
        assert_error(response, 422, "validation", param="currency")
    missing = alice.post("/v1/deposits", {"amount": 100})
    assert_error(missing, 422, "validation", "missing", "currency")
    unknown_provider = alice.post(
        "/v1/deposits", {"amount": 100, "currency": "USD", "provider": "paypal"}
    )
    assert_error(unknown_provider, 422, "validation", param="provider")
    extra = alice.post("/v1/deposits", {"amount": 100, "currency": "USD", "memo": "hi"})
    assert_error(extra, 422, "validation", "unknown_field", "memo")
    assert balance(alice) == 10_000
    assert balance(alice, "EUR") == 0

    # The largest amount allowed is allowed.
    assert alice.ok("POST", "/v1/deposits", {"amount": 10**12, "currency": "USD"})["amount"] == (
        10**12
    )


def test_bodies_over_one_mib_are_413(sign_up: Any, request_log: list[str]) -> None:
    alice = sign_up("alice")
    padding = "x" * (MIB + 10)
    body = json.dumps({"amount": 100, "currency": "USD", "provider": padding}).encode()

    declared = alice.post(
        "/v1/deposits", content=body, headers={"Content-Type": "application/json"}
    )
    assert_error(declared, 413, "invalid_request", "body_too_large")

    def chunks() -> Iterator[bytes]:
        for start in range(0, len(body), 64 * 1024):
            yield body[start : start + 64 * 1024]

    chunked = alice.post(
        "/v1/deposits", content=chunks(), headers={"Content-Type": "application/json"}
    )
    assert_error(chunked, 413, "invalid_request", "body_too_large")

    # Also before authentication, and on routes that take no body.
    anonymous = Client(str(alice.http.base_url))
    assert_error(
        anonymous.post("/v1/users", content=body, headers={"Content-Type": "application/json"}),
        413,
        "invalid_request",
        "body_too_large",
    )

    # Just under the limit is read (and refused for what it says, not for its size).
    fits = json.dumps({"amount": 100, "currency": "USD", "provider": "x" * (MIB - 100)}).encode()
    assert len(fits) <= MIB
    response = alice.post(
        "/v1/deposits", content=fits, headers={"Content-Type": "application/json"}
    )
    assert_error(response, 422, "validation", param="provider")

    assert alice.ok("GET", "/v1/balances")["data"] == []
    logged = logged_requests(request_log, 5)
    assert [entry["status"] for entry in logged if entry["path"] == "/v1/deposits"] == [
        413,
        413,
        422,
    ]


# --- routing -------------------------------------------------------------------------------------


def test_unknown_routes_and_wrong_methods_answer_in_the_error_shape_with_request_ids(
    sign_up: Any,
) -> None:
    alice = sign_up("alice")
    for path in ("/v1/nowhere", "/v1/deposits/dep_missing/nothing", "/nowhere", "/v2/me"):
        assert_error(alice.get(path), 404, "not_found")
        assert_error(alice.post(path, {}), 404, "not_found")
    for method, path in (
        ("DELETE", "/v1/me"),
        ("PUT", "/v1/deposits"),
        ("PUT", "/v1/tokens"),  # GET lists the caller's tokens, POST signs in
        ("PATCH", "/v1/balances"),
    ):
        response = alice.request(method, path)
        assert_error(response, 405, "invalid_request", "method_not_allowed")

    # Every response, whatever it is, carries its own request id.
    base_url = str(alice.http.base_url)
    responses = [
        alice.get("/v1/me"),
        alice.get("/v1/balances"),
        alice.post("/v1/deposits", {"amount": 100, "currency": "USD"}),
        alice.post("/v1/deposits", {"amount": "100", "currency": "USD"}),
        alice.post("/v1/payouts", {"amount": 10**9, "currency": "USD"}),
        alice.get("/v1/nowhere"),
        alice.delete("/v1/me"),
        Client(base_url).get("/v1/me"),
        Client(base_url).get("/openapi.json"),
        alice.post("/v1/deposits", content=b"{", headers={"Content-Type": "application/json"}),
        alice.delete("/v1/tokens/current"),
    ]
    ids = [response.headers.get("x-request-id") for response in responses]
    assert all(request_id and request_id.startswith("req_") for request_id in ids), ids
    assert len(set(ids)) == len(ids)


# --- money and permissions -----------------------------------------------------------------------


def test_a_payout_beyond_the_balance_is_402_and_moves_nothing(sign_up: Any) -> None:
    alice = sign_up("alice")
    assert_error(
        alice.post("/v1/payouts", {"amount": 1, "currency": "USD"}),
        402,
        "insufficient_funds",
        "insufficient_funds",
    )
    alice.ok("POST", "/v1/deposits", {"amount": 5_000, "currency": "USD"})
    assert_error(
        alice.post("/v1/payouts", {"amount": 5_001, "currency": "USD"}),
        402,
        "insufficient_funds",
    )
    # Money in another currency does not count.
    assert_error(
        alice.post("/v1/payouts", {"amount": 1, "currency": "EUR"}), 402, "insufficient_funds"
    )
    assert balance(alice) == 5_000
    payout = alice.ok("POST", "/v1/payouts", {"amount": 5_000, "currency": "USD"})
    assert payout["object"] == "payout" and payout["amount"] == 5_000
    assert balance(alice) == 0


def test_only_staff_confirm_manual_deposits(sign_up: Any) -> None:
    alice = sign_up("alice")
    mallory = sign_up("mallory")
    staff = sign_up("staff", staff=True)
    deposit = alice.ok(
        "POST", "/v1/deposits", {"amount": 7_500, "currency": "EUR", "provider": "manual"}
    )
    assert deposit["status"] == "pending"
    assert balance(alice, "EUR") == 0

    path = f"/v1/deposits/{deposit['id']}/confirm"
    assert_error(alice.post(path), 403, "permission", "staff_only")
    assert_error(mallory.post(path), 403, "permission", "staff_only")
    assert_error(Client(str(alice.http.base_url)).post(path), 401, "authentication")
    assert balance(alice, "EUR") == 0

    assert_error(staff.post("/v1/deposits/dep_nope/confirm"), 404, "not_found")
    confirmed = staff.ok("POST", path)
    assert confirmed["status"] == "succeeded"
    assert balance(alice, "EUR") == 7_500
    # Confirming twice is a state conflict and moves nothing more.
    assert_error(staff.post(path), 409, "conflict", "invalid_state")
    assert balance(alice, "EUR") == 7_500


# --- unexpected failures and the request log -------------------------------------------------------


@pytest.fixture
def failing_server(db: Database, settings: Settings) -> Iterator[str]:
    """The real app plus test-only routes that fail unexpectedly, served like any other test server."""
    live = LiveServer(db, settings)
    app = live.server.config.app
    assert isinstance(app, FastAPI)

    @app.get("/v1/test-only/boom")
    def boom() -> None:
        raise RuntimeError("database password is hunter2 (internal detail)")

    @app.post("/v1/test-only/boom")
    async def boom_in_a_write(api: ApiDep) -> Any:
        def action(ctx: Any) -> None:
            raise KeyError("internal detail")

        return await api.write(action, lambda result: result, auth=False)

    with live as url:
        yield url


def test_an_unexpected_exception_is_a_500_without_a_stack_trace(
    failing_server: str, request_log: list[str]
) -> None:
    responses = [
        httpx.get(f"{failing_server}/v1/test-only/boom"),
        httpx.post(f"{failing_server}/v1/test-only/boom", json={}),
    ]
    for response in responses:
        error = assert_error(response, 500, "api_error", "internal_error")
        assert error["param"] is None
        for leak in ("hunter2", "RuntimeError", "KeyError", "internal detail", 'File "', ".py"):
            assert leak not in response.text
        # The message gives the request id so that support can find the logged exception.
        assert response.headers["x-request-id"] in error["message"]

    # The server is still up.
    assert httpx.get(f"{failing_server}/v1/me").status_code == 401
    requests = logged_requests(request_log, 3)
    assert [entry["status"] for entry in requests] == [500, 500, 401]
    logged = [json.loads(line) for line in request_log]
    assert any("hunter2" in entry.get("exception", "") for entry in logged), (
        "the exception itself is logged on the server side"
    )


def test_the_request_log_is_json_lines(sign_up: Any, request_log: list[str]) -> None:
    alice = sign_up("alice")
    request_log.clear()
    ok = alice.post("/v1/deposits", {"amount": 100, "currency": "USD"})
    refused = alice.post("/v1/payouts", {"amount": 1_000, "currency": "USD"})
    anonymous = Client(str(alice.http.base_url)).get("/v1/me")
    missing = alice.get("/v1/nowhere?x=1")

    requests = logged_requests(request_log, 4)
    assert all("\n" not in line for line in request_log)
    assert len(requests) == 4
    expected = [
        (ok, "POST", "/v1/deposits", 201, alice.id),
        (refused, "POST", "/v1/payouts", 402, alice.id),
        (anonymous, "GET", "/v1/me", 401, None),
        (missing, "GET", "/v1/nowhere", 404, None),
    ]
    for entry, (response, method, path, status, user_id) in zip(requests, expected, strict=True):
        assert entry["request_id"] == response.headers["x-request-id"]
        assert entry["method"] == method
        assert entry["path"] == path
        assert entry["status"] == status == response.status_code
        assert entry["user_id"] == user_id
        assert isinstance(entry["duration_ms"], int | float) and entry["duration_ms"] >= 0
        assert entry["level"] == "info" and entry["logger"] == "milepost.requests"
        assert "time" in entry
        # No bodies, headers or tokens in the log.
        assert alice.token not in json.dumps(entry)
