"""A card deposit from the dashboard, in the browser: the form offers the card where Stripe is enabled,
the dashboard then links to Stripe's payment page, and the wallet is credited only once Stripe's signed
event says it was paid. The payout form does not offer Stripe (no Connect payouts yet)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from milepost.kit.db import Database
from milepost.settings import Settings
from tests.api.stripe_support import stripe_settings
from tests.stripe_standin import StandIn
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
