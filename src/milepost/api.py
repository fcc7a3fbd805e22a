"""All HTTP routes under /v1, one router per domain."""

from __future__ import annotations

from fastapi import APIRouter

from milepost.disputes.endpoints import router as disputes
from milepost.ledger.endpoints import router as ledger
from milepost.milestones.endpoints import router as milestones
from milepost.projects.endpoints import router as projects
from milepost.users.endpoints import router as users
from milepost.wallets.endpoints import router as wallets

router = APIRouter(prefix="/v1")
for domain in (users, wallets, ledger, projects, milestones, disputes):
    router.include_router(domain)
