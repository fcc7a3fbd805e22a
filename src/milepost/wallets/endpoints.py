"""Balances, deposits and payouts."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import Response

from milepost.kit.http import ApiDep
from milepost.wallets import service
from milepost.wallets.schemas import BalanceOut, BalancesOut, DepositOut, MoneyMovement, PayoutOut

router = APIRouter(tags=["wallets"])


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


@router.post("/payouts", status_code=201, response_model=PayoutOut)
async def create_payout(body: MoneyMovement, api: ApiDep) -> Response:
    return await api.write(
        lambda ctx: service.create_payout(
            ctx, amount=body.amount, currency=body.currency, provider=body.provider
        ),
        PayoutOut.of,
        status=201,
    )


@router.post("/payouts/{payout_id}/mark-paid", response_model=PayoutOut)
async def mark_payout_paid(payout_id: str, api: ApiDep) -> Response:
    return await api.write(lambda ctx: service.mark_payout_paid(ctx, payout_id), PayoutOut.of)
