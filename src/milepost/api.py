"""All HTTP routes under /v1, one router per domain."""

from __future__ import annotations

from fastapi import Depends, FastAPI

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

# The domains' routers, in the order their operations are listed (and matched).
DOMAINS = (
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
)


def include(app: FastAPI) -> None:
    """Put every domain's routes under /v1. Text with NUL or another control character is refused (422)
    before any endpoint runs. Each operation declares the error statuses it can answer itself
    (kit.schemas.error_responses).

    Each domain's router is included in the app itself, not in a /v1 router of its own: FastAPI matches
    a request against every router on its way down, and again when it hands the request on, so each
    level of nesting cost a request about 0.15 ms of CPU more for an operation listed late (the
    milestones' fund, submit and approve)."""
    for domain in DOMAINS:
        app.include_router(domain, prefix="/v1", dependencies=[Depends(refuse_control_characters)])
