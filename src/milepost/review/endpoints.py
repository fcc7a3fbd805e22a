"""Review context over HTTP: ``GET /v1/milestones/{id}/review``, for the milestone's parties."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import Response

from milepost.kit.http import ApiDep
from milepost.kit.schemas import error_responses
from milepost.review import service
from milepost.review.schemas import ReviewContextOut

router = APIRouter(tags=["review"])


@router.get(
    "/milestones/{milestone_id}/review",
    response_model=ReviewContextOut,
    summary="Review a delivery against the terms",
    responses=error_responses(401, 404, 422),
)
def get_review_context(milestone_id: str, api: ApiDep) -> Response:
    """For the milestone's parties: each acceptance criterion and required evidence item matched against
    the latest delivery, the revisions and what changed between them, the time left to review, and a
    suggestion (approve or request changes). Advice only: nothing is decided or moved."""
    return api.read(lambda ctx: service.review_context(ctx, milestone_id), ReviewContextOut.of)
