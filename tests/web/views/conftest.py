"""The read models query the database themselves, so their tests run on every backend (the pages above
them run on SQLite only, see ../conftest.py)."""

from __future__ import annotations

import pytest

from tests.conftest import BACKENDS


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)
