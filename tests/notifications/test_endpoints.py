"""Notifications over HTTP: each user sees only their own, newest first; mark one or all read. And the
server's own sender mails them as soon as the change commits."""

from __future__ import annotations

from typing import Any

import pytest

from milepost.kit.db import Database
from tests.api.conftest import Client
from tests.notifications.conftest import Mailbox

EVIDENCE = [{"type": "link", "url": "https://example.com/pr/1"}]


def funded_milestone(client: Client, freelancer: Client, amount: int = 200_000) -> str:
    client.ok("POST", "/v1/deposits", {"amount": 1_000_000, "currency": "USD"})
    project = client.ok(
        "POST",
        "/v1/projects",
        {"title": "Shop", "currency": "USD", "freelancer_id": freelancer.id},
    )
    milestone = client.ok(
        "POST",
        f"/v1/projects/{project['id']}/milestones",
        {"title": "Checkout", "amount": amount, "acceptance_criteria": ["Pays"]},
    )
    client.ok("POST", f"/v1/milestones/{milestone['id']}/fund")
    return str(milestone["id"])


def test_list_read_and_read_all(sign_up: Any) -> None:
    client, freelancer = sign_up("client"), sign_up("freelancer")
    milestone_id = funded_milestone(client, freelancer)

    page = freelancer.ok("GET", "/v1/notifications")
    assert page["object"] == "list" and page["has_more"] is False
    assert [item["kind"] for item in page["data"]] == ["funded", "created"]  # newest first
    funded = page["data"][0]
    assert funded["object"] == "notification"
    assert funded["read"] is False and funded["read_at"] is None
    assert funded["milestone_id"] == milestone_id
    assert funded["title"] == "“Checkout” is funded: $2,000.00 in escrow"
    assert client.ok("GET", "/v1/notifications")["data"] == []  # the actor is not told
    assert freelancer.ok("GET", "/v1/notifications/unread-count") == {"unread": 2}

    read = freelancer.ok("POST", f"/v1/notifications/{funded['id']}/read")
    assert read["read"] is True and read["read_at"] is not None
    again = freelancer.ok("POST", f"/v1/notifications/{funded['id']}/read")
    assert again["read_at"] == read["read_at"]  # marking twice changes nothing
    unread = freelancer.ok("GET", "/v1/notifications?unread=true")["data"]
    assert [item["kind"] for item in unread] == ["created"]
    assert freelancer.ok("GET", "/v1/notifications/unread-count")["unread"] == 1
    assert freelancer.ok("GET", f"/v1/notifications/{funded['id']}")["read"] is True

    freelancer.ok(
        "POST", f"/v1/milestones/{milestone_id}/submissions", {"note": "Done", "evidence": EVIDENCE}
    )
    freelancer.ok("POST", f"/v1/milestones/{milestone_id}/request-release")
    assert client.ok("GET", "/v1/notifications/unread-count")["unread"] == 2
    assert client.ok("POST", "/v1/notifications/read-all") == {"marked_read": 2}
    assert client.ok("POST", "/v1/notifications/read-all")["marked_read"] == 0
    assert client.ok("GET", "/v1/notifications?unread=true")["data"] == []
    assert freelancer.ok("GET", "/v1/notifications/unread-count")["unread"] == 1  # theirs untouched


def test_pagination_newest_first_with_a_cursor(sign_up: Any) -> None:
    client, freelancer = sign_up("client"), sign_up("freelancer")
    funded_milestone(client, freelancer)
    funded_milestone(client, freelancer)
    everything = freelancer.ok("GET", "/v1/notifications?limit=100")["data"]
    assert len(everything) == 4
    ids = [item["id"] for item in everything]
    assert ids == sorted(ids, reverse=True)
    first = freelancer.ok("GET", "/v1/notifications?limit=3")
    assert first["has_more"] is True and [item["id"] for item in first["data"]] == ids[:3]
    rest = freelancer.ok("GET", f"/v1/notifications?limit=3&starting_after={ids[2]}")
    assert rest["has_more"] is False and [item["id"] for item in rest["data"]] == ids[3:]


def test_someone_elses_notification_does_not_exist(sign_up: Any) -> None:
    client, freelancer, stranger = sign_up("client"), sign_up("freelancer"), sign_up("stranger")
    funded_milestone(client, freelancer)
    theirs = freelancer.ok("GET", "/v1/notifications")["data"][0]["id"]
    for response in (
        stranger.get(f"/v1/notifications/{theirs}"),
        stranger.post(f"/v1/notifications/{theirs}/read"),
        client.post(f"/v1/notifications/{theirs}/read"),
        freelancer.post("/v1/notifications/ntf_nope/read"),
    ):
        assert response.status_code == 404, response.text
        assert response.json()["error"]["type"] == "not_found"
    assert stranger.ok("GET", "/v1/notifications")["data"] == []
    assert stranger.ok("POST", "/v1/notifications/read-all")["marked_read"] == 0
    assert freelancer.ok("GET", f"/v1/notifications/{theirs}")["read"] is False


def test_bad_input_is_refused_in_the_error_shape(sign_up: Any, base_url: str) -> None:
    user = sign_up("user")
    # A page size out of bounds is a wrong value (422); a value that is not a boolean at all, 400.
    for path, status in (
        ("/v1/notifications?limit=0", 422),
        ("/v1/notifications?limit=101", 422),
        ("/v1/notifications?unread=maybe", 400),
    ):
        response = user.get(path)
        assert response.status_code == status, (path, response.text)
        assert set(response.json()["error"]) == {"type", "code", "message", "param"}
    anonymous = Client(base_url)
    for response in (
        anonymous.get("/v1/notifications"),
        anonymous.get("/v1/notifications/unread-count"),
        anonymous.post("/v1/notifications/read-all"),
    ):
        assert response.status_code == 401
        assert response.json()["error"]["type"] == "authentication"


@pytest.mark.parametrize("run_worker", [True])
def test_the_servers_sender_mails_right_after_commit(
    sign_up: Any, mailbox: Mailbox, db: Database
) -> None:
    client, freelancer = sign_up("client"), sign_up("freelancer")
    milestone_id = funded_milestone(client, freelancer, amount=123_456)
    received = mailbox.wait_for(2)
    assert [item.rcpt_tos for item in received] == [[freelancer.user["email"]]] * 2
    assert received[1].message["Subject"] == "“Checkout” is funded: $1,234.56 in escrow"
    assert "$1,234.56" in received[1].text

    freelancer.ok(
        "POST", f"/v1/milestones/{milestone_id}/submissions", {"note": "Done", "evidence": EVIDENCE}
    )
    freelancer.ok("POST", f"/v1/milestones/{milestone_id}/request-release")
    received = mailbox.wait_for(4)
    nudges = [item for item in received if item.rcpt_tos == [client.user["email"]]]
    assert [item.message["Subject"] for item in nudges] == [
        "“Checkout” was delivered: please review",
        f"{freelancer.user['name']} asks you to release “Checkout”",
    ]
    assert len(mailbox.wait_for(5, timeout=1)) == 4  # and nothing twice
