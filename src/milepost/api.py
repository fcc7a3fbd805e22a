"""All HTTP routes under /v1, one router per domain."""

from __future__ import annotations

from fastapi import APIRouter, Depends

from milepost.disputes.endpoints import router as disputes
from milepost.feedback.endpoints import router as feedback
from milepost.files.endpoints import router as files
from milepost.kit.http import refuse_control_characters
from milepost.kit.schemas import ErrorOut
from milepost.ledger.endpoints import router as ledger
from milepost.milestones.endpoints import router as milestones
from milepost.notifications.endpoints import router as notifications
from milepost.projects.endpoints import router as projects
from milepost.receipts.endpoints import router as receipts
from milepost.reputation.endpoints import router as reputation
from milepost.review.endpoints import router as review
from milepost.users.endpoints import router as users
from milepost.wallets.endpoints import router as wallets
from milepost.webhooks.endpoints import router as webhooks

# Every operation may answer with these, all in the error shape of API.md; declaring them makes the OpenAPI
# document describe error bodies too (and replaces FastAPI's default 422, which has another shape).
ERRORS: dict[int | str, dict[str, object]] = {
    status: {"model": ErrorOut, "description": description}
    for status, description in {
        400: "Malformed JSON, or an invalid query parameter.",
        401: "No token, or an unknown or revoked one; or a bad password.",
        402: "The available balance is too small.",
        403: "A party to the object, but not allowed to do this.",
        404: "No such object, or the caller is not a party to it.",
        409: "Not allowed in the object's current state, or a concurrent request holds it.",
        413: "The request body is too large.",
        422: "A field is missing or wrong (`param` names it), or an idempotency key was reused.",
        429: "Too many attempts.",
    }.items()
}

# Text with NUL or another control character is refused (422) before any endpoint runs.
router = APIRouter(
    prefix="/v1", responses=ERRORS, dependencies=[Depends(refuse_control_characters)]
)
for domain in (
    users,
    wallets,
    ledger,
    projects,
    milestones,
    review,
    disputes,
    files,
    webhooks,
    notifications,
    feedback,
    reputation,
    receipts,
):
    router.include_router(domain)
