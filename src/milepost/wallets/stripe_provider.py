"""Stripe: card deposits through Checkout, told by signed webhooks.

A deposit by card is a Checkout Session of one line, the deposit's amount, made with the deposit's id as
its idempotency key: the deposit is ``pending`` with the session's page as its ``payment_url``, and
nothing is credited until Stripe says, in an event signed with the endpoint's secret, that the session
was paid (``checkout.session.completed`` with ``payment_status`` ``paid``, or
``checkout.session.async_payment_succeeded`` for a method that settles later). A session that expires
unpaid, or whose delayed payment fails, closes the deposit with nothing credited, and its owner is told.
A declined card changes nothing: the payer may try another card on the same page until it expires.

Events are kept by id (``ProviderEvent``), in the unit of work that acts on them: the same event
delivered twice does nothing the second time, and an event that arrives after another one already
decided the deposit (out of order) finds it no longer pending and does nothing. A delivery that fails
here (the database unreachable, a conflict) is answered with an error and Stripe sends it again later, so
an outage loses nothing: the deposit settles when the event gets through.

The call to Stripe happens before the unit of work writes anything (no lock is held while it waits) and
is idempotent by the deposit's id; if the deposit's own commit then fails, the session exists with
nobody sent to it, and expires.
"""

from __future__ import annotations

import logging
from functools import cache
from typing import TYPE_CHECKING, Any

import stripe

from milepost.events import Notice
from milepost.kit.context import Context
from milepost.kit.db import insert_ignoring_conflicts
from milepost.kit.errors import InvalidRequest, ServiceUnavailable, ValidationFailed
from milepost.money import exponent, format_money
from milepost.settings import Settings
from milepost.wallets.models import Deposit, DepositStatus, ProviderEvent

if TYPE_CHECKING:
    from milepost.wallets.providers import Outcome

log = logging.getLogger("milepost.stripe")

NAME = "stripe"
UNREACHABLE = (
    "Card payments cannot reach Stripe right now; nothing was charged or changed. Try again in a "
    "minute."
)


@cache
def _client(secret_key: str, api_base: str | None) -> stripe.StripeClient:
    base = {"api": api_base.rstrip("/")} if api_base else None
    # No retries of its own: a failure is answered at once and the request may be sent again.
    return stripe.StripeClient(secret_key, base_addresses=base, max_network_retries=0)  # type: ignore[arg-type]


def client(settings: Settings) -> stripe.StripeClient:
    key = settings.stripe_secret_key
    if key is None:
        raise ServiceUnavailable("Card payments are not configured here.")
    return _client(key.get_secret_value(), settings.stripe_api_base)


class StripeProvider:
    name = NAME
    settles_at_once = False
    # Not yet: payouts to Stripe Connect accounts are still to be built (get_provider refuses them).
    pays_out = False

    def start_deposit(
        self, settings: Settings, *, deposit_id: str, amount: int, currency: str
    ) -> Outcome:
        from milepost.wallets.providers import Outcome

        if exponent(currency) == 3 and amount % 10:
            # Stripe takes three-decimal currencies in multiples of ten of their minor unit.
            raise ValidationFailed(
                f"Card deposits in {currency} go in steps of {format_money(10, currency)}.",
                param="amount",
            )
        back = settings.public_url.rstrip("/") + "/"
        params: dict[str, Any] = {
            "mode": "payment",
            "client_reference_id": deposit_id,
            "metadata": {"deposit_id": deposit_id},
            "payment_intent_data": {"metadata": {"deposit_id": deposit_id}},
            "line_items": [
                {
                    "quantity": 1,
                    "price_data": {
                        "currency": currency.lower(),
                        "unit_amount": amount,
                        "product_data": {"name": "Deposit to your Milepost wallet"},
                    },
                }
            ],
            "success_url": back,
            "cancel_url": back,
        }
        try:
            session = client(settings).v1.checkout.sessions.create(
                params,  # type: ignore[arg-type]
                {"idempotency_key": f"milepost-deposit-{deposit_id}"},
            )
        except stripe.InvalidRequestError as error:
            # Stripe's own words about this request (an unsupported currency, an amount too small).
            raise ValidationFailed(
                f"Stripe refused this deposit: {error.user_message or _message(error)}",
                code="provider_refused",
                param="amount" if getattr(error, "param", None) else None,
            ) from None
        except stripe.StripeError as error:
            log.warning(
                "Stripe did not take a deposit", extra={"fields": {"error": type(error).__name__}}
            )
            raise ServiceUnavailable(UNREACHABLE) from None
        return Outcome(settled=False, reference=str(session.id), payment_url=session.url)

    def start_payout(
        self, settings: Settings, *, payout_id: str, amount: int, currency: str
    ) -> Outcome:
        raise AssertionError("get_provider offers no payout through a provider that cannot pay out")


def _message(error: stripe.StripeError) -> str:
    body = error.json_body if isinstance(error.json_body, dict) else {}
    detail = body.get("error", {}) if isinstance(body.get("error"), dict) else {}
    return str(detail.get("message") or "it gave no reason.")


# Webhooks -------------------------------------------------------------------------------------------------

# What each event about a Checkout Session does to its deposit.
_SETTLES = {"checkout.session.completed", "checkout.session.async_payment_succeeded"}
_CLOSES = {
    "checkout.session.expired": "The payment page expired before it was paid.",
    "checkout.session.async_payment_failed": "The payment failed after it was started.",
}


def verified_event(settings: Settings, payload: bytes, signature: str | None) -> stripe.Event:
    """The event in ``payload`` if ``signature`` (the Stripe-Signature header) signs it with this
    endpoint's secret within the tolerance; else InvalidRequest, and nothing is read from it."""
    secret = settings.stripe_webhook_secret
    if secret is None:
        raise InvalidRequest("Stripe events are not expected here.", code="not_configured")
    try:
        event: stripe.Event = stripe.Webhook.construct_event(
            payload,
            signature or "",
            secret.get_secret_value(),
            tolerance=settings.stripe_webhook_tolerance_seconds,
        )
    except stripe.SignatureVerificationError:
        raise InvalidRequest(
            "The Stripe-Signature header does not sign this body with this endpoint's secret (or is "
            "too old); nothing was done.",
            code="bad_signature",
        ) from None
    except ValueError:
        raise InvalidRequest("The body is not a Stripe event.", code="bad_event") from None
    return event


def receive_event(ctx: Context, payload: bytes, signature: str | None) -> ProviderEvent:
    """Act on one signed event, once: what it did is kept with its id and answered."""
    event = verified_event(ctx.settings, payload, signature)
    record = ProviderEvent(
        provider=NAME, event_id=str(event.id), type=str(event.type), received_at=ctx.now
    )
    # The claim first: a second delivery of the same event (even one racing this one) finds it taken.
    claimed = insert_ignoring_conflicts(
        ctx.session,
        ProviderEvent,
        [
            {
                "provider": NAME,
                "event_id": record.event_id,
                "type": record.type,
                "outcome": "",
                "received_at": ctx.now,
            }
        ],
    )
    if not claimed:
        record.outcome = "duplicate: already received"
        return record
    record.outcome = _act(ctx, event)
    stored = ctx.session.get(ProviderEvent, (NAME, record.event_id))
    assert stored is not None
    stored.outcome = record.outcome[:500]
    log.info(
        "Stripe event received",
        extra={
            "fields": {"event": record.event_id, "type": record.type, "outcome": record.outcome}
        },
    )
    return stored


def _act(ctx: Context, event: stripe.Event) -> str:
    kind = str(event.type)
    if kind not in _SETTLES and kind not in _CLOSES:
        return "ignored: not an event Milepost acts on"
    session: dict[str, Any] = event.data.object.to_dict()
    deposit = _deposit_of(ctx, session)
    if deposit is None:
        return "ignored: no deposit of this installation"
    if deposit.status is not DepositStatus.PENDING:
        # Told already by another event (this one came late, or says what was said).
        return f"ignored: deposit {deposit.id} is {deposit.status.value} already"
    # Imported here: the transfers import the providers, which list this one.
    from milepost.wallets.transfers import MANUAL_DEPOSIT, settle_deposit

    if kind in _CLOSES:
        MANUAL_DEPOSIT.close_pending(ctx, deposit, _CLOSES[kind], Notice.CARD_DEPOSIT_FAILED)
        return f"closed {deposit.id}"
    if session.get("payment_status") != "paid":
        return f"waiting: deposit {deposit.id} is not paid yet ({session.get('payment_status')})"
    paid = (session.get("amount_total"), str(session.get("currency") or "").upper())
    if paid != (deposit.amount, deposit.currency):
        log.error(
            "a Stripe payment does not match its deposit; left pending for staff",
            extra={"fields": {"deposit": deposit.id, "paid": list(paid)}},
        )
        return f"refused: the payment is not the deposit's amount; {deposit.id} left pending"
    deposit.provider_payment_id = _id_of(session.get("payment_intent"))
    settle_deposit(ctx, deposit)
    return f"settled {deposit.id}"


def _deposit_of(ctx: Context, session: dict[str, Any]) -> Deposit | None:
    """The pending or decided deposit a Checkout Session was made for, locked: found by the id it
    carries and checked against the session's own id (a session of another installation on the same
    Stripe account names no deposit here)."""
    metadata = session.get("metadata") or {}
    deposit_id = metadata.get("deposit_id") or session.get("client_reference_id")
    if not isinstance(deposit_id, str):
        return None
    deposit = ctx.session.get(Deposit, deposit_id, with_for_update=True)
    if deposit is None or deposit.provider != NAME or deposit.reference != session.get("id"):
        return None
    return deposit


def _id_of(value: Any) -> str | None:
    """An expandable field's id: the object's, or the string itself."""
    if value is None:
        return None
    if isinstance(value, str):
        return value
    return str(value.get("id")) if value.get("id") else None
