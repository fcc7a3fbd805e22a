"""Dates past 9998-12-31 are refused with 422 naming the field, wherever a date comes in: Python's
calendar ends in 9999, and the work done on a date adds days to it (see kit.validate.LAST_DATE)."""

from __future__ import annotations

from typing import Any

from tests.api.conftest import assert_error

TOO_LATE = ["9999-01-01", "9999-12-31"]


def test_milestone_and_proposal_dates_past_9998_are_refused(sign_up: Any) -> None:
    client, freelancer = sign_up("client"), sign_up("freelancer")
    project = client.ok("POST", "/v1/projects", {"title": "Site", "currency": "USD"})
    milestones = f"/v1/projects/{project['id']}/milestones"
    draft = client.ok("POST", milestones, {"title": "Design", "amount": 1_000})
    for value in TOO_LATE:
        for field in ("due_date", "fund_by"):
            body = {"title": "Later", "amount": 1_000, field: value}
            refused = client.post(milestones, body)
            assert_error(refused, 422, "validation", "date_out_of_range", field)
            patched = client.patch(f"/v1/milestones/{draft['id']}", {field: value})
            assert_error(patched, 422, "validation", "date_out_of_range", field)
        proposal = {
            "amount": 1_000,
            "milestones": [{"title": "All of it", "amount": 1_000, "due_date": value}],
        }
        refused = freelancer.post(f"/v1/projects/{project['id']}/proposals", proposal)
        assert_error(refused, 422, "validation", "date_out_of_range", "milestones[0].due_date")
    # Nothing was made or changed; the last day allowed is accepted.
    unchanged = client.ok("GET", f"/v1/milestones/{draft['id']}")
    assert (unchanged["due_date"], unchanged["fund_by"]) == (None, None)
    assert client.ok("GET", f"/v1/projects/{project['id']}/proposals")["data"] == []
    last = client.ok(
        "POST",
        milestones,
        {"title": "Last", "amount": 1_000, "due_date": "9998-12-31", "fund_by": "9998-12-31"},
    )
    assert (last["due_date"], last["fund_by"]) == ("9998-12-31", "9998-12-31")
