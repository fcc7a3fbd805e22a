"""Payment providers: how money gets in (deposits) and out (payouts).

``sandbox`` settles at once (demos and tests: it creates money from nothing, so it is only there when
``MILEPOST_PROVIDERS`` names it). ``manual`` is a bank transfer: a deposit waits, with a
reference the payer quotes, until staff confirm the money arrived; a payout waits until staff mark it paid.
``stripe`` takes cards through Stripe Checkout: a deposit waits until Stripe's signed webhook says it
was paid (wallets/stripe_provider.py). Each provider implements the same two methods.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Protocol

from milepost.kit.context import Context
from milepost.kit.errors import ValidationFailed
from milepost.wallets.stripe_provider import StripeProvider


@dataclass(frozen=True)
class Outcome:
    settled: bool  # True: the money has moved; False: pending until confirmed
    reference: str
    payment_url: str | None = None  # where the payer pays (a card provider's page), if anywhere


class PaymentProvider(Protocol):
    name: str
    settles_at_once: (
        bool  # a deposit is credited in the same request (else: pending, confirmed later)
    )

    def start_deposit(
        self, ctx: Context, *, deposit_id: str, amount: int, currency: str
    ) -> Outcome: ...

    def start_payout(
        self, ctx: Context, *, payout_id: str, amount: int, currency: str
    ) -> Outcome: ...


class SandboxProvider:
    name = "sandbox"
    settles_at_once = True

    def start_deposit(
        self, ctx: Context, *, deposit_id: str, amount: int, currency: str
    ) -> Outcome:
        return Outcome(settled=True, reference=f"sandbox-{deposit_id}")

    def start_payout(self, ctx: Context, *, payout_id: str, amount: int, currency: str) -> Outcome:
        return Outcome(settled=True, reference=f"sandbox-{payout_id}")


class ManualProvider:
    name = "manual"
    settles_at_once = False

    def start_deposit(
        self, ctx: Context, *, deposit_id: str, amount: int, currency: str
    ) -> Outcome:
        # Short enough to type into a bank transfer's reference field, unambiguous characters only.
        code = "".join(secrets.choice("ABCDEFGHJKLMNPQRSTUVWXYZ23456789") for _ in range(10))
        return Outcome(settled=False, reference=f"MP-{code}")

    def start_payout(self, ctx: Context, *, payout_id: str, amount: int, currency: str) -> Outcome:
        return Outcome(settled=False, reference=f"payout-{payout_id}")


PROVIDERS: dict[str, PaymentProvider] = {
    provider.name: provider for provider in (SandboxProvider(), ManualProvider(), StripeProvider())
}


def instant_providers(enabled: tuple[str, ...]) -> tuple[str, ...]:
    """The enabled providers whose deposits are credited at once, in the installation's order."""
    return tuple(name for name in enabled if name in PROVIDERS and PROVIDERS[name].settles_at_once)


def get_provider(name: object, enabled: tuple[str, ...]) -> PaymentProvider:
    """The provider called ``name`` if this installation enables it (``MILEPOST_PROVIDERS``); None: the
    first enabled one. A provider that is not enabled is refused like an unknown one: a production
    installation must never let ``sandbox`` create money."""
    if name is None:
        name = enabled[0]
    provider = PROVIDERS.get(name) if isinstance(name, str) and name in enabled else None
    if provider is None:
        raise ValidationFailed(
            f"This payment provider is not available here; use one of: {', '.join(enabled)}.",
            code="unknown_provider",
            param="provider",
        )
    return provider
