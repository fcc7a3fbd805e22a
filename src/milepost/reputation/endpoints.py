"""A user's reputation: ratings, completion, on-time payment, money earned and paid, disputes."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import Response

from milepost.kit.http import ApiDep
from milepost.kit.schemas import error_responses
from milepost.reputation import service
from milepost.reputation.schemas import ReputationOut

router = APIRouter(tags=["reputation"])


@router.get(
    "/users/{user_id}/reputation",
    response_model=ReputationOut,
    summary="A user's reputation",
    responses=error_responses(401, 404, 422),
)
def reputation(user_id: str, api: ApiDep) -> Response:
    """A user's track record, for any signed-in user: average rating, completion rate (as freelancer),
    on-time payment rate (as client), money earned and paid per currency (minor units), disputes."""
    return api.read(lambda ctx: service.reputation(ctx, user_id), ReputationOut.of)
