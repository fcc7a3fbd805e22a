"""Staff pages: the dispute queue and resolution, manual deposits and payouts to confirm, ledger status."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(include_in_schema=False)
