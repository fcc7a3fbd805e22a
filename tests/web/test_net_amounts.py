"""Money as each party meets it: what the freelancer will receive, after the platform fee and with the late
fee, is what the ledger pays them (on the milestone page before and after the release, and on the
dashboard); and a client whose wallet is short deposits the difference and funds in one step."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from milepost.kit.db import Database
from milepost.milestones import service as milestones
from milepost.money import format_money
from milepost.settings import Settings
from tests.web.conftest import Shots, csrf_from, log_in
from tests.web.test_staff import _session
from tests.world import World


@pytest.fixture
def world(db: Database, settings: Settings) -> World:
    return World(db, settings)


def _usd(amount: int) -> str:
    return format_money(amount, "USD")


def test_the_freelancer_sees_what_they_will_receive_and_then_receives_it(
    world: World, new_page: Any, shot: Shots
) -> None:
    client, freelancer, project = world.parties()
    today = datetime.now(UTC).date()
    # Funded two days late: $1,000.00 and the flat $20.00 late fee go into escrow.
    milestone = world.milestone(
        client,
        project,
        100_000,
        title="Late one",
        fund_by=today - timedelta(days=2),
        late_fee={"type": "flat", "amount": 2_000, "grace_days": 0},
    )
    page = new_page()
    log_in(page, freelancer.email)
    page.goto(f"/milestones/{milestone.id}")
    before_funding = page.locator("#net-to-come").inner_text()
    world.act(client, milestones.fund, milestone.id)
    escrow = world.get(milestone.id).escrow_balance
    assert escrow == 102_000
    world.act(freelancer, milestones.submit, milestone.id, note="Done", evidence=[])

    page.reload()
    promised = page.locator("#net-to-come").inner_text()
    assert promised.startswith(f"{_usd(91_800)} more, once released")  # less the 10% fee
    assert "the late fee included" in promised
    assert before_funding.startswith(_usd(91_800))  # the same figure before it was funded
    assert page.locator("#net-received").inner_text().startswith("$0.00")
    shot(page, "freelancer-before-release")

    wallet_before = world.balance(freelancer)
    world.act(client, milestones.release, milestone.id, amount=40_000)
    page.reload()
    received = world.balance(freelancer) - wallet_before
    assert page.locator("#net-received").inner_text().startswith(_usd(received))
    assert page.locator("#net-to-come").inner_text().startswith(_usd(91_800 - received))

    world.act(client, milestones.approve, milestone.id)
    page.reload()
    assert world.balance(freelancer) - wallet_before == 91_800
    assert page.locator("#net-received").inner_text().startswith(_usd(91_800))
    assert page.locator("#net-to-come").count() == 0

    # The dashboard's month: released gross, and what the freelancer received of it.
    page.goto("/?tab=incoming")
    assert page.locator("#totals .received").inner_text() == _usd(91_800)
    assert page.locator("#balances .available").inner_text() == _usd(world.balance(freelancer))
    shot(page, "freelancer-dashboard-net")
    assert world.verify().ok


def test_a_short_wallet_deposits_the_difference_and_funds_in_one_step(
    world: World, new_page: Any, shot: Shots
) -> None:
    client, _, project = world.parties(wallet=30_000)
    milestone = world.milestone(client, project, 100_000, title="Landing page")
    page = new_page()
    log_in(page, client.email)
    page.goto(f"/milestones/{milestone.id}")
    assert page.locator("#wallet-line").inner_text() == (
        "Your wallet holds $300.00: $700.00 short of the $1,000.00 this funding takes."
    )
    assert page.get_by_role("button", name="Fund $1,000.00 into escrow").count() == 0
    # The bank-transfer path is explained for who cannot pay at once.
    assert "once staff confirm the money has arrived" in (
        page.locator("#bank-transfer-path").inner_text()
    )
    shot(page, "short-wallet")
    page.get_by_role("button", name="Deposit $700.00 and fund $1,000.00").click()
    assert page.locator("#status").inner_text() == "funded"
    assert page.locator("#escrow").inner_text() == "$1,000.00"
    assert world.balance(client) == 0
    assert world.verify().ok


def test_a_bank_transfer_cannot_fund_at_once_and_nothing_is_kept(
    world: World, base_url: str
) -> None:
    client, _, project = world.parties(wallet=30_000)
    milestone = world.milestone(client, project, 100_000, title="Landing page")
    http = _session(base_url, client.email)
    path = f"/milestones/{milestone.id}"
    token = csrf_from(http.get(path).text)
    before = world.snapshot()
    refused = http.post(
        f"{path}/deposit-and-fund", data={"provider": "manual", "csrf_token": token}
    )
    assert refused.status_code == 422
    assert "A bank transfer arrives in a day or two" in refused.text
    assert world.snapshot() == before
    assert world.get(milestone.id).status == "draft"
