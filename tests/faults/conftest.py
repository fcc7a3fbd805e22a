"""Fault tests talk to the real HTTP server (tests/api/conftest.py), with the sandbox provider enabled so
that deposits are credited at once."""

from __future__ import annotations

from pathlib import Path

import pytest

from milepost.settings import Settings
from tests.api.conftest import base_url, sign_up

__all__ = ["base_url", "sign_up"]


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(fee_bps=1000, files_dir=str(tmp_path / "files"), providers="sandbox,manual")
