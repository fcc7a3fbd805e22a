"""A project's own audit trail (offers, milestone requests) under ``ledger verify`` and ``ledger sign``: a
healthy trail verifies; rewriting an event, cutting events off its end, or rewriting one with its plain
hashes recomputed is caught; events written before the ledger key are signed once by ``ledger sign``."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import delete, select, update

from milepost.audit.models import GENESIS_EVENT_HASH, ProjectEvent
from milepost.audit.project_trail import project_event_hash
from milepost.kit.db import Database
from milepost.kit.macs import KeyRing
from milepost.ledger.signing import sign_ledger
from milepost.projects import milestone_requests, offers
from milepost.projects.models import Project
from tests.ledger.test_macs import RING_K1, keyed_world, verify
from tests.world import World

TERMS: dict[str, Any] = {"title": "Export", "amount": 20_000, "acceptance_criteria": ["A CSV file"]}


def _trail(world: World) -> Project:
    """A project offered, accepted, then a milestone requested and rejected: four events."""
    client, freelancer = world.user("client"), world.user("freelancer")
    project = world.project(client)
    offer = world.act(client, offers.offer_project, project.id, freelancer_id=freelancer.id)
    world.act(freelancer, offers.accept_offer, offer.id)
    asked = world.act(freelancer, milestone_requests.request_milestone, project.id, **TERMS)
    world.act(client, milestone_requests.reject_request, asked.id, reason="Later")
    return project


def _events(db: Database, project_id: str) -> list[ProjectEvent]:
    with db.read_only() as session:
        return list(
            session.scalars(
                select(ProjectEvent)
                .where(ProjectEvent.project_id == project_id)
                .order_by(ProjectEvent.seq)
            )
        )


def test_a_projects_trail_is_chained_signed_and_verifies(db: Database) -> None:
    world = keyed_world(db)
    project = _trail(world)
    events = _events(db, project.id)
    assert [event.action for event in events] == [
        "offered",
        "offer_accepted",
        "milestone_requested",
        "milestone_request_rejected",
    ]
    assert events[0].prev_hash == GENESIS_EVENT_HASH
    assert all(event.mac_key_id == "k1" for event in events)
    assert verify(db, RING_K1).ok


@pytest.mark.tampers
def test_a_rewritten_project_event_is_caught(world: World, db: Database) -> None:
    project = _trail(world)
    second = _events(db, project.id)[1]
    with db.unit_of_work() as session:
        session.execute(
            update(ProjectEvent)
            .where(ProjectEvent.id == second.id)
            .values(data={**second.data, "freelancer_id": "usr_someone_else"})
        )
    report = verify(db, KeyRing())
    assert report.problems == [f"project {project.id} event 2: event content was altered"]


@pytest.mark.tampers
def test_project_events_cut_off_the_end_of_a_trail_are_caught(world: World, db: Database) -> None:
    project = _trail(world)
    last = _events(db, project.id)[-1]
    with db.unit_of_work() as session:
        session.execute(delete(ProjectEvent).where(ProjectEvent.id == last.id))
    [problem] = verify(db, KeyRing()).problems
    assert problem.startswith(f"project {project.id}: its audit trail should hold 4 events")
    assert "but holds 3" in problem


@pytest.mark.tampers
def test_a_rewrite_with_the_plain_hashes_recomputed_is_caught_by_the_mac(db: Database) -> None:
    world = keyed_world(db)
    project = _trail(world)
    events = _events(db, project.id)
    # An intruder rewrites the rejection's reason and recomputes every plain hash from there on.
    with db.unit_of_work() as session:
        stored = session.get(ProjectEvent, events[-1].id)
        assert stored is not None
        stored.data = {**stored.data, "reason": "Approved after all"}
        stored.hash = project_event_hash(stored)
        session.get(Project, project.id).last_event_hash = stored.hash  # type: ignore[union-attr]
    report = verify(db, RING_K1)
    assert report.problems == [
        f"project {project.id} event 4: event does not match its MAC: it was rewritten"
    ]


def test_project_events_written_before_the_key_are_signed_once_by_ledger_sign(
    world: World, db: Database
) -> None:
    project = _trail(world)  # no key yet
    unsigned = verify(db, RING_K1)
    assert not unsigned.ok
    assert all(problem.endswith("has no MAC") for problem in unsigned.problems)
    assert any(problem.startswith(f"project {project.id} event") for problem in unsigned.problems)

    signed = sign_ledger(db, RING_K1)
    assert signed.refused == []
    assert all(event.mac_key_id == "k1" for event in _events(db, project.id))
    assert verify(db, RING_K1).ok
    assert sign_ledger(db, RING_K1).events_signed == 0
    # The trail keeps growing, signed, after it.
    keyed = keyed_world(db)
    client = world.user("another")
    offered = keyed.project(client)
    keyed.act(client, offers.offer_project, offered.id, email="someone@example.com")
    assert verify(db, RING_K1).ok
