"""Realistic demo data, made only through the service layer (as real requests would make it).

Covers every milestone state, the seed cases (the $50,000 CRM project, the $10,000 contract in five
$2,000 milestones), a dispute with a settlement offer, one resolved by staff, partial releases, a bonus, a
cancellation request, a manual deposit waiting for staff, and an open project with funds reserved early.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, timedelta
from typing import Any, TypeVar

from sqlalchemy import select

from milepost import subscribers
from milepost.disputes import service as disputes
from milepost.kit.context import Context
from milepost.kit.db import Database
from milepost.kit.time import utcnow
from milepost.milestones import service as milestones
from milepost.milestones.models import Milestone
from milepost.projects import service as projects
from milepost.settings import Settings
from milepost.users.models import User
from milepost.users.service import create_user
from milepost.wallets import destinations
from milepost.wallets import service as wallets

DEMO_PASSWORD = "milepost-demo"
T = TypeVar("T")

PEOPLE = [
    ("staff@milepost.example", "Sam Okafor", True, "staff"),
    ("dana@northwind.example", "Dana Whitfield", False, "client (CRM project)"),
    ("omar@brightlabs.example", "Omar Haddad", False, "client (mobile app, data audit)"),
    ("yuki@kobe-apps.example", "Yuki Tanaka", False, "client (localisation, in JPY)"),
    ("priya@freelance.example", "Priya Raman", False, "freelancer (CRM)"),
    ("lucas@freelance.example", "Lucas Moreau", False, "freelancer (mobile app)"),
    ("ana@freelance.example", "Ana Souza", False, "freelancer (localisation)"),
]

# Where each demo person lives: the web app shows their times in these zones (staff: UTC).
TIME_ZONES = {
    "dana@northwind.example": "America/Chicago",
    "omar@brightlabs.example": "Asia/Dubai",
    "yuki@kobe-apps.example": "Asia/Tokyo",
    "priya@freelance.example": "Asia/Kolkata",
    "lucas@freelance.example": "Europe/Paris",
    "ana@freelance.example": "America/Sao_Paulo",
}

CRM_MILESTONES = [
    (
        "Data migration",
        1_000_000,
        [
            "All 48,000 contacts and 3 years of deals imported from the old CRM",
            "Migration report lists every skipped record with its reason",
        ],
    ),
    (
        "Basic functionality",
        1_500_000,
        [
            "Contacts, companies, deals and pipeline stages work end to end",
            "Sales team can log calls and e-mails against a deal",
        ],
    ),
    (
        "Customizations and integrations",
        1_200_000,
        ["Quote builder matches the approved mock-ups", "Two-way sync with the accounting system"],
    ),
    (
        "Training",
        500_000,
        ["Two live training sessions for the sales team, recorded", "Written admin guide"],
    ),
    (
        "Testing and QA",
        800_000,
        [
            "Test plan covering every user story, with results",
            "No open severity-1 or severity-2 defects",
        ],
    ),
]


class _Demo:
    def __init__(self, database: Database) -> None:
        self.database = database
        self.users: dict[str, User] = {}
        # Demo money comes from the sandbox provider whatever MILEPOST_PROVIDERS says: it is demo data.
        self.settings = Settings(providers="sandbox,manual")

    def as_(self, email: str | None, action: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run ``action(ctx, *args, **kwargs)`` as one person, in its own unit of work, like a request."""
        with self.database.unit_of_work() as session:
            actor = None if email is None else session.get(User, self.users[email].id)
            return action(Context(session, actor, settings=self.settings), *args, **kwargs)

    def people(self) -> None:
        for email, name, is_staff, _role in PEOPLE:
            with self.database.unit_of_work() as session:
                self.users[email] = create_user(
                    session,
                    email=email,
                    name=name,
                    password=DEMO_PASSWORD,
                    is_staff=is_staff,
                    time_zone=TIME_ZONES.get(email, "UTC"),
                )

    def deposit(self, email: str, amount: int, currency: str, provider: str = "sandbox") -> Any:
        return self.as_(
            email, wallets.create_deposit, amount=amount, currency=currency, provider=provider
        )


def load_demo(database: Database) -> list[tuple[str, str]]:
    """Load the demo into an empty database; return (e-mail, role) of each demo person."""
    subscribers.install()
    with database.read_only() as session:
        if session.scalar(select(User.id).where(User.email == PEOPLE[0][0])) is not None:
            return [(email, role) for email, _, _, role in PEOPLE]
    demo = _Demo(database)
    demo.people()
    today = utcnow().date()
    _crm_project(demo, today)
    _mobile_app_contract(demo, today)
    _localisation_project(demo, today)
    _open_project(demo)
    return [(email, role) for email, _, _, role in PEOPLE]


def _crm_project(demo: _Demo, today: date) -> None:
    dana, priya, lucas = (
        "dana@northwind.example",
        "priya@freelance.example",
        "lucas@freelance.example",
    )
    demo.deposit(dana, 4_000_000, "USD")
    project = demo.as_(
        dana,
        projects.create_project,
        title="CRM implementation for Northwind",
        currency="USD",
        description="Replace the spreadsheet-and-inbox sales process with a CRM, migrate the data, "
        "integrate accounting and train the team.",
        billing_contact_email="accounts-payable@northwind.example",
    )
    proposed = [
        {
            "title": title,
            "amount": amount,
            "acceptance_criteria": criteria,
            "due_date": (today + timedelta(days=14 * (index + 1))).isoformat(),
        }
        for index, (title, amount, criteria) in enumerate(CRM_MILESTONES)
    ]
    proposal = demo.as_(
        priya,
        projects.create_proposal,
        project.id,
        amount=5_000_000,
        milestones=proposed,
        cover_letter="I have delivered six CRM roll-outs for sales teams of 20-50 people.",
    )
    demo.as_(
        lucas,
        projects.create_proposal,
        project.id,
        amount=5_800_000,
        cover_letter="Fixed price, two phases.",
        milestones=[
            {"title": "Phase 1: migration and set-up", "amount": 2_900_000},
            {"title": "Phase 2: integrations and training", "amount": 2_900_000},
        ],
    )
    demo.as_(dana, projects.accept_proposal, proposal.id)
    page = demo.as_(dana, milestones.list_milestones, project_id=project.id, limit=10)
    ms = sorted(page.data, key=lambda m: m.position)
    demo.as_(
        dana,
        milestones.update_terms,
        ms[0].id,
        required_evidence=["Migration report", "Row counts before and after"],
    )
    # Milestones 1 and 2 ($10,000 and $15,000): funded, delivered, approved, released.
    for milestone, note in (
        (ms[0], "All records migrated; report attached."),
        (ms[1], "Core CRM is live in staging for the sales team."),
    ):
        demo.as_(dana, milestones.fund, milestone.id)
        evidence = [
            {"type": "link", "url": "https://crm-staging.northwind.example"},
            {"type": "text", "text": note},
        ]
        demo.as_(priya, milestones.submit, milestone.id, note=note, evidence=evidence)
        demo.as_(dana, milestones.approve, milestone.id)
    # Milestone 3: funded and delivered, awaiting review; Priya nudged for release.
    demo.as_(dana, milestones.fund, ms[2].id)
    demo.as_(
        priya,
        milestones.submit,
        ms[2].id,
        note="Quote builder and accounting sync are done.",
        evidence=[{"type": "link", "url": "https://github.example/northwind/crm/pull/42"}],
    )
    demo.as_(priya, milestones.request_release, ms[2].id)
    # Milestones 4 and 5 stay drafts; Dana sets a fund-by date on the next one.
    demo.as_(
        dana, milestones.update_terms, ms[3].id, fund_by=(today + timedelta(days=5)).isoformat()
    )
    demo.as_(
        dana,
        projects.create_bonus,
        project.id,
        amount=50_000,
        note="Thanks for the weekend cut-over.",
    )


def _mobile_app_contract(demo: _Demo, today: date) -> None:
    omar, lucas = "omar@brightlabs.example", "lucas@freelance.example"
    demo.deposit(omar, 900_000, "USD")
    project = demo.as_(
        omar,
        projects.create_project,
        title="Mobile app rebuild",
        currency="USD",
        freelancer_id=demo.users[lucas].id,
        description="Rebuild the iOS and Android apps on one shared code base.",
        billing_contact_email="finance@brightlabs.example",
    )
    titles = [
        "Design system and screens",
        "Authentication and profiles",
        "Catalogue and search",
        "Checkout",
        "Store release",
    ]
    late_fee = {
        "type": "percent",
        "rate_bps": 100,
        "period_days": 7,
        "grace_days": 3,
        "cap_bps": 1000,
    }
    ms = []
    for index, title in enumerate(titles):
        fund_by = today + timedelta(days=14 * index - 12)
        ms.append(
            demo.as_(
                omar,
                milestones.create_milestone,
                project.id,
                title=title,
                amount=200_000,
                fund_by=fund_by.isoformat(),
                due_date=(fund_by + timedelta(days=14)).isoformat(),
                acceptance_criteria=[
                    f"{title} works on iOS 17+ and Android 12+",
                    "Reviewed in a demo call",
                ],
                late_fee=late_fee,
            )
        )
    # Milestone 1: funded late (so with a late fee), then released in two parts.
    demo.as_(omar, milestones.fund, ms[0].id)
    demo.as_(
        lucas,
        milestones.submit,
        ms[0].id,
        note="Figma file and component library.",
        evidence=[{"type": "link", "url": "https://figma.example/f/abc"}],
    )
    demo.as_(omar, milestones.release, ms[0].id, amount=80_000)
    demo.as_(omar, milestones.release, ms[0].id)
    # Milestone 2: delivered, changes requested.
    demo.as_(omar, milestones.fund, ms[1].id)
    demo.as_(
        lucas,
        milestones.submit,
        ms[1].id,
        note="Sign-in with e-mail and Apple.",
        evidence=[{"type": "text", "text": "Build 1.2.0 (41)"}],
    )
    demo.as_(
        omar,
        milestones.request_changes,
        ms[1].id,
        reason="Google sign-in is missing on Android.",
        unmet_criteria=[0],
    )
    # Milestone 3: funded, part released up front for a search licence; a cancellation is requested.
    demo.as_(omar, milestones.fund, ms[2].id)
    demo.as_(omar, milestones.release, ms[2].id, amount=30_000)
    demo.as_(
        omar,
        milestones.request_cancellation,
        ms[2].id,
        reason="We may buy an off-the-shelf search product instead.",
    )
    # Milestones 4 and 5: drafts; the 4th is past its fund-by date.


def _localisation_project(demo: _Demo, today: date) -> None:
    yuki, ana, staff = "yuki@kobe-apps.example", "ana@freelance.example", "staff@milepost.example"
    demo.deposit(yuki, 2_000_000, "JPY")
    project = demo.as_(
        yuki,
        projects.create_project,
        title="Localise the booking app into Portuguese and Spanish",
        currency="JPY",
        freelancer_id=demo.users[ana].id,
    )

    def milestone(title: str, amount: int, **terms: Any) -> Milestone:
        return demo.as_(
            yuki,
            milestones.create_milestone,
            project.id,
            title=title,
            amount=amount,
            acceptance_criteria=["Every string translated", "Reviewed by a native speaker"],
            **terms,
        )

    disputed = milestone("Portuguese (Brazil)", 300_000)
    resolved = milestone("Spanish (Spain)", 300_000)
    cancelled = milestone("Spanish (Mexico)", 250_000)
    delayed = milestone("App store listings", 150_000, release_delay_days=7)
    for funded in (disputed, resolved, cancelled, delayed):
        demo.as_(yuki, milestones.fund, funded.id)
    for delivered in (disputed, resolved, delayed):
        demo.as_(
            ana,
            milestones.submit,
            delivered.id,
            note="Translations delivered.",
            evidence=[{"type": "link", "url": "https://translate.example/project/9/export"}],
        )
    # An open dispute with a settlement offer on the table.
    dispute = demo.as_(
        yuki,
        disputes.open_dispute,
        disputed.id,
        reason="About a third of the strings are machine translation, unreviewed.",
    )
    demo.as_(ana, disputes.make_offer, dispute.id, to_freelancer=200_000)
    # A dispute staff resolved with a split.
    dispute2 = demo.as_(
        ana,
        disputes.open_dispute,
        resolved.id,
        reason="The client has not reviewed for three weeks.",
    )
    demo.as_(
        staff,
        disputes.resolve,
        dispute2.id,
        to_freelancer=240_000,
        to_client=60_000,
        note="Delivered work is complete except the glossary; 80/20 split.",
    )
    # The freelancer cancels one: the escrow goes back to the client.
    demo.as_(ana, milestones.cancel, cancelled.id, reason="Out of capacity this quarter.")
    # Approved, waiting out its 7-day release delay.
    demo.as_(yuki, milestones.approve, delayed.id)
    account = demo.as_(
        ana,
        destinations.add_destination,
        holder_name="Ana Souza",
        label="Personal account",
        iban="GB82 WEST 1234 5698 7654 32",
    )
    demo.as_(
        ana,
        wallets.create_payout,
        amount=100_000,
        currency="JPY",
        provider="manual",
        destination_id=account.id,
    )


def _open_project(demo: _Demo) -> None:
    omar, lucas = "omar@brightlabs.example", "lucas@freelance.example"
    project = demo.as_(
        omar,
        projects.create_project,
        title="Data pipeline audit",
        currency="USD",
        description="Review our ETL jobs for correctness and cost; open for proposals.",
    )
    early = demo.as_(
        omar,
        milestones.create_milestone,
        project.id,
        title="Audit report",
        amount=150_000,
        acceptance_criteria=["Every job reviewed", "Findings ranked by cost saved"],
        required_evidence=["Audit report (PDF)"],
    )
    demo.as_(omar, milestones.fund, early.id)  # funds reserved before the award
    demo.as_(
        lucas,
        projects.create_proposal,
        project.id,
        amount=150_000,
        milestones=[{"title": "Audit report", "amount": 150_000}],
    )
    demo.as_(omar, milestones.create_milestone, project.id, title="Follow-up fixes", amount=100_000)
    demo.deposit(omar, 250_000, "USD", provider="manual")  # a bank transfer waiting for staff
