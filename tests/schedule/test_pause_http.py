"""Pausing work over HTTP: the freelancer only, and only while a payment on the project is overdue."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from milepost.kit.time import utcnow


def test_pause_and_resume_over_http(sign_up: Any) -> None:
    client, freelancer, outsider = sign_up("client"), sign_up("freelancer"), sign_up("outsider")
    project = client.ok(
        "POST", "/v1/projects", {"title": "Shop", "currency": "USD", "freelancer_id": freelancer.id}
    )
    assert (project["paused"], project["paused_at"]) == (False, None)
    path = f"/v1/projects/{project['id']}"

    nothing = freelancer.post(f"{path}/pause")
    assert nothing.status_code == 409, nothing.text
    assert nothing.json()["error"]["code"] == "nothing_overdue"

    yesterday = (utcnow() - timedelta(days=1)).date().isoformat()
    client.ok(
        "POST", f"{path}/milestones", {"title": "Design", "amount": 50_000, "fund_by": yesterday}
    )
    by_client = client.post(f"{path}/pause")
    assert by_client.status_code == 403
    assert by_client.json()["error"]["code"] == "only_freelancer_can_pause"
    assert outsider.post(f"{path}/pause").status_code == 404

    paused = freelancer.ok("POST", f"{path}/pause")
    assert paused["paused"] is True and paused["paused_at"] is not None
    seen = client.ok("GET", path)
    assert (seen["paused"], seen["paused_at"]) == (True, paused["paused_at"])
    again = freelancer.post(f"{path}/pause")
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "already_paused"

    assert client.post(f"{path}/resume").json()["error"]["code"] == "only_freelancer_can_resume"
    resumed = freelancer.ok("POST", f"{path}/resume")
    assert (resumed["paused"], resumed["paused_at"]) == (False, None)
    not_paused = freelancer.post(f"{path}/resume")
    assert not_paused.status_code == 409
    assert not_paused.json()["error"]["code"] == "not_paused"
