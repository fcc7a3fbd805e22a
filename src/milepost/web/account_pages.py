"""The account's pages: notifications, profiles with reputation, settings."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(include_in_schema=False)
