"""The pause before the irreversible, in a browser with JavaScript off: every form that moves money out of
an escrow or a wallet, or cannot be undone, first says what it will do. Going back changes nothing;
confirming does exactly what was said, to the cent, in every account it named."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from milepost.disputes import service as disputes
from milepost.kit.db import Database
from milepost.milestones import service as milestones
from milepost.money import parse_amount
from milepost.projects import service as projects
from milepost.settings import Settings
from milepost.users.models import User
from tests.web.conftest import log_in
from tests.world import World


@pytest.fixture
def world(db: Database, settings: Settings) -> World:
    """The world with the live server's settings (its 10% fee)."""
    return World(db, settings)


@pytest.fixture
def no_script_page(browser: Any, base_url: str) -> Iterator[Callable[[], Any]]:
    """new() -> a page of a browser with JavaScript turned off (one person each)."""
    contexts: list[Any] = []

    def new() -> Any:
        context = browser.new_context(base_url=base_url, java_script_enabled=False)
        contexts.append(context)
        return context.new_page()

    yield new
    for context in contexts:
        context.close()


@dataclass
class Case:
    """An irreversible form as one person meets it: who presses, on which page, what they type first, and
    the button; the people its statement may name; the state the page shows once it is done."""

    viewer: User
    path: str
    button: str
    people: dict[str, User]
    fill: dict[str, str]
    escrow: str | None  # the milestone whose escrow is drawn on, if any
    status: tuple[str, str]  # (selector, text) once it is done


def _approve(world: World) -> Case:
    client, freelancer, milestone = world.submitted(100_000)
    return Case(
        client,
        f"/milestones/{milestone.id}",
        "Approve and release",
        {"Freelancer": freelancer},
        {},
        milestone.id,
        ("#status", "released"),
    )


def _release_part(world: World) -> Case:
    client, freelancer, milestone = world.funded(100_000)
    return Case(
        client,
        f"/milestones/{milestone.id}",
        "Release this amount",
        {"Freelancer": freelancer},
        {"Release part of the escrow (USD)": "$300.00"},
        milestone.id,
        ("#escrow", "$700.00"),
    )


def _cancel(world: World) -> Case:
    client, freelancer, milestone = world.funded(100_000)
    return Case(
        freelancer,
        f"/milestones/{milestone.id}",
        "Cancel the milestone and refund $1,000.00 to the client",
        {"Client": client},
        {},
        milestone.id,
        ("#status", "cancelled"),
    )


def _accept_cancellation(world: World) -> Case:
    client, freelancer, milestone = world.funded(100_000)
    world.act(client, milestones.request_cancellation, milestone.id, reason="Plans changed")
    return Case(
        freelancer,
        f"/milestones/{milestone.id}",
        "Accept: cancel and refund the client",
        {"Client": client},
        {},
        milestone.id,
        ("#status", "cancelled"),
    )


def _accept_offer(world: World) -> Case:
    client, freelancer, milestone = world.submitted(100_000)
    dispute = world.act(client, disputes.open_dispute, milestone.id, reason="Half of it is missing")
    world.act(freelancer, disputes.make_offer, dispute.id, to_freelancer=60_000)
    return Case(
        client,
        f"/milestones/{milestone.id}",
        "Accept this offer and settle",
        {"Freelancer": freelancer},
        {},
        milestone.id,
        ("#status", "resolved"),
    )


def _bonus(world: World) -> Case:
    client, freelancer, project = world.parties(wallet=50_000)
    return Case(
        client,
        f"/projects/{project.id}",
        "Pay the bonus",
        {"Freelancer": freelancer},
        {"Bonus amount (USD)": "150"},
        None,
        ("#bonus-heading", "Give a bonus"),
    )


def _accept_proposal(world: World) -> Case:
    client, freelancer = world.user("client"), world.user("freelancer")
    project = world.project(client)
    world.act(
        freelancer,
        projects.create_proposal,
        project.id,
        amount=50_000,
        milestones=[{"title": "All of it", "amount": 50_000, "acceptance_criteria": ["Works"]}],
    )
    return Case(
        client,
        f"/projects/{project.id}",
        "Accept this proposal",
        {"Freelancer": freelancer},
        {},
        None,
        ("#freelancer", "Freelancer"),
    )


def _resolve(world: World) -> Case:
    client, freelancer, milestone = world.submitted(100_000)
    dispute = world.act(client, disputes.open_dispute, milestone.id, reason="Not what we agreed")
    staff = world.user("staffer", staff=True)
    return Case(
        staff,
        f"/staff/disputes/{dispute.id}",
        "Resolve: pay the split",
        {"Freelancer": freelancer, "Client": client},
        {"To the freelancer (USD)": "250"},
        milestone.id,
        ("#dispute-status", "resolved"),
    )


CASES = {
    "approve and release": _approve,
    "partial release": _release_part,
    "cancel and refund": _cancel,
    "accept a cancellation": _accept_cancellation,
    "accept a settlement offer": _accept_offer,
    "pay a bonus": _bonus,
    "accept a proposal": _accept_proposal,
    "resolve a dispute": _resolve,
}

_MOVE = re.compile(r"^(?P<total>\S+) leaves (?P<source>the escrow|your wallet): (?P<parts>.*)\.$")
_PART = re.compile(
    r"^(?:the platform fee is (?P<fee>\S+)|(?P<getter>.+?) gets? (?P<back>\S+) back"
    r"|(?P<receiver>.+?) receives? (?P<received>\S+))$"
)


def _said_moves(statement: str, case: Case) -> dict[str, int]:
    """The money the statement says will move, as account key -> change in cents."""

    def cents(typed: str) -> int:
        return parse_amount(typed, "USD")

    def wallet(name: str) -> str:
        user = case.viewer if name == "you" else case.people[name]
        return f"user:{user.id}:USD"

    moves: dict[str, int] = {}
    for line in statement.splitlines():
        found = _MOVE.match(line)
        if found is None:
            continue
        source = f"escrow:{case.escrow}:USD" if found["source"] == "the escrow" else wallet("you")
        moves[source] = moves.get(source, 0) - cents(found["total"])
        for part in re.split(r", | and ", found["parts"]):
            said = _PART.match(part)
            assert said is not None, part
            if said["fee"]:
                key, amount = "platform_fee:USD", said["fee"]
            elif said["back"]:
                key, amount = wallet(said["getter"]), said["back"]
            else:
                key, amount = wallet(said["receiver"]), said["received"]
            moves[key] = moves.get(key, 0) + cents(amount)
    return moves


def _moved(before: dict[str, Any], after: dict[str, Any]) -> dict[str, int]:
    accounts = set(before["accounts"]) | set(after["accounts"])
    changes = {
        key: after["accounts"].get(key, 0) - before["accounts"].get(key, 0) for key in accounts
    }
    return {key: change for key, change in changes.items() if change}


def _press(page: Any, case: Case) -> None:
    page.goto(case.path)
    for label, typed in case.fill.items():
        page.get_by_label(label).fill(typed)
    page.get_by_role("button", name=case.button).click()


@pytest.mark.parametrize("name", list(CASES))
def test_an_irreversible_form_says_what_it_will_do_and_does_exactly_that(
    name: str, world: World, no_script_page: Callable[[], Any]
) -> None:
    case = CASES[name](world)
    page = no_script_page()
    log_in(page, case.viewer.email)
    before = world.snapshot()

    # The first press only asks.
    _press(page, case)
    statement = page.locator("#statement").inner_text()
    assert statement.endswith("This cannot be undone."), statement
    assert world.snapshot() == before

    # Going back changes nothing.
    page.get_by_role("link", name="No, go back").click()
    assert page.url.endswith(case.path)
    assert world.snapshot() == before

    # Confirming does what was said: every amount it named moved, and nothing else did.
    _press(page, case)
    assert page.locator("#statement").inner_text() == statement
    page.locator("#confirm button[type=submit]").click()
    assert page.url.endswith(case.path)
    selector, text = case.status
    assert page.locator(selector).inner_text() == text
    after = world.snapshot()
    assert after != before
    assert _moved(before, after) == _said_moves(statement, case), statement
    assert world.verify().ok


def test_what_is_confirmed_is_what_happens_or_nothing_does(
    world: World, no_script_page: Callable[[], Any]
) -> None:
    """The client asks to release $300.00 of $1,000.00 and is told $700.00 stays in escrow; meanwhile
    another release is made. Confirming then would not do what they read: it is refused, with nothing
    moved, and asking again says the new figures."""
    case = _release_part(world)
    page = no_script_page()
    log_in(page, case.viewer.email)
    _press(page, case)
    assert "$700.00 stays in escrow" in page.locator("#statement").inner_text()

    world.act(case.viewer, milestones.release, case.escrow, amount=10_000)
    before = world.snapshot()
    page.locator("#confirm button[type=submit]").click()
    assert page.locator("#release-error").inner_text() == (
        "This changed after you looked at it, so nothing was done. "
        "Check the figures on this page and confirm again."
    )
    assert page.locator("#escrow").inner_text() == "$900.00"
    assert world.snapshot() == before

    _press(page, case)
    assert "$600.00 stays in escrow" in page.locator("#statement").inner_text()
    assert world.verify().ok


def test_a_form_the_service_refuses_is_refused_before_any_confirmation(
    world: World, no_script_page: Callable[[], Any]
) -> None:
    case = _release_part(world)
    case.fill = {"Release part of the escrow (USD)": "1,000.01"}
    page = no_script_page()
    log_in(page, case.viewer.email)
    before = world.snapshot()
    _press(page, case)
    assert page.locator("#statement").count() == 0
    assert page.locator("#release-error").inner_text() == (
        "The escrow holds $1,000.00; cannot release $1,000.01."
    )
    assert world.snapshot() == before
