"""Stripe in the browser. A card deposit from the dashboard: the form offers the card where Stripe is
enabled, the dashboard then links to Stripe's payment page, and the wallet is credited only once Stripe's
signed event says it was paid. A freelancer's Stripe account: set up from Settings on Stripe's pages,
payable once Stripe says so, then a withdrawal by Stripe is sent to it by the worker."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from milepost.kit.db import Database
from milepost.schedule.service import run_due
from milepost.settings import Settings
from tests.api.stripe_support import stripe_settings
from tests.stripe_standin import CONNECT_WEBHOOK_SECRET, StandIn
from tests.web.conftest import Shots, log_in
from tests.world import World


@pytest.fixture
def settings(tmp_path: Path, standin: StandIn) -> Settings:
    return stripe_settings(tmp_path, standin)


def test_a_card_deposit_links_to_stripes_page_and_is_credited_by_its_event(
    new_page: Any, shot: Shots, world: World, standin: StandIn, base_url: str, db: Database
) -> None:
    client = world.user("client")
    page = new_page()
    log_in(page, client.email)
    form = page.locator("#deposit-form")
    form.get_by_label("Amount").fill("120")
    form.get_by_label("Card").check()
    form.get_by_role("button", name="Deposit").click()

    [session] = standin.sessions.values()
    assert (session["amount_total"], session["currency"]) == (12_000, "usd")
    link = page.locator("#pending a.pay-by-card")
    assert link.get_attribute("href") == session["url"]
    assert "$120.00 by card" in page.locator("#pending .pending-deposit").inner_text()
    assert world.balance(client) == 0
    assert page.locator("#payout-form").get_by_label("Card").count() == 0
    shot(page, "card-deposit-pending")

    assert standin.deliver(base_url, standin.paid(session["id"])).status_code == 200
    page.reload()
    assert page.locator("#pending .pending-deposit").count() == 0
    # Credited, not yet cleared: it shows apart from the available balance.
    assert page.locator("#balances .available").inner_text() == "$0.00"
    assert page.locator("#balances .pending").inner_text() == "$120.00"
    assert "clear" in page.locator("#pending-hint").inner_text()
    assert world.balance(client) == 0
    shot(page, "card-deposit-not-cleared")


def test_a_freelancer_sets_up_their_stripe_account_and_withdraws_to_it(
    new_page: Any,
    shot: Shots,
    world: World,
    standin: StandIn,
    base_url: str,
    db: Database,
    settings: Settings,
) -> None:
    freelancer = world.user("freelancer")
    world.deposit(freelancer, 50_000)
    page = new_page()
    log_in(page, freelancer.email)
    page.goto("/settings")
    section = page.locator("section", has=page.locator("#stripe-account-heading"))
    assert "Get paid to your own Stripe account" in section.inner_text()
    shot(page, "stripe-account-none")
    section.get_by_role("button", name="Set up your Stripe account").click()
    [account] = standin.accounts.values()
    assert "finish it on Stripe's pages" in page.locator("#stripe-account-made").inner_text()
    assert "not ready to be paid yet" in page.locator("#stripe-account").inner_text()
    # To Stripe's onboarding pages for the account just made, by a link made for this visit, which
    # sends the freelancer back to Settings (or here again for a fresh link once it expired).
    page.get_by_role("link", name="Continue on Stripe").click()
    page.wait_for_url(f"{standin.base_url}/onboard/{account['id']}")
    [link] = [r[2] for r in standin.requests if r[1] == "/v1/account_links"][-1:]
    assert link["return_url"] == "https://milepost.example/settings#stripe-account-heading"
    assert link["refresh_url"] == "https://milepost.example/settings/stripe-account/onboarding"

    onboarded = standin.deliver(
        base_url, standin.onboarded(account["id"]), secret=CONNECT_WEBHOOK_SECRET
    )
    assert onboarded.status_code == 200, onboarded.text
    page.goto("/settings")
    assert "can be paid" in page.locator("#stripe-account").inner_text()
    assert page.get_by_role("button", name="Set up your Stripe account").count() == 0
    assert len(standin.accounts) == 1
    shot(page, "stripe-account-payable")

    page.goto("/")
    form = page.locator("#payout-form")
    assert form.locator("#payout-stripe-hint a").get_attribute("href") == (
        "/settings#stripe-account-heading"
    )
    form.get_by_label("Amount to withdraw").fill("200")
    form.get_by_label("Stripe (to your Stripe account)").check()
    form.get_by_role("button", name="Withdraw").click()
    expect(page.locator("#payout-form")).to_be_visible()
    assert world.balance(freelancer) == 30_000
    assert standin.transfers == {}  # recorded first; the worker sends it
    report = run_due(db, settings, datetime.now(UTC), deliver_emails=False, deliver_webhooks=False)
    assert report.payouts_sent == 1
    [transfer] = standin.transfers.values()
    assert (transfer["amount"], transfer["destination"]) == (20_000, account["id"])
