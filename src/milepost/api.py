"""All HTTP routes under /v1, one router per domain."""

from __future__ import annotations

from fastapi import APIRouter

from milepost.users.endpoints import router as users
from milepost.wallets.endpoints import router as wallets

router = APIRouter(prefix="/v1")
for domain in (users, wallets):
    router.include_router(domain)
