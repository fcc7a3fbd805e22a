"""Balances, deposits and payouts."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import Response

from milepost.kit.http import ApiDep
from milepost.kit.schemas import Deleted, ListOf
from milepost.wallets import destinations, service
from milepost.wallets.schemas import (
    BalanceOut,
    BalancesOut,
    DepositOut,
    DestinationIn,
    DestinationOut,
    MoneyMovement,
    PayoutIn,
    PayoutOut,
    ReasonIn,
)

router = APIRouter(tags=["wallets"])
Limit = Annotated[int, Query(ge=1, le=100)]


@router.get("/balances", response_model=BalancesOut)
def balances(api: ApiDep) -> Response:
    return api.read(
        lambda ctx: service.balances(ctx, ctx.require_actor().id),
        lambda rows: BalancesOut(data=[BalanceOut.of(row) for row in rows]),
    )


@router.post("/deposits", status_code=201, response_model=DepositOut)
async def create_deposit(body: MoneyMovement, api: ApiDep) -> Response:
    return await api.write(
        lambda ctx: service.create_deposit(
            ctx, amount=body.amount, currency=body.currency, provider=body.provider
        ),
        DepositOut.of,
        status=201,
    )


@router.post("/deposits/{deposit_id}/confirm", response_model=DepositOut)
async def confirm_deposit(deposit_id: str, api: ApiDep) -> Response:
    return await api.write(lambda ctx: service.confirm_deposit(ctx, deposit_id), DepositOut.of)


@router.post("/deposits/{deposit_id}/reject", response_model=DepositOut)
async def reject_deposit(deposit_id: str, body: ReasonIn, api: ApiDep) -> Response:
    return await api.write(
        lambda ctx: service.reject_deposit(ctx, deposit_id, reason=body.reason), DepositOut.of
    )


@router.post("/payouts", status_code=201, response_model=PayoutOut)
async def create_payout(body: PayoutIn, api: ApiDep) -> Response:
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


@router.get("/payouts/{payout_id}", response_model=PayoutOut)
def get_payout(payout_id: str, api: ApiDep) -> Response:
    return api.read(lambda ctx: service.get_payout(ctx, payout_id), PayoutOut.view)


@router.post("/payouts/{payout_id}/mark-paid", response_model=PayoutOut)
async def mark_payout_paid(payout_id: str, api: ApiDep) -> Response:
    return await api.write(
        lambda ctx: service.mark_payout_paid(ctx, payout_id), PayoutOut.for_staff
    )


@router.post("/payouts/{payout_id}/fail", response_model=PayoutOut)
async def fail_payout(payout_id: str, body: ReasonIn, api: ApiDep) -> Response:
    return await api.write(
        lambda ctx: service.fail_payout(ctx, payout_id, reason=body.reason), PayoutOut.for_staff
    )


@router.post("/payout-destinations", status_code=201, response_model=DestinationOut)
async def create_destination(body: DestinationIn, api: ApiDep) -> Response:
    return await api.write(
        lambda ctx: destinations.add_destination(ctx, **body.model_dump()),
        DestinationOut.of,
        status=201,
    )


@router.get("/payout-destinations", response_model=ListOf[DestinationOut])
def list_destinations(
    api: ApiDep, limit: Limit = 20, starting_after: str | None = None
) -> Response:
    return api.read(
        lambda ctx: destinations.list_destinations(ctx, limit=limit, starting_after=starting_after),
        lambda page: ListOf[DestinationOut](
            data=[DestinationOut.of(item) for item in page.data], has_more=page.has_more
        ),
    )


@router.delete("/payout-destinations/{destination_id}", response_model=Deleted)
async def delete_destination(destination_id: str, api: ApiDep) -> Response:
    return await api.write(
        lambda ctx: destinations.remove_destination(ctx, destination_id),
        lambda destination: Deleted(id=destination.id),
    )
