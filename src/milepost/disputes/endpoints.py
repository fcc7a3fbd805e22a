"""Disputes: settlement offers, acceptance, withdrawal, staff resolution."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import Response

from milepost.disputes import service
from milepost.disputes.schemas import DisputeOut, OfferIn, OfferOut, ResolveIn
from milepost.kit.http import ApiDep
from milepost.kit.schemas import ListOf, error_responses

router = APIRouter(tags=["disputes"])


@router.get(
    "/disputes/{dispute_id}",
    response_model=DisputeOut,
    summary="Get a dispute",
    responses=error_responses(401, 404, 422),
)
def get_dispute(dispute_id: str, api: ApiDep) -> Response:
    """A dispute, with its deadlines and, once resolved, how the escrow was split. The milestone's
    parties and staff."""
    return api.read(lambda ctx: service.get_dispute(ctx, dispute_id), DisputeOut.of)


@router.get(
    "/disputes/{dispute_id}/offers",
    response_model=ListOf[OfferOut],
    summary="List settlement offers",
    responses=error_responses(401, 404, 422),
)
def list_offers(dispute_id: str, api: ApiDep) -> Response:
    """Every settlement offer made in the dispute, by either party."""
    return api.read(
        lambda ctx: service.list_offers(ctx, dispute_id),
        lambda rows: ListOf[OfferOut](data=[OfferOut.of(row) for row in rows], has_more=False),
    )


@router.post(
    "/disputes/{dispute_id}/offers",
    status_code=201,
    response_model=OfferOut,
    summary="Offer a settlement",
    responses=error_responses(400, 401, 403, 404, 409, 413, 422, write=True),
)
async def make_offer(dispute_id: str, body: OfferIn, api: ApiDep) -> Response:
    """A party to an open dispute offers a split: `to_freelancer` (minor units, at most the escrow), the
    rest back to the client. It replaces that party's earlier open offer. No money moves until the other
    party accepts."""
    return await api.write(
        lambda ctx: service.make_offer(ctx, dispute_id, to_freelancer=body.to_freelancer),
        OfferOut.of,
        status=201,
    )


@router.post(
    "/disputes/{dispute_id}/offers/{offer_id}/accept",
    response_model=DisputeOut,
    summary="Accept a settlement offer",
    responses=error_responses(401, 403, 404, 409, 422, write=True),
)
async def accept_offer(dispute_id: str, offer_id: str, api: ApiDep) -> Response:
    """The other party accepts an open offer: the escrow is split as offered (the freelancer's part less
    the platform fee, the rest refunded to the client) and the dispute is `resolved`."""
    return await api.write(
        lambda ctx: service.accept_offer(ctx, dispute_id, offer_id), DisputeOut.of
    )


@router.post(
    "/disputes/{dispute_id}/withdraw",
    response_model=DisputeOut,
    summary="Withdraw a dispute",
    responses=error_responses(401, 403, 404, 409, 422, write=True),
)
async def withdraw(dispute_id: str, api: ApiDep) -> Response:
    """The party who opened the dispute withdraws it: the milestone returns to the status it had, the
    escrow untouched."""
    return await api.write(lambda ctx: service.withdraw(ctx, dispute_id), DisputeOut.of)


@router.post(
    "/disputes/{dispute_id}/resolve",
    response_model=DisputeOut,
    summary="Resolve a dispute (staff)",
    responses=error_responses(400, 401, 403, 404, 409, 413, 422, write=True),
)
async def resolve(dispute_id: str, body: ResolveIn, api: ApiDep) -> Response:
    """Staff only: split the escrow between the parties (`to_freelancer` + `to_client` must add up to
    the escrow balance, else 422); the freelancer's part is released less the platform fee, the client's
    refunded. The dispute is `resolved`. A staff member who is the milestone's client or freelancer may
    not rule on it: 403 `staff_is_party`."""
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
