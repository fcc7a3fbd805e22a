"""Configuration from the environment (``MILEPOST_*``), with defaults that work out of the box."""

from __future__ import annotations

from functools import lru_cache

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from milepost.kit.db import DEFAULT_DATABASE_URL


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="MILEPOST_", extra="ignore")

    database_url: str = DEFAULT_DATABASE_URL
    # Platform fee taken from the freelancer's side at each release, in basis points (1000 = 10%).
    fee_bps: int = Field(default=1000, ge=0, le=10_000)
    # Disputes: the other party must answer within this many days, or the opener wins.
    dispute_response_days: int = Field(default=7, ge=1)
    # An unresolved dispute goes to the staff queue as overdue after this many days.
    dispute_mediation_days: int = Field(default=14, ge=1)
    # HTTP: the largest JSON body accepted, and the largest uploaded file.
    max_json_bytes: int = Field(default=1024 * 1024, ge=1024)
    max_upload_bytes: int = Field(default=25 * 1024 * 1024, ge=1024)
    # Run background work (webhook delivery, and later time-driven work) inside the server process.
    run_worker: bool = True
    # Uploaded files, stored by SHA-256.
    files_dir: str = "milepost-files"


@lru_cache
def get_settings() -> Settings:
    return Settings()
