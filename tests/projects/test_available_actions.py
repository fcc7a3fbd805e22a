"""The project page offers a form exactly when the service would accept its action: for every state a
project and its proposals can be in and every viewer (client, freelancer, staff, outsider), what the page
read model offers is compared with what the service does when the action is tried (in a unit of work that
is rolled back)."""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date

import pytest

from milepost.kit.context import Context
from milepost.kit.errors import NotFound
from milepost.milestones import service as milestones
from milepost.projects import milestone_requests, offers
from milepost.projects import service as projects
from milepost.projects.models import Project, Proposal
from milepost.projects.state import ProjectAction
from milepost.users.models import User
from milepost.web.views import project as views
from milepost.web.views.project import Form
from tests.world import World

LONG_AGO = date(2020, 1, 1)


def plan(amount: int) -> list[dict[str, object]]:
    return [{"title": "All of it", "amount": amount}]


@dataclass
class Scene:
    project: Project
    proposals: list[Proposal]
    people: dict[str, User]  # by role: client, freelancer, staff, outsider


def _open(world: World) -> Scene:
    client, freelancer = world.user("client"), world.user("freelancer")
    world.deposit(client, 1_000_000)
    project = world.project(client)
    proposal = world.act(
        freelancer, projects.create_proposal, project.id, amount=900, milestones=plan(900)
    )
    return Scene(
        project,
        [proposal],
        {
            "client": client,
            "freelancer": freelancer,
            "staff": world.user("staff", staff=True),
            "outsider": world.user("outsider"),
        },
    )


def _awarded(world: World) -> Scene:
    """Awarded by accepting one of two proposals (the other is declined); nothing is overdue."""
    scene = _open(world)
    rival = world.act(
        world.user("rival"),
        projects.create_proposal,
        scene.project.id,
        amount=500,
        milestones=plan(500),
    )
    world.act(scene.people["client"], projects.accept_proposal, scene.proposals[0].id)
    scene.proposals.append(rival)
    return scene


def _overdue(world: World) -> Scene:
    scene = _awarded(world)
    world.milestone(scene.people["client"], scene.project, 1_000, fund_by=LONG_AGO)
    return scene


def _paused(world: World) -> Scene:
    scene = _overdue(world)
    world.act(scene.people["freelancer"], projects.pause_project, scene.project.id)
    return scene


def _paused_then_paid(world: World) -> Scene:
    """Paused while a payment was overdue; the client has paid since: resuming is open, pausing is not."""
    scene = _paused(world)
    for page_milestone in world.act(
        scene.people["client"], views.project_page, scene.project.id
    ).milestones:
        if page_milestone.fund_by == LONG_AGO:
            world.act(scene.people["client"], milestones.fund, page_milestone.id)
    return scene


SCENES: dict[str, Callable[[World], Scene]] = {
    "open": _open,
    "awarded": _awarded,
    "overdue": _overdue,
    "paused": _paused,
    "paused_then_paid": _paused_then_paid,
}


def _accept(ctx: Context, *, proposal_id: str) -> object:
    return projects.accept_proposal(ctx, proposal_id)


def _tries(scene: Scene) -> dict[str, list[Callable[[Context], object]]]:
    """Each form's action as the service takes it, with good input; a form counts as accepted when one of
    its tries is (accepting: any of the project's proposals)."""
    project_id = scene.project.id
    return {
        Form.PROPOSE: [
            lambda ctx: projects.create_proposal(ctx, project_id, amount=700, milestones=plan(700))
        ],
        Form.ACCEPT: [
            functools.partial(_accept, proposal_id=proposal.id) for proposal in scene.proposals
        ],
        Form.PAUSE: [lambda ctx: projects.pause_project(ctx, project_id)],
        Form.RESUME: [lambda ctx: projects.resume_project(ctx, project_id)],
        Form.MILESTONE: [
            lambda ctx: milestones.create_milestone(
                ctx, project_id, title="More", amount=300, acceptance_criteria=["Done"]
            )
        ],
        Form.BONUS: [lambda ctx: projects.create_bonus(ctx, project_id, amount=100)],
        Form.OFFER: [lambda ctx: offers.offer_project(ctx, project_id, email="new@example.com")],
        Form.REQUEST: [
            lambda ctx: milestone_requests.request_milestone(
                ctx, project_id, title="More", amount=300, acceptance_criteria=["Done"]
            )
        ],
    }


def _offered(world: World, user: User, project_id: str) -> views.ProjectPage | None:
    try:
        return world.act(user, views.project_page, project_id)
    except NotFound:
        return None  # the page does not exist for this viewer: nothing is offered


@pytest.mark.parametrize("state", SCENES)
def test_the_project_page_offers_exactly_what_the_service_accepts(world: World, state: str) -> None:
    scene = SCENES[state](world)
    for role, user in scene.people.items():
        page = _offered(world, user, scene.project.id)
        offered = set() if page is None else set(page.forms)
        accepted = {
            form
            for form, tries in _tries(scene).items()
            if any(world.attempt(user, attempt) is None for attempt in tries)
        }
        assert offered == accepted, (state, role)


@pytest.mark.parametrize("state", ["open", "awarded"])
def test_each_proposal_offers_accept_exactly_when_the_service_accepts_it(
    world: World, state: str
) -> None:
    scene = SCENES[state](world)
    for role, user in scene.people.items():
        page = _offered(world, user, scene.project.id)
        cards = {} if page is None else {card.proposal.id: card for card in page.proposals}
        for proposal in scene.proposals:
            offered = proposal.id in cards and Form.ACCEPT in cards[proposal.id].forms
            accepted = world.attempt(user, projects.accept_proposal, proposal.id) is None
            assert offered == accepted, (state, role, proposal.status)


def test_pause_is_offered_exactly_while_a_payment_is_overdue(world: World) -> None:
    """The drift this guards against: the page offered Pause with nothing overdue, and the service said
    409 nothing_overdue."""
    scene = _awarded(world)
    client, freelancer = scene.people["client"], scene.people["freelancer"]
    assert Form.PAUSE not in world.act(freelancer, views.project_page, scene.project.id).forms
    refusal = world.attempt(freelancer, projects.pause_project, scene.project.id)
    assert refusal is not None and (refusal.status, refusal.code) == (409, "nothing_overdue")

    world.milestone(client, scene.project, 1_000, fund_by=LONG_AGO)
    assert world.act(freelancer, views.project_page, scene.project.id).forms == {
        Form.PAUSE,
        Form.REQUEST,
    }
    world.act(freelancer, projects.pause_project, scene.project.id)
    assert world.act(freelancer, views.project_page, scene.project.id).forms == {
        Form.RESUME,
        Form.REQUEST,
    }
    assert world.act(client, views.project_page, scene.project.id).forms == {
        Form.MILESTONE,
        Form.BONUS,
    }


def test_available_actions_name_the_project_actions(world: World) -> None:
    scene = _overdue(world)

    def actions(ctx: Context) -> frozenset[ProjectAction]:
        return projects.available_actions(ctx, projects.get_project(ctx, scene.project.id))

    assert world.act(scene.people["freelancer"], actions) == {ProjectAction.PAUSE}
    assert world.act(scene.people["client"], actions) == {
        ProjectAction.CREATE_MILESTONE,
        ProjectAction.ADD_BONUS,
    }
    assert world.act(scene.people["staff"], actions) == frozenset()


def test_each_offer_and_request_offers_exactly_what_the_service_accepts(world: World) -> None:
    """The answers to an offer and to a milestone request, per viewer, against the services."""
    client, freelancer, other = world.user("client"), world.user("freelancer"), world.user("other")
    staff = world.user("staff", staff=True)
    open_project = world.project(client)
    offer = world.act(client, offers.offer_project, open_project.id, freelancer_id=freelancer.id)
    awarded = world.project(client, freelancer)
    request = world.act(
        freelancer,
        milestone_requests.request_milestone,
        awarded.id,
        title="More",
        amount=300,
        acceptance_criteria=["Done"],
    )
    offer_tries = {
        views.Form.OFFER_ACCEPT: offers.accept_offer,
        views.Form.OFFER_DECLINE: offers.decline_offer,
        views.Form.OFFER_WITHDRAW: offers.withdraw_offer,
    }
    request_tries = {
        views.Form.REQUEST_ACCEPT: milestone_requests.accept_request,
        views.Form.REQUEST_REJECT: milestone_requests.reject_request,
        views.Form.REQUEST_WITHDRAW: milestone_requests.withdraw_request,
    }
    for user in (client, freelancer, other, staff):
        page = _offered(world, user, open_project.id)
        cards = [] if page is None else page.offers
        shown = {form for card in cards if card.offer.id == offer.id for form in card.forms}
        accepted = {
            form for form, act in offer_tries.items() if world.attempt(user, act, offer.id) is None
        }
        assert shown == accepted, ("offer", user.name)
        page = _offered(world, user, awarded.id)
        cards_r = [] if page is None else page.requests
        shown = {form for card in cards_r if card.request.id == request.id for form in card.forms}
        accepted = {
            form
            for form, act in request_tries.items()
            if world.attempt(user, act, request.id) is None
        }
        assert shown == accepted, ("request", user.name)
