"""Helpers of the Stripe tests: the settings of a server that talks to the stand-in, people signed up on
it, and what they hold."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from milepost.kit.db import Database
from milepost.ledger.models import JournalEntry
from milepost.settings import Settings
from milepost.wallets.models import Deposit
from tests.api.conftest import PASSWORD, Client
from tests.stripe_standin import CONNECT_WEBHOOK_SECRET, SECRET_KEY, WEBHOOK_SECRET, StandIn

USD = "USD"


def stripe_settings(tmp_path: Path, standin: StandIn, **more: Any) -> Settings:
    return Settings(
        fee_bps=1000,
        providers="stripe,manual",
        files_dir=str(tmp_path / "files"),
        stripe_secret_key=SECRET_KEY,
        # The account's endpoint and the Connect endpoint each sign with their own secret.
        stripe_webhook_secret=f"{WEBHOOK_SECRET},{CONNECT_WEBHOOK_SECRET}",
        stripe_api_base=standin.base_url,
        public_url="https://milepost.example",
        **more,
    )


def person(url: str, name: str) -> Client:
    email = f"{name}@example.com"
    Client(url).ok("POST", "/v1/users", {"email": email, "name": name, "password": PASSWORD})
    token = Client(url).ok("POST", "/v1/tokens", {"email": email, "password": PASSWORD})
    return Client(url, token["token"], token["user"])


def available(client: Client, currency: str = USD, field: str = "available") -> int:
    for balance in client.ok("GET", "/v1/balances")["data"]:
        if balance["currency"] == currency:
            return int(balance[field])
    return 0


def pending(client: Client, currency: str = USD) -> int:
    """Card money not cleared yet."""
    return available(client, currency, "pending")


def credited(client: Client, currency: str = USD) -> int:
    """Available or not cleared yet: anything at all credited."""
    return available(client, currency) + pending(client, currency)


def entries(db: Database) -> int:
    with db.read_only() as session:
        return int(session.scalar(select(func.count()).select_from(JournalEntry)) or 0)


def card_deposit(client: Client, amount: int, currency: str = USD) -> dict[str, Any]:
    deposit: dict[str, Any] = client.ok(
        "POST", "/v1/deposits", {"amount": amount, "currency": currency, "provider": "stripe"}
    )
    return deposit


def stored_deposit(db: Database, deposit_id: str) -> Deposit:
    with db.read_only() as session:
        deposit = session.get(Deposit, deposit_id)
        assert deposit is not None
        return deposit
