"""Disputes: settlement offers, acceptance, withdrawal, staff resolution."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import Response

from milepost.disputes import service
from milepost.disputes.schemas import DisputeOut, OfferIn, OfferOut, ResolveIn
from milepost.kit.http import ApiDep
from milepost.kit.schemas import ListOf

router = APIRouter(tags=["disputes"])


@router.get("/disputes/{dispute_id}", response_model=DisputeOut)
def get_dispute(dispute_id: str, api: ApiDep) -> Response:
    return api.read(lambda ctx: service.get_dispute(ctx, dispute_id), DisputeOut.of)


@router.get("/disputes/{dispute_id}/offers", response_model=ListOf[OfferOut])
def list_offers(dispute_id: str, api: ApiDep) -> Response:
    return api.read(
        lambda ctx: service.list_offers(ctx, dispute_id),
        lambda rows: ListOf[OfferOut](data=[OfferOut.of(row) for row in rows], has_more=False),
    )


@router.post("/disputes/{dispute_id}/offers", status_code=201, response_model=OfferOut)
async def make_offer(dispute_id: str, body: OfferIn, api: ApiDep) -> Response:
    return await api.write(
        lambda ctx: service.make_offer(ctx, dispute_id, to_freelancer=body.to_freelancer),
        OfferOut.of,
        status=201,
    )


@router.post("/disputes/{dispute_id}/offers/{offer_id}/accept", response_model=DisputeOut)
async def accept_offer(dispute_id: str, offer_id: str, api: ApiDep) -> Response:
    return await api.write(
        lambda ctx: service.accept_offer(ctx, dispute_id, offer_id), DisputeOut.of
    )


@router.post("/disputes/{dispute_id}/withdraw", response_model=DisputeOut)
async def withdraw(dispute_id: str, api: ApiDep) -> Response:
    return await api.write(lambda ctx: service.withdraw(ctx, dispute_id), DisputeOut.of)


@router.post("/disputes/{dispute_id}/resolve", response_model=DisputeOut)
async def resolve(dispute_id: str, body: ResolveIn, api: ApiDep) -> Response:
    return await api.write(
        lambda ctx: service.resolve(
            ctx,
            dispute_id,
            to_freelancer=body.to_freelancer,
            to_client=body.to_client,
            note=body.note,
        ),
        DisputeOut.of,
    )
