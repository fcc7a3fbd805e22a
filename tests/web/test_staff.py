"""Staff pages in a real browser: the dispute queue and resolving with a split, confirming a manual deposit
and marking a payout paid, the ledger check; and over plain HTTP, that nobody else can reach them."""

from __future__ import annotations

import io
from datetime import timedelta
from typing import Any

import httpx
import pytest
from playwright.sync_api import expect

from milepost.disputes import service as disputes
from milepost.disputes.models import Dispute, DisputeStatus, Resolution
from milepost.files import service as files
from milepost.kit.db import Database
from milepost.kit.time import utcnow
from milepost.milestones import service as milestones
from milepost.milestones.state import MilestoneStatus
from milepost.settings import Settings
from milepost.users.models import User
from milepost.wallets import service as wallets
from milepost.wallets.models import Deposit, DepositStatus, Payout, PayoutStatus
from tests.web.conftest import Shots, confirm, confirmed_post, csrf_from, log_in
from tests.world import PASSWORD, World

DAY = timedelta(days=1)
FEE = "platform_fee:USD"


@pytest.fixture
def world(db: Database, settings: Settings) -> World:
    """The world with the live server's settings (its files directory, its 10% fee)."""
    return World(db, settings)


def _disputed(
    world: World, title: str, *, opened_days_ago: int = 0
) -> tuple[User, User, Dispute, str]:
    """A $1,000.00 milestone, delivered with a link and a file, that the client disputes; the freelancer
    answers with an offer, so after the mediation window it waits for staff. Returns the file's id too."""
    client, freelancer, project = world.parties()
    milestone = world.milestone(
        client, project, 100_000, title=title, acceptance_criteria=["The report loads in 2 s"]
    )
    opened_at = utcnow() - opened_days_ago * DAY
    world.act(client, milestones.fund, milestone.id, now=opened_at - 2 * DAY)
    blob = files.stage(world.settings, io.BytesIO(b"load time: 9 s\n"))
    upload = world.act(freelancer, files.create_file, blob, filename="timings.txt")
    world.act(
        freelancer,
        milestones.submit,
        milestone.id,
        note=f"{title} delivered",
        evidence=[
            {"type": "link", "url": f"https://example.com/{milestone.id}"},
            {"type": "file", "file_id": upload.id},
        ],
        now=opened_at - DAY,
    )
    dispute = world.act(
        client, disputes.open_dispute, milestone.id, reason=f"{title}: too slow", now=opened_at
    )
    world.act(freelancer, disputes.make_offer, dispute.id, to_freelancer=80_000, now=opened_at)
    return client, freelancer, dispute, upload.id


def _staff(world: World) -> User:
    return world.user("staffer", staff=True)


def _dispute(world: World, dispute_id: str) -> Dispute:
    with world.db.read_only() as session:
        found = session.get(Dispute, dispute_id)
        assert found is not None
        return found


def test_a_staff_user_resolves_a_dispute(new_page: Any, shot: Shots, world: World) -> None:
    # Opened first but just now; then one opened 15 days ago, past the 14-day mediation window.
    _disputed(world, "Recent report")
    client, freelancer, overdue, file_id = _disputed(world, "Old report", opened_days_ago=15)
    milestone_id = overdue.milestone_id
    staff = _staff(world)
    client_before, fee_before = world.balance(client), world.account_balance(FEE)

    page = new_page()
    log_in(page, staff.email)
    page.get_by_role("link", name="Staff", exact=True).click()
    expect(page.get_by_role("heading", name="Staff", exact=True)).to_be_visible()
    queue = page.locator("#dispute-queue > li")
    assert queue.count() == 2
    assert "Overdue" in queue.nth(0).inner_text()
    assert "Old report" in queue.nth(0).inner_text()
    assert "Recent report" in queue.nth(1).inner_text()
    assert "Overdue" not in queue.nth(1).inner_text()
    shot(page, "queue")

    page.get_by_role("link", name="Old report").click()
    expect(page.get_by_role("heading", name="Dispute: Old report")).to_be_visible()
    body = page.locator("main").inner_text()
    for expected in (
        "Old report: too slow",  # the reason
        "The report loads in 2 s",  # the acceptance criterion
        "Old report delivered",  # the delivery note
        "Overdue: past the mediation window",
        "$800.00 to the freelancer (of which $80.00 platform fee), $200.00 to the client",
    ):
        assert expected in body, expected
    assert page.get_by_role("link", name=f"https://example.com/{milestone_id}").is_visible()
    assert page.get_by_role("link", name="timings.txt").get_attribute("href") == (
        f"/files/{file_id}"
    )
    assert page.locator("#escrow").inner_text() == "$1,000.00"
    shot(page, "dispute")

    # More than the escrow: refused next to the field, and nothing changes.
    before = world.snapshot()
    page.get_by_label("To the freelancer (USD)").fill("1000.01")
    page.get_by_role("button", name="Resolve: pay the split").click()
    assert page.locator("#to_freelancer-error").inner_text() == (
        "The escrow holds $1,000.00; the freelancer's part cannot be more than that."
    )
    assert page.get_by_label("To the freelancer (USD)").get_attribute("aria-invalid") == "true"
    assert world.snapshot() == before
    shot(page, "resolve-refused")

    page.get_by_label("To the freelancer (USD)").fill("600.00")
    page.get_by_label("Reasoning, for both parties (optional)").fill("Slow, but it works.")
    page.get_by_role("button", name="Resolve: pay the split").click()
    # Both parts and the fee, before anything moves; going back changes nothing.
    statement = page.locator("#statement").inner_text()
    assert statement.startswith(
        "$1,000.00 leaves the escrow: Freelancer receives $540.00, the platform fee is $60.00 and "
        "Client gets $400.00 back."
    ), statement
    assert world.snapshot() == before
    page.get_by_role("link", name="No, go back").click()
    assert page.locator("#dispute-status").inner_text() == "open"
    assert world.snapshot() == before
    page.get_by_label("To the freelancer (USD)").fill("600.00")
    page.get_by_label("Reasoning, for both parties (optional)").fill("Slow, but it works.")
    page.get_by_role("button", name="Resolve: pay the split").click()
    confirm(page)
    expect(page.locator("#dispute-status")).to_have_text("resolved")
    assert "$600.00 to the freelancer (before the fee), $400.00 to the client" in (
        page.locator("#outcome").inner_text()
    )
    assert page.get_by_role("button", name="Resolve: pay the split").count() == 0
    assert (
        "$800.00 to the freelancer, $200.00 to the client" in page.locator("#offers").inner_text()
    )
    assert "dispute resolved by the staff (disputed → resolved): $1,000.00" in (
        page.locator(".timeline").inner_text()
    )
    shot(page, "resolved")

    resolved = _dispute(world, overdue.id)
    assert (resolved.status, resolved.resolution, resolved.resolved_by) == (
        DisputeStatus.RESOLVED,
        Resolution.STAFF,
        staff.id,
    )
    assert world.get(milestone_id).status is MilestoneStatus.RESOLVED
    assert world.get(milestone_id).fee_amount == 6_000
    assert world.balance(freelancer) == 54_000  # $600.00 less the 10% fee
    assert world.balance(client) == client_before + 40_000
    assert world.account_balance(FEE) == fee_before + 6_000

    page.set_viewport_size({"width": 375, "height": 800})  # and at phone width, nothing sticks out
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    shot(page, "resolved-phone")

    page.goto("/staff")
    assert page.locator("#dispute-queue > li").count() == 1  # only the recent one is left
    assert "Recent report" in page.locator("#dispute-queue").inner_text()


def _manual_payout(world: World, user: User, amount: int, **account: Any) -> Payout:
    destination = world.destination(user, **account)
    return world.act(
        user,
        wallets.create_payout,
        amount=amount,
        currency="USD",
        provider="manual",
        destination_id=destination.id,
    )


def test_staff_reject_a_deposit_and_fail_a_payout_with_a_reason(
    new_page: Any, shot: Shots, world: World
) -> None:
    staff = _staff(world)
    ann, bob = world.user("ann"), world.user("bob")
    deposit = world.act(
        ann, wallets.create_deposit, amount=250_000, currency="USD", provider="manual"
    )
    world.deposit(bob, 50_000)
    payout = _manual_payout(
        world,
        bob,
        20_000,
        holder_name="Robert Example",
        account_number="000123456789",
        routing_number="021000021",
        label="Checking",
    )
    assert world.balance(bob) == 30_000

    page = new_page()
    log_in(page, staff.email)
    page.goto("/staff")
    # Staff see the whole account they are to send the money to.
    bank = page.locator(f"#destination-{payout.id}").inner_text()
    assert "Robert Example" in bank and "000123456789" in bank and "021000021" in bank
    shot(page, "pending")

    # A reason is required: the browser will not send the form without one.
    before = world.snapshot()
    reject = page.get_by_role("button", name=f"Reject: never arrived ({deposit.reference})")
    reject.click()
    reason = page.get_by_label(f"Reason for rejecting {deposit.reference}")
    assert reason.evaluate("element => element.validity.valueMissing") is True
    assert world.snapshot() == before
    reason.fill("No transfer with this reference arrived in 30 days.")
    reject.click()
    expect(page.get_by_text("No deposits waiting.")).to_be_visible()
    assert world.balance(ann) == 0

    page.get_by_label(f"Why {payout.reference} failed").fill("Account closed (R02).")
    page.get_by_role(
        "button", name=f"Mark failed: return $200.00 to Bob's wallet ({payout.reference})"
    ).click()
    expect(page.get_by_text("No payouts waiting.")).to_be_visible()
    assert world.balance(bob) == 50_000
    with world.db.read_only() as session:
        rejected, failed = session.get(Deposit, deposit.id), session.get(Payout, payout.id)
    assert rejected is not None and rejected.status is DepositStatus.REJECTED
    assert rejected.rejection_reason == "No transfer with this reference arrived in 30 days."
    assert failed is not None and failed.status is PayoutStatus.FAILED
    assert failed.failure_reason == "Account closed (R02)."
    shot(page, "rejected-and-failed")

    # Each customer hears why, in the app.
    for user, says in ((ann, "30 days"), (bob, "Account closed (R02).")):
        customer = new_page()
        log_in(customer, user.email)
        customer.goto("/notifications")
        expect(customer.locator("main")).to_contain_text(says)


def test_staff_confirm_a_manual_deposit_and_mark_a_payout_paid(
    new_page: Any, shot: Shots, world: World
) -> None:
    staff = _staff(world)
    ann, bob = world.user("ann"), world.user("bob")
    deposit = world.act(
        ann, wallets.create_deposit, amount=250_000, currency="USD", provider="manual"
    )
    world.deposit(bob, 50_000)
    payout = _manual_payout(world, bob, 20_000)
    assert (world.balance(ann), world.balance(bob)) == (0, 30_000)

    page = new_page(width=375)  # staff check transfers on the phone too
    log_in(page, staff.email)
    expect(page.get_by_role("link", name="Staff", exact=True)).to_be_visible()  # signed in
    page.goto("/staff")
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    deposits = page.locator("#pending-deposits").inner_text()
    assert "Ann" in deposits and "$2,500.00" in deposits and deposit.reference in deposits
    shot(page, "pending")

    page.get_by_role(
        "button", name=f"Confirm received: $2,500.00 from Ann ({deposit.reference})"
    ).click()
    # A pause first: crediting money that has not arrived cannot be taken back.
    assert world.balance(ann) == 0
    assert confirm(page) == (
        "$2,500.00 comes into Milepost from outside: Ann receives $2,500.00.\n"
        "Confirm it only once the bank shows Ann's transfer of $2,500.00 with the reference "
        f"{deposit.reference}.\n"
        "This cannot be undone."
    )
    expect(page.get_by_text("No deposits waiting.")).to_be_visible()
    assert world.balance(ann) == 250_000

    page.get_by_role("button", name=f"Mark paid: $200.00 to Bob ({payout.reference})").click()
    assert "Mark it paid only once you have sent $200.00" in confirm(page)
    expect(page.get_by_text("No payouts waiting.")).to_be_visible()
    with world.db.read_only() as session:
        confirmed, paid = session.get(Deposit, deposit.id), session.get(Payout, payout.id)
    assert confirmed is not None and confirmed.status is DepositStatus.SUCCEEDED
    assert paid is not None and paid.status is PayoutStatus.PAID
    assert world.balance(bob) == 30_000  # the money left the wallet when the payout was asked for
    shot(page, "confirmed")

    page.get_by_role("button", name="Verify the ledger now").click()
    expect(page.locator("#ledger-status")).to_contain_text("Ledger verifies: ")
    status = page.locator("#ledger-status").inner_text()
    assert status.startswith("Ledger verifies: ")
    report = world.verify()
    assert report.ok
    assert f"{report.entries} entries, {report.accounts} accounts checked" in status
    shot(page, "ledger")


def _session(base_url: str, email: str) -> httpx.Client:
    """A browser-like session over plain HTTP, logged in through the form."""
    http = httpx.Client(base_url=base_url, timeout=60)
    token = csrf_from(http.get("/login").text)
    response = http.post("/login", data={"email": email, "password": PASSWORD, "csrf_token": token})
    assert response.status_code == 303, response.text
    return http


def test_nobody_but_staff_reaches_the_staff_pages(world: World, base_url: str) -> None:
    client, freelancer, dispute, _ = _disputed(world, "Report")
    ann = world.user("ann")
    deposit = world.act(
        ann, wallets.create_deposit, amount=9_000, currency="USD", provider="manual"
    )
    world.deposit(ann, 5_000)
    payout = _manual_payout(world, ann, 1_000)
    before = world.snapshot()
    for user in (client, freelancer, ann):
        http = _session(base_url, user.email)
        token = csrf_from(http.get("/").text)
        for path in ("/staff", f"/staff/disputes/{dispute.id}", "/staff?verify=1"):
            response = http.get(path)
            assert response.status_code == 404, path
            assert "Not found" in response.text
        for path, data in (
            (f"/staff/disputes/{dispute.id}/resolve", {"to_freelancer": "1000.00"}),
            (f"/staff/deposits/{deposit.id}/confirm", {}),
            (f"/staff/payouts/{payout.id}/mark-paid", {}),
            (f"/staff/deposits/{deposit.id}/reject", {"reason": "never came"}),
            (f"/staff/payouts/{payout.id}/fail", {"reason": "bounced"}),
        ):
            response = http.post(path, data={**data, "csrf_token": token})
            assert response.status_code == 404, path
    assert world.snapshot() == before
    assert world.balance(ann) == 4_000  # the manual deposit still waits

    # Signed out: to the log-in page.
    anonymous = httpx.Client(base_url=base_url, timeout=60)
    assert anonymous.get("/staff").headers["location"] == "/login"
    assert anonymous.get(f"/staff/disputes/{dispute.id}").headers["location"] == "/login"


def test_the_resolve_form_refuses_a_foreign_csrf_token(world: World, base_url: str) -> None:
    _, _, dispute, _ = _disputed(world, "Report")
    staff = _session(base_url, _staff(world).email)
    other_staff = _session(base_url, _staff(world).email)
    before = world.snapshot()
    for token in ("", csrf_from(other_staff.get("/staff").text)):
        response = staff.post(
            f"/staff/disputes/{dispute.id}/resolve",
            data={"to_freelancer": "500.00", "csrf_token": token},
        )
        assert response.status_code == 403
        assert "Nothing was changed" in response.text
    assert world.snapshot() == before
    assert _dispute(world, dispute.id).status is DisputeStatus.OPEN


def test_staff_who_are_a_party_are_refused_alike_by_the_api_and_the_staff_page(
    world: World, base_url: str
) -> None:
    """A staff member who is the client of a disputed milestone may read it but not rule on it: 403
    staff_is_party from the API and from the staff page's form, which does not offer the form at all."""
    staff_client, freelancer = _staff(world), world.user("freelancer")
    world.deposit(staff_client, 100_000)
    project = world.project(staff_client, freelancer)
    milestone = world.milestone(staff_client, project, 100_000)
    world.act(staff_client, milestones.fund, milestone.id)
    dispute = world.act(freelancer, disputes.open_dispute, milestone.id, reason="Unpaid")
    message = "You are the client on this milestone: another staff member must resolve it."
    before = world.snapshot()

    token = httpx.post(
        f"{base_url}/v1/tokens", json={"email": staff_client.email, "password": PASSWORD}
    ).json()["token"]
    api = httpx.Client(base_url=base_url, timeout=60, headers={"Authorization": f"Bearer {token}"})
    refused = api.post(
        f"/v1/disputes/{dispute.id}/resolve", json={"to_freelancer": 0, "to_client": 100_000}
    )
    assert refused.status_code == 403, refused.text
    error = refused.json()["error"]
    assert (error["type"], error["code"], error["message"]) == (
        "permission",
        "staff_is_party",
        message,
    )

    web = _session(base_url, staff_client.email)
    page = web.get(f"/staff/disputes/{dispute.id}")
    assert page.status_code == 200
    assert f'action="/staff/disputes/{dispute.id}/resolve"' not in page.text
    assert message in page.text
    response = web.post(
        f"/staff/disputes/{dispute.id}/resolve",
        data={"to_freelancer": "0.00", "csrf_token": csrf_from(page.text)},
    )
    assert response.status_code == 403
    assert message in response.text
    assert world.snapshot() == before
    assert _dispute(world, dispute.id).status is DisputeStatus.OPEN

    # Any other staff member is offered the form, and it goes through.
    other = _session(base_url, _staff(world).email)
    page = other.get(f"/staff/disputes/{dispute.id}")
    assert f'action="/staff/disputes/{dispute.id}/resolve"' in page.text
    assert message not in page.text
    response = confirmed_post(
        other,
        f"/staff/disputes/{dispute.id}/resolve",
        {"to_freelancer": "0.00", "csrf_token": csrf_from(page.text)},
    )
    assert response.status_code == 303
    assert _dispute(world, dispute.id).status is DisputeStatus.RESOLVED


def test_the_parties_and_staff_talk_in_the_dispute(
    new_page: Any, shot: Shots, world: World
) -> None:
    client, freelancer, dispute, file_id = _disputed(world, "Slow report")
    world.act(
        freelancer,
        disputes.post_message,
        dispute.id,
        body="The timings were measured on their old server",
        attachments=[{"type": "file", "file_id": file_id}],
    )
    staff = _staff(world)

    page = new_page()
    log_in(page, client.email)
    page.goto(f"/milestones/{dispute.milestone_id}")
    conversation = page.locator("#conversation")
    assert "The timings were measured on their old server" in conversation.inner_text()
    assert "the freelancer" in conversation.inner_text()
    attached = conversation.get_by_role("link", name="timings.txt")
    assert attached.get_attribute("href") == f"/files/{file_id}"
    before = world.snapshot()
    page.get_by_role("button", name="Send the message").click(no_wait_after=True)
    # An empty message is stopped (by the browser, or refused by the server): nothing is kept.
    assert world.snapshot() == before
    # A file that may not be uploaded is refused by the form, and nothing is kept.
    page.get_by_label("Write to the other party and staff").fill("Here is the tool")
    page.get_by_label("Attach files").set_input_files(
        {"name": "tool.exe", "mimeType": "application/octet-stream", "buffer": b"MZ\x90\x00" * 64}
    )
    page.get_by_role("button", name="Send the message").click()
    expect(page.locator("#post_message-error")).to_be_visible()
    assert world.snapshot() == before
    # The client answers with the server's move record attached, and a link.
    page.get_by_label("Write to the other party and staff").fill("We moved it in March")
    page.get_by_label("Attach files").set_input_files(
        {
            "name": "move.txt",
            "mimeType": "text/plain",
            "buffer": b"Moved to the new server 2026-03-02",
        }
    )
    page.get_by_label("Attach links").fill("https://status.example.com/2026-03")
    page.get_by_role("button", name="Send the message").click()
    expect(page.locator("#conversation > li")).to_have_count(2)
    mine = page.locator("#conversation > li").nth(1)
    expect(mine.get_by_role("link", name="move.txt")).to_be_visible()
    assert "https://status.example.com/2026-03" in mine.inner_text()
    shot(page, "client-conversation")

    staff_page = new_page()
    log_in(staff_page, staff.email)
    staff_page.goto(f"/staff/disputes/{dispute.id}")
    assert "We moved it in March" in staff_page.locator("#conversation").inner_text()
    # Staff can open what the client attached.
    move = staff_page.locator("#conversation").get_by_role("link", name="move.txt")
    download = staff_page.request.get(move.get_attribute("href") or "")
    assert download.status == 200 and download.body() == b"Moved to the new server 2026-03-02"
    staff_page.get_by_label("Write to the other party and staff").fill("Send the March invoice")
    staff_page.get_by_label("Attach links").fill("https://example.com/invoice-policy")
    staff_page.get_by_role("button", name="Send the message").click()
    expect(staff_page.locator("#conversation > li")).to_have_count(3)
    assert (
        f"{staff.name}, the staff" in staff_page.locator("#conversation > li").nth(2).inner_text()
    )
    shot(staff_page, "staff-conversation")

    said = world.act(client, disputes.list_messages, dispute.id)
    assert [(m.author_role, m.body) for m in said] == [
        ("freelancer", "The timings were measured on their old server"),
        ("client", "We moved it in March"),
        ("staff", "Send the March invoice"),
    ]
    assert [item["type"] for item in said[1].attachments] == ["link", "file"]
    assert said[1].attachments[0]["url"] == "https://status.example.com/2026-03"
    assert said[2].attachments == [{"type": "link", "url": "https://example.com/invoice-policy"}]
