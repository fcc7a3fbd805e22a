"""Projects: posting, proposals and their acceptance, the milestone table, pause and resume."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(include_in_schema=False)
