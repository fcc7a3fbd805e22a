"""Projects, proposals and bonuses: posting, who sees what, proposing, awarding, paying a bonus."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest

from milepost.kit.errors import (
    InsufficientFunds,
    InvalidState,
    NotFound,
    PermissionDenied,
    ValidationFailed,
)
from milepost.milestones import service as milestones
from milepost.milestones.state import MilestoneStatus as S
from milepost.projects import service as projects
from milepost.projects.models import ProjectStatus, ProposalStatus
from tests.world import World


def plan(*amounts: object) -> list[dict[str, Any]]:
    return [{"title": f"Part {n}", "amount": amount} for n, amount in enumerate(amounts, 1)]


# Posting a project -------------------------------------------------------------------------------------


def test_a_project_is_open_until_it_names_a_freelancer_and_input_is_validated(world: World) -> None:
    client, freelancer = world.user("client"), world.user("freelancer")
    open_project = world.act(
        client,
        projects.create_project,
        title="  Shop  ",
        currency="JPY",
        billing_contact_email="Billing@Example.COM",
    )
    assert (open_project.status, open_project.freelancer_id) == (ProjectStatus.OPEN, None)
    assert (open_project.title, open_project.currency, open_project.client_id) == (
        "Shop",
        "JPY",
        client.id,
    )
    assert open_project.billing_contact_email == "billing@example.com"

    awarded = world.project(client, freelancer, "KWD")
    assert (awarded.status, awarded.freelancer_id) == (ProjectStatus.AWARDED, freelancer.id)

    before = world.snapshot()
    refusals: list[tuple[dict[str, Any], str, str]] = [
        ({"currency": "usd"}, "currency", "invalid_currency"),
        ({"currency": "XYZ"}, "currency", "invalid_currency"),
        ({"currency": 840.0}, "currency", "invalid_currency"),
        ({"currency": None}, "currency", "invalid_currency"),
        ({"billing_contact_email": "billing"}, "billing_contact_email", "invalid_value"),
        ({"billing_contact_email": "a@b"}, "billing_contact_email", "invalid_value"),
        ({"freelancer_id": client.id}, "freelancer_id", "invalid_value"),
        ({"freelancer_id": "usr_nobody"}, "freelancer_id", "unknown_user"),
        ({"title": "  "}, "title", "missing"),
    ]
    for fields, param, code in refusals:
        values = {"title": "Website", "currency": "USD", **fields}
        with pytest.raises(ValidationFailed) as refused:
            world.act(client, projects.create_project, **values)
        assert (refused.value.status, refused.value.param, refused.value.code) == (
            422,
            param,
            code,
        ), fields
        assert world.snapshot() == before, fields


def test_an_open_project_is_public_an_awarded_one_only_to_its_parties(world: World) -> None:
    client, freelancer, outsider = world.user("client"), world.user("freelancer"), world.user()
    staff = world.user("staff", staff=True)
    project = world.act(client, projects.create_project, title="Open", currency="USD")
    assert world.act(outsider, projects.get_project, project.id).id == project.id

    proposal = world.act(
        freelancer, projects.create_proposal, project.id, amount=500, milestones=plan(500)
    )
    world.act(client, projects.accept_proposal, proposal.id)
    for party in (client, freelancer, staff):
        assert world.act(party, projects.get_project, project.id).id == project.id
    with pytest.raises(NotFound) as hidden:
        world.act(outsider, projects.get_project, project.id)
    assert hidden.value.status == 404
    assert [p.id for p in world.act(outsider, projects.list_projects).data] == []
    assert [p.id for p in world.act(freelancer, projects.list_projects).data] == [project.id]


# Proposals ---------------------------------------------------------------------------------------------


def test_a_proposal_has_one_to_ten_milestones_that_add_up_exactly(world: World) -> None:
    client, freelancer = world.user("client"), world.user("freelancer")
    project = world.act(client, projects.create_project, title="Open", currency="USD")
    before = world.snapshot()
    refusals: list[tuple[int, Any, str]] = [
        (1_000, [], "missing"),
        (1_100, plan(*[100] * 11), "too_many_milestones"),
        (1_000, plan(600, 399), "milestones_do_not_add_up"),
        (1_000, plan(600, 401), "milestones_do_not_add_up"),
        (1_000, plan(1_000.0), "invalid_amount"),
        (1_000, plan(1_000, 0), "invalid_amount"),
    ]
    for amount, items, code in refusals:
        with pytest.raises(ValidationFailed) as refused:
            world.act(
                freelancer, projects.create_proposal, project.id, amount=amount, milestones=items
            )
        assert refused.value.code == code, items
        assert world.snapshot() == before, items

    one = world.act(
        freelancer, projects.create_proposal, project.id, amount=1_000, milestones=plan(1_000)
    )
    ten = world.act(
        freelancer, projects.create_proposal, project.id, amount=1_000, milestones=plan(*[100] * 10)
    )
    assert (one.status, len(one.milestones), len(ten.milestones)) == (ProposalStatus.PENDING, 1, 10)


def test_who_may_propose(world: World) -> None:
    client, freelancer, late = world.user("client"), world.user("freelancer"), world.user("late")
    project = world.act(client, projects.create_project, title="Open", currency="USD")
    before = world.snapshot()
    with pytest.raises(PermissionDenied) as refused:
        world.act(client, projects.create_proposal, project.id, amount=500, milestones=plan(500))
    assert (refused.value.status, refused.value.code) == (403, "client_cannot_propose")
    assert world.snapshot() == before

    proposal = world.act(
        freelancer, projects.create_proposal, project.id, amount=500, milestones=plan(500)
    )
    world.act(client, projects.accept_proposal, proposal.id)
    before = world.snapshot()
    # Once awarded the project takes no more proposals, not even from its freelancer...
    with pytest.raises(InvalidState):
        world.act(
            freelancer, projects.create_proposal, project.id, amount=500, milestones=plan(500)
        )
    # ...and to anyone else it no longer exists.
    with pytest.raises(NotFound):
        world.act(late, projects.create_proposal, project.id, amount=500, milestones=plan(500))
    assert world.snapshot() == before


def test_a_newer_proposal_replaces_the_older_and_a_freelancer_may_withdraw_one(
    world: World,
) -> None:
    client, freelancer, rival = world.user("client"), world.user("freelancer"), world.user("rival")
    project = world.act(client, projects.create_project, title="Open", currency="USD")
    first = world.act(
        freelancer, projects.create_proposal, project.id, amount=500, milestones=plan(500)
    )
    theirs = world.act(
        rival, projects.create_proposal, project.id, amount=450, milestones=plan(450)
    )
    second = world.act(
        freelancer, projects.create_proposal, project.id, amount=400, milestones=plan(400)
    )
    statuses = {p.id: p.status for p in world.act(client, projects.list_proposals, project.id).data}
    assert statuses == {
        first.id: ProposalStatus.WITHDRAWN,  # replaced by the newer one
        theirs.id: ProposalStatus.PENDING,  # another freelancer's stays
        second.id: ProposalStatus.PENDING,
    }
    # A replaced proposal can no longer be accepted.
    before = world.snapshot()
    with pytest.raises(InvalidState):
        world.act(client, projects.accept_proposal, first.id)
    # Only its freelancer withdraws a proposal: the client is refused, an outsider finds none.
    with pytest.raises(PermissionDenied) as refused:
        world.act(client, projects.withdraw_proposal, second.id)
    assert refused.value.code == "only_author_can_withdraw"
    with pytest.raises(NotFound):
        world.act(world.user("outsider"), projects.withdraw_proposal, second.id)
    assert world.snapshot() == before

    withdrawn = world.act(freelancer, projects.withdraw_proposal, second.id)
    assert withdrawn.status is ProposalStatus.WITHDRAWN
    with pytest.raises(InvalidState):
        world.act(freelancer, projects.withdraw_proposal, second.id)
    world.act(client, projects.accept_proposal, theirs.id)
    # Accepted proposals are past withdrawing too.
    with pytest.raises(InvalidState):
        world.act(rival, projects.withdraw_proposal, theirs.id)


def test_accepting_a_proposal_awards_the_project_and_creates_its_milestones(
    world: World,
) -> None:
    client, ana, ben = world.user("client"), world.user("ana"), world.user("ben")
    project = world.act(client, projects.create_project, title="CRM", currency="USD")
    terms = [
        {
            "title": "Design",
            "amount": 300_000,
            "due_date": "2031-03-01",
            "acceptance_criteria": ["Mock-ups approved", "Style guide"],
        },
        {"title": "Build", "amount": 600_000, "due_date": "2031-05-01"},
        {"title": "Launch", "amount": 100_000, "acceptance_criteria": ["Live"]},
    ]
    chosen = world.act(
        ana, projects.create_proposal, project.id, amount=1_000_000, milestones=terms
    )
    declined = world.act(
        ben, projects.create_proposal, project.id, amount=900, milestones=plan(900)
    )

    def seen_by(user: Any) -> set[str]:
        return {p.id for p in world.act(user, projects.list_proposals, project.id).data}

    # The client sees every proposal, a freelancer only their own.
    assert seen_by(client) == {chosen.id, declined.id}
    assert (seen_by(ana), seen_by(ben)) == ({chosen.id}, {declined.id})

    before = world.snapshot()
    # Only the client accepts: the proposer is told so, anyone else is told nothing.
    with pytest.raises(PermissionDenied) as refused:
        world.act(ana, projects.accept_proposal, chosen.id)
    assert (refused.value.status, refused.value.code) == (403, "only_client_can_accept")
    with pytest.raises(NotFound):
        world.act(ben, projects.accept_proposal, chosen.id)
    assert world.snapshot() == before

    awarded = world.act(client, projects.accept_proposal, chosen.id)
    assert (awarded.status, awarded.freelancer_id) == (ProjectStatus.AWARDED, ana.id)
    statuses = world.snapshot()["proposals"]
    assert (statuses[chosen.id], statuses[declined.id]) == (
        ProposalStatus.ACCEPTED,
        ProposalStatus.DECLINED,
    )
    created = sorted(
        world.act(client, milestones.list_milestones, project_id=project.id).data,
        key=lambda m: m.position,
    )
    assert [
        (m.title, m.amount, m.due_date, m.acceptance_criteria, m.status, m.currency)
        for m in created
    ] == [
        ("Design", 300_000, date(2031, 3, 1), ["Mock-ups approved", "Style guide"], S.DRAFT, "USD"),
        ("Build", 600_000, date(2031, 5, 1), [], S.DRAFT, "USD"),
        ("Launch", 100_000, None, ["Live"], S.DRAFT, "USD"),
    ]
    # The freelancer sees the milestones as theirs.
    incoming = world.act(ana, milestones.list_milestones, role="freelancer").data
    assert {m.id for m in incoming} == {m.id for m in created}

    after = world.snapshot()
    for proposal in (chosen, declined):
        with pytest.raises(InvalidState):
            world.act(client, projects.accept_proposal, proposal.id)
        assert world.snapshot() == after


def test_milestones_funded_before_the_award_go_to_the_awarded_freelancer(world: World) -> None:
    client, freelancer = world.user("client"), world.user("freelancer")
    world.deposit(client, 500_000)
    project = world.act(client, projects.create_project, title="Early", currency="USD")
    early = world.milestone(client, project, 200_000)
    world.act(client, milestones.fund, early.id)
    assert world.balance(client) == 300_000

    # Before the award the freelancer is not a party to the milestone.
    before = world.snapshot()
    with pytest.raises(NotFound):
        world.act(freelancer, milestones.submit, early.id, note="Done")
    assert world.snapshot() == before

    proposal = world.act(
        freelancer, projects.create_proposal, project.id, amount=100_000, milestones=plan(100_000)
    )
    world.act(client, projects.accept_proposal, proposal.id)
    page = world.act(freelancer, milestones.list_milestones, project_id=project.id).data
    assert sorted((m.position, m.amount, m.status) for m in page) == [
        (1, 200_000, S.FUNDED),
        (2, 100_000, S.DRAFT),
    ]

    world.act(freelancer, milestones.submit, early.id, note="Done")
    world.act(client, milestones.approve, early.id)
    assert world.get(early.id).status is S.RELEASED
    assert world.balance(freelancer) == 180_000
    assert world.account_balance("platform_fee:USD") == 20_000


# Bonuses -----------------------------------------------------------------------------------------------


def test_the_client_pays_a_bonus_from_the_wallet_less_the_fee(world: World) -> None:
    client, freelancer, project = world.parties(wallet=100_000)
    bonus = world.act(client, projects.create_bonus, project.id, amount=12_345, note="Thanks")
    # 10% of 12,345 is 1,234.5, rounded half up.
    assert (bonus.amount, bonus.fee_amount, bonus.freelancer_id) == (12_345, 1_235, freelancer.id)
    assert world.balance(client) == 100_000 - 12_345
    assert world.balance(freelancer) == 11_110
    assert world.account_balance("platform_fee:USD") == 1_235

    # The whole rest of the wallet may go, but not a cent more.
    before = world.snapshot()
    with pytest.raises(InsufficientFunds) as refused:
        world.act(client, projects.create_bonus, project.id, amount=87_656)
    assert refused.value.status == 402
    assert world.snapshot() == before
    world.act(client, projects.create_bonus, project.id, amount=87_655)
    assert world.balance(client) == 0


def test_bonus_refusals(world: World) -> None:
    client, freelancer, project = world.parties(wallet=100_000)
    outsider = world.user("outsider")
    unawarded = world.act(client, projects.create_project, title="Open", currency="USD")
    before = world.snapshot()

    with pytest.raises(PermissionDenied) as refused:
        world.act(freelancer, projects.create_bonus, project.id, amount=1_000)
    assert refused.value.code == "only_client_can_pay_bonus"
    with pytest.raises(NotFound):
        world.act(outsider, projects.create_bonus, project.id, amount=1_000)
    with pytest.raises(InvalidState) as not_awarded:
        world.act(client, projects.create_bonus, unawarded.id, amount=1_000)
    assert not_awarded.value.code == "no_freelancer"
    for bad in (0, -1, 10.0, "10"):
        with pytest.raises(ValidationFailed):
            world.act(client, projects.create_bonus, project.id, amount=bad)
    assert world.snapshot() == before
    assert (world.balance(client), world.balance(freelancer)) == (100_000, 0)
