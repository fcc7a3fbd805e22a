"""Health and metrics tests talk to the real HTTP server (tests/api/conftest.py), with the sandbox
provider on, the in-process scheduler off (a test says when a scheduler has reported) and a metrics token."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from milepost.settings import Settings
from tests.api.conftest import base_url, sign_up

__all__ = ["base_url", "sign_up"]

TOKEN = "metrics-token-for-the-tests"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(
        fee_bps=1000,
        providers="sandbox,manual",
        files_dir=str(tmp_path / "files"),
        run_worker=False,
        metrics_token=TOKEN,
    )


def scrape(url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of a /metrics scrape: (name, sorted labels) -> value."""
    response = httpx.get(f"{url}/metrics", headers=AUTH, timeout=30)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    samples = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def value(
    samples: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str, **labels: str
) -> float:
    """One sample's value; 0 for a labelled series not (yet) there."""
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def milepost(*args: str) -> subprocess.CompletedProcess[str]:
    """The real ``milepost`` command of this environment."""
    command = str(Path(sys.executable).parent / "milepost")
    return subprocess.run([command, *args], capture_output=True, text=True, timeout=120)
