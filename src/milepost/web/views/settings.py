"""Read model for the settings page: the viewer, the bank accounts payouts go to (masked), and their live
API tokens and browser sessions."""

from __future__ import annotations

from dataclasses import dataclass

from milepost.auth import service as auth
from milepost.kit.context import Context
from milepost.users.models import User
from milepost.wallets import destinations
from milepost.wallets.destinations import masked
from milepost.wallets.models import PayoutDestination

MAX_DESTINATIONS_SHOWN = 100


@dataclass(frozen=True)
class BankAccount:
    """A payout destination as its owner sees it: masked."""

    id: str
    label: str
    holder_name: str
    masked: str

    @classmethod
    def of(cls, destination: PayoutDestination) -> BankAccount:
        return cls(destination.id, destination.label, destination.holder_name, masked(destination))


@dataclass(frozen=True)
class SettingsPage:
    user: User
    bank_accounts: list[BankAccount]
    tokens: list[auth.TokenView]  # live API tokens and browser sessions, newest first
    more_tokens: bool


def bank_accounts(ctx: Context) -> list[BankAccount]:
    page = destinations.list_destinations(ctx, limit=MAX_DESTINATIONS_SHOWN)
    return [BankAccount.of(destination) for destination in page.data]


def settings_page(ctx: Context, session_token: str | None) -> SettingsPage:
    """The viewer's settings; ``session_token`` is this browser's, so that the page can say which
    session is this one."""
    tokens, more = auth.list_tokens(ctx, session_token)
    return SettingsPage(
        user=ctx.require_actor(), bank_accounts=bank_accounts(ctx), tokens=tokens, more_tokens=more
    )
