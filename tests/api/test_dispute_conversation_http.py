"""A dispute argued with evidence over HTTP, as the issue's story has it: the client disputes a delivery,
both sides write with files and links attached, staff find it in their queue (awaiting whose answer),
read and download the evidence, write too, and resolve it with a split; the money lands as ruled and the
ledger verifies."""

from __future__ import annotations

from typing import Any

from tests.api.conftest import Client, assert_error


def _upload(person: Client, name: str, data: bytes) -> str:
    response = person.request("POST", "/v1/files", files={"file": (name, data, "text/plain")})
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def _available(person: Client, currency: str = "USD") -> int:
    for balance in person.ok("GET", "/v1/balances")["data"]:
        if balance["currency"] == currency:
            return int(balance["available"])
    return 0


def test_both_sides_argue_with_evidence_and_staff_resolve_it(sign_up: Any) -> None:
    client, freelancer = sign_up("client"), sign_up("freelancer")
    staff, stranger = sign_up("staff", staff=True), sign_up("stranger")
    client.ok("POST", "/v1/deposits", {"amount": 100_000, "currency": "USD", "provider": "sandbox"})
    project = client.ok(
        "POST", "/v1/projects", {"title": "Shop", "currency": "USD", "freelancer_id": freelancer.id}
    )
    milestone = client.ok(
        "POST",
        f"/v1/projects/{project['id']}/milestones",
        {"title": "Checkout", "amount": 80_000, "acceptance_criteria": ["Pays by card"]},
    )
    client.ok("POST", f"/v1/milestones/{milestone['id']}/fund")
    freelancer.ok(
        "POST",
        f"/v1/milestones/{milestone['id']}/submissions",
        {"note": "Done", "evidence": [{"type": "link", "url": "https://shop.example/checkout"}]},
    )
    dispute = client.ok(
        "POST", f"/v1/milestones/{milestone['id']}/disputes", {"reason": "Cards are declined"}
    )
    assert dispute["awaiting_response_from"] == "freelancer"

    path = f"/v1/disputes/{dispute['id']}/messages"
    log = _upload(freelancer, "gateway-log.txt", b"200 OK test card 4242; 402 live card: no key")
    said = freelancer.ok(
        "POST",
        path,
        {
            "body": "Test cards pass; live cards need the client's live key, which I never got.",
            "attachments": [
                {"type": "file", "file_id": log},
                {"type": "link", "url": "https://shop.example/settings/payments"},
            ],
        },
    )
    assert said["author_role"] == "freelancer"
    # A file of someone else's cannot be attached.
    theirs = client.post(path, {"body": "Look", "attachments": [{"type": "file", "file_id": log}]})
    assert theirs.status_code == 422, theirs.text
    mail = _upload(client, "key-sent.txt", b"From: client; the live key is in the vault since May")
    client.ok(
        "POST",
        path,
        {"body": "I sent it in May.", "attachments": [{"type": "file", "file_id": mail}]},
    )
    assert_error(stranger.get(path), 404, "not_found")

    # Staff: their queue shows it, answered (the freelancer wrote), not overdue yet.
    queue = staff.ok("GET", "/v1/staff/disputes?currency=USD")["data"]
    [listed] = [item for item in queue if item["id"] == dispute["id"]]
    assert (listed["overdue"], listed["awaiting_response_from"]) == (False, None)
    conversation = staff.ok("GET", path)["data"]
    assert [m["author_role"] for m in conversation] == ["freelancer", "client"]
    for file_id, data in ((log, b"200 OK test card"), (mail, b"From: client")):
        download = staff.get(f"/v1/files/{file_id}")
        assert download.status_code == 200 and download.content.startswith(data)
    staff.ok("POST", path, {"body": "The vault shows the key was shared on 14 May; splitting."})

    resolved = staff.ok(
        "POST",
        f"/v1/disputes/{dispute['id']}/resolve",
        {"to_freelancer": 50_000, "to_client": 30_000, "note": "Key shared late; work mostly done"},
    )
    assert (resolved["status"], resolved["resolution"]) == ("resolved", "staff")
    assert _available(freelancer) == 45_000  # 50,000 less the 10% fee
    assert _available(client) == 20_000 + 30_000
    after = client.post(path, {"body": "One more thing"})
    assert after.status_code == 409, after.text
    events = [
        e["action"] for e in client.ok("GET", f"/v1/milestones/{milestone['id']}/events")["data"]
    ]
    assert events.count("dispute_message") == 3 and events[-1] == "dispute_resolved"
    assert staff.ok("GET", "/v1/ledger/verify")["ok"] is True
