"""A tour of the demo through every page kind, as a client, freelancers and staff: each page answers, shows
no error, passes axe's WCAG 2.0/2.1 A and AA rules, and fits the window (also at phone width); and the
keyboard reaches the skip link and the actions, with a focus outline one can see."""

from __future__ import annotations

import re
from typing import Any

from axe_playwright_python.sync_playwright import Axe  # type: ignore[import-untyped]
from sqlalchemy import select

from milepost.demo import DEMO_PASSWORD, load_demo
from milepost.kit.db import Database
from milepost.milestones.models import Milestone
from milepost.milestones.state import MilestoneStatus
from milepost.users.models import User
from tests.web.conftest import Shots, log_in
from tests.world import PASSWORD, World

WCAG = {
    "runOnly": {"type": "tag", "values": ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]},
    "resultTypes": ["violations"],
}
CLIENT = "omar@brightlabs.example"  # mobile app (drafts, late fee, part releases, a cancellation request)
FREELANCERS = [
    "ana@freelance.example",  # disputes (open and resolved), a cancelled and an approved milestone
    "priya@freelance.example",  # released milestones and one awaiting review
]
STAFF = "staff@milepost.example"
DEMO_STATES = {
    "draft",
    "funded",
    "submitted",
    "changes requested",
    "approved",
    "released",
    "disputed",
    "resolved",
    "cancelled",
}
PHONE = 360
_axe = Axe()


class Tour:
    """One person's browser page. ``visit`` opens a page, checks it and notes what is wrong; a page already
    checked in this tour (by anyone) is not checked again."""

    def __init__(self, page: Any, shot: Shots, problems: list[str], seen: set[str]) -> None:
        self.page = page
        self.shot = shot
        self.problems = problems
        self.seen = seen

    def visit(self, path: str, name: str, *, again: bool = False) -> None:
        if path in self.seen and not again:
            return
        self.seen.add(path)
        response = self.page.goto(path)
        self.check(response, f"{name} ({path})", name)

    def check(self, response: Any, where: str, name: str) -> None:
        """Check the page the browser shows now (``response``: the answer that brought it)."""
        self.shot(self.page, name)
        if response is None or response.status != 200:
            self.problems.append(f"{where}: answered {response and response.status}")
            return
        text = self.page.locator("body").inner_text()
        if "Internal Server Error" in text or "Traceback" in text:
            self.problems.append(f"{where}: shows a server error")
        for error in self.page.locator(".error, [role=alert]").all_inner_texts():
            self.problems.append(f"{where}: shows the error {error!r}")
        for violation in _axe.run(self.page, options=WCAG).response["violations"]:
            targets = [" ".join(node["target"]) for node in violation["nodes"]]
            self.problems.append(
                f"{where}: {violation['id']} ({violation['impact']}) {violation['help']}: {targets}"
            )
        scroll, window = self.page.evaluate(
            "[document.documentElement.scrollWidth, window.innerWidth]"
        )
        if scroll > window:
            self.problems.append(f"{where}: the page is {scroll}px wide in a {window}px window")

    def links(self, pattern: str) -> list[str]:
        """The distinct links on the current page whose address matches ``pattern``, in page order."""
        hrefs = self.page.eval_on_selector_all(
            "a[href]", "links => links.map(link => link.getAttribute('href'))"
        )
        return list(dict.fromkeys(href for href in hrefs if re.fullmatch(pattern, href)))


def _tour(email: str, tour: Tour) -> set[str]:
    """Every page kind this person reaches from the navigation, each of their projects, a milestone in
    each state of each project (one state of one project looks the same twice), terms pages and receipts;
    returns the milestone states seen."""
    log_in(tour.page, email, DEMO_PASSWORD)
    who = email.split("@")[0]
    for path, name in [
        ("/?tab=outgoing", "dashboard-outgoing"),
        ("/?tab=incoming", "dashboard-incoming"),
        ("/notifications", "notifications"),
        ("/settings", "settings"),
        ("/projects", "projects"),
    ]:
        tour.visit(path, f"{who}-{name}", again=True)
    projects = tour.links(r"/projects/(?!new$)[^/]+")
    assert projects, f"{email} has no projects on /projects"
    tour.visit(tour.links(r"/users/[^/]+")[0], f"{who}-profile")
    states: set[str] = set()
    for index, project in enumerate(projects):
        tour.visit(project, f"{who}-project-{index}")
        tour.page.goto(project)
        rows = tour.page.eval_on_selector_all(
            "#milestone-table tbody tr",
            "rows => rows.map(row => [row.querySelector('a')?.getAttribute('href'),"
            " row.querySelector('.status').textContent])",
        )
        terms = tour.links(r"/milestones/[^/]+/terms")[:1]
        shown: set[str] = set()
        for path, state in rows:
            if path and state not in shown:
                shown.add(state)
                tour.visit(path, f"{who}-milestone-{state.replace(' ', '-')}")
                for receipt in tour.links(r"/receipts/[^/.]+")[:1]:
                    tour.visit(receipt, f"{who}-receipt")
        for path in terms:
            tour.visit(path, f"{who}-terms")
        states |= shown
    return states


def test_every_page_of_the_demo_is_accessible(db: Database, new_page: Any, shot: Shots) -> None:
    load_demo(db)
    problems: list[str] = []
    seen: set[str] = set()
    anonymous = Tour(new_page(), shot, problems, seen)
    anonymous.visit("/login", "login")
    anonymous.visit("/signup", "signup")

    client = Tour(new_page(), shot, problems, seen)
    states = _tour(CLIENT, client)
    client.visit("/projects/new", "project-new")
    for freelancer in FREELANCERS:
        states |= _tour(freelancer, Tour(new_page(), shot, problems, seen))
    assert states >= DEMO_STATES, DEMO_STATES - states
    staff = Tour(new_page(), shot, problems, seen)
    _tour(STAFF, staff)
    staff.visit("/staff", "staff")
    disputes = staff.links(r"/staff/disputes/[^/]+")
    assert disputes, "the demo's open dispute is not on the staff page"
    for index, dispute in enumerate(disputes):
        staff.visit(dispute, f"staff-dispute-{index}")

    # At phone width (360 px, the narrowest common): every page kind fits without scrolling sideways.
    phone = Tour(new_page(width=PHONE), shot, problems, set())
    log_in(phone.page, STAFF, DEMO_PASSWORD)
    phone.visit("/staff", "phone-staff")
    phone.visit(disputes[0], "phone-staff-dispute")
    phone = Tour(new_page(width=PHONE), shot, problems, set())
    log_in(phone.page, CLIENT, DEMO_PASSWORD)
    phone.visit("/?tab=outgoing", "phone-dashboard")
    phone.visit("/projects", "phone-projects")
    project = phone.links(r"/projects/(?!new$)[^/]+")[0]
    phone.visit(project, "phone-project")
    # The milestone table fits the phone: nothing of it is cut off, nor left to scroll to sideways.
    table, box = phone.page.evaluate(
        "[document.querySelector('#milestone-table').scrollWidth,"
        " document.querySelector('.table-scroll').clientWidth]"
    )
    if table > box:
        problems.append(f"phone-project: the milestone table is {table}px wide in a {box}px box")
    phone.visit(phone.links(r"/milestones/[^/]+")[0], "phone-milestone")
    phone.visit("/notifications", "phone-notifications")
    phone.visit("/settings", "phone-settings")
    phone.visit("/projects/new", "phone-project-new")
    phone.visit(phone.links(r"/users/[^/]+")[0], "phone-profile")
    phone.page.goto(project)
    for terms in phone.links(r"/milestones/[^/]+/terms")[:1]:
        phone.visit(terms, "phone-terms")
    phone = Tour(new_page(width=PHONE), shot, problems, set())
    log_in(phone.page, FREELANCERS[1], DEMO_PASSWORD)
    phone.visit("/", "phone-freelancer-dashboard")
    phone.visit("/projects", "phone-freelancer-projects")
    phone.page.goto(phone.links(r"/projects/(?!new$)[^/]+")[0])
    for milestone in phone.links(r"/milestones/[^/]+")[:2]:
        phone.visit(milestone, f"phone-freelancer-{milestone.rsplit('/', 1)[1]}")
        for receipt in phone.links(r"/receipts/[^/.]+")[:1]:
            phone.visit(receipt, "phone-receipt")
    anonymous = Tour(new_page(width=PHONE), shot, problems, set())
    anonymous.visit("/login", "phone-login")
    anonymous.visit("/signup", "phone-signup")

    # The pause before an irreversible action, at desktop and at phone width.
    with db.read_only() as session:
        funded = session.scalars(
            select(Milestone.id)
            .join(User, User.id == Milestone.client_id)
            .where(User.email == CLIENT, Milestone.status == MilestoneStatus.FUNDED)
            .order_by(Milestone.id)
        ).first()
    assert funded is not None, "the demo client has no funded milestone"
    for width in (1024, PHONE):
        tour = Tour(new_page(width=width), shot, problems, seen)
        log_in(tour.page, CLIENT, DEMO_PASSWORD)
        tour.page.goto(f"/milestones/{funded}")
        tour.page.get_by_label(re.compile(r"^Release part of the escrow")).fill("1")
        with tour.page.expect_navigation() as answer:
            tour.page.get_by_role("button", name="Release this amount").click()
        tour.check(answer.value, f"confirm-release ({funded}, {width}px)", f"confirm-{width}")
        assert tour.page.locator("#statement").is_visible()

    assert len(seen) > 30, sorted(seen)  # the tour went everywhere, not just the first pages
    assert not problems, "\n".join(problems)


def _outline(page: Any) -> tuple[str, float]:
    return page.evaluate(  # type: ignore[no-any-return]
        "() => { const style = getComputedStyle(document.activeElement);"
        " return [style.outlineStyle, parseFloat(style.outlineWidth)]; }"
    )


def test_the_keyboard_reaches_the_skip_link_then_the_actions(
    db: Database, new_page: Any, shot: Shots
) -> None:
    world = World(db)
    client, _, project = world.parties()
    milestone = world.milestone(client, project, 250_000, title="Landing page")
    page = new_page()
    log_in(page, client.email, PASSWORD)
    page.goto(f"/milestones/{milestone.id}")

    page.keyboard.press("Tab")
    skip = page.locator(":focus")
    assert skip.inner_text() == "Skip to content"
    box = skip.bounding_box()
    assert box is not None and box["x"] >= 0 and box["y"] >= 0  # shown on screen once focused
    assert _outline(page)[0] != "none" and _outline(page)[1] >= 2
    shot(page, "skip-link-focused")

    # Following the skip link, the next Tabs go through the page itself, past the nav, to the actions.
    page.keyboard.press("Enter")
    names = []
    for _ in range(10):
        page.keyboard.press("Tab")
        names.append(page.locator(":focus").inner_text())
        if page.evaluate("document.activeElement.tagName") == "BUTTON":
            break
    assert names[-1] == "Fund $2,500.00 into escrow", names
    assert "Log out" not in names and "Projects" not in names  # the nav was skipped
    style, width = _outline(page)
    assert style == "solid" and width >= 2
    shot(page, "fund-button-focused")
