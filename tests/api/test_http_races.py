"""Races over HTTP: many clients at once against one real server, as a busy integration would send them.

Each thread has its own connection and starts at a barrier. Whatever interleaving the server sees, money
moves exactly as often as it should, every request gets an answer in time, and none is a 5xx.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from typing import Any

import httpx

from tests.api.conftest import Client

USD = "USD"
TIMEOUT = httpx.Timeout(
    45.0, connect=10.0
)  # the server's lock timeout is 30 s: nobody waits longer


def race(
    client: Client, count: int, request: Callable[[httpx.Client], httpx.Response]
) -> list[httpx.Response]:
    """Run ``request`` on ``count`` threads at once, each with its own connection; every one answers."""
    barrier = threading.Barrier(count)
    responses: list[httpx.Response | None] = [None] * count
    errors: list[BaseException] = []

    def worker(index: int) -> None:
        headers = {"Authorization": f"Bearer {client.token}"}
        # Plain HTTP on loopback: verify=False only skips building a TLS context per thread.
        with httpx.Client(
            base_url=client.http.base_url, headers=headers, timeout=TIMEOUT, verify=False
        ) as http:
            http.get("/v1/me").raise_for_status()  # connect before the start line
            try:
                barrier.wait(timeout=30)
                responses[index] = request(http)
            except BaseException as error:  # a timeout is a hang: report it, do not lose it
                errors.append(error)

    threads = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=90)
    assert not any(thread.is_alive() for thread in threads), "a request hung"
    assert not errors, errors
    answered = [response for response in responses if response is not None]
    assert len(answered) == count
    for response in answered:
        assert response.status_code < 500, (response.status_code, response.text)
        assert "Traceback" not in response.text
    return answered


def error_of(response: httpx.Response) -> tuple[str, str]:
    error = response.json()["error"]
    return error["type"], error["code"]


def available(who: Client) -> int:
    rows = who.ok("GET", "/v1/balances")["data"]
    return sum(row["available"] for row in rows if row["currency"] == USD)


def funded_milestone(sign_up: Any, amount: int, *, fund: bool = True) -> tuple[Client, Client, str]:
    client, freelancer = sign_up("client"), sign_up("freelancer")
    client.ok("POST", "/v1/deposits", {"amount": amount, "currency": USD})
    project = client.ok(
        "POST", "/v1/projects", {"title": "Race", "currency": USD, "freelancer_id": freelancer.id}
    )
    milestone = client.ok(
        "POST", f"/v1/projects/{project['id']}/milestones", {"title": "All", "amount": amount}
    )
    if fund:
        client.ok("POST", f"/v1/milestones/{milestone['id']}/fund")
    return client, freelancer, milestone["id"]


def test_twenty_concurrent_partial_releases_empty_the_escrow_exactly_once(sign_up: Any) -> None:
    client, freelancer, milestone_id = funded_milestone(sign_up, 10_000)

    responses = race(
        client,
        20,
        lambda http: http.post(f"/v1/milestones/{milestone_id}/release", json={"amount": 1_000}),
    )

    succeeded = [r for r in responses if r.status_code == 200]
    refused = [r for r in responses if r.status_code != 200]
    assert len(succeeded) == 10, [(r.status_code, r.text) for r in responses]
    for response in refused:
        assert (response.status_code, *error_of(response)) in {
            (402, "insufficient_funds", "insufficient_funds"),
            (409, "conflict", "invalid_state"),
            (409, "conflict", "conflict"),
        }, (response.status_code, response.text)
    # Each success saw the escrow one release lower: 9,000, 8,000, ... 0, each exactly once.
    assert sorted(r.json()["escrow_balance"] for r in succeeded) == list(range(0, 10_000, 1_000))

    milestone = client.ok("GET", f"/v1/milestones/{milestone_id}")
    assert (milestone["status"], milestone["escrow_balance"]) == ("released", 0)
    assert (milestone["released_amount"], milestone["fee_amount"]) == (10_000, 1_000)
    assert available(freelancer) == 10_000 - 1_000  # less the 10% fee
    assert available(client) == 0
    events = client.ok("GET", f"/v1/milestones/{milestone_id}/events")["data"]
    assert [e["action"] for e in events].count("released_part") == 9
    assert [e["action"] for e in events][-1] == "released"


def test_concurrent_duplicates_of_one_funding_move_the_money_once(sign_up: Any) -> None:
    client, _freelancer, milestone_id = funded_milestone(sign_up, 7_000, fund=False)
    client.ok(
        "POST", "/v1/deposits", {"amount": 50_000, "currency": USD}
    )  # room for a second funding
    key = f"fund-{uuid.uuid4()}"

    responses = race(
        client,
        10,
        lambda http: http.post(
            f"/v1/milestones/{milestone_id}/fund", headers={"Idempotency-Key": key}
        ),
    )

    succeeded = [r for r in responses if r.status_code == 200]
    assert succeeded, [(r.status_code, r.text) for r in responses]
    for response in responses:
        if response.status_code != 200:
            assert (response.status_code, *error_of(response)) == (
                409,
                "conflict",
                "idempotency_key_in_flight",
            ), response.text
    # One funding; every 200 is that funding's response (the first, or a replay of it).
    assert all(r.json() == succeeded[0].json() for r in succeeded)
    assert sum(r.headers.get("idempotent-replayed") != "true" for r in succeeded) == 1
    assert succeeded[0].json()["status"] == "funded"

    assert available(client) == 57_000 - 7_000
    milestone = client.ok("GET", f"/v1/milestones/{milestone_id}")
    assert (milestone["status"], milestone["escrow_balance"]) == ("funded", 7_000)
    events = client.ok("GET", f"/v1/milestones/{milestone_id}/events")["data"]
    assert [e["action"] for e in events] == ["created", "funded"]
    # Once it is over, the same key replays the funding and the money still moved once.
    replay = client.post(f"/v1/milestones/{milestone_id}/fund", headers={"Idempotency-Key": key})
    assert (replay.status_code, replay.json()) == (200, succeeded[0].json())
    assert replay.headers["idempotent-replayed"] == "true"
    assert available(client) == 50_000


def test_twenty_payouts_race_for_a_wallet_holding_seven(sign_up: Any) -> None:
    client = sign_up("client")
    client.ok("POST", "/v1/deposits", {"amount": 7_000, "currency": USD})
    account = client.ok(
        "POST",
        "/v1/payout-destinations",
        {"holder_name": "Client", "iban": "DE89370400440532013000"},
    )
    payout = {
        "amount": 1_000,
        "currency": USD,
        "provider": "manual",
        "destination_id": account["id"],
    }

    responses = race(client, 20, lambda http: http.post("/v1/payouts", json=payout))
    # A request that met a transient conflict (a deadlock PostgreSQL broke: the first use of the
    # provider's clearing account, created by whoever gets there first) is told to try again, and does.
    for index, response in enumerate(responses):
        while response.status_code == 409 and error_of(response) == ("conflict", "conflict"):
            response = client.post("/v1/payouts", json=payout)
        responses[index] = response

    paid = [r for r in responses if r.status_code == 201]
    assert len(paid) == 7, [(r.status_code, r.text) for r in responses]
    for response in responses:
        if response.status_code != 201:
            assert (response.status_code, *error_of(response)) == (
                402,
                "insufficient_funds",
                "insufficient_funds",
            ), response.text
    assert len({r.json()["id"] for r in paid}) == 7
    assert available(client) == 0


def submitted_milestone(sign_up: Any, amount: int) -> tuple[Client, Client, str]:
    client, freelancer, milestone_id = funded_milestone(sign_up, amount)
    freelancer.ok(
        "POST",
        f"/v1/milestones/{milestone_id}/submissions",
        {"note": "Done", "evidence": [{"type": "text", "text": "All of it"}]},
    )
    return client, freelancer, milestone_id


def test_ten_approvals_of_one_delivery_release_it_once(sign_up: Any) -> None:
    client, freelancer, milestone_id = submitted_milestone(sign_up, 10_000)

    responses = race(client, 10, lambda http: http.post(f"/v1/milestones/{milestone_id}/approve"))

    released = [r for r in responses if r.status_code == 200]
    assert len(released) == 1, [(r.status_code, r.text) for r in responses]
    assert released[0].json()["status"] == "released"
    for response in responses:
        if response.status_code != 200:
            assert (response.status_code, *error_of(response)) in {
                (409, "conflict", "invalid_state"),
                (409, "conflict", "conflict"),
            }, response.text
    assert available(freelancer) == 10_000 - 1_000  # once, less the 10% fee
    milestone = client.ok("GET", f"/v1/milestones/{milestone_id}")
    assert (milestone["escrow_balance"], milestone["released_amount"]) == (0, 10_000)
    events = client.ok("GET", f"/v1/milestones/{milestone_id}/events")["data"]
    assert [e["action"] for e in events].count("released") == 1


def test_ten_submissions_of_one_milestone_at_once_leave_one_delivery(sign_up: Any) -> None:
    _client, freelancer, milestone_id = funded_milestone(sign_up, 5_000)
    body = {"note": "Done", "evidence": [{"type": "text", "text": "All of it"}]}

    responses = race(
        freelancer,
        10,
        lambda http: http.post(f"/v1/milestones/{milestone_id}/submissions", json=body),
    )

    accepted = [r for r in responses if r.status_code == 201]
    assert len(accepted) == 1, [(r.status_code, r.text) for r in responses]
    for response in responses:
        if response.status_code != 201:
            assert (response.status_code, *error_of(response)) in {
                (409, "conflict", "invalid_state"),
                (409, "conflict", "conflict"),
            }, response.text
    assert freelancer.ok("GET", f"/v1/milestones/{milestone_id}")["status"] == "submitted"
    assert len(freelancer.ok("GET", f"/v1/milestones/{milestone_id}/submissions")["data"]) == 1
    events = freelancer.ok("GET", f"/v1/milestones/{milestone_id}/events")["data"]
    assert [e["action"] for e in events].count("submitted") == 1


def test_ten_deposits_sent_at_once_with_one_key_credit_once(sign_up: Any) -> None:
    client = sign_up("client")
    key = f"deposit-{uuid.uuid4()}"

    responses = race(
        client,
        10,
        lambda http: http.post(
            "/v1/deposits",
            json={"amount": 2_500, "currency": USD},
            headers={"Idempotency-Key": key},
        ),
    )

    credited = [r for r in responses if r.status_code == 201]
    assert credited, [(r.status_code, r.text) for r in responses]
    for response in responses:
        if response.status_code != 201:
            assert (response.status_code, *error_of(response)) == (
                409,
                "conflict",
                "idempotency_key_in_flight",
            ), response.text
    assert len({r.json()["id"] for r in credited}) == 1
    assert sum(r.headers.get("idempotent-replayed") != "true" for r in credited) == 1
    assert available(client) == 2_500
