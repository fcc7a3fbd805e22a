"""The seed cases (the product's worked examples), end to end through the service layer, on SQLite
and PostgreSQL."""

from __future__ import annotations

import pytest

from milepost.kit.errors import PermissionDenied, ValidationFailed
from milepost.milestones import service as milestones
from milepost.milestones.state import MilestoneStatus
from milepost.projects import service as projects
from tests.world import World

CRM = [
    ("Data migration", 1_000_000),
    ("Basic functionality", 1_500_000),
    ("Customizations and integrations", 1_200_000),
    ("Training", 500_000),
    ("Testing and QA", 800_000),
]


def test_crm_second_milestone_funded_submitted_approved_released(world: World) -> None:
    client, freelancer = world.user("dana"), world.user("priya")
    world.deposit(client, 5_000_000)
    project = world.act(client, projects.create_project, title="CRM", currency="USD")
    proposal = world.act(
        freelancer,
        projects.create_proposal,
        project.id,
        amount=5_000_000,
        milestones=[{"title": title, "amount": amount} for title, amount in CRM],
    )
    world.act(client, projects.accept_proposal, proposal.id)
    page = world.act(client, milestones.list_milestones, project_id=project.id)
    second = sorted(page.data, key=lambda m: m.position)[1]
    assert (second.title, second.amount, second.status) == (
        "Basic functionality",
        1_500_000,
        "draft",
    )

    world.act(client, milestones.fund, second.id)
    assert world.balance(client) == 3_500_000
    world.act(
        freelancer,
        milestones.submit,
        second.id,
        note="Live in staging",
        evidence=[{"type": "link", "url": "https://staging.example.com"}],
    )
    world.act(client, milestones.approve, second.id)

    done = world.get(second.id)
    assert done.status is MilestoneStatus.RELEASED
    # $15,000 less the 10% platform fee.
    assert world.balance(freelancer) == 1_350_000
    assert (done.released_amount, done.fee_amount, done.escrow_balance) == (1_500_000, 150_000, 0)
    assert world.account_balance("platform_fee:USD") == 150_000


def test_ten_thousand_contract_in_five_two_thousand_milestones(world: World) -> None:
    client, freelancer, project = world.parties(wallet=1_000_000)
    ids = [world.milestone(client, project, 200_000, title=f"Part {n}").id for n in range(1, 6)]
    for milestone_id in ids:
        world.act(client, milestones.fund, milestone_id)
        world.act(freelancer, milestones.submit, milestone_id, note="Delivered")
        world.act(client, milestones.approve, milestone_id)
    assert world.balance(client) == 0
    assert world.balance(freelancer) == 900_000
    assert all(world.get(i).status is MilestoneStatus.RELEASED for i in ids)


def test_proposal_of_eleven_milestones_is_refused(world: World) -> None:
    client, freelancer = world.user("client"), world.user("freelancer")
    project = world.act(client, projects.create_project, title="Big", currency="USD")
    before = world.snapshot()
    with pytest.raises(ValidationFailed) as refused:
        world.act(
            freelancer,
            projects.create_proposal,
            project.id,
            amount=1_100,
            milestones=[{"title": f"M{n}", "amount": 100} for n in range(11)],
        )
    assert (refused.value.code, refused.value.param) == ("too_many_milestones", "milestones")
    assert world.snapshot() == before


def test_client_cannot_cancel_funded_milestone_but_freelancer_cancel_refunds(world: World) -> None:
    client, freelancer, milestone = world.funded(300_000)
    before = world.snapshot()
    with pytest.raises(PermissionDenied) as refused:
        world.act(client, milestones.cancel, milestone.id)
    assert refused.value.code == "only_freelancer_can_cancel"
    assert refused.value.status == 403
    assert world.snapshot() == before

    client_before = world.balance(client)
    world.act(freelancer, milestones.cancel, milestone.id, reason="Cannot take this on")
    cancelled = world.get(milestone.id)
    assert cancelled.status is MilestoneStatus.CANCELLED
    assert cancelled.refunded_amount == 300_000
    assert world.balance(client) == client_before + 300_000
    assert world.balance(freelancer) == 0


def test_partial_release_then_the_rest(world: World) -> None:
    client, freelancer, milestone = world.submitted(1_000_000)
    world.act(client, milestones.release, milestone.id, amount=250_005)
    part = world.get(milestone.id)
    assert part.status is MilestoneStatus.SUBMITTED  # a partial release leaves the state as it was
    assert (part.released_amount, part.escrow_balance) == (250_005, 749_995)
    assert part.fee_amount == 25_001  # 10% of 250,005 = 25,000.5, rounded half up

    world.act(client, milestones.release, milestone.id)
    done = world.get(milestone.id)
    assert done.status is MilestoneStatus.RELEASED
    # The fee of the whole equals the fee of one full release: 10% of 1,000,000.
    assert done.fee_amount == 100_000
    assert world.balance(freelancer) == 900_000
