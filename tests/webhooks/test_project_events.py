"""A project's own trail over HTTP: offers and milestone requests are recorded as hash-chained project
events, listed by ``GET /v1/projects/{id}/events`` to its parties, and delivered as signed
``project.<action>`` webhooks to the client, the freelancer and the freelancer an offer names."""

from __future__ import annotations

from itertools import pairwise
from typing import Any

from milepost.audit.models import GENESIS_EVENT_HASH
from tests.api.conftest import Client
from tests.projects.test_milestone_requests import TERMS
from tests.webhooks.conftest import Receiver
from tests.webhooks.test_webhooks import register


def test_an_offer_and_a_milestone_request_are_on_the_trail_and_in_webhooks(
    sign_up: Any, receiver: Receiver
) -> None:
    client: Client = sign_up("client")
    freelancer: Client = sign_up("freelancer")
    stranger: Client = sign_up("stranger")
    register(client, receiver, "/client")
    # Not the project's freelancer yet: the offer names them, so its events reach them too.
    register(freelancer, receiver, "/freelancer", ["project.offered", "project.offer_accepted"])
    project = client.ok("POST", "/v1/projects", {"title": "Logo", "currency": "USD"})
    offer = client.ok(
        "POST",
        f"/v1/projects/{project['id']}/offers",
        {"freelancer_id": freelancer.id, "message": "Yours if you want it"},
    )
    offered = receiver.wait_for("/freelancer", 1)
    assert [item.body["type"] for item in offered] == ["project.offered"]
    assert offered[0].signature_ok and offered[0].committed
    assert offered[0].body["data"]["details"]["offer_id"] == offer["id"]
    assert offered[0].body["data"]["project"]["status"] == "open"

    freelancer.ok("POST", f"/v1/project-offers/{offer['id']}/accept")
    asked = freelancer.ok("POST", f"/v1/projects/{project['id']}/milestone-requests", TERMS)
    client.ok("POST", f"/v1/milestone-requests/{asked['id']}/reject", {"reason": "Not now"})

    expected = [
        "project.offered",
        "project.offer_accepted",
        "project.milestone_requested",
        "project.milestone_request_rejected",
    ]
    got = receiver.wait_for("/client", len(expected))
    assert [item.body["type"] for item in got] == expected
    assert all(item.signature_ok and item.committed for item in got)
    accepted = got[1].body["data"]
    assert accepted["project"]["status"] == "awarded"
    assert accepted["project"]["freelancer_id"] == freelancer.id
    assert accepted["actor"] == {"id": freelancer.id, "role": "freelancer"}
    assert got[2].body["data"]["details"]["terms"]["amount"] == TERMS["amount"]
    assert got[3].body["data"]["details"] == {"request_id": asked["id"], "reason": "Not now"}
    theirs = receiver.wait_for("/freelancer", 2)
    assert [item.body["type"] for item in theirs] == ["project.offered", "project.offer_accepted"]

    trail = client.ok("GET", f"/v1/projects/{project['id']}/events")["data"]
    assert [event["action"] for event in trail] == [kind.split(".")[1] for kind in expected]
    assert [event["seq"] for event in trail] == [1, 2, 3, 4]
    assert trail[0]["prev_hash"] == GENESIS_EVENT_HASH
    assert all(later["prev_hash"] == earlier["hash"] for earlier, later in pairwise(trail))
    assert [event["id"] for event in trail] == [item.body["id"] for item in got]
    assert freelancer.ok("GET", f"/v1/projects/{project['id']}/events")["data"] == trail
    refused = stranger.get(f"/v1/projects/{project['id']}/events")
    assert (refused.status_code, refused.json()["error"]["code"]) == (404, "not_found")


def test_an_invitation_by_email_keeps_the_address_off_the_trail(
    sign_up: Any, receiver: Receiver
) -> None:
    client: Client = sign_up("client")
    register(client, receiver, "/client")
    project = client.ok("POST", "/v1/projects", {"title": "Site", "currency": "EUR"})
    offer = client.ok(
        "POST", f"/v1/projects/{project['id']}/offers", {"email": "new.person@example.com"}
    )
    client.ok("POST", f"/v1/project-offers/{offer['id']}/withdraw")
    got = receiver.wait_for("/client", 2)
    assert [item.body["type"] for item in got] == ["project.offered", "project.offer_withdrawn"]
    details = got[0].body["data"]["details"]
    assert details == {"offer_id": offer["id"], "freelancer_id": None, "invited_by_email": True}
    assert "new.person" not in str([item.body for item in got])
    trail = client.ok("GET", f"/v1/projects/{project['id']}/events")["data"]
    assert [(event["action"], event["actor_role"]) for event in trail] == [
        ("offered", "client"),
        ("offer_withdrawn", "client"),
    ]
