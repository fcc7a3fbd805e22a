"""Offers: the client offers an open project to one freelancer, by account or by e-mail (an invitation the
address's new account can answer); accepting awards the project, declining and withdrawing do not; one
offer waits at a time; nobody else can see or answer it."""

from __future__ import annotations

from typing import Any

import pytest

from milepost.kit.db import Database
from milepost.kit.errors import InvalidState, NotFound, PermissionDenied, ValidationFailed
from milepost.projects import offers
from milepost.projects import service as projects
from milepost.projects.models import Project
from milepost.projects.state import OfferStatus, ProjectStatus
from milepost.settings import Settings
from milepost.users.models import User
from milepost.users.service import create_user
from tests.notifications.test_service import emails, kinds
from tests.world import PASSWORD, World


def _open_project(world: World, client: User) -> Project:
    return world.act(client, projects.create_project, title="Brand refresh", currency="USD")


def test_an_accepted_offer_awards_the_project(world: World) -> None:
    client, freelancer = world.user("Cleo"), world.user("Fred")
    project = _open_project(world, client)
    offer = world.act(
        client, offers.offer_project, project.id, freelancer_id=freelancer.id, message="Yours?"
    )
    assert (offer.status, offer.freelancer_id) == (OfferStatus.PENDING, freelancer.id)
    assert kinds(world.db, freelancer)[-1] == "project_offered"
    assert [o.id for o in world.act(freelancer, offers.offers_for_me)] == [offer.id]

    awarded = world.act(freelancer, offers.accept_offer, offer.id)
    assert (awarded.status, awarded.freelancer_id) == (ProjectStatus.AWARDED, freelancer.id)
    assert world.act(client, offers.get_offer, offer.id).status is OfferStatus.ACCEPTED
    assert kinds(world.db, client)[-1] == "project_offer_accepted"
    assert world.act(freelancer, offers.offers_for_me) == []
    with pytest.raises(InvalidState):
        world.act(freelancer, offers.decline_offer, offer.id)


def test_an_invitation_by_email_is_answered_by_the_account_made_with_it(db: Database) -> None:
    world = World(db, Settings(providers="sandbox,manual", smtp_host="127.0.0.1"))
    client = world.user("Cleo")
    project = _open_project(world, client)
    offer = world.act(client, offers.offer_project, project.id, email="New.Person@Example.com")
    assert (offer.freelancer_id, offer.email) == (None, "new.person@example.com")
    invitation = [mail for mail in emails(world.db) if mail.to_address == "new.person@example.com"]
    assert len(invitation) == 1
    assert "Sign up with this e-mail address" in invitation[0].text_body

    with world.db.unit_of_work() as session:  # signs up later, with the invited address
        newcomer = create_user(
            session, email="new.person@example.com", name="New person", password=PASSWORD
        )
    assert [o.id for o in world.act(newcomer, offers.offers_for_me)] == [offer.id]
    someone = world.user("Someone")
    with pytest.raises(NotFound):
        world.act(someone, offers.accept_offer, offer.id)
    awarded = world.act(newcomer, offers.accept_offer, offer.id)
    assert awarded.freelancer_id == newcomer.id
    assert world.act(client, offers.get_offer, offer.id).freelancer_id == newcomer.id


def test_declined_and_withdrawn_offers_leave_the_project_open(world: World) -> None:
    client, fred, gina = world.user("Cleo"), world.user("Fred"), world.user("Gina")
    project = _open_project(world, client)
    first = world.act(client, offers.offer_project, project.id, freelancer_id=fred.id)
    with pytest.raises(InvalidState) as pending:
        world.act(client, offers.offer_project, project.id, freelancer_id=gina.id)
    assert pending.value.code == "offer_pending"
    with pytest.raises(PermissionDenied):
        world.act(client, offers.accept_offer, first.id)
    with pytest.raises(PermissionDenied):
        world.act(fred, offers.withdraw_offer, first.id)
    world.act(fred, offers.decline_offer, first.id)
    assert kinds(world.db, client)[-1] == "project_offer_declined"

    second = world.act(client, offers.offer_project, project.id, freelancer_id=gina.id)
    world.act(client, offers.withdraw_offer, second.id)
    with pytest.raises(InvalidState):
        world.act(gina, offers.accept_offer, second.id)
    statuses = [o.status for o in world.act(client, offers.list_offers, project.id)]
    assert statuses == [OfferStatus.DECLINED, OfferStatus.WITHDRAWN]
    assert world.act(client, projects.get_project, project.id).freelancer_id is None


def test_refusals(world: World) -> None:
    client, fred = world.user("Cleo"), world.user("Fred")
    project = _open_project(world, client)
    neither: dict[str, Any] = {}
    both: dict[str, Any] = {"freelancer_id": fred.id, "email": "x@example.com"}
    for bad in (neither, both):
        with pytest.raises(ValidationFailed):
            world.act(client, offers.offer_project, project.id, **bad)
    with pytest.raises(ValidationFailed) as unknown:
        world.act(client, offers.offer_project, project.id, freelancer_id="usr_nobody")
    assert unknown.value.code == "unknown_user"
    with pytest.raises(ValidationFailed):
        world.act(client, offers.offer_project, project.id, email=client.email)
    with pytest.raises(PermissionDenied):
        world.act(fred, offers.offer_project, project.id, freelancer_id=fred.id)
    awarded_client, _freelancer, awarded = world.parties()
    with pytest.raises(InvalidState) as taken:
        world.act(awarded_client, offers.offer_project, awarded.id, freelancer_id=fred.id)
    assert taken.value.code == "already_awarded"
