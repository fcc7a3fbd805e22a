"""Disputes: settlement offers, acceptance, withdrawal, staff resolution."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter
from fastapi.responses import Response

from milepost.disputes import service
from milepost.disputes.models import DisputeStatus
from milepost.disputes.schemas import (
    DisputeOut,
    MessageIn,
    MessageOut,
    OfferIn,
    OfferOut,
    ResolveIn,
)
from milepost.kit.http import ApiDep
from milepost.kit.schemas import Limit, ListOf, error_responses

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


@router.get(
    "/disputes/{dispute_id}/messages",
    response_model=ListOf[MessageOut],
    summary="List a dispute's messages",
    responses=error_responses(401, 404, 422),
)
def list_messages(dispute_id: str, api: ApiDep) -> Response:
    """The dispute's conversation, oldest first: the parties and staff."""
    return api.read(
        lambda ctx: service.list_messages(ctx, dispute_id),
        lambda rows: ListOf[MessageOut](data=[MessageOut.of(row) for row in rows], has_more=False),
    )


@router.post(
    "/disputes/{dispute_id}/messages",
    status_code=201,
    response_model=MessageOut,
    summary="Write in a dispute",
    responses=error_responses(400, 401, 403, 404, 409, 413, 422, write=True),
)
async def post_message(dispute_id: str, body: MessageIn, api: ApiDep) -> Response:
    """A party or staff writes in an open dispute, with attachments (evidence items as for a delivery;
    files must be the author's own uploads, and the parties and staff may then download them). A message
    from the party who must answer stops the response window. The parties are notified, and their
    webhooks get `milestone.dispute_message`. 409 once the dispute has ended."""
    return await api.write(
        lambda ctx: service.post_message(
            ctx, dispute_id, body=body.body, attachments=body.attachment_items()
        ),
        MessageOut.of,
        status=201,
    )


@router.get(
    "/staff/disputes",
    response_model=ListOf[DisputeOut],
    summary="List disputes (staff)",
    responses=error_responses(400, 401, 403, 422),
)
def list_staff_disputes(
    api: ApiDep,
    status: Literal["open", "withdrawn", "resolved", "all"] = "open",
    overdue: bool | None = None,
    awaiting_answer: bool | None = None,
    currency: str | None = None,
    limit: Limit = 20,
    starting_after: str | None = None,
) -> Response:
    """Staff only: disputes, newest first; by default the open ones (`status`: `open`, `withdrawn`,
    `resolved` or `all`). `overdue=true`: past the
    mediation window (flagged by the time-driven work); `awaiting_answer=true`: open with the response
    window running; `currency`: the milestone's."""
    return api.read(
        lambda ctx: service.list_for_staff(
            ctx,
            status=None if status == "all" else DisputeStatus(status),
            overdue=overdue,
            awaiting_answer=awaiting_answer,
            currency=currency,
            limit=limit,
            starting_after=starting_after,
        ),
        lambda page: ListOf[DisputeOut](
            data=[DisputeOut.of(row) for row in page.data], has_more=page.has_more
        ),
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
