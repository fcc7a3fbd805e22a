"""A dispute's conversation: messages with attachments from both parties and staff, each an audit event
that notifies the parties; the answer it counts as; staff's queue and per-role response windows."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from milepost.audit.service import check_chain, list_events
from milepost.disputes import service as disputes
from milepost.disputes.models import DisputeStatus
from milepost.kit.context import Context
from milepost.kit.db import Database
from milepost.kit.errors import InvalidState, NotFound, PermissionDenied, ValidationFailed
from milepost.kit.time import utcnow
from milepost.milestones import service as milestones
from milepost.settings import Settings
from tests.notifications.test_service import notifications
from tests.world import World

DAY = timedelta(days=1)


def test_both_parties_and_staff_write_and_each_message_is_an_event_both_parties_hear_of(
    world: World,
) -> None:
    client, freelancer, funded = world.funded(100_000, title="Logo")
    staff = world.user("Sam", staff=True)
    dispute = world.act(client, disputes.open_dispute, funded.id, reason="Not the agreed colours")
    evidence = [{"type": "link", "url": "https://example.com/brief.pdf"}]

    world.act(client, disputes.post_message, dispute.id, body="See the brief", attachments=evidence)
    world.act(freelancer, disputes.post_message, dispute.id, body="The brief says 'bright'")
    world.act(staff, disputes.post_message, dispute.id, body="Please both send the mails")

    conversation = world.act(freelancer, disputes.list_messages, dispute.id)
    assert [(m.author_role, m.body, m.attachments) for m in conversation] == [
        ("client", "See the brief", evidence),
        ("freelancer", "The brief says 'bright'", []),
        ("staff", "Please both send the mails", []),
    ]
    seen_by_staff = world.act(staff, disputes.list_messages, dispute.id)
    assert [m.id for m in seen_by_staff] == [m.id for m in conversation]

    with world.db.read_only() as session:
        recorded = list_events(Context(session, None, settings=world.settings), funded.id)
    said = [e for e in recorded if e.action == "dispute_message"]
    assert [(e.actor_role, e.data["body"]) for e in said] == [
        ("client", "See the brief"),
        ("freelancer", "The brief says 'bright'"),
        ("staff", "Please both send the mails"),
    ]
    assert check_chain(recorded) == []

    # Each party hears of the other's messages and of staff's, never of their own.
    heard = [n for n in notifications(world.db, freelancer) if n.kind == "dispute_message"]
    assert [n.title for n in heard] == [
        f"{client.name} wrote in the dispute on “Logo”",
        "Sam wrote in the dispute on “Logo”",
    ]
    assert "See the brief" in heard[0].body and "1 attachment" in heard[0].body
    assert len([n for n in notifications(world.db, client) if n.kind == "dispute_message"]) == 2


def test_a_message_from_the_party_who_must_answer_is_the_answer(world: World) -> None:
    client, freelancer, funded = world.funded(100_000)
    opened = utcnow()
    dispute = world.act(freelancer, disputes.open_dispute, funded.id, reason="Unpaid", now=opened)
    assert disputes.awaiting_response_from(dispute) == "client"
    # The opener writing more does not answer for the other side.
    world.act(freelancer, disputes.post_message, dispute.id, body="Invoice attached", now=opened)
    assert world.act(client, disputes.get_dispute, dispute.id).responded_at is None

    world.act(client, disputes.post_message, dispute.id, body="It is late", now=opened + DAY)
    answered = world.act(client, disputes.get_dispute, dispute.id)
    assert answered.responded_at == opened + DAY
    assert disputes.awaiting_response_from(answered) is None


def test_who_may_write_and_when(world: World) -> None:
    client, freelancer, funded = world.funded(100_000)
    outsider = world.user("Olga")
    dispute = world.act(client, disputes.open_dispute, funded.id, reason="Late")

    with pytest.raises(NotFound):
        world.act(outsider, disputes.post_message, dispute.id, body="Hello")
    with pytest.raises(NotFound):
        world.act(outsider, disputes.list_messages, dispute.id)
    refused = world.attempt(client, disputes.post_message, dispute.id, body="")
    assert isinstance(refused, ValidationFailed) and refused.param == "body"
    refused = world.attempt(
        client,
        disputes.post_message,
        dispute.id,
        body="See this",
        attachments=[{"type": "file", "file_id": "file_notmine"}],
    )
    assert isinstance(refused, ValidationFailed)
    assert (refused.code, refused.param) == ("unknown_file", "attachments[0].file_id")
    refused = world.attempt(
        client, disputes.post_message, dispute.id, body="x", attachments=[{"type": "video"}]
    )
    assert isinstance(refused, ValidationFailed)
    assert str(refused) == "Each attachment's type must be link, file or text."
    assert world.act(client, disputes.list_messages, dispute.id) == []  # nothing was kept

    world.act(client, disputes.withdraw, dispute.id)
    with pytest.raises(InvalidState):
        world.act(freelancer, disputes.post_message, dispute.id, body="Too late")


def test_staff_queue_filters(world: World) -> None:
    client, freelancer, project = world.parties()
    staff = world.user("Sam", staff=True)
    opened = utcnow()

    def disputed() -> str:
        milestone = world.milestone(client, project, 10_000)
        world.act(client, milestones.fund, milestone.id)
        return str(
            world.act(client, disputes.open_dispute, milestone.id, reason="x", now=opened).id
        )

    waiting = disputed()
    answered = disputed()
    world.act(freelancer, disputes.post_message, answered, body="No", now=opened + DAY)
    overdue = disputed()
    world.act(None, disputes.flag_overdue, overdue, now=opened + 15 * DAY)
    eur_client, _eur_freelancer, eur_project = world.parties("EUR")
    eur = world.milestone(eur_client, eur_project, 10_000)
    world.act(eur_client, milestones.fund, eur.id)
    euros = world.act(eur_client, disputes.open_dispute, eur.id, reason="x", now=opened).id

    def ids(**filters: Any) -> list[str]:
        return [d.id for d in world.act(staff, disputes.list_for_staff, **filters).data]

    assert set(ids()) == {waiting, answered, overdue, euros}
    assert set(ids(awaiting_answer=True)) == {waiting, overdue, euros}
    assert ids(awaiting_answer=False) == [answered]
    assert ids(overdue=True) == [overdue]
    assert ids(currency="EUR") == [euros]
    assert ids(status=DisputeStatus.RESOLVED) == []
    with pytest.raises(PermissionDenied):
        world.act(client, disputes.list_for_staff)


def test_each_side_may_have_its_own_response_window(db: Database) -> None:
    world = World(
        db,
        Settings(
            fee_bps=1000,
            providers="sandbox,manual",
            dispute_client_response_days=3,
            dispute_freelancer_response_days=10,
        ),
    )
    client, freelancer, funded = world.funded(100_000)
    now = utcnow()
    by_freelancer = world.act(freelancer, disputes.open_dispute, funded.id, reason="x", now=now)
    assert by_freelancer.respond_by == now + 3 * DAY  # the client answers
    world.act(freelancer, disputes.withdraw, by_freelancer.id, now=now)
    by_client = world.act(client, disputes.open_dispute, funded.id, reason="y", now=now)
    assert by_client.respond_by == now + 10 * DAY  # the freelancer answers
