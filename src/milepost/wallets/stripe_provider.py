"""Stripe: card deposits through Checkout, payouts to Connect accounts, told by signed webhooks.

A deposit by card is a Checkout Session of one line, the deposit's amount, made with the deposit's id as
its idempotency key: the deposit is ``pending`` with the session's page as its ``payment_url``, and
nothing is credited until Stripe says, in an event signed with the endpoint's secret, that the session
was paid (``checkout.session.completed`` with ``payment_status`` ``paid``, or
``checkout.session.async_payment_succeeded`` for a method that settles later). A session that expires
unpaid, or whose delayed payment fails, closes the deposit with nothing credited, and its owner is told.
A declined card changes nothing: the payer may try another card on the same page until it expires.

A chargeback (``charge.dispute.created``) takes the deposit back as wallets/reversals.py says; the
dispute's end (``charge.dispute.closed``) gives it back when the platform won it, and changes nothing
when it lost.

Events are kept by id (``ProviderEvent``), in the unit of work that acts on them: the same event
delivered twice does nothing the second time, and an event that arrives after another one already
decided the deposit (out of order) finds it no longer pending and does nothing. A delivery that fails
here (the database unreachable, a conflict) is answered with an error and Stripe sends it again later, so
an outage loses nothing: the deposit settles when the event gets through. Should the events never come,
the worker looks up a card deposit still pending after 15 minutes and acts on what its session says
(``look_up_pending_deposits``).

Payouts go to the freelancer's own Stripe account (an Express Connect account, made on request and
onboarded on Stripe's pages; payable once ``account.updated`` says so). A payout moves the money to the
provider's clearing account and waits; the worker then sends it as a transfer and settles it, or fails
it back to the wallet if Stripe refuses the transfer (``send_due_payouts``).

The call to Stripe for a deposit happens before the unit of work writes anything (on PostgreSQL no lock
is held while it waits; on SQLite the write lock may be, for at most ``MILEPOST_STRIPE_TIMEOUT_SECONDS``)
and is idempotent by the deposit's id; if the deposit's own commit then fails, or the call times out,
the session may exist with nobody sent to it, and expires: paid anyway, it names no deposit here.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache
from typing import TYPE_CHECKING, Any

import stripe
from sqlalchemy import Select, select

from milepost.events import Notice
from milepost.kit.context import Context
from milepost.kit.db import Database, insert_ignoring_conflicts
from milepost.kit.errors import InvalidRequest, NotFound, ServiceUnavailable, ValidationFailed
from milepost.settings import Settings
from milepost.wallets.models import (
    Deposit,
    DepositReversal,
    DepositStatus,
    Payout,
    PayoutStatus,
    ProviderAccount,
    ProviderEvent,
)
from milepost.wallets.stripe_amounts import from_stripe, to_stripe

if TYPE_CHECKING:
    from milepost.wallets.providers import Outcome

log = logging.getLogger("milepost.stripe")

NAME = "stripe"
UNREACHABLE = (
    "Card payments cannot reach Stripe right now; nothing was charged or changed. Try again in a "
    "minute."
)


@cache
def _client(secret_key: str, api_base: str | None, timeout: float) -> stripe.StripeClient:
    base = {"api": api_base.rstrip("/")} if api_base else None
    # No retries of its own: a failure is answered at once and the request may be sent again.
    return stripe.StripeClient(
        secret_key,
        base_addresses=base,  # type: ignore[arg-type]
        max_network_retries=0,
        http_client=stripe.RequestsClient(timeout=timeout),
    )


def client(settings: Settings) -> stripe.StripeClient:
    key = settings.stripe_secret_key
    if key is None:
        raise ServiceUnavailable("Card payments are not configured here.")
    return _client(
        key.get_secret_value(), settings.stripe_api_base, settings.stripe_timeout_seconds
    )


class StripeProvider:
    name = NAME
    settles_at_once = False

    def start_deposit(
        self, ctx: Context, *, deposit_id: str, amount: int, currency: str
    ) -> Outcome:
        from milepost.wallets.providers import Outcome

        unit_amount = to_stripe(amount, currency)  # before anything is asked of Stripe
        back = ctx.settings.public_url.rstrip("/") + "/"
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
                        "unit_amount": unit_amount,
                        "product_data": {"name": "Deposit to your Milepost wallet"},
                    },
                }
            ],
            "success_url": back,
            "cancel_url": back,
        }
        with _refusals("deposit"):
            session = client(ctx.settings).v1.checkout.sessions.create(
                params,  # type: ignore[arg-type]
                {"idempotency_key": f"milepost-deposit-{deposit_id}"},
            )
        return Outcome(settled=False, reference=str(session.id), payment_url=session.url)

    def start_payout(self, ctx: Context, *, payout_id: str, amount: int, currency: str) -> Outcome:
        """A payout waits for the worker to send it (``send_due_payouts``), after this unit of work has
        committed the money's move to the clearing account: Stripe is never asked to send money that
        Milepost has not recorded as leaving."""
        from milepost.wallets.providers import Outcome

        to_stripe(amount, currency, payout=True)  # refused now, before the money moves
        account = ctx.session.get(ProviderAccount, (ctx.require_actor().id, NAME))
        if account is None or not account.payouts_enabled:
            raise ValidationFailed(
                "Your Stripe account cannot be paid yet: set it up first (POST "
                "/v1/payout-accounts/stripe, then finish Stripe's pages), or choose a bank transfer.",
                code="payout_account_not_ready",
                param="provider",
            )
        return Outcome(settled=False, reference=f"stripe-{payout_id}")


@contextmanager
def _refusals(what: str) -> Iterator[None]:
    """Stripe's refusal of a request in the API's words: its own message (422) for a request it will
    not take, 503 with nothing kept when it cannot be reached or fails."""
    try:
        yield
    except stripe.InvalidRequestError as error:
        raise ValidationFailed(
            f"Stripe refused this {what}: {error.user_message or _message(error)}",
            code="provider_refused",
            param=_our_param(getattr(error, "param", None)),
        ) from None
    except stripe.StripeError as error:
        log.warning(
            "Stripe did not answer", extra={"fields": {"what": what, "error": type(error).__name__}}
        )
        raise ServiceUnavailable(UNREACHABLE) from None


# Connect: the accounts freelancers are paid to ---------------------------------------------------------


@dataclass(frozen=True)
class PayoutAccountView:
    account: ProviderAccount
    onboarding_url: str | None = None  # a fresh link to Stripe's onboarding pages (minutes long)


def open_payout_account(ctx: Context) -> PayoutAccountView:
    """The caller's Stripe Connect account (an Express account, made on first call with the user's
    id as the idempotency key) and a link to Stripe's pages to finish or update its details. Payouts
    can go to it once Stripe says so (``account.updated``)."""
    user = ctx.require_actor()
    if NAME not in ctx.settings.enabled_providers:
        raise ValidationFailed(
            "Stripe is not enabled here.", code="unknown_provider", param="provider"
        )
    stripe_client = client(ctx.settings)
    # Read first: a second account must never be made for the same user. (On SQLite this read opens
    # the write transaction, held while Stripe answers: set-up is rare.)
    account = ctx.session.get(ProviderAccount, (user.id, NAME))
    if account is None:
        with _refusals("account"):
            made = stripe_client.v1.accounts.create(
                {
                    "type": "express",
                    "email": user.email,
                    "capabilities": {"transfers": {"requested": True}},
                    "metadata": {"user_id": user.id},
                },
                {"idempotency_key": f"milepost-account-{user.id}"},
            )
        insert_ignoring_conflicts(
            ctx.session,
            ProviderAccount,
            [
                {
                    "user_id": user.id,
                    "provider": NAME,
                    "account_id": str(made.id),
                    "payouts_enabled": bool(made.payouts_enabled),
                    "created_at": ctx.now,
                    "updated_at": ctx.now,
                }
            ],
        )
        account = ctx.session.get(ProviderAccount, (user.id, NAME))
        assert account is not None
    return PayoutAccountView(account, onboarding_url=_onboarding_link(ctx, account))


# Where Stripe's pages send the freelancer back: Settings when they are done, and, when the link has
# expired or was used, the web app's address that makes a fresh one (as Stripe's refresh_url must).
RETURN_PATH = "/settings#stripe-account-heading"
REFRESH_PATH = "/settings/stripe-account/onboarding"


def onboarding_link(ctx: Context) -> str:
    """A fresh link to Stripe's pages for the caller's existing Stripe account (minutes long; one use).
    NotFound when they have none: it is made by ``open_payout_account``, with CSRF-checked forms."""
    account = ctx.session.get(ProviderAccount, (ctx.require_actor().id, NAME))
    if account is None or NAME not in ctx.settings.enabled_providers:
        raise NotFound("You have no Stripe account for payouts yet.")
    return _onboarding_link(ctx, account)


def _onboarding_link(ctx: Context, account: ProviderAccount) -> str:
    base = ctx.settings.public_url.rstrip("/")
    with _refusals("account"):
        link = client(ctx.settings).v1.account_links.create(
            {
                "account": account.account_id,
                "refresh_url": base + REFRESH_PATH,
                "return_url": base + RETURN_PATH,
                "type": "account_onboarding",
            }
        )
    return str(link.url)


def list_payout_accounts(ctx: Context) -> list[ProviderAccount]:
    user = ctx.require_actor()
    return list(
        ctx.session.scalars(
            select(ProviderAccount)
            .where(ProviderAccount.user_id == user.id)
            .order_by(ProviderAccount.provider)
        )
    )


# How long a card deposit may stay pending before the worker asks Stripe about it itself, in case its
# events never arrive (a webhook endpoint misconfigured or down for longer than Stripe retries).
LOOK_UP_AFTER = timedelta(minutes=15)


def due_for_look_up(now: datetime) -> Select[str, str | None]:
    """Card deposits pending for longer than ``LOOK_UP_AFTER`` at ``now``, oldest first."""
    return (
        select(Deposit.id, Deposit.reference)
        .where(
            Deposit.provider == NAME,
            Deposit.status == DepositStatus.PENDING,
            Deposit.created_at <= now - LOOK_UP_AFTER,
        )
        .order_by(Deposit.created_at, Deposit.id)
    )


def look_up_pending_deposits(db: Database, settings: Settings, now: datetime) -> int:
    """Ask Stripe about card deposits pending for longer than ``LOOK_UP_AFTER`` and act on what each
    session says of itself, as its event would have: a deposit never depends on a webhook arriving.
    Each is decided under its row lock, so a late event and this lookup never both act. Returns how
    many were settled or closed."""
    if NAME not in settings.enabled_providers:
        return 0
    with db.read_only() as session:
        due = session.execute(due_for_look_up(now).limit(100)).all()
    decided = 0
    for deposit_id, session_id in due:
        if session_id is None:  # every card deposit names its session; none to ask about
            continue
        try:
            found = client(settings).v1.checkout.sessions.retrieve(session_id).to_dict()
        except stripe.StripeError as error:
            log.warning(
                "a pending card deposit could not be looked up; tried again on the next run",
                extra={"fields": {"deposit": deposit_id, "error": type(error).__name__}},
            )
            continue
        kind = {
            "complete": "checkout.session.completed",
            "expired": "checkout.session.expired",
        }.get(str(found.get("status")))
        if kind is None:
            continue  # still open: the payer may yet pay
        with db.unit_of_work() as session:
            outcome = _decide_deposit(
                Context(session, None, now=now, settings=settings), kind, found
            )
        if outcome.startswith(("settled", "closed")):
            decided += 1
            log.info(
                "a pending card deposit was decided by looking it up",
                extra={"fields": {"deposit": deposit_id, "outcome": outcome}},
            )
    return decided


def due_to_send() -> Select[str, int, str, str]:
    """The Stripe payouts waiting to be sent, with where to, oldest first."""
    return (
        select(Payout.id, Payout.amount, Payout.currency, ProviderAccount.account_id)
        .join(
            ProviderAccount,
            (ProviderAccount.user_id == Payout.user_id) & (ProviderAccount.provider == NAME),
        )
        .where(Payout.provider == NAME, Payout.status == PayoutStatus.PENDING)
        .order_by(Payout.created_at, Payout.id)
    )


def send_due_payouts(db: Database, settings: Settings) -> int:
    """Send the pending Stripe payouts as Connect transfers, each with its payout's id as the
    idempotency key, outside any transaction; then settle it (``paid``) in a unit of work of its own, or,
    if Stripe refuses the transfer, fail it and give the money back to the wallet. A payout Stripe
    could not be reached for stays pending for the next run, and the same key makes sure that a
    transfer sent but not recorded (a crash in between) is not sent twice. Returns how many were
    settled or failed."""
    if NAME not in settings.enabled_providers:
        return 0
    with db.read_only() as session:
        due = session.execute(due_to_send().limit(100)).all()
    done = 0
    for payout_id, amount, currency, account_id in due:
        try:
            transfer = client(settings).v1.transfers.create(
                {
                    "amount": to_stripe(amount, currency, payout=True),
                    "currency": currency.lower(),
                    "destination": account_id,
                    "transfer_group": payout_id,
                    "metadata": {"payout_id": payout_id},
                },
                {"idempotency_key": f"milepost-payout-{payout_id}"},
            )
        except stripe.InvalidRequestError as error:
            reason = f"Stripe refused the transfer: {error.user_message or _message(error)}"
            done += _finish_payout(db, settings, payout_id, None, reason[:500])
        except stripe.StripeError as error:
            log.warning(
                "a Stripe payout could not be sent; it is tried again on the next run",
                extra={"fields": {"payout": payout_id, "error": type(error).__name__}},
            )
        else:
            done += _finish_payout(db, settings, payout_id, str(transfer.id), None)
    return done


def _finish_payout(
    db: Database, settings: Settings, payout_id: str, transfer_id: str | None, refusal: str | None
) -> int:
    from milepost.wallets.transfers import MANUAL_PAYOUT

    with db.unit_of_work() as session:
        ctx = Context(session, None, settings=settings)
        payout = session.get(Payout, payout_id, with_for_update=True)
        if payout is None or payout.status is not PayoutStatus.PENDING:
            return 0  # another worker settled it (the same transfer, by the same key)
        if transfer_id is None:
            MANUAL_PAYOUT.close_pending(ctx, payout, refusal or "", Notice.PAYOUT_FAILED)
        else:
            payout.reference = transfer_id
            MANUAL_PAYOUT.settle_pending(ctx, payout)
    return 1


def _our_param(stripe_param: object) -> str | None:
    """The field of our request that Stripe's refusal names (``line_items[0][price_data][currency]``)."""
    if not isinstance(stripe_param, str):
        return None
    return "currency" if "currency" in stripe_param else "amount"


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
    """The event in ``payload`` if ``signature`` (the Stripe-Signature header) signs it with one of this
    installation's endpoint secrets (the account's endpoint and the Connect endpoint each have one)
    within the tolerance; else InvalidRequest, and nothing is read from it."""
    secrets = webhook_secrets(settings)
    if not secrets:
        raise InvalidRequest("Stripe events are not expected here.", code="not_configured")
    for secret in secrets:
        try:
            event: stripe.Event = stripe.Webhook.construct_event(
                payload,
                signature or "",
                secret,
                tolerance=settings.stripe_webhook_tolerance_seconds,
            )
        except stripe.SignatureVerificationError:
            continue
        except ValueError:
            raise InvalidRequest("The body is not a Stripe event.", code="bad_event") from None
        return event
    raise InvalidRequest(
        "The Stripe-Signature header does not sign this body with this endpoint's secret (or is too "
        "old); nothing was done.",
        code="bad_signature",
    )


def webhook_secrets(settings: Settings) -> list[str]:
    given = settings.stripe_webhook_secret
    if given is None:
        return []
    return [part.strip() for part in given.get_secret_value().split(",") if part.strip()]


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
    if kind == "account.updated":
        return _account_updated(ctx, event.data.object.to_dict())
    if kind == "charge.dispute.created":
        return _charged_back(ctx, event.data.object.to_dict())
    if kind == "charge.dispute.closed":
        return _dispute_closed(ctx, event.data.object.to_dict())
    if kind not in _SETTLES and kind not in _CLOSES:
        return "ignored: not an event Milepost acts on"
    return _decide_deposit(ctx, kind, event.data.object.to_dict())


def _decide_deposit(ctx: Context, kind: str, session: dict[str, Any]) -> str:
    """What a Checkout Session's news (an event's ``kind``, or what the session says of itself when
    it is looked up) does to its deposit: settle it when paid, close it when expired or failed."""
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
    currency = str(session.get("currency") or "").upper()
    total = session.get("amount_total")
    paid = (
        from_stripe(total, deposit.currency) if isinstance(total, int) else None,
        currency,
    )
    if paid != (deposit.amount, deposit.currency):
        log.error(
            "a Stripe payment does not match its deposit; left pending for staff",
            extra={"fields": {"deposit": deposit.id, "paid": list(paid)}},
        )
        return f"refused: the payment is not the deposit's amount; {deposit.id} left pending"
    deposit.provider_payment_id = _id_of(session.get("payment_intent"))
    settle_deposit(ctx, deposit)
    return f"settled {deposit.id}"


def _charged_back(ctx: Context, dispute: dict[str, Any]) -> str:
    """The cardholder disputed a card deposit with their bank: Stripe has taken the money back from
    the platform's account, so Milepost takes it back from the deposit's owner as far as it can
    (wallets/reversals.py)."""
    from milepost.wallets.reversals import reverse_deposit

    intent = _id_of(dispute.get("payment_intent"))
    deposit = (
        ctx.session.scalar(
            select(Deposit)
            .where(Deposit.provider == NAME, Deposit.provider_payment_id == intent)
            .with_for_update()
        )
        if intent
        else None
    )
    if deposit is None:
        return "ignored: no deposit of this installation was paid with it"
    if deposit.status is not DepositStatus.SUCCEEDED:
        return f"ignored: deposit {deposit.id} is {deposit.status.value}"
    if str(dispute.get("currency") or "").upper() != deposit.currency:
        log.error(
            "a Stripe dispute is not in its deposit's currency",
            extra={"fields": {"deposit": deposit.id}},
        )
        return f"refused: the dispute is not in {deposit.id}'s currency; left for staff"
    why = str(dispute.get("reason") or "no reason given").replace("_", " ")
    disputed = dispute.get("amount")
    # What Stripe took back, in Milepost's minor units (a fraction of one taken back whole).
    amount = (
        from_stripe(disputed, deposit.currency, rounding_up=True)
        if isinstance(disputed, int)
        else None
    )
    reversal = reverse_deposit(
        ctx,
        deposit,
        amount=deposit.amount if amount is None else amount,
        reason=f"the card payment was disputed ({why})",
        provider_reference=str(dispute.get("id")),
    )
    return f"reversed {deposit.id}: {reversal.loss} lost"


def _dispute_closed(ctx: Context, dispute: dict[str, Any]) -> str:
    """The card dispute is over. Won: Stripe has given the money back to the platform, and Milepost
    gives it back as wallets/reversals.py says. Lost: the money stays taken back, as it was."""
    from milepost.wallets.reversals import reinstate_deposit

    status = str(dispute.get("status") or "")
    reversal = ctx.session.scalar(
        select(DepositReversal).where(DepositReversal.provider_reference == str(dispute.get("id")))
    )
    if reversal is None:
        return "ignored: no deposit of this installation was taken back for it"
    if status != "won":
        ended = status or "without a status"
        return f"ignored: the dispute ended {ended}; {reversal.deposit_id} stays reversed"
    # The deposit's row lock, as the reversal held it: one event of the two that may race acts.
    ctx.session.get(Deposit, reversal.deposit_id, with_for_update=True)
    ctx.session.refresh(reversal)
    if reversal.reinstated_at is not None:
        return f"ignored: deposit {reversal.deposit_id} was given back already"
    reinstate_deposit(ctx, reversal)
    return f"gave back {reversal.deposit_id}: {reversal.loss} of the loss made good"


def _account_updated(ctx: Context, account: dict[str, Any]) -> str:
    """A connected account's details changed on Stripe: whether it can be paid now."""
    mine = ctx.session.scalar(
        select(ProviderAccount)
        .where(ProviderAccount.provider == NAME, ProviderAccount.account_id == account.get("id"))
        .with_for_update()
    )
    if mine is None:
        return "ignored: no payout account of this installation"
    mine.payouts_enabled = bool(account.get("payouts_enabled"))
    mine.updated_at = ctx.now
    return f"account {mine.account_id} {'can' if mine.payouts_enabled else 'cannot'} be paid"


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
