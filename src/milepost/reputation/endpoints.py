"""A user's reputation: ratings, completion, on-time payment, money earned and paid, disputes."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import Response

from milepost.kit.http import ApiDep
from milepost.reputation import service
from milepost.reputation.schemas import ReputationOut

router = APIRouter(tags=["reputation"])


@router.get("/users/{user_id}/reputation", response_model=ReputationOut)
def reputation(user_id: str, api: ApiDep) -> Response:
    return api.read(lambda ctx: service.reputation(ctx, user_id), ReputationOut.of)
