"""Balances, deposits and payouts."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from milepost.kit.http import ApiDep, PublicApiDep
from milepost.kit.schemas import Deleted, Limit, ListOf, error_responses
from milepost.wallets import destinations, reversals, service, stripe_provider
from milepost.wallets.schemas import (
    BalanceOut,
    BalancesOut,
    DepositOut,
    DepositReversalOut,
    DestinationIn,
    DestinationOut,
    MoneyMovement,
    PayoutAccountOut,
    PayoutIn,
    PayoutOut,
    ProviderEventOut,
    RefusalIn,
)

router = APIRouter(tags=["wallets"])


@router.get(
    "/balances",
    response_model=BalancesOut,
    summary="My balances",
    responses=error_responses(401),
)
def balances(api: ApiDep) -> Response:
    """The caller's money per currency, in minor units: `available` (free to fund or pay out),
    `escrow_outgoing` (held for milestones they pay for) and `escrow_incoming` (held for milestones they
    are paid for)."""
    return api.read(
        lambda ctx: service.balances(ctx, ctx.require_actor().id),
        lambda rows: BalancesOut(data=[BalanceOut.of(row) for row in rows]),
    )


@router.post(
    "/deposits",
    status_code=201,
    response_model=DepositOut,
    summary="Deposit money",
    responses=error_responses(400, 401, 409, 413, 422, write=True),
)
async def create_deposit(body: MoneyMovement, api: ApiDep) -> Response:
    """Add money to the caller's available balance through a payment provider. `sandbox` (where enabled)
    credits it at once (`succeeded`); `manual` is a bank transfer: the deposit is `pending`, with a
    `reference` to quote, until staff confirm that the money arrived. Any signed-in user; amounts in
    minor units (1500000 = $15,000.00 in USD)."""
    return await api.write(
        lambda ctx: service.create_deposit(
            ctx, amount=body.amount, currency=body.currency, provider=body.provider
        ),
        DepositOut.of,
        status=201,
    )


@router.post(
    "/providers/stripe/events",
    response_model=ProviderEventOut,
    summary="Receive a Stripe event (Stripe's webhook)",
    # 401: like every operation, a bearer token that is sent must be valid (Stripe sends none).
    responses=error_responses(400, 401, 409, 413, 422, write=True),
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": {"type": "object"}}},
        }
    },
)
async def stripe_event(request: Request, api: PublicApiDep) -> Response:
    """Where Stripe sends its events (register this URL as a webhook endpoint in Stripe, with the events
    `checkout.session.completed`, `checkout.session.async_payment_succeeded`,
    `checkout.session.async_payment_failed` and `checkout.session.expired`). Only a body signed with
    the endpoint's secret (`Stripe-Signature`, `MILEPOST_STRIPE_WEBHOOK_SECRET`) within the tolerance is
    read; any other is 400 `bad_signature` and does nothing. Each event acts once, by its id: a paid
    session credits its deposit, an expired or failed one closes it uncredited. An error answer (the
    database unreachable) makes Stripe send the event again later."""
    payload = await request.body()
    signature = request.headers.get("stripe-signature")
    return await api.write(
        lambda ctx: stripe_provider.receive_event(ctx, payload, signature),
        ProviderEventOut.of,
        auth=False,
        idempotent=False,
    )


@router.post(
    "/payout-accounts/stripe",
    response_model=PayoutAccountOut,
    summary="Set up my Stripe account for payouts",
    responses=error_responses(401, 409, 422, write=True),
)
async def open_stripe_payout_account(api: ApiDep) -> Response:
    """The caller's Stripe Connect (Express) account, made on the first call, with a fresh
    `onboarding_url` to Stripe's pages where they give their details and bank account. Payouts with
    `provider: stripe` are accepted once Stripe says the account can be paid (`payouts_enabled`). Any
    signed-in user; 422 where Stripe is not enabled; 503 when Stripe cannot be reached."""
    return await api.write(
        stripe_provider.open_payout_account,
        lambda view: PayoutAccountOut.of(view.account, view.onboarding_url),
    )


@router.get(
    "/payout-accounts",
    response_model=ListOf[PayoutAccountOut],
    summary="My payout accounts at providers",
    responses=error_responses(401),
)
def payout_accounts(api: ApiDep) -> Response:
    """The caller's accounts at providers that pay them (Stripe Connect), with whether each can be paid
    now."""
    return api.read(
        stripe_provider.list_payout_accounts,
        lambda accounts: ListOf[PayoutAccountOut](
            data=[PayoutAccountOut.of(account) for account in accounts], has_more=False
        ),
    )


@router.post(
    "/deposits/{deposit_id}/confirm",
    response_model=DepositOut,
    summary="Confirm a bank-transfer deposit (staff)",
    responses=error_responses(401, 403, 404, 409, 422, write=True),
)
async def confirm_deposit(deposit_id: str, api: ApiDep) -> Response:
    """Staff only: the money of a pending manual deposit arrived; it is credited to the user's available
    balance (`succeeded`). A deposit already confirmed or rejected is 409."""
    return await api.write(lambda ctx: service.confirm_deposit(ctx, deposit_id), DepositOut.of)


@router.post(
    "/deposits/{deposit_id}/reject",
    response_model=DepositOut,
    summary="Reject a bank-transfer deposit (staff)",
    responses=error_responses(400, 401, 403, 404, 409, 413, 422, write=True),
)
async def reject_deposit(deposit_id: str, body: RefusalIn, api: ApiDep) -> Response:
    """Staff only: a pending manual deposit's money never arrived (or cannot be matched). Nothing was
    credited and no money moves; the user is told the reason. Not pending, or not manual: 409."""
    return await api.write(
        lambda ctx: service.reject_deposit(ctx, deposit_id, reason=body.reason), DepositOut.of
    )


@router.post(
    "/deposits/{deposit_id}/bounce",
    response_model=DepositReversalOut,
    summary="Record a bank-transfer deposit that bounced (staff)",
    responses=error_responses(400, 401, 403, 404, 409, 413, 422, write=True),
)
async def bounce_deposit(deposit_id: str, body: RefusalIn, api: ApiDep) -> Response:
    """Staff only: a confirmed bank transfer came back (the payer's bank returned it). The deposit is
    `reversed`: its amount is taken back from the user's wallet (their pending bank-transfer payouts
    called back first), and what is not there is the platform's loss; never a negative balance. The
    user's payouts are held until staff lift the hold; the user and staff are told. Not a succeeded
    manual deposit: 409."""
    return await api.write(
        lambda ctx: reversals.bounce_deposit(ctx, deposit_id, reason=body.reason),
        DepositReversalOut.of,
    )


@router.delete(
    "/users/{user_id}/payout-hold",
    status_code=204,
    summary="Lift a user's payout hold (staff)",
    responses=error_responses(401, 403, 404, 409, 422, write=True),
)
async def lift_payout_hold(user_id: str, api: ApiDep) -> Response:
    """Staff only: the user's payouts, held since a deposit of theirs was taken back, may go again."""
    return await api.write(lambda ctx: reversals.lift_payout_hold(ctx, user_id), None, status=204)


@router.post(
    "/payouts",
    status_code=201,
    response_model=PayoutOut,
    summary="Pay out money",
    responses=error_responses(400, 401, 402, 404, 409, 413, 422, write=True),
)
async def create_payout(body: PayoutIn, api: ApiDep) -> Response:
    """Take money from the caller's available balance and send it out through a provider (402 beyond the
    available balance). With `manual`, name one of the caller's payout destinations (`destination_id`;
    an unknown one is 404); the payout stays `pending` until staff mark it paid or failed."""
    return await api.write(
        lambda ctx: service.create_payout(
            ctx,
            amount=body.amount,
            currency=body.currency,
            provider=body.provider,
            destination_id=body.destination_id,
        ),
        PayoutOut.of,
        status=201,
    )


@router.get(
    "/payouts/{payout_id}",
    response_model=PayoutOut,
    summary="Get a payout",
    responses=error_responses(401, 404, 422),
)
def get_payout(payout_id: str, api: ApiDep) -> Response:
    """One of the caller's payouts, its destination masked; staff see any payout with the destination in
    full (to send the money)."""
    return api.read(lambda ctx: service.get_payout(ctx, payout_id), PayoutOut.view)


@router.post(
    "/payouts/{payout_id}/mark-paid",
    response_model=PayoutOut,
    summary="Mark a bank-transfer payout paid (staff)",
    responses=error_responses(401, 403, 404, 409, 422, write=True),
)
async def mark_payout_paid(payout_id: str, api: ApiDep) -> Response:
    """Staff only: the bank transfer of a pending manual payout was sent; the money leaves the payout
    clearing account for good (`paid`). Already paid or failed: 409."""
    return await api.write(
        lambda ctx: service.mark_payout_paid(ctx, payout_id), PayoutOut.for_staff
    )


@router.post(
    "/payouts/{payout_id}/fail",
    response_model=PayoutOut,
    summary="Mark a bank-transfer payout failed (staff)",
    responses=error_responses(400, 401, 403, 404, 409, 413, 422, write=True),
)
async def fail_payout(payout_id: str, body: RefusalIn, api: ApiDep) -> Response:
    """Staff only: a pending manual payout did not reach the user (bounced, refused). The amount goes back
    to the user's available balance, and they are told the reason. Already paid or failed: 409."""
    return await api.write(
        lambda ctx: service.fail_payout(ctx, payout_id, reason=body.reason), PayoutOut.for_staff
    )


@router.post(
    "/payout-destinations",
    status_code=201,
    response_model=DestinationOut,
    summary="Add a payout destination",
    responses=error_responses(400, 401, 409, 413, 422, write=True),
)
async def create_destination(body: DestinationIn, api: ApiDep) -> Response:
    """Keep a bank account to receive manual payouts: an IBAN (checksum checked, optional BIC) or an
    account number with its routing number. Shown masked from then on. No money moves."""
    return await api.write(
        lambda ctx: destinations.add_destination(ctx, **body.model_dump()),
        DestinationOut.of,
        status=201,
    )


@router.get(
    "/payout-destinations",
    response_model=ListOf[DestinationOut],
    summary="List my payout destinations",
    responses=error_responses(400, 401, 422),
)
def list_destinations(
    api: ApiDep, limit: Limit = 20, starting_after: str | None = None
) -> Response:
    """The caller's bank accounts for payouts, masked, newest first."""
    return api.read(
        lambda ctx: destinations.list_destinations(ctx, limit=limit, starting_after=starting_after),
        lambda page: ListOf[DestinationOut](
            data=[DestinationOut.of(item) for item in page.data], has_more=page.has_more
        ),
    )


@router.delete(
    "/payout-destinations/{destination_id}",
    response_model=Deleted,
    summary="Remove a payout destination",
    responses=error_responses(401, 404, 409, 422, write=True),
)
async def delete_destination(destination_id: str, api: ApiDep) -> Response:
    """Stop offering one of the caller's bank accounts for new payouts; a pending payout to it is still
    sent there."""
    return await api.write(
        lambda ctx: destinations.remove_destination(ctx, destination_id),
        lambda destination: Deleted(id=destination.id),
    )
