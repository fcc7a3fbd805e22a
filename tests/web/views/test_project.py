"""The project pages' read models and form input: who is shown what and offered which form, and typed
text turned into service calls (the services stay the authority)."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest

from milepost.kit.errors import NotFound, PermissionDenied, ValidationFailed
from milepost.milestones import service as milestones
from milepost.milestones.state import MilestoneStatus as S
from milepost.milestones.state import Role
from milepost.projects import service as projects
from milepost.web.forms import project as forms
from milepost.web.forms.project import ProposedRow, TermsForm
from milepost.web.views import project as views
from milepost.web.views.project import Form
from tests.world import World


def plan(*amounts: int) -> list[dict[str, Any]]:
    return [{"title": f"Part {n}", "amount": amount} for n, amount in enumerate(amounts, 1)]


def test_the_projects_list_shows_the_viewers_projects_and_others_open_ones(world: World) -> None:
    client, freelancer, other = world.user("client"), world.user("freelancer"), world.user()
    open_project = world.act(client, projects.create_project, title="Open", currency="USD")
    awarded = world.project(client, freelancer)
    elsewhere = world.project(other, world.user())  # awarded to someone else: nobody else sees it

    mine = world.act(client, views.projects_page)
    assert [p.id for p in mine.as_client] == [awarded.id, open_project.id]  # newest first
    assert (mine.as_freelancer, mine.open_for_proposals) == ([], [])

    theirs = world.act(freelancer, views.projects_page)
    assert [p.id for p in theirs.as_freelancer] == [awarded.id]
    assert [p.id for p in theirs.open_for_proposals] == [open_project.id]
    assert elsewhere.id not in {p.id for p in theirs.open_for_proposals}


def test_the_project_page_offers_each_viewer_only_their_forms(world: World) -> None:
    client, freelancer, rival, outsider = (
        world.user("client"),
        world.user("freelancer"),
        world.user("rival"),
        world.user(),
    )
    project = world.act(client, projects.create_project, title="Shop", currency="JPY")
    mine = world.act(
        freelancer,
        projects.create_proposal,
        project.id,
        amount=1500,
        milestones=[
            {"title": "Design", "amount": 500, "due_date": "2026-12-01"},
            {"title": "Build", "amount": 1000, "acceptance_criteria": ["Checkout works"]},
        ],
        cover_letter="Fast.",
    )
    world.act(rival, projects.create_proposal, project.id, amount=900, milestones=plan(900))

    as_client = world.act(client, views.project_page, project.id)
    assert as_client.role is Role.CLIENT and as_client.exponent == 0
    assert as_client.forms == {Form.MILESTONE, Form.ACCEPT, Form.OFFER}
    assert [card.freelancer.id for card in as_client.proposals] == [freelancer.id, rival.id]
    assert as_client.proposals[0].milestones == [
        views.ProposedMilestone("Design", 500, date(2026, 12, 1), [], net=450),
        views.ProposedMilestone("Build", 1000, None, ["Checkout works"], net=900),
    ]
    assert as_client.proposals[0].net == 1350  # ¥1,500 less the 10% fee, milestone by milestone

    # Someone who is not a party sees an open project, may propose, and sees only their own proposal.
    as_freelancer = world.act(freelancer, views.project_page, project.id)
    assert (as_freelancer.role, as_freelancer.forms, as_freelancer.is_party) == (
        None,
        frozenset({Form.PROPOSE}),
        False,
    )
    assert [card.proposal.id for card in as_freelancer.proposals] == [mine.id]

    world.act(client, projects.accept_proposal, mine.id)
    world.milestone(client, world.act(client, projects.get_project, project.id), 300)
    awarded = world.act(client, views.project_page, project.id)
    assert awarded.forms == {Form.MILESTONE, Form.BONUS}
    assert [(m.position, m.title, m.status) for m in awarded.milestones] == [
        (1, "Design", S.DRAFT),
        (2, "Build", S.DRAFT),
        (3, "Milestone", S.DRAFT),
    ]
    assert awarded.editable_milestone_ids == {m.id for m in awarded.milestones}
    assert (awarded.totals.planned, awarded.totals.in_escrow, awarded.totals.released) == (
        1800,
        0,
        0,
    )
    # The accepted proposal stays listed before the declined one; both are decided.
    assert [card.proposal.status for card in awarded.proposals] == ["accepted", "declined"]

    # Nothing is overdue: the freelancer may not pause (it would be refused); they may ask for a
    # new milestone.
    as_awarded_freelancer = world.act(freelancer, views.project_page, project.id)
    assert as_awarded_freelancer.forms == {Form.REQUEST}
    assert as_awarded_freelancer.editable_milestone_ids == frozenset()
    with pytest.raises(NotFound):
        world.act(outsider, views.project_page, project.id)


def test_totals_leave_out_cancelled_milestones_and_count_escrow(world: World) -> None:
    client, _, project = world.parties()
    funded = world.milestone(client, project, 40_000)
    world.act(client, milestones.fund, funded.id)
    cancelled = world.milestone(client, project, 7_000)
    world.act(client, milestones.cancel, cancelled.id)
    world.milestone(client, project, 3_000)
    page = world.act(client, views.project_page, project.id)
    assert (page.totals.planned, page.totals.in_escrow, page.totals.released) == (43_000, 40_000, 0)
    # Only drafts are editable.
    assert len(page.editable_milestone_ids) == 1


def test_totals_follow_edits_releases_and_refunds(world: World) -> None:
    """The figures are kept as milestones change (not summed on each view): a draft's new amount, a
    partial release, a full release and a funded milestone cancelled with its escrow refunded."""
    client, freelancer, project = world.parties()
    edited = world.milestone(client, project, 10_000)
    world.act(client, milestones.update_terms, edited.id, amount=12_500)
    partly = world.milestone(client, project, 40_000)
    world.act(client, milestones.fund, partly.id)
    world.act(client, milestones.release, partly.id, amount=15_000)
    whole = world.milestone(client, project, 20_000)
    world.act(client, milestones.fund, whole.id)
    world.act(client, milestones.release, whole.id)
    refunded = world.milestone(client, project, 8_000)
    world.act(client, milestones.fund, refunded.id)
    world.act(freelancer, milestones.cancel, refunded.id, reason="Cannot do it")

    page = world.act(client, views.project_page, project.id)
    assert (page.totals.planned, page.totals.in_escrow, page.totals.released) == (
        12_500 + 40_000 + 20_000,
        40_000 - 15_000,
        15_000 + 20_000,
    )
    assert world.verify().ok


def test_the_milestones_come_a_page_at_a_time_under_totals_of_them_all(world: World) -> None:
    client, freelancer, project = world.parties()
    made = [world.milestone(client, project, 1_000 * n, title=f"Part {n}") for n in range(1, 8)]
    world.act(client, milestones.fund, made[0].id)  # 1_000, then released in full
    world.act(freelancer, milestones.submit, made[0].id, note="Done")
    world.act(client, milestones.approve, made[0].id)
    world.act(client, milestones.fund, made[1].id)  # 2_000, of which 500 released
    world.act(client, milestones.release, made[1].id, amount=500)
    world.act(client, milestones.fund, made[2].id)  # 3_000 in escrow
    world.act(client, milestones.cancel, made[3].id)  # 4_000, never funded: not planned

    pages, after = [], None
    while True:
        page = world.act(client, views.project_page, project.id, after=after, limit=3)
        pages.append(page)
        if page.next_after is None:
            break
        after = page.next_after
    assert [[m.position for m in page.milestones] for page in pages] == [[1, 2, 3], [4, 5, 6], [7]]
    assert [page.after for page in pages] == [None, 3, 6]
    # The figures under the table are the project's, the same on every page: 1+2+3+5+6+7 thousand
    # planned (the cancelled one left out), 1_500 of the 2_000 and the 3_000 in escrow, 1_500 released.
    for page in pages:
        assert (page.totals.planned, page.totals.in_escrow, page.totals.released) == (
            24_000,
            4_500,
            1_500,
        )
    # Each page offers to edit its own drafts, and only those.
    drafts = {m.id for m in made[4:]}
    assert set().union(*(page.editable_milestone_ids for page in pages)) == drafts
    assert pages[0].editable_milestone_ids == frozenset()
    # Past the last one: no milestones, no next page, the totals all the same.
    beyond = world.act(client, views.project_page, project.id, after=7, limit=3)
    assert (beyond.milestones, beyond.next_after, beyond.totals) == ([], None, pages[0].totals)


def test_a_paused_project_offers_its_freelancer_resume(world: World) -> None:
    client, freelancer, project = world.parties()
    world.milestone(client, project, 1_000, fund_by=date(2020, 1, 1))  # long overdue
    world.act(freelancer, projects.pause_project, project.id)
    assert world.act(freelancer, views.project_page, project.id).forms == {
        Form.RESUME,
        Form.REQUEST,
    }
    assert world.act(client, views.project_page, project.id).project.paused


def test_a_proposal_from_the_form_skips_blank_rows_and_names_the_form_row(world: World) -> None:
    client, freelancer = world.user("client"), world.user("freelancer")
    project = world.act(client, projects.create_project, title="Open", currency="USD")
    rows = [ProposedRow()] * 10
    rows[0] = ProposedRow("Design", "1,000.50", "2026-12-01", "Mock-ups\n\n  Style guide  ")
    rows[3] = ProposedRow("Build", "499.50", "", "")
    before = world.snapshot()

    # Refusals: a mismatch (the service's message), and a row's bad amount reported at its form row.
    for total, row, param, message in [
        (
            "1,600",
            rows[3],
            "milestones",
            "The milestones add up to $1,500.00, not to the proposal's amount of $1,600.00.",
        ),
        ("1,500", ProposedRow("Build", "4.995"), "milestones[3].amount", "at most 2 decimal"),
        ("1,500", ProposedRow("", "499.50"), "milestones[3].title", "milestones[3].title is"),
        ("", rows[3], "amount", "Write amounts like 1,234.50"),
    ]:
        typed = [*rows[:3], row, *rows[4:]]
        with pytest.raises(ValidationFailed) as refused:
            world.act(
                freelancer, forms.propose, project.id, amount=total, cover_letter="", rows=typed
            )
        assert refused.value.param == param
        assert message in refused.value.message
        assert world.snapshot() == before

    proposal = world.act(
        freelancer, forms.propose, project.id, amount="1500", cover_letter="Hi", rows=rows
    )
    assert proposal.amount == 150_000
    assert proposal.milestones == [
        {
            "title": "Design",
            "amount": 100_050,
            "due_date": "2026-12-01",
            "acceptance_criteria": ["Mock-ups", "Style guide"],
        },
        {"title": "Build", "amount": 49_950, "due_date": None, "acceptance_criteria": []},
    ]
    with pytest.raises(PermissionDenied):  # the service still decides who may propose
        world.act(client, forms.propose, project.id, amount="1", cover_letter="", rows=rows[:1])


def test_terms_from_the_form(world: World) -> None:
    client, freelancer, project = world.parties("KWD")
    milestone = world.milestone(
        client, project, 1_500, due_date="2026-12-24", exclusions=["Hosting"]
    )
    page = world.act(client, views.terms_page, milestone.id)
    assert page.refusal is None
    assert (page.form.amount, page.form.due_date, page.form.fund_by, page.form.exclusions) == (
        "1.500",
        "2026-12-24",
        "",
        "Hosting",
    )
    # The page's own text, sent back unchanged, changes nothing.
    world.act(client, forms.edit_terms, milestone.id, page.form)
    assert world.get(milestone.id).event_count == milestone.event_count

    form = TermsForm(
        **{
            **vars(page.form),
            "amount": "2.25",
            "due_date": "",
            "review_period_days": " 7 ",
            "required_evidence": "Screenshot\nLink to PR",
        }
    )
    world.act(client, forms.edit_terms, milestone.id, form)
    edited = world.get(milestone.id)
    assert (edited.amount, edited.due_date, edited.review_period_days) == (2_250, None, 7)
    assert edited.required_evidence == ["Screenshot", "Link to PR"]

    before = world.snapshot()
    for field, text, param in [
        ("review_period_days", "two", "review_period_days"),
        ("review_period_days", "91", "review_period_days"),
        ("amount", "1.0005", "amount"),
        ("fund_by", "24/12/2026", "fund_by"),
    ]:
        with pytest.raises(ValidationFailed) as refused:
            world.act(
                client, forms.edit_terms, milestone.id, TermsForm(**{**vars(form), field: text})
            )
        assert refused.value.param == param
        assert world.snapshot() == before

    freelancer_view = world.act(freelancer, views.terms_page, milestone.id)
    assert freelancer_view.refusal == "A freelancer may not edit a milestone."
    world.act(client, milestones.fund, milestone.id)
    assert world.act(client, views.terms_page, milestone.id).refusal == (
        "Cannot edit a milestone that is funded."
    )
    with pytest.raises(NotFound):
        world.act(world.user(), views.terms_page, milestone.id)


def test_a_bonus_and_a_milestone_from_the_form_are_in_the_projects_currency(world: World) -> None:
    client, freelancer, project = world.parties("JPY", wallet=10_000)
    world.act(client, forms.give_bonus, project.id, amount="1,000", note="Thanks")
    assert world.balance(freelancer, "JPY") == 900  # less the 10% fee
    with pytest.raises(ValidationFailed):
        world.act(client, forms.give_bonus, project.id, amount="1.5", note="")
    created = world.act(
        client,
        forms.add_milestone,
        project.id,
        TermsForm(
            title="Launch",
            amount="2,000",
            due_date="",
            fund_by="2026-12-01",
            acceptance_criteria="Live\nMonitored",
        ),
    )
    assert (created.amount, created.fund_by, created.acceptance_criteria) == (
        2_000,
        date(2026, 12, 1),
        ["Live", "Monitored"],
    )


def test_every_project_form_reads_amounts_with_the_one_parser(world: World) -> None:
    """The bonus, milestone, terms and proposal forms take "€15,000.00" and "15,000" alike, and refuse a
    decimal comma ("12,50"), another currency's symbol and a decimal too many; nothing is changed."""
    client, freelancer, project = world.parties("EUR", wallet=5_000_000)
    open_project = world.project(client, None, "EUR")
    draft = world.milestone(client, project, 100_000)
    before = world.snapshot()
    refusals: list[tuple[Any, ...]] = [
        (forms.give_bonus, project.id, {"amount": "12,50", "note": ""}),
        (forms.add_milestone, project.id, {"form": TermsForm(title="A", amount="0,99")}),
        (forms.edit_terms, draft.id, {"form": TermsForm(amount="1.234,56")}),
        (forms.give_bonus, project.id, {"amount": "$12.50", "note": ""}),
        (forms.give_bonus, project.id, {"amount": "12.505", "note": ""}),
    ]
    for action, target, typed in refusals:
        form = typed.pop("form", None)
        with pytest.raises(ValidationFailed) as refused:
            world.act(client, action, target, *([form] if form else []), **typed)
        assert "Write amounts like 1,234.50 (a point before the cents;" in refused.value.message
        assert refused.value.param == "amount"
    with pytest.raises(ValidationFailed) as refused:
        world.act(
            freelancer,
            forms.propose,
            open_project.id,
            amount="12,50",
            cover_letter="",
            rows=[ProposedRow("Design", "12,50")],
        )
    assert refused.value.message.startswith("Write amounts like 1,234.50")
    assert world.snapshot() == before

    world.act(client, forms.give_bonus, project.id, amount="€15,000.00", note="Thanks")
    assert world.balance(freelancer, "EUR") == 1_350_000  # less the 10% fee
    edited = world.act(client, forms.edit_terms, draft.id, TermsForm(amount="EUR 1,250.50"))
    assert edited.amount == 125_050
    proposal = world.act(
        freelancer,
        forms.propose,
        open_project.id,
        amount="15,000",
        cover_letter="",
        rows=[ProposedRow("Design", "€5,000"), ProposedRow("Build", "10000.00")],
    )
    assert (proposal.amount, [m["amount"] for m in proposal.milestones]) == (
        1_500_000,
        [500_000, 1_000_000],
    )
