"""Offers and milestone requests in the browser: a client offers an open project by e-mail to someone
with no account, who signs up, finds the offer first on the dashboard and accepts it; the freelancer
then asks for a new milestone, which the client finds on the dashboard and accepts as a draft (or
rejects, saying why). Every form is the services' own: the page offers it when its guard passes."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from milepost.milestones.models import Milestone
from milepost.projects.models import MilestoneRequest, Project
from tests.web.conftest import PASSWORD, Shots, log_in
from tests.world import World


def sign_up_in_browser(page: Any, email: str, name: str) -> None:
    page.goto("/signup")
    page.get_by_label("Name").fill(name)
    page.get_by_label("E-mail").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign up").click()


def test_an_offer_by_email_is_accepted_by_a_new_freelancer_who_then_asks_for_a_milestone(
    new_page: Any, shot: Shots, world: World
) -> None:
    client = world.user("client")
    project = world.project(client)  # open: no freelancer yet
    owner = new_page()
    log_in(owner, client.email)
    owner.goto(f"/projects/{project.id}")
    offer = owner.locator("#offers")
    offer.get_by_label("Their e-mail address").fill("newbie@example.com")
    offer.get_by_label("Message (optional)").fill("Would you build our site?")
    offer.get_by_role("button", name="Send the offer").click()
    listed = owner.locator("#offers .offer")
    assert "newbie@example.com" in listed.inner_text() and "pending" in listed.inner_text()
    # One offer waits at a time: the form is gone until it is answered or withdrawn.
    assert owner.get_by_role("button", name="Send the offer").count() == 0
    shot(owner, "offer-sent")

    newbie = new_page(width=390)
    sign_up_in_browser(newbie, "newbie@example.com", "Nina")
    need = newbie.locator("#needs-you").get_by_role("link", name="Answer the offer of “Website”")
    assert need.is_visible(), newbie.locator("#needs-you").inner_text()
    need.click()
    assert "Would you build our site?" in newbie.locator("#offers").inner_text()
    newbie.get_by_role("button", name="Accept the offer").click()
    assert newbie.locator("#freelancer").inner_text() == "Nina"
    assert newbie.locator("#project-status").inner_text() == "awarded"
    with world.db.read_only() as session:
        awarded = session.get(Project, project.id)
        assert awarded is not None and awarded.freelancer_id is not None
    shot(newbie, "offer-accepted")

    # The freelancer asks for a new milestone; a refused form says why by its field, keeping what was typed.
    ask = newbie.locator("#milestone-requests")
    ask.get_by_label("Title").fill("Blog")
    ask.get_by_label("Amount (USD)").fill("twelve hundred")
    ask.get_by_label("Acceptance criteria, one per line").fill("Ten posts migrated")
    ask.get_by_role("button", name="Send the request").click()
    assert newbie.locator("#milestone-requests #amount-error").is_visible()
    assert newbie.locator("#milestone-requests").get_by_label("Title").input_value() == "Blog"
    newbie.locator("#milestone-requests").get_by_label("Amount (USD)").fill("1,200")
    newbie.locator("#milestone-requests").get_by_role("button", name="Send the request").click()
    assert "pending" in newbie.locator("#milestone-requests .milestone-request").inner_text()

    owner.goto("/")
    need = owner.locator("#needs-you").get_by_role(
        "link", name="Answer the milestone request “Blog”"
    )
    assert "$1,200.00" in owner.locator("#needs-you").inner_text()
    need.click()
    owner.locator("#milestone-requests").get_by_role("button", name="Accept as a draft").click()
    assert "Blog" in owner.locator("#milestone-table").inner_text()
    assert "$1,200.00" in owner.locator("#milestone-table").inner_text()
    with world.db.read_only() as session:
        [milestone] = session.scalars(
            select(Milestone).where(Milestone.project_id == project.id)
        ).all()
        assert (milestone.title, milestone.amount, milestone.status) == ("Blog", 120_000, "draft")
        assert milestone.acceptance_criteria == ["Ten posts migrated"]
    shot(owner, "request-accepted")


def test_a_client_rejects_a_milestone_request_saying_why_and_can_withdraw_an_offer(
    new_page: Any, world: World
) -> None:
    client, freelancer, project = world.parties(wallet=0)
    page = new_page()
    log_in(page, freelancer.email)
    page.goto(f"/projects/{project.id}")
    ask = page.locator("#milestone-requests")
    ask.get_by_label("Title").fill("Extra page")
    ask.get_by_label("Amount (USD)").fill("300")
    ask.get_by_role("button", name="Send the request").click()
    page.locator("#milestone-requests").get_by_role(
        "button", name="Withdraw the request"
    ).wait_for()

    owner = new_page()
    log_in(owner, client.email)
    owner.goto(f"/projects/{project.id}")
    owner.get_by_label("Why not (optional, the freelancer is told)").fill("Not in the budget")
    owner.locator("#milestone-requests").get_by_role("button", name="Reject the request").click()
    item = owner.locator("#milestone-requests .milestone-request")
    assert "rejected" in item.inner_text() and "Not in the budget" in item.inner_text()
    with world.db.read_only() as session:
        [request] = session.scalars(select(MilestoneRequest)).all()
        assert (request.status, request.reason) == ("rejected", "Not in the budget")

    # An open project: the client offers it, then withdraws the unanswered offer.
    other = world.project(client)
    owner.goto(f"/projects/{other.id}")
    owner.get_by_label("Their e-mail address").fill(freelancer.email)
    owner.get_by_role("button", name="Send the offer").click()
    assert freelancer.name in owner.locator("#offers .offer").inner_text()
    owner.locator("#offers").get_by_role("button", name="Withdraw the offer").click()
    assert "withdrawn" in owner.locator("#offers .offer").inner_text()
    assert owner.get_by_role("button", name="Send the offer").is_visible()
