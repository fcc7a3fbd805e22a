"""Review tests pin the keyword matcher, so they mean the same whether or not the ai extra is here."""

from __future__ import annotations

from pathlib import Path

import pytest

from milepost.kit.db import Database
from milepost.settings import Settings
from tests.api.conftest import base_url, sign_up
from tests.world import World

__all__ = ["base_url", "sign_up"]


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(
        fee_bps=1000,
        files_dir=str(tmp_path / "files"),
        review_matcher="keywords",
        providers="sandbox,manual",  # the tests deposit through the sandbox
    )


@pytest.fixture
def world(db: Database, settings: Settings) -> World:
    return World(db, settings)
