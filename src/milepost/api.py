"""All HTTP routes under /v1, one router per domain."""

from __future__ import annotations

from fastapi import APIRouter, Depends

from milepost.disputes.endpoints import router as disputes
from milepost.feedback.endpoints import router as feedback
from milepost.files.endpoints import router as files
from milepost.kit.http import refuse_control_characters
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

# Text with NUL or another control character is refused (422) before any endpoint runs.
# Each operation declares the error statuses it can answer itself (kit.schemas.error_responses).
router = APIRouter(prefix="/v1", dependencies=[Depends(refuse_control_characters)])
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
