"""Milestone requests and project offers over HTTP: asked, answered; refusals in the API's shape."""

from __future__ import annotations

from typing import Any

from tests.api.conftest import Client
from tests.projects.test_milestone_requests import TERMS


def test_over_http(sign_up: Any) -> None:
    client: Client = sign_up("client")
    freelancer: Client = sign_up("freelancer")
    project = client.ok(
        "POST",
        "/v1/projects",
        {"title": "Reports", "currency": "USD", "freelancer_id": freelancer.id},
    )
    path = f"/v1/projects/{project['id']}/milestone-requests"
    asked = freelancer.ok("POST", path, TERMS)
    assert (asked["object"], asked["status"], asked["terms"]["amount"]) == (
        "milestone_request",
        "pending",
        45_000,
    )
    refused = client.post(path, TERMS)
    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "only_freelancer_can_request"
    accepted = client.ok("POST", f"/v1/milestone-requests/{asked['id']}/accept")
    milestone = client.ok("GET", f"/v1/milestones/{accepted['milestone_id']}")
    assert (milestone["status"], milestone["title"]) == ("draft", "Extra: export to CSV")
    again = client.post(f"/v1/milestone-requests/{asked['id']}/reject", {"reason": "x"})
    assert (again.status_code, again.json()["error"]["code"]) == (409, "not_pending")
    assert [r["status"] for r in freelancer.ok("GET", path)["data"]] == ["accepted"]


def test_a_project_offer_over_http(sign_up: Any) -> None:
    client: Client = sign_up("client")
    freelancer: Client = sign_up("freelancer")
    project = client.ok("POST", "/v1/projects", {"title": "Logo", "currency": "USD"})
    offer = client.ok(
        "POST", f"/v1/projects/{project['id']}/offers", {"email": freelancer.user["email"]}
    )
    # An address with an account is that account's offer.
    assert (offer["object"], offer["freelancer_id"], offer["email"]) == (
        "project_offer",
        freelancer.id,
        None,
    )
    again = client.post(f"/v1/projects/{project['id']}/offers", {"freelancer_id": freelancer.id})
    assert (again.status_code, again.json()["error"]["code"]) == (409, "offer_pending")
    assert [o["id"] for o in freelancer.ok("GET", "/v1/project-offers")["data"]] == [offer["id"]]
    assert freelancer.get(f"/v1/projects/{project['id']}/offers").status_code == 404
    awarded = freelancer.ok("POST", f"/v1/project-offers/{offer['id']}/accept")
    assert (awarded["status"], awarded["freelancer_id"]) == ("awarded", freelancer.id)
    listed = client.ok("GET", f"/v1/projects/{project['id']}/offers")["data"]
    assert [o["status"] for o in listed] == ["accepted"]
