"""Read model for the settings page: the viewer, the bank accounts payouts go to (masked), their Stripe
account for payouts where Stripe is enabled, and their live API tokens and browser sessions."""

from __future__ import annotations

from dataclasses import dataclass

from milepost.auth import service as auth
from milepost.kit.context import Context
from milepost.users.models import User
from milepost.wallets import destinations
from milepost.wallets.destinations import masked
from milepost.wallets.models import PayoutDestination
from milepost.wallets.stripe_provider import NAME as STRIPE
from milepost.wallets.stripe_provider import list_payout_accounts

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
class StripeAccount:
    """The viewer's Stripe account for payouts: none yet, made but not payable (Stripe's pages not
    finished), or payable."""

    account_id: str | None
    payable: bool


@dataclass(frozen=True)
class SettingsPage:
    user: User
    bank_accounts: list[BankAccount]
    stripe: StripeAccount | None  # None where Stripe is not enabled
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
        user=ctx.require_actor(),
        bank_accounts=bank_accounts(ctx),
        stripe=stripe_account(ctx),
        tokens=tokens,
        more_tokens=more,
    )


def stripe_account(ctx: Context) -> StripeAccount | None:
    if STRIPE not in ctx.settings.enabled_providers:
        return None
    for account in list_payout_accounts(ctx):
        if account.provider == STRIPE:
            return StripeAccount(account.account_id, account.payouts_enabled)
    return StripeAccount(None, False)
