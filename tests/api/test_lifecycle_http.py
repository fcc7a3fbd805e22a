"""The seed cases end to end over HTTP, as a client that knows only API.md would run them."""

from __future__ import annotations

from typing import Any


def test_crm_project_from_proposal_to_release_over_http(sign_up: Any) -> None:
    dana, priya, staff = sign_up("dana"), sign_up("priya"), sign_up("staff", staff=True)
    dana.ok("POST", "/v1/deposits", {"amount": 5_000_000, "currency": "USD"})
    project = dana.ok("POST", "/v1/projects", {"title": "CRM", "currency": "USD"})
    assert project["status"] == "open"
    deliverables = [
        ("Data migration", 1_000_000),
        ("Basic functionality", 1_500_000),
        ("Customizations and integrations", 1_200_000),
        ("Training", 500_000),
        ("Testing and QA", 800_000),
    ]
    proposal = priya.ok(
        "POST",
        f"/v1/projects/{project['id']}/proposals",
        {
            "amount": 5_000_000,
            "milestones": [
                {"title": t, "amount": a, "acceptance_criteria": [t]} for t, a in deliverables
            ],
        },
    )
    awarded = dana.ok("POST", f"/v1/proposals/{proposal['id']}/accept")
    assert (awarded["status"], awarded["freelancer_id"]) == ("awarded", priya.id)

    listed = dana.ok("GET", f"/v1/milestones?project_id={project['id']}&role=client")["data"]
    second = next(m for m in listed if m["title"] == "Basic functionality")
    assert (second["status"], second["freelancer_id"], second["amount"]) == (
        "draft",
        priya.id,
        1_500_000,
    )

    funded = dana.ok("POST", f"/v1/milestones/{second['id']}/fund")
    assert (funded["status"], funded["escrow_balance"]) == ("funded", 1_500_000)
    submission = priya.post(
        f"/v1/milestones/{second['id']}/submissions",
        {
            "note": "Live in staging",
            "evidence": [{"type": "link", "url": "https://staging.example"}],
        },
    )
    assert submission.status_code == 201, submission.text
    released = dana.ok("POST", f"/v1/milestones/{second['id']}/approve")
    assert (released["status"], released["fee_amount"], released["escrow_balance"]) == (
        "released",
        150_000,
        0,
    )
    incoming = priya.ok("GET", "/v1/balances")["data"]
    assert incoming[0]["available"] == 1_350_000

    events = priya.ok("GET", f"/v1/milestones/{second['id']}/events")["data"]
    assert [e["action"] for e in events] == [
        "created",
        "funded",
        "submitted",
        "approved",
        "released",
    ]
    assert staff.ok("GET", "/v1/ledger/verify")["ok"] is True


def test_outsider_sees_404_and_client_cannot_cancel_a_funded_milestone(sign_up: Any) -> None:
    client, freelancer, outsider = sign_up("client"), sign_up("freelancer"), sign_up("outsider")
    client.ok("POST", "/v1/deposits", {"amount": 300_000, "currency": "USD"})
    project = client.ok(
        "POST", "/v1/projects", {"title": "Site", "currency": "USD", "freelancer_id": freelancer.id}
    )
    milestone = client.ok(
        "POST", f"/v1/projects/{project['id']}/milestones", {"title": "M1", "amount": 300_000}
    )
    client.ok("POST", f"/v1/milestones/{milestone['id']}/fund")

    hidden = outsider.get(f"/v1/milestones/{milestone['id']}")
    assert hidden.status_code == 404
    refused = client.post(f"/v1/milestones/{milestone['id']}/cancel", {"reason": "changed my mind"})
    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "only_freelancer_can_cancel"

    cancelled = freelancer.ok("POST", f"/v1/milestones/{milestone['id']}/cancel")
    assert (cancelled["status"], cancelled["refunded_amount"]) == ("cancelled", 300_000)
    assert client.ok("GET", "/v1/balances")["data"][0]["available"] == 300_000


def test_a_proposal_is_withdrawn_or_replaced_over_http(sign_up: Any) -> None:
    client, freelancer = sign_up("client"), sign_up("freelancer")
    project = client.ok("POST", "/v1/projects", {"title": "Shop", "currency": "USD"})
    path = f"/v1/projects/{project['id']}/proposals"
    plan = {"amount": 50_000, "milestones": [{"title": "All", "amount": 50_000}]}
    first = freelancer.ok("POST", path, plan)
    second = freelancer.ok("POST", path, plan)
    statuses = {p["id"]: p["status"] for p in client.ok("GET", path)["data"]}
    assert statuses == {first["id"]: "withdrawn", second["id"]: "pending"}

    refused = client.request("POST", f"/v1/proposals/{second['id']}/withdraw")
    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "only_author_can_withdraw"
    withdrawn = freelancer.ok("POST", f"/v1/proposals/{second['id']}/withdraw")
    assert withdrawn["status"] == "withdrawn"
    again = freelancer.request("POST", f"/v1/proposals/{second['id']}/withdraw")
    assert again.status_code == 409
    assert client.request("POST", f"/v1/proposals/{second['id']}/accept").status_code == 409
