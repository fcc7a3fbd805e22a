"""Receipts: one per release, its figures from the ledger entry's postings, as JSON, HTML and PDF."""

from __future__ import annotations

import re
import zlib
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select

from milepost.audit.models import MilestoneEvent
from milepost.disputes import service as disputes
from milepost.events import EventAction
from milepost.kit.errors import NotFound
from milepost.ledger.models import Account, AccountKind, EntryKind, JournalEntry
from milepost.milestones import service as milestones
from milepost.receipts import render
from milepost.receipts import service as receipts
from milepost.receipts.service import Party, Receipt
from tests.records.history import build
from tests.world import World


def entry_figures(world: World, entry_id: str) -> dict[str, Any]:
    """The entry's postings summed by kind of account, straight from the ledger."""
    with world.db.read_only() as session:
        entry = session.get(JournalEntry, entry_id)
        assert entry is not None
        figures: dict[str, Any] = {"hash": entry.hash, "escrow": 0, "fee": 0, "users": {}}
        for posting in entry.postings:
            account = session.get(Account, posting.account_id)
            assert account is not None
            if account.kind is AccountKind.ESCROW:
                figures["escrow"] += posting.amount
            elif account.kind is AccountKind.PLATFORM_FEE:
                figures["fee"] += posting.amount
            else:
                figures["users"][account.user_id] = posting.amount
        return figures


# The audit actions that record a receipt's money leaving the escrow for the freelancer.
RELEASE_ACTIONS = (EventAction.RELEASED, EventAction.RELEASED_PART, EventAction.DISPUTE_RESOLVED)


def release_events(world: World, milestone_id: str) -> list[MilestoneEvent]:
    with world.db.read_only() as session:
        return list(
            session.scalars(
                select(MilestoneEvent)
                .where(
                    MilestoneEvent.milestone_id == milestone_id,
                    MilestoneEvent.action.in_(RELEASE_ACTIONS),
                )
                .order_by(MilestoneEvent.seq)
            )
        )


def test_a_release_receipt_matches_its_ledger_entry_and_audit_event(world: World) -> None:
    client, freelancer, milestone = world.submitted(amount=100_000)
    world.act(client, milestones.approve, milestone.id)
    (receipt,) = world.act(freelancer, receipts.list_receipts, milestone.id)
    ledger = entry_figures(world, receipt.entry_id)
    assert receipt.amount_released == -ledger["escrow"] == 100_000
    assert receipt.platform_fee == ledger["fee"] == 10_000
    assert receipt.net_to_freelancer == ledger["users"][freelancer.id] == 90_000
    assert receipt.refunded_to_client == 0
    assert receipt.entry_hash == ledger["hash"]
    (event,) = release_events(world, milestone.id)
    assert (receipt.event_id, receipt.event_hash, receipt.event_action) == (
        event.id,
        event.hash,
        "released",
    )
    assert receipt.client == Party(client.id, client.name, client.email)
    assert receipt.freelancer == Party(freelancer.id, freelancer.name, freelancer.email)
    assert (receipt.released_by_role, receipt.released_by_name) == ("client", client.name)
    assert (receipt.milestone_title, receipt.project_title, receipt.currency) == (
        "Milestone",
        "Website",
        "USD",
    )
    assert world.act(client, receipts.get_receipt, receipt.entry_id) == receipt


def test_partial_releases_each_have_a_receipt_with_the_cumulative_fee(world: World) -> None:
    client, freelancer, milestone = world.funded(amount=100_000)
    world.act(client, milestones.release, milestone.id, amount=30_005)
    world.act(client, milestones.release, milestone.id)
    first, second = world.act(client, receipts.list_receipts, milestone.id)
    # Fees on the cumulative amount: round(3_000.5) = 3_001, then 10_000 - 3_001.
    assert (first.amount_released, first.platform_fee, first.net_to_freelancer) == (
        30_005,
        3_001,
        27_004,
    )
    assert (second.amount_released, second.platform_fee, second.net_to_freelancer) == (
        69_995,
        6_999,
        62_996,
    )
    assert (first.partial, second.partial) == (True, False)
    events = release_events(world, milestone.id)
    assert [first.event_hash, second.event_hash] == [event.hash for event in events]
    for receipt in (first, second):
        ledger = entry_figures(world, receipt.entry_id)
        assert receipt.amount_released == -ledger["escrow"]
        assert receipt.net_to_freelancer == ledger["users"][freelancer.id]


def test_a_release_by_the_system_after_the_delay(world: World) -> None:
    client, _, milestone = world.submitted(amount=50_000, release_delay_days=2)
    world.act(client, milestones.approve, milestone.id)
    assert world.act(client, receipts.list_receipts, milestone.id) == []
    later = world.get(milestone.id).release_due_at
    assert later is not None
    world.act(None, milestones.release_matured, milestone.id, now=later + timedelta(minutes=1))
    (receipt,) = world.act(client, receipts.list_receipts, milestone.id)
    assert (receipt.released_by_role, receipt.released_by_name) == ("system", None)
    assert (receipt.amount_released, receipt.platform_fee) == (50_000, 5_000)
    assert receipt.event_action == "released"


def test_dispute_splits_that_pay_the_freelancer_have_receipts(world: World) -> None:
    history = build(world)
    (split,) = world.act(history.staff, receipts.list_receipts, history.ids["m3"])
    ledger = entry_figures(world, split.entry_id)
    assert split.entry_kind == EntryKind.DISPUTE_SPLIT
    assert (split.amount_released, split.platform_fee, split.net_to_freelancer) == (
        20_000,
        2_000,
        18_000,
    )
    assert split.refunded_to_client == ledger["users"][history.client.id] == 60_000
    assert split.net_to_freelancer == ledger["users"][history.freelancer.id]
    assert split.released_by_role == "staff"
    assert split.event_action == "dispute_resolved"
    # A split that gives the freelancer nothing pays nobody: no receipt.
    client, _, milestone = world.funded()
    dispute = world.act(client, disputes.open_dispute, milestone.id, reason="Gone")
    world.act(history.staff, disputes.resolve, dispute.id, to_freelancer=0, to_client=100_000)
    assert world.act(client, receipts.list_receipts, milestone.id) == []


def test_only_parties_and_staff_see_receipts(world: World) -> None:
    client, freelancer, milestone = world.funded()
    world.act(client, milestones.release, milestone.id)
    (receipt,) = world.act(client, receipts.list_receipts, milestone.id)
    outsider = world.user("outsider")
    with pytest.raises(NotFound):
        world.act(outsider, receipts.list_receipts, milestone.id)
    with pytest.raises(NotFound):
        world.act(outsider, receipts.get_receipt, receipt.entry_id)
    staff = world.user("staff", staff=True)
    assert world.act(staff, receipts.get_receipt, receipt.entry_id) == receipt
    assert world.act(freelancer, receipts.get_receipt, receipt.entry_id) == receipt
    with world.db.read_only() as session:
        fund_entry = session.scalar(
            select(JournalEntry.id).where(
                JournalEntry.milestone_id == milestone.id, JournalEntry.kind == EntryKind.FUND
            )
        )
    assert fund_entry is not None
    for not_a_receipt in (fund_entry, "je_nothing"):
        with pytest.raises(NotFound):
            world.act(client, receipts.get_receipt, not_a_receipt)


# Rendering ---------------------------------------------------------------------------------------------


def pdf_text(pdf: bytes) -> bytes:
    """The PDF's bytes with every compressed stream inflated, so that the text can be searched."""
    parts = [pdf]
    for stream in re.findall(rb"stream\r?\n(.*?)\r?\nendstream", pdf, re.DOTALL):
        try:
            parts.append(zlib.decompress(stream))
        except zlib.error:
            continue
    return b"\n".join(parts)


def a_receipt(**changes: Any) -> Receipt:
    from datetime import UTC, datetime

    values: dict[str, Any] = {
        "entry_id": "je_01",
        "entry_kind": "release",
        "entry_hash": "a" * 64,
        "created_at": datetime(2030, 3, 1, 9, tzinfo=UTC),
        "milestone_id": "ms_01",
        "milestone_title": "Design",
        "project_id": "prj_01",
        "project_title": "Website",
        "client": Party("usr_c", "Ada Client", "ada@example.com"),
        "freelancer": Party("usr_f", "Zoë Freelancer", "zoe@example.com"),
        "currency": "USD",
        "amount_released": 123_456,
        "platform_fee": 12_346,
        "net_to_freelancer": 111_110,
        "refunded_to_client": 0,
        "released_by_role": "client",
        "released_by_name": "Ada Client",
        "event_id": "evt_01",
        "event_action": "released",
        "event_hash": "b" * 64,
    }
    values.update(changes)
    return Receipt(**values)


def test_html_shows_money_in_the_currency_format_and_escapes_names() -> None:
    html = render.to_html(a_receipt(milestone_title="<script>x</script>"))
    for text in ("$1,234.56", "$123.46", "$1,111.10", "a" * 64, "b" * 64, "Zoë Freelancer"):
        assert text in html
    assert "<script>x" not in html and "&lt;script&gt;" in html
    yen = render.to_html(a_receipt(currency="JPY", amount_released=1500, platform_fee=150))
    assert "¥1,500" in yen


def test_pdf_carries_the_amounts_and_hashes() -> None:
    for compress in (True, False):
        pdf = render.to_pdf(a_receipt(), compress=compress)
        assert pdf.startswith(b"%PDF")
        text = pdf_text(pdf)
        for expected in (b"$1,234.56", b"$123.46", b"$1,111.10", b"a" * 64, b"b" * 64, b"je_01"):
            assert expected in text, expected
    # Same receipt, same bytes.
    assert render.to_pdf(a_receipt()) == render.to_pdf(a_receipt())


def test_pdf_falls_back_to_the_code_where_latin1_has_no_symbol() -> None:
    pdf = render.to_pdf(
        a_receipt(currency="EUR", freelancer=Party("usr_f", "山田 Zoë", "y@example.com")),
        compress=False,
    )
    text = pdf_text(pdf)
    assert b"1,234.56 EUR" in text
    assert "Zoë".encode("latin-1") in text


# Over HTTP ------------------------------------------------------------------------------------------------


def test_receipts_over_http(sign_up: Any) -> None:
    client, freelancer, outsider = sign_up("client"), sign_up("freelancer"), sign_up("outsider")
    client.ok("POST", "/v1/deposits", {"amount": 200_000, "currency": "USD"})
    project = client.ok(
        "POST", "/v1/projects", {"title": "Shop", "currency": "USD", "freelancer_id": freelancer.id}
    )
    milestone = client.ok(
        "POST", f"/v1/projects/{project['id']}/milestones", {"title": "Checkout", "amount": 150_000}
    )
    milestone_id = milestone["id"]
    client.ok("POST", f"/v1/milestones/{milestone_id}/fund")
    client.ok("POST", f"/v1/milestones/{milestone_id}/release", {"amount": 50_000})
    client.ok("POST", f"/v1/milestones/{milestone_id}/release")

    listed = freelancer.ok("GET", f"/v1/milestones/{milestone_id}/receipts")["data"]
    assert [(r["amount_released"], r["platform_fee"], r["net_to_freelancer"]) for r in listed] == [
        (50_000, 5_000, 45_000),
        (100_000, 10_000, 90_000),
    ]
    first = listed[0]
    assert first["object"] == "receipt" and first["partial"] is True
    assert first["client"]["email"] == client.user["email"]
    credits = {
        p["entry_id"]: p["amount"] for p in freelancer.ok("GET", "/v1/ledger/entries")["data"]
    }
    assert credits[first["id"]] == first["net_to_freelancer"]

    html = freelancer.get(first["html_url"])
    assert html.status_code == 200
    assert html.headers["content-type"].startswith("text/html")
    for text in ("$500.00", "$50.00", "$450.00", first["entry_hash"], first["event_hash"]):
        assert text in html.text
    # The API's HTML receipt carries the pages' security headers, with a CSP for its inline style.
    assert html.headers["x-frame-options"] == "DENY"
    assert html.headers["x-content-type-options"] == "nosniff"
    assert html.headers["referrer-policy"] == "same-origin"
    policy = html.headers["content-security-policy"]
    assert "default-src 'none'" in policy and "frame-ancestors 'none'" in policy
    assert "style-src 'unsafe-inline'" in policy and "script-src" not in policy
    assert "no-store" in html.headers["cache-control"]

    for path in (first["pdf_url"], f"{first['html_url']}?format=pdf"):
        pdf = client.get(path)
        assert pdf.status_code == 200, pdf.text
        assert pdf.headers["content-type"] == "application/pdf"
        assert pdf.content.startswith(b"%PDF")
        text = pdf_text(pdf.content)
        for amount in (b"$500.00", b"$50.00", b"$450.00"):
            assert amount in text

    as_json = client.ok("GET", f"{first['html_url']}?format=json")
    assert as_json == first

    for path in (
        f"/v1/milestones/{milestone_id}/receipts",
        first["html_url"],
        first["pdf_url"],
        f"{first['html_url']}?format=json",
        "/v1/receipts/je_nothing",
    ):
        refused = outsider.get(path)
        assert refused.status_code == 404, path
        assert refused.json()["error"]["type"] == "not_found"
    assert client.get(f"{first['html_url']}?format=docx").status_code == 400
    anonymous = client.get(first["pdf_url"], headers={"Authorization": "Bearer nope"})
    assert anonymous.status_code == 401
