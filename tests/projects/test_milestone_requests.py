"""Milestone requests: the freelancer of an awarded project asks for a new milestone; the client accepts it
(a draft with exactly those terms, its creation naming the request) or rejects it; the freelancer may
withdraw it; each answer is told to the other side; nobody else can see or touch it."""

from __future__ import annotations

from typing import Any

import pytest

from milepost.kit.errors import InvalidState, NotFound, PermissionDenied, ValidationFailed
from milepost.milestones.state import MilestoneStatus
from milepost.projects import milestone_requests as requests
from milepost.projects import service as projects
from milepost.projects.state import MilestoneRequestStatus as R
from tests.notifications.test_service import kinds, notifications
from tests.schedule.helpers import events
from tests.world import World

TERMS: dict[str, Any] = {
    "title": "Extra: export to CSV",
    "amount": 45_000,
    "acceptance_criteria": ["Every report can be downloaded as CSV"],
    "due_date": "2031-03-01",
}


def test_an_accepted_request_is_a_draft_with_its_terms(world: World) -> None:
    client, freelancer, project = world.parties()
    asked = world.act(freelancer, requests.request_milestone, project.id, **TERMS)
    assert asked.status is R.PENDING
    told = notifications(world.db, client)[-1]
    assert told.kind == "milestone_requested"
    assert "“Extra: export to CSV”, for $450.00" in told.body

    accepted = world.act(client, requests.accept_request, asked.id)
    assert (accepted.status, accepted.milestone_id is not None) == (R.ACCEPTED, True)
    assert accepted.milestone_id is not None
    milestone = world.get(accepted.milestone_id)
    assert (milestone.status, milestone.title, milestone.amount) == (
        MilestoneStatus.DRAFT,
        "Extra: export to CSV",
        45_000,
    )
    assert milestone.acceptance_criteria == ["Every report can be downloaded as CSV"]
    assert str(milestone.due_date) == "2031-03-01"
    created = events(world, milestone.id)[0]
    assert (created.action, created.actor_id, created.data) == (
        "created",
        client.id,
        {"milestone_request_id": asked.id, "requested_by": freelancer.id},
    )
    # Told of the answer (and of the new draft, in the same unit of work, so in either order).
    assert {"milestone_request_accepted", "created"} <= set(kinds(world.db, freelancer))
    with pytest.raises(InvalidState):
        world.act(client, requests.accept_request, asked.id)  # once


def test_a_rejected_or_withdrawn_request_makes_nothing(world: World) -> None:
    client, freelancer, project = world.parties()
    first = world.act(freelancer, requests.request_milestone, project.id, **TERMS)
    rejected = world.act(client, requests.reject_request, first.id, reason="Not this quarter")
    assert (rejected.status, rejected.reason, rejected.milestone_id) == (
        R.REJECTED,
        "Not this quarter",
        None,
    )
    assert "Reason: Not this quarter" in notifications(world.db, freelancer)[-1].body

    second = world.act(freelancer, requests.request_milestone, project.id, **TERMS)
    world.act(freelancer, requests.withdraw_request, second.id)
    with pytest.raises(InvalidState):
        world.act(client, requests.accept_request, second.id)
    listed = world.act(client, requests.list_requests, project.id)
    assert [(r.id, r.status) for r in listed] == [(first.id, R.REJECTED), (second.id, R.WITHDRAWN)]
    with world.db.read_only() as session:
        from sqlalchemy import func, select

        from milepost.milestones.models import Milestone

        assert (
            session.scalar(
                select(func.count())
                .select_from(Milestone)
                .where(Milestone.project_id == project.id)
            )
            == 0
        )


def test_who_may_ask_and_answer(world: World) -> None:
    client, freelancer, project = world.parties()
    outsider = world.user("Olga")
    with pytest.raises(PermissionDenied):
        world.act(client, requests.request_milestone, project.id, **TERMS)
    refused = world.attempt(freelancer, requests.request_milestone, project.id, title="", amount=0)
    assert isinstance(refused, ValidationFailed)
    assert {each.param for each in refused.all} >= {"title", "amount"}  # every refusal at once
    open_project = world.act(
        client, projects.create_project, title="Not awarded yet", currency="USD"
    )
    with pytest.raises((PermissionDenied, InvalidState)):
        world.act(freelancer, requests.request_milestone, open_project.id, **TERMS)

    asked = world.act(freelancer, requests.request_milestone, project.id, **TERMS)
    with pytest.raises(PermissionDenied):
        world.act(freelancer, requests.accept_request, asked.id)
    with pytest.raises(PermissionDenied):
        world.act(freelancer, requests.reject_request, asked.id)
    with pytest.raises(PermissionDenied):
        world.act(client, requests.withdraw_request, asked.id)
    for action in (requests.accept_request, requests.withdraw_request):
        with pytest.raises(NotFound):
            world.act(outsider, action, asked.id)
    with pytest.raises(NotFound):
        world.act(outsider, requests.list_requests, project.id)
    assert world.act(client, requests.list_requests, project.id)[0].status is R.PENDING
