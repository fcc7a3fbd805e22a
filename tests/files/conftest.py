"""File tests run against the real HTTP server (tests/api/conftest.py), with a small upload limit."""

from __future__ import annotations

from pathlib import Path

import pytest

from milepost.settings import Settings
from tests.api.conftest import base_url, sign_up

__all__ = ["base_url", "sign_up"]

UPLOAD_LIMIT = 64 * 1024


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(
        fee_bps=1000,
        providers="sandbox,manual",
        files_dir=str(tmp_path / "files"),
        max_upload_bytes=UPLOAD_LIMIT,
    )
