"""The dashboard in a browser: money over time and the forecast, payouts, and manual deposits."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from playwright.sync_api import expect
from sqlalchemy import select

from milepost.demo import DEMO_PASSWORD, load_demo
from milepost.kit.db import Database
from milepost.ledger.models import Account, AccountKind, EntryKind, JournalEntry, Posting
from milepost.milestones import service as milestones
from milepost.money import format_money
from milepost.settings import Settings
from milepost.wallets.models import Deposit, DepositStatus, Payout, PayoutStatus
from tests.api.conftest import LiveServer
from tests.web.conftest import Shots, csrf_from, log_in
from tests.world import World


def _monday(day: date) -> date:
    return day - timedelta(days=day.weekday())


def _usd(amount: int) -> str:
    return format_money(amount, "USD")


def _escrow_by_week(world: World, milestone_ids: list[str]) -> dict[date, dict[str, int]]:
    """What the ledger says moved through these milestones' escrow accounts, per week (UTC)."""
    names = {EntryKind.FUND: "funded", EntryKind.RELEASE: "released", EntryKind.REFUND: "refunded"}
    weeks: dict[date, dict[str, int]] = {}
    with world.db.read_only() as session:
        rows = session.execute(
            select(JournalEntry.kind, JournalEntry.created_at, Posting.amount)
            .join(Posting, Posting.entry_id == JournalEntry.id)
            .join(Account, Account.id == Posting.account_id)
            .where(Account.kind == AccountKind.ESCROW, Account.milestone_id.in_(milestone_ids))
        ).all()
    for kind, created_at, amount in rows:
        week = weeks.setdefault(_monday(created_at.date()), {})
        week[names[kind]] = week.get(names[kind], 0) + abs(amount)
    return weeks


def _table(page: Any, chart_id: str) -> dict[str, list[str]]:
    """The chart's table, opened as a reader would: week -> the row's cells."""
    page.locator(f"#{chart_id} + details summary").click()
    rows: dict[str, list[str]] = {}
    for row in page.locator(f"#{chart_id}-table tbody tr").all():
        rows[row.locator("th").inner_text()] = [
            cell.inner_text() for cell in row.locator("td").all()
        ]
    return rows


def test_the_client_sees_money_over_time_and_the_forecast(
    new_page: Any, shot: Shots, world: World
) -> None:
    now = datetime.now(UTC)
    today = now.date()
    client, freelancer, project = world.parties()
    paid = world.milestone(client, project, 30_000, title="Design")
    world.act(client, milestones.fund, paid.id, now=now - timedelta(days=15))
    world.act(client, milestones.release, paid.id, amount=10_000, now=now - timedelta(days=8))
    dropped = world.milestone(client, project, 50_000, title="Mobile app")
    world.act(client, milestones.fund, dropped.id, now=now - timedelta(days=15))
    world.act(freelancer, milestones.cancel, dropped.id, now=now - timedelta(days=8))
    world.milestone(client, project, 20_000, title="Hosting", fund_by=today + timedelta(days=10))
    working = world.milestone(
        client, project, 40_000, title="Backend", due_date=today + timedelta(20)
    )
    world.act(client, milestones.fund, working.id)

    page = new_page()
    log_in(page, client.email)
    chart = page.locator("svg#history-USD")
    assert chart.get_attribute("role") == "img"
    assert chart.locator("rect.bar").count() == 12 * 3  # twelve weeks, three series
    legend = chart.locator(".legend-label").all_text_contents()
    assert legend == ["Funded into escrow", "Released from escrow", "Refunded from escrow"]
    shot(page, "dashboard-charts")

    ledger = _escrow_by_week(world, [paid.id, dropped.id, working.id])
    assert len(ledger) >= 2  # the test placed movements in more than one week
    table = _table(page, "history-USD")
    assert len(table) == 12
    for week, moved in ledger.items():
        assert table[week.isoformat()] == [
            _usd(moved.get(key, 0)) for key in ("funded", "released", "refunded")
        ], week
    quiet = [week for week in table if date.fromisoformat(week) not in ledger]
    assert all(table[week] == ["$0.00"] * 3 for week in quiet)

    forecast = _table(page, "forecast-USD")
    assert page.locator("svg#forecast-USD rect.bar").count() == 8 * 2
    assert forecast[_monday(today + timedelta(days=10)).isoformat()][0] == _usd(20_000)
    assert forecast[_monday(today + timedelta(days=20)).isoformat()][1] == _usd(40_000)
    # Design's remaining escrow (no due date) is not placed; the line under the chart says so.
    assert "1 open milestone without a date is not shown" in page.locator(
        "#forecast-assumptions"
    ).inner_text().replace("\n", " ")
    shot(page, "dashboard-chart-tables")


def test_a_payout_larger_than_the_balance_is_refused_then_a_valid_one_goes_through(
    new_page: Any, shot: Shots, world: World
) -> None:
    client, freelancer, project = world.parties()
    milestone = world.milestone(client, project, 50_000)
    world.act(client, milestones.fund, milestone.id)
    world.act(client, milestones.release, milestone.id)
    available = world.balance(freelancer)
    assert available == 45_000  # 50,000 less the 10% fee
    account = world.destination(freelancer)

    page = new_page()
    log_in(page, freelancer.email)
    form = page.locator("#payout-form")
    before = world.snapshot()
    for typed, message in (
        ("450.01", "The wallet holds $450.00; $450.01 is needed."),
        ("12,3.4.5", "Write amounts like 1,234.50"),
    ):
        form.get_by_label("Amount to withdraw").fill(typed)
        form.get_by_role("button", name="Withdraw").click()
        error = page.locator("#payout-amount-error")
        assert message in error.inner_text()
        assert page.locator("#payout-amount").get_attribute("aria-describedby") == (
            "payout-amount-error"
        )
        assert page.locator("#payout-amount").input_value() == typed  # what was typed is kept
        assert world.snapshot() == before
    shot(page, "payout-refused")

    form = page.locator("#payout-form")
    form.get_by_label("Amount to withdraw").fill("150")
    form.get_by_label("Currency to withdraw").select_option("USD")
    form.get_by_role("button", name="Withdraw").click()
    assert page.locator("#payout-amount-error").count() == 0
    assert world.balance(freelancer) == available - 15_000
    assert page.locator("#balances .available").inner_text() == _usd(available - 15_000)

    # By bank transfer: the money leaves the balance at once and waits for staff to send it.
    form = page.locator("#payout-form")
    form.get_by_label("Amount to withdraw").fill("100")
    form.get_by_label("Bank transfer").check()
    form.get_by_role("button", name="Withdraw").click()
    assert world.balance(freelancer) == available - 25_000
    with world.db.read_only() as session:
        [pending] = session.scalars(
            select(Payout).where(
                Payout.user_id == freelancer.id, Payout.status == PayoutStatus.PENDING
            )
        ).all()
    assert pending.destination_id == account.id  # the only bank account, chosen for them
    item = page.locator("#pending .pending-payout")
    assert "$100.00" in item.inner_text() and pending.reference in item.inner_text()
    assert "waiting for staff" in item.inner_text()
    shot(page, "payout-pending")


def test_a_user_adds_a_bank_account_and_withdraws_to_it(
    new_page: Any, shot: Shots, world: World
) -> None:
    freelancer = world.user("freelancer")
    world.deposit(freelancer, 80_000)
    page = new_page()
    log_in(page, freelancer.email)
    page.goto("/settings")
    form = page.locator("#destination-form")
    form.get_by_label("Account holder's name").fill("Fran Example")
    form.get_by_label("Label (optional)").fill("Savings")
    before = world.snapshot()
    form.get_by_label("IBAN", exact=True).fill("DE89 3704 0044 0532 0130 01")  # one digit off
    form.get_by_role("button", name="Add bank account").click()
    error = page.locator("#destination-iban-error")
    assert "not a valid IBAN" in error.inner_text()
    assert page.locator("#destination-iban").get_attribute("aria-invalid") == "true"
    assert page.locator("#destination-holder_name").input_value() == "Fran Example"  # kept
    assert world.snapshot() == before
    shot(page, "bad-iban")

    page.locator("#destination-iban").fill("DE89 3704 0044 0532 0130 00")
    page.get_by_role("button", name="Add bank account").click()
    expect(page.locator("#destination-added")).to_be_visible()
    listed = page.locator("#bank-accounts").inner_text()
    assert "Savings" in listed and "DE89 •••• •••• 3000" in listed
    assert "3704 0044" not in page.content()  # the owner sees it masked
    shot(page, "bank-account-added")

    page.goto("/")
    form = page.locator("#payout-form")
    form.get_by_label("Amount to withdraw").fill("300")
    form.get_by_label("Bank transfer").check()
    form.get_by_label("Send it to (bank account)").select_option(
        label="Savings (DE89 •••• •••• 3000, Fran Example)"
    )
    form.get_by_role("button", name="Withdraw").click()
    expect(page.locator("#pending .pending-payout")).to_contain_text(
        "$300.00 by bank transfer to Savings"
    )
    assert world.balance(freelancer) == 50_000
    with world.db.read_only() as session:
        [payout] = session.scalars(select(Payout).where(Payout.user_id == freelancer.id)).all()
        assert payout.destination is not None
        assert (payout.status, payout.destination.iban) == (
            PayoutStatus.PENDING,
            "DE89370400440532013000",
        )
    shot(page, "payout-to-bank-account")

    # Removed, it is no longer offered; the pending payout still goes there.
    page.goto("/settings")
    page.get_by_role("button", name="Remove Savings").click()
    expect(page.locator("#bank-accounts")).to_contain_text("No bank accounts yet")
    page.goto("/")
    assert page.locator("#payout-destination").count() == 0
    assert "add one in Settings" in page.locator("#payout-destination-hint").inner_text()


def test_a_manual_deposit_shows_its_reference_and_waits_for_staff(
    new_page: Any, shot: Shots, world: World
) -> None:
    client = world.user("client")
    world.deposit(client, 10_000)
    page = new_page()
    log_in(page, client.email)
    form = page.locator("#deposit-form")
    form.get_by_label("Amount").fill("2,500")
    form.get_by_label("Bank transfer").check()
    form.get_by_role("button", name="Deposit").click()

    with world.db.read_only() as session:
        [deposit] = session.scalars(
            select(Deposit).where(Deposit.user_id == client.id, Deposit.provider == "manual")
        ).all()
    assert deposit.status is DepositStatus.PENDING and deposit.amount == 250_000
    item = page.locator("#pending .pending-deposit")
    assert deposit.reference in page.locator("#pending .reference").first.inner_text()
    assert "$2,500.00" in item.inner_text()
    assert "Waiting for staff to confirm" in item.inner_text()
    assert world.balance(client) == 10_000  # nothing arrives until staff confirm
    assert page.locator("#balances .available").inner_text() == "$100.00"
    shot(page, "deposit-pending")


def test_the_wallet_forms_offer_only_the_enabled_providers(db: Database, tmp_path: Path) -> None:
    """A production server (manual only) shows no sandbox choice, and a sandbox deposit forged into the
    form is refused like any unknown provider."""
    settings = Settings(fee_bps=1000, files_dir=str(tmp_path / "files"), providers="manual")
    world = World(db, settings)
    user = world.user("fran")
    with LiveServer(db, settings) as url, httpx.Client(base_url=url, timeout=60) as http:
        login_token = csrf_from(http.get("/login").text)
        http.post(
            "/login",
            data={
                "email": user.email,
                "password": "correct horse battery",
                "csrf_token": login_token,
            },
        )
        html = http.get("/").text
        assert 'value="sandbox"' not in html and "Sandbox" not in html
        assert 'id="deposit-provider-manual" name="provider" value="manual"' in html
        before = world.snapshot()
        forged = http.post(
            "/deposits",
            data={
                "amount": "1000000",
                "currency": "USD",
                "provider": "sandbox",
                "csrf_token": csrf_from(html),
            },
        )
        assert forged.status_code == 422
        assert "not available here" in forged.text
        assert world.snapshot() == before and world.balance(user) == 0


def test_the_payout_form_refuses_a_missing_token_and_needs_a_session(
    base_url: str, world: World
) -> None:
    freelancer = world.user("freelancer")
    world.deposit(freelancer, 30_000)
    http = httpx.Client(base_url=base_url, timeout=60)
    login_token = csrf_from(http.get("/login").text)
    http.post(
        "/login",
        data={
            "email": freelancer.email,
            "password": "correct horse battery",
            "csrf_token": login_token,
        },
    )
    assert "milepost_session" in http.cookies
    before = world.snapshot()
    for token in ("", "forged"):
        refused = http.post(
            "/payouts", data={"amount": "100", "currency": "USD", "csrf_token": token}
        )
        assert refused.status_code == 403
        assert world.snapshot() == before
    signed_out = httpx.post(
        f"{base_url}/payouts", data={"amount": "100", "currency": "USD", "csrf_token": "x"}
    )
    assert signed_out.status_code == 403 and world.snapshot() == before
    assert httpx.get(f"{base_url}/").headers["location"] == "/login"
    http.close()


def test_charts_and_wallet_fit_a_phone(new_page: Any, shot: Shots, world: World) -> None:
    client, _freelancer, project = world.parties()
    milestone = world.milestone(client, project, 120_000, due_date=date.today() + timedelta(9))
    world.act(client, milestones.fund, milestone.id)
    page = new_page(width=375)
    log_in(page, client.email)
    assert page.locator("svg#history-USD").is_visible()
    assert page.evaluate("document.documentElement.scrollWidth") <= 375
    box = page.locator("svg#forecast-USD").bounding_box()
    assert box is not None and box["width"] <= 375
    shot(page, "dashboard-phone-charts")


# Who in the demo finds what first, the link that deals with it, and the form it leads to.
DEMO_NEEDS = [
    (
        "dana@northwind.example",
        "outgoing",
        "Review the delivery of “Customizations and integrations”",
        "Approve and release",
    ),
    (
        "yuki@kobe-apps.example",
        "outgoing",
        "Answer the settlement offer on “Portuguese (Brazil)”",
        "Accept this offer and settle",
    ),
    (
        "lucas@freelance.example",
        "incoming",
        "The client asks to cancel “Catalogue and search”",
        "Accept: cancel and refund the client",
    ),
    ("staff@milepost.example", "outgoing", "2 bank transfers to confirm or send", None),
]


def test_each_person_of_the_demo_finds_what_needs_them_on_the_first_screen(
    db: Database, new_page: Any, shot: Shots
) -> None:
    load_demo(db)
    for email, tab, first, button in DEMO_NEEDS:
        page = new_page(width=390)
        log_in(page, email, DEMO_PASSWORD)
        who = email.split("@")[0]
        shot(page, f"{who}-needs-you")
        # The dashboard opens on the side the person works on, with what needs them on top.
        assert page.locator(".tabs [aria-current=page]").get_attribute("href") == f"/?tab={tab}"
        needs = page.locator("#needs-you li")
        link = needs.get_by_role("link", name=first)
        assert link.is_visible(), page.locator("#needs-you").inner_text()
        box = page.locator("#needs-you").bounding_box()
        assert box is not None and box["y"] < 800, box  # on the first screen of a phone
        link.click()
        if button is None:
            assert page.get_by_role("heading", name="Staff").is_visible()
        else:
            assert page.get_by_role("button", name=button).is_visible()
    # Priya waits for the client only: nothing needs her, and her dashboard says so.
    page = new_page()
    log_in(page, "priya@freelance.example", DEMO_PASSWORD)
    assert page.locator("#needs-you").inner_text().endswith("Nothing needs you right now.")
    assert page.locator(".tabs [aria-current=page]").get_attribute("href") == "/?tab=incoming"
