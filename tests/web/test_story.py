"""The whole story in headless Chromium, as people use it: the seed's CRM milestone from posting to release
(with a change request and a partial release), a dispute resolved by staff, and an outsider who finds
nothing. Every step is a click or a keystroke; services and the database are read only to check afterwards.
"""

from __future__ import annotations

import itertools
import re
from datetime import date, timedelta
from typing import Any

import httpx
import pytest

from milepost.demo import CRM_MILESTONES
from milepost.kit.context import Context
from milepost.kit.db import Database
from milepost.milestones.models import Milestone
from milepost.milestones.state import MilestoneStatus
from milepost.money import fee_on, format_money
from milepost.settings import Settings
from milepost.users.service import create_user, get_user_by_email
from milepost.wallets.service import balances
from tests.conftest import BACKENDS
from tests.web.conftest import Shots, confirm, log_in
from tests.world import PASSWORD

_emails = itertools.count(1)
CRM = "CRM implementation for Northwind"
LUCAS_MILESTONES = [
    ("Phase 1: migration and set-up", 2_900_000),
    ("Phase 2: integrations", 2_900_000),
]


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    """The end-to-end stories run on both databases (the other web tests on SQLite only)."""
    return str(request.param)


def _usd(amount: int) -> str:
    return format_money(amount, "USD")


def _typed(amount: int) -> str:
    """An amount in cents as a person types it: 1_000_000 -> "10,000", 150_050 -> "1,500.50"."""
    return f"{amount // 100:,}" + (f".{amount % 100:02d}" if amount % 100 else "")


def _words(text: str) -> str:
    """Text as read aloud: runs of white space (the layout's line breaks) as one space."""
    return " ".join(text.split())


def _available(db: Database, email: str) -> dict[str, int]:
    with db.read_only() as session:
        user = get_user_by_email(session, email)
        return {b.currency: b.available for b in balances(Context(session, user), user.id)}


def _milestone(db: Database, milestone_id: str) -> Milestone:
    with db.read_only() as session:
        found = session.get(Milestone, milestone_id)
        assert found is not None
        return found


def _path(page: Any) -> str:
    return httpx.URL(page.url).path


def _nav(page: Any, name: str) -> None:
    """Follow a link of the main navigation."""
    page.get_by_role("navigation", name="Main").get_by_role("link", name=name, exact=True).click()


def _sign_up(page: Any, shot: Shots, name: str) -> str:
    """Sign up through the form; returns the e-mail address."""
    email = f"{name.lower()}{next(_emails)}-story@example.com"
    page.goto("/signup")
    page.get_by_label("Name").fill(name)
    page.get_by_label("E-mail").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign up").click()
    assert page.get_by_role("heading", name="Dashboard").is_visible()
    assert page.get_by_role("link", name=name, exact=True).is_visible()  # the nav names who is in
    shot(page, f"{name.lower()}-signed-up")
    return email


def _post_project(page: Any, shot: Shots) -> str:
    """The client posts the seed's CRM project; returns its path."""
    _nav(page, "Projects")
    page.get_by_role("link", name="Post a project").click()
    page.get_by_label("Title").fill(CRM)
    page.get_by_label("Description").fill(
        "Replace the spreadsheet-and-inbox sales process with a CRM, migrate the data, "
        "integrate accounting and train the team."
    )
    page.get_by_label("Currency").fill("USD")
    page.get_by_label("Billing contact e-mail (optional)").fill(
        "accounts-payable@northwind.example"
    )
    shot(page, "dana-new-project")
    page.get_by_role("button", name="Post the project").click()
    assert page.get_by_role("heading", name=CRM, level=1).is_visible()
    assert page.locator("#project-status").inner_text() == "open for proposals"
    assert page.locator("#currency").inner_text() == "USD"
    assert "accounts-payable@northwind.example" in page.locator("main").inner_text()
    shot(page, "dana-project-open")
    return _path(page)


def _propose(
    page: Any,
    shot: Shots,
    name: str,
    cover_letter: str,
    rows: list[tuple[str, int, list[str]]],
) -> None:
    """A freelancer finds the open project in the list and proposes these milestones."""
    _nav(page, "Projects")
    page.locator("#open-projects").get_by_role("link", name=CRM).click()
    total = sum(amount for _, amount, _ in rows)
    page.get_by_label("Total amount (USD)").fill(_typed(total))
    page.get_by_label("Cover letter").fill(cover_letter)
    for row, (title, amount, criteria) in enumerate(rows, 1):
        if row == 4:
            page.get_by_text("Milestones 4 to 10").click()  # the rows past three fold away
        page.get_by_label(f"Title of milestone {row}", exact=True).fill(title)
        page.get_by_label(f"Amount of milestone {row} (USD)").fill(_typed(amount))
        page.get_by_label(f"Due date of milestone {row}", exact=True).fill(
            (date.today() + timedelta(days=14 * row)).isoformat()
        )
        if criteria:
            page.get_by_label(f"Acceptance criteria of milestone {row}, one per line").fill(
                "\n".join(criteria)
            )
    # The live line under the amounts confirms they add up before sending.
    # What the freelancer would receive: each milestone less its 10% fee, as the server takes it.
    received = sum(amount - fee_on(amount, 1000) for _, amount, _ in rows)
    assert page.locator("#proposal-sum").inner_text() == (
        f"Milestones add up to {_usd(total)} of {_usd(total)}: they match. "
        f"You would receive {_usd(received)} after the platform fee."
    )
    shot(page, f"{name.lower()}-proposal")
    page.get_by_role("button", name="Send the proposal").click()
    assert page.get_by_role("heading", name="Your proposals").is_visible()
    assert _usd(total) in page.locator(".proposal").inner_text()
    shot(page, f"{name.lower()}-proposal-sent")


def _deposit(page: Any, shot: Shots, amount: int) -> None:
    """A sandbox deposit from the dashboard's wallet form."""
    _nav(page, "Dashboard")
    form = page.locator("#deposit-form")
    form.get_by_label("Amount").fill(_typed(amount))
    form.get_by_label("Currency").fill("USD")
    form.get_by_label("Sandbox (at once)").check()
    form.get_by_role("button", name="Deposit").click()
    assert page.locator("#balances .available").inner_text() == _usd(amount)
    shot(page, "dana-deposited")


def _from_notification(page: Any, shot: Shots, name: str, title: str) -> None:
    """From the dashboard, open the notifications by the nav's unread badge; follow the one with this
    title (the newest first)."""
    _nav(page, "Dashboard")
    assert page.locator("#unread-count").is_visible()
    page.locator("#nav-notifications").click()
    shot(page, f"{name}-notifications")
    page.get_by_role("link", name=title).first.click()


def _from_dashboard(page: Any, tab: str, title: str) -> None:
    """Open a milestone from the dashboard's list (tab: "Outgoing" or "Incoming")."""
    _nav(page, "Dashboard")
    page.get_by_role("navigation", name="Milestones").get_by_role(
        "link", name=re.compile(f"^{tab}")
    ).click()
    page.locator(".milestones").get_by_role("link", name=title, exact=True).click()


def _milestone_id(page: Any) -> str:
    match = re.fullmatch(r"/milestones/(ms_[^/]+)", _path(page))
    assert match, page.url
    return match.group(1)


def test_the_crm_milestone_from_posting_to_release(
    new_page: Any, shot: Shots, db: Database, settings: Settings
) -> None:
    dana, priya, lucas = new_page(), new_page(), new_page(width=375)
    dana_email = _sign_up(dana, shot, "Dana")
    priya_email = _sign_up(priya, shot, "Priya")
    _sign_up(lucas, shot, "Lucas")

    project_path = _post_project(dana, shot)
    _propose(
        priya,
        shot,
        "Priya",
        "I have delivered six CRM roll-outs for sales teams of 20-50 people.",
        CRM_MILESTONES,
    )
    _propose(
        lucas,
        shot,
        "Lucas",
        "Fixed price, two phases.",
        [(title, amount, []) for title, amount in LUCAS_MILESTONES],
    )

    # Dana compares the two side by side and accepts Priya's.
    dana.reload()
    cards = dana.locator(".proposal")
    assert cards.count() == 2
    priyas, lucass = cards.nth(0).inner_text(), cards.nth(1).inner_text()
    assert "Priya" in priyas and "$50,000.00" in priyas and "in 5 milestones" in priyas
    assert "Data migration: $10,000.00" in priyas
    assert "Lucas" in lucass and "$58,000.00" in lucass and "in 2 milestones" in lucass
    shot(dana, "dana-compares-proposals")
    dana.get_by_role("button", name="Accept this proposal from Priya").click()
    confirm(dana)
    assert dana.locator("#project-status").inner_text() == "awarded"
    assert dana.locator("#freelancer").inner_text() == "Priya"
    rows = dana.locator("#milestone-table tbody tr")
    assert [rows.nth(i).inner_text().split("\t")[1:4] for i in range(5)] == [
        [title, _usd(amount), "draft"] for title, amount, _ in CRM_MILESTONES
    ]
    assert "$50,000.00" in dana.locator("#milestone-totals").inner_text()
    shot(dana, "dana-awarded")

    # Dana says up front what proof the delivery must carry.
    dana.get_by_role("link", name="Edit terms of Data migration").click()
    assert dana.get_by_label("Amount (USD)").input_value() == "10000.00"
    dana.get_by_label("Required evidence, one per line").fill(
        "Migration report\nRow counts before and after"
    )
    shot(dana, "dana-terms")
    dana.get_by_role("button", name="Save the terms").click()
    assert _path(dana) == project_path

    _deposit(dana, shot, 5_000_000)
    _from_dashboard(dana, "Outgoing", "Data migration")
    milestone_id = _milestone_id(dana)
    milestone_path = _path(dana)
    assert dana.locator("#status").inner_text() == "draft"
    terms = dana.locator("section", has=dana.locator("#terms-heading")).inner_text()
    assert "Migration report" in terms and "Row counts before and after" in terms
    shot(dana, "dana-milestone-draft")
    dana.get_by_role("button", name="Fund $10,000.00 into escrow").click()
    assert dana.locator("#status").inner_text() == "funded"
    assert dana.locator("#escrow").inner_text() == "$10,000.00"
    shot(dana, "dana-funded")
    _nav(dana, "Dashboard")
    assert dana.locator("#balances .available").inner_text() == "$40,000.00"

    # Priya is told: the badge in the nav, then the notification leads to the milestone.
    _from_notification(priya, shot, "priya", "“Data migration” is funded: $10,000.00 in escrow")
    assert _path(priya) == milestone_path
    assert priya.locator("#status").inner_text() == "funded"
    assert priya.locator("#escrow").inner_text() == "$10,000.00"

    priya.get_by_label("Delivery note").fill("All records migrated; report attached.")
    priya.get_by_label("Files (PDF, images, ZIP or text)").set_input_files(
        [
            {
                "name": "migration-report.txt",
                "mimeType": "text/plain",
                "buffer": b"Migration report\nSkipped: 12 records (no e-mail address)\n",
            }
        ]
    )
    priya.get_by_label("Links, one per line").fill("https://crm-staging.northwind.example")
    priya.get_by_label("Text evidence").fill(
        "Row counts before and after: contacts 48,000 / 47,988, deals 9,310 / 9,310."
    )
    shot(priya, "priya-delivery-form")
    priya.get_by_role("button", name="Submit delivery").click()
    assert priya.locator("#status").inner_text() == "submitted"
    revision = priya.locator("#revision-1").inner_text()
    assert "migration-report.txt" in revision
    assert "https://crm-staging.northwind.example" in revision
    assert "contacts 48,000 / 47,988" in revision
    shot(priya, "priya-submitted")

    # Dana is told, reviews with the checklist and asks for a change.
    _from_notification(dana, shot, "dana", "“Data migration” was delivered: please review")
    assert _path(dana) == milestone_path
    assert dana.locator("#status").inner_text() == "submitted"
    assert dana.get_by_role("heading", name="Review checklist").is_visible()
    criteria = dana.locator("#criteria-checklist").inner_text()
    for criterion in CRM_MILESTONES[0][2]:
        assert criterion in criteria
    required = dana.locator("#required-checklist li")
    assert required.count() == 2
    assert "Migration report Present migration-report.txt" in _words(required.nth(0).inner_text())
    assert "Row counts before and after Present" in _words(required.nth(1).inner_text())
    dana.get_by_label("Migration report", exact=True).check()  # her own ticks, as guidance
    dana.get_by_label("Row counts before and after", exact=True).check()
    shot(dana, "dana-review-checklist")
    dana.get_by_label("What needs to change").fill(
        "The report does not say why deals were skipped."
    )
    dana.get_by_role("button", name="Request changes").click()
    assert dana.locator("#status").inner_text() == "changes requested"
    assert dana.locator("#escrow").inner_text() == "$10,000.00"
    shot(dana, "dana-changes-requested")

    _from_notification(priya, shot, "priya", "Changes requested on “Data migration”")
    assert priya.locator("#status").inner_text() == "changes requested"
    assert (
        "The report does not say why deals were skipped."
        in priya.locator("#revision-1").inner_text()
    )
    priya.get_by_label("Delivery note").fill(
        "Report now lists each skipped record with its reason."
    )
    priya.get_by_label("Files (PDF, images, ZIP or text)").set_input_files(
        [
            {
                "name": "migration-report-v2.txt",
                "mimeType": "text/plain",
                "buffer": b"Migration report v2\nSkipped: 12 records, each with its reason\n",
            }
        ]
    )
    priya.get_by_role("button", name="Submit delivery").click()
    assert priya.locator("#status").inner_text() == "submitted"
    assert "migration-report-v2.txt" in priya.locator("#revision-2").inner_text()
    shot(priya, "priya-resubmitted")

    # Dana releases $4,000 first, then approves the rest.
    _from_notification(dana, shot, "dana", "“Data migration” was delivered: please review")
    assert "Revision 2" in dana.locator("#review").inner_text()
    dana.get_by_label("Release part of the escrow (USD)").fill("4,000")
    dana.get_by_role("button", name="Release this amount").click()
    assert confirm(dana).startswith(
        "$4,000.00 leaves the escrow: Priya receives $3,600.00 and the platform fee is $400.00."
    )
    assert dana.locator("#escrow").inner_text() == "$6,000.00"
    assert dana.locator("#status").inner_text() == "submitted"
    shot(dana, "dana-partial-release")
    dana.get_by_role("button", name="Approve and release").click()
    confirm(dana)
    assert dana.locator("#status").inner_text() == "released"
    assert dana.locator("#escrow").inner_text() == "$0.00"
    assert dana.locator(".receipts > li").count() == 2
    shot(dana, "dana-released")

    # Each release has its receipt; the fee follows the cumulative rule, so the two add up to one fee.
    released = []
    for index in range(2):
        if index:
            dana.go_back()
        dana.get_by_role("link", name=re.compile(r"^Receipt")).nth(index).click()
        released.append(dana.locator("#amount-released").inner_text())
        shot(dana, f"dana-receipt-{index + 1}")
    assert sorted(released) == ["$4,000.00", "$6,000.00"]

    fee = fee_on(1_000_000, settings.fee_bps)
    _nav(priya, "Dashboard")
    assert priya.locator("#balances .available").inner_text() == _usd(1_000_000 - fee)
    shot(priya, "priya-paid")

    milestone = _milestone(db, milestone_id)
    assert milestone.status is MilestoneStatus.RELEASED
    assert (milestone.released_amount, milestone.fee_amount) == (1_000_000, fee)
    assert _available(db, priya_email) == {"USD": 1_000_000 - fee}
    assert _available(db, dana_email) == {"USD": 4_000_000}
    # The ledger is verified by the db fixture after the test.


def _funded_and_submitted(new_page: Any, shot: Shots) -> tuple[Any, Any, str, str, str]:
    """The short path, all in the browser: post, propose one milestone, accept, deposit, fund, submit.
    Returns Dana's and Priya's pages, their e-mail addresses and the milestone's path."""
    dana, priya = new_page(), new_page()
    dana_email = _sign_up(dana, shot, "Dana")
    priya_email = _sign_up(priya, shot, "Priya")
    _post_project(dana, shot)
    title, amount, criteria = CRM_MILESTONES[0]
    _propose(priya, shot, "Priya", "One milestone to start.", [(title, amount, criteria)])
    dana.reload()
    dana.get_by_role("button", name="Accept this proposal from Priya").click()
    confirm(dana)
    assert dana.locator("#project-status").inner_text() == "awarded"
    _deposit(dana, shot, amount)
    _from_dashboard(dana, "Outgoing", title)
    milestone_path = _path(dana)
    dana.get_by_role("button", name="Fund $10,000.00 into escrow").click()
    assert dana.locator("#escrow").inner_text() == "$10,000.00"
    shot(dana, "dana-funded")

    _from_dashboard(priya, "Incoming", title)
    assert _path(priya) == milestone_path
    priya.get_by_label("Delivery note").fill("Migration done.")
    priya.get_by_label("Files (PDF, images, ZIP or text)").set_input_files(
        [{"name": "row-counts.txt", "mimeType": "text/plain", "buffer": b"contacts 48000/41200\n"}]
    )
    priya.get_by_label("Links, one per line").fill("https://crm-staging.northwind.example")
    priya.get_by_role("button", name="Submit delivery").click()
    assert priya.locator("#status").inner_text() == "submitted"
    shot(priya, "priya-submitted")
    return dana, priya, dana_email, priya_email, milestone_path


def test_staff_resolves_a_dispute_in_the_browser(
    new_page: Any, shot: Shots, db: Database, settings: Settings
) -> None:
    dana, priya, dana_email, priya_email, milestone_path = _funded_and_submitted(new_page, shot)
    milestone_id = milestone_path.rsplit("/", 1)[1]

    _from_notification(dana, shot, "dana", "“Data migration” was delivered: please review")
    dana.get_by_label("Reason for the dispute").fill("6,800 contacts are missing after the import.")
    dana.get_by_role("button", name="Open a dispute (freezes the escrow)").click()
    assert dana.locator("#status").inner_text() == "disputed"
    assert "the client (you)" in dana.locator("#dispute").inner_text()
    shot(dana, "dana-disputed")

    _from_notification(priya, shot, "priya", "Dispute opened on “Data migration”")
    assert "6,800 contacts are missing" in priya.locator("#dispute").inner_text()
    priya.get_by_label("Offer the freelancer (USD)").fill("9,000")
    priya.get_by_role("button", name="Make the offer").click()
    assert "The freelancer offers $9,000.00 to the freelancer and $1,000.00 back to the client" in (
        priya.locator("#offers").inner_text()
    )
    shot(priya, "priya-offered")

    # Dana sees the offer and leaves it: the dispute stays open for staff.
    _from_notification(dana, shot, "dana", "Settlement offer on “Data migration”")
    assert dana.get_by_role("button", name="Accept this offer and settle").is_visible()
    assert dana.locator("#status").inner_text() == "disputed"
    shot(dana, "dana-sees-offer")

    staff_email = f"staff{next(_emails)}-story@example.com"
    with db.unit_of_work() as session:
        create_user(session, email=staff_email, name="Sam", password=PASSWORD, is_staff=True)
    staff = new_page()
    log_in(staff, staff_email)
    _nav(staff, "Staff")
    queue = staff.locator("#dispute-queue > li")
    assert queue.count() == 1
    assert CRM in queue.nth(0).inner_text() and "$10,000.00" in queue.nth(0).inner_text()
    shot(staff, "staff-queue")
    queue.nth(0).get_by_role("link", name="Data migration").click()
    assert staff.get_by_role("heading", name="Dispute: Data migration").is_visible()
    assert staff.locator("#dispute-reason").inner_text() == (
        "6,800 contacts are missing after the import."
    )
    assert staff.get_by_role("link", name="row-counts.txt").is_visible()
    assert staff.get_by_role("link", name="https://crm-staging.northwind.example").is_visible()
    assert "$9,000.00 to the freelancer" in staff.locator("#offers").inner_text()
    assert staff.locator("#escrow").inner_text() == "$10,000.00"
    shot(staff, "staff-dispute")
    staff.get_by_label("To the freelancer (USD)").fill("6,000")
    staff.get_by_label("Reasoning, for both parties (optional)").fill(
        "Most of the data arrived; 6,800 contacts did not."
    )
    staff.get_by_role("button", name="Resolve: pay the split").click()
    confirm(staff)
    assert staff.locator("#dispute-status").inner_text() == "resolved"
    assert "$6,000.00 to the freelancer (before the fee), $4,000.00 to the client" in (
        staff.locator("#outcome").inner_text()
    )
    shot(staff, "staff-resolved")

    for page, who in ((dana, "dana"), (priya, "priya")):
        _from_notification(page, shot, who, "Dispute on “Data migration” resolved")
        assert page.locator("#status").inner_text() == "resolved"
        assert page.locator("#dispute-state").inner_text() == "resolved (staff)"
        panel = page.locator("#dispute").inner_text()
        assert "$6,000.00" in panel and "$4,000.00" in panel
        assert page.locator("#escrow").inner_text() == "$0.00"
        shot(page, f"{who}-resolved")

    fee = fee_on(600_000, settings.fee_bps)
    assert _milestone(db, milestone_id).status is MilestoneStatus.RESOLVED
    assert _available(db, priya_email) == {"USD": 600_000 - fee}
    assert _available(db, dana_email) == {"USD": 400_000}


def test_an_outsider_sees_404_for_the_milestone_page(new_page: Any, shot: Shots) -> None:
    dana, priya = new_page(), new_page()
    _sign_up(dana, shot, "Dana")
    _sign_up(priya, shot, "Priya")
    project_path = _post_project(dana, shot)
    title, amount, criteria = CRM_MILESTONES[0]
    _propose(priya, shot, "Priya", "One milestone to start.", [(title, amount, criteria)])
    dana.reload()
    dana.get_by_role("button", name="Accept this proposal from Priya").click()
    confirm(dana)
    dana.get_by_role("link", name=title, exact=True).click()
    milestone_path = _path(dana)
    shot(dana, "dana-milestone")

    outsider = new_page()
    _sign_up(outsider, shot, "Oscar")
    for path in (milestone_path, project_path):
        response = outsider.goto(path)
        assert response is not None and response.status == 404, path
        assert outsider.get_by_role("heading", name="Not found").is_visible()
        body = outsider.content()
        assert "Data migration" not in body and CRM not in body
        shot(outsider, "outsider-404")
