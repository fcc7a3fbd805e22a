"""Review context over HTTP: ``GET /v1/milestones/{id}/review``, for the milestone's parties."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import Response

from milepost.kit.http import ApiDep
from milepost.review import service
from milepost.review.schemas import ReviewContextOut

router = APIRouter(tags=["review"])


@router.get("/milestones/{milestone_id}/review", response_model=ReviewContextOut)
def get_review_context(milestone_id: str, api: ApiDep) -> Response:
    return api.read(lambda ctx: service.review_context(ctx, milestone_id), ReviewContextOut.of)
