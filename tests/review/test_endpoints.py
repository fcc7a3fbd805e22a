"""GET /v1/milestones/{id}/review over HTTP, against a live server on SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

from tests.api.conftest import Client

CRITERIA = [
    "Data migration",
    "Basic functionality",
    "Customizations and integrations",
    "Training",
    "Testing and QA",
]


def submitted_crm_milestone(client: Client, freelancer: Client) -> str:
    project = client.ok(
        "POST", "/v1/projects", {"title": "CRM", "currency": "USD", "freelancer_id": freelancer.id}
    )
    milestone = client.ok(
        "POST",
        f"/v1/projects/{project['id']}/milestones",
        {
            "title": "CRM implementation",
            "amount": 500_000,
            "acceptance_criteria": CRITERIA,
            "required_evidence": ["Migration report"],
        },
    )
    path = f"/v1/milestones/{milestone['id']}"
    client.ok("POST", "/v1/deposits", {"amount": 500_000, "currency": "USD"})
    client.ok("POST", f"{path}/fund")
    upload = freelancer.request(
        "POST",
        "/v1/files",
        files={"file": ("migration-report.pdf", b"%PDF-1.7\n%%EOF\n", "application/pdf")},
    )
    assert upload.status_code == 201, upload.text
    freelancer.ok(
        "POST",
        f"{path}/submissions",
        {
            "note": "Everything but QA.",
            "evidence": [
                {"type": "file", "file_id": upload.json()["id"]},
                {"type": "text", "text": "Basic functionality live: contacts, deals, pipeline."},
                {"type": "text", "text": "Custom fields configured; accounting integration syncs."},
                {"type": "link", "url": "https://video.example/sales-training-recording"},
            ],
        },
    )
    return str(milestone["id"])


def test_parties_get_the_review_context(sign_up: Any) -> None:
    client, freelancer = sign_up("client"), sign_up("freelancer")
    milestone_id = submitted_crm_milestone(client, freelancer)

    for party in (client, freelancer):
        body = party.ok("GET", f"/v1/milestones/{milestone_id}/review")
        assert body["object"] == "review_context"
        assert body["milestone_id"] == milestone_id
        assert body["matcher"] == "keywords"
        assert [c["met"] for c in body["criteria"]] == [True, True, True, True, False]
        assert [c["verdict"] for c in body["criteria"]][:4] == ["met"] * 4
        assert body["criteria"][4]["verdict"] in {"unclear", "unmet"}
        assert {c["matcher"] for c in body["criteria"]} == {"keywords"}
        assert {c["explanation"] for c in body["criteria"]} == {""}
        migration = body["criteria"][0]["evidence"][0]
        assert migration["verdict"] == "met" and migration["veto"] == ""
        assert migration["ref"] == "evidence[0]"
        assert migration["label"] == "migration-report.pdf"
        assert "migration" in migration["matched_words"]
        assert body["required_evidence"][0]["found"] is True
        assert body["suggestion"]["decision"] == "request_changes"
        assert body["suggestion"]["unmet_criteria"] == [{"index": 4, "text": "Testing and QA"}]
        assert body["review_seconds_left"] > 13 * 86_400
        assert [r["revision"] for r in body["revisions"]] == [1]
        assert body["submission"]["evidence"][0]["type"] == "note"


def test_a_non_party_gets_404_as_for_an_unknown_milestone(sign_up: Any) -> None:
    client, freelancer, outsider = sign_up("client"), sign_up("freelancer"), sign_up("outsider")
    milestone_id = submitted_crm_milestone(client, freelancer)

    hidden = outsider.get(f"/v1/milestones/{milestone_id}/review")
    unknown = outsider.get("/v1/milestones/ms_unknown/review")

    assert hidden.status_code == unknown.status_code == 404
    assert hidden.json() == unknown.json()
    assert hidden.json()["error"]["type"] == "not_found"
    assert "Testing and QA" not in hidden.text
    anonymous = Client(str(client.http.base_url)).get(f"/v1/milestones/{milestone_id}/review")
    assert anonymous.status_code == 401
