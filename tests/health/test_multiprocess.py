"""``milepost serve --workers 2`` on PostgreSQL: each server process counts its own requests, and a scrape,
whichever process answers it, sums them all (prometheus_client's multiprocess mode, in the directory serve
prepares and empties at start)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import suppress
from pathlib import Path

import httpx
import pytest

from milepost.kit.db import Database
from tests.conftest import make_database
from tests.faults.cluster import free_port
from tests.health.conftest import TOKEN, scrape, value


@pytest.fixture
def postgres(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    database = make_database(request, "postgres", tmp_path)
    yield database
    database.dispose()


def test_a_scrape_sums_every_server_process(postgres: Database, tmp_path: Path) -> None:
    metrics_dir = tmp_path / "prometheus"
    metrics_dir.mkdir()
    (metrics_dir / "counter_999999.db").write_bytes(b"left by a run before")  # emptied at start
    (metrics_dir / "keep.txt").write_text("not prometheus_client's: left alone")
    port = free_port()
    env = {
        **os.environ,
        "MILEPOST_METRICS_TOKEN": TOKEN,
        "MILEPOST_SECRET_KEY": "a-secret-key-shared-by-both-processes-0123",
        "MILEPOST_FILES_DIR": str(tmp_path / "files"),
        "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir),
    }
    log_path = tmp_path / "server.log"
    command = [
        str(Path(sys.executable).parent / "milepost"),
        "serve",
        "--db",
        postgres.url,
        "--port",
        str(port),
        "--workers",
        "2",
    ]
    with log_path.open("wb") as log_file:
        server = subprocess.Popen(command, stdout=log_file, stderr=subprocess.STDOUT, env=env)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120  # a loaded machine starts processes slowly
        while True:
            try:
                if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert server.poll() is None, log_path.read_text()
            assert time.monotonic() < deadline, log_path.read_text()
            time.sleep(0.2)
        assert not (metrics_dir / "counter_999999.db").exists()
        assert (metrics_dir / "keep.txt").exists()

        # Each server process answers some requests for sure: the other one is paused (SIGSTOP) while
        # they are sent, so only this one can accept them. Each keeps its counts in its own file.
        # (Counted on a route the start-up wait above does not use: a /healthz it gave up on may still
        # have been answered.)
        # (uvicorn may replace a process it finds unresponsive, a paused one too: the counts of one that
        # is gone stay in its file, and still count.)
        sent, answered = 0, set()
        for _ in range(2):
            workers = _server_processes(server.pid)
            assert len(workers) == 2, workers
            paused = next((pid for pid in workers if pid in answered), workers[0])
            os.kill(paused, signal.SIGSTOP)
            try:
                with ThreadPoolExecutor(4) as pool:
                    statuses = list(pool.map(_anonymous_me, [url] * 4))
            finally:
                with suppress(ProcessLookupError):
                    os.kill(paused, signal.SIGCONT)
            assert statuses == [401] * 4
            sent += 4
            answering = next(pid for pid in workers if pid != paused)
            assert (metrics_dir / f"counter_{answering}.db").exists()
            answered.add(answering)
        assert len(answered) == 2
        # Every scrape sees the sum, whichever process answers it.
        labels = {"method": "GET", "route": "/v1/me", "status": "401"}
        for _ in range(6):
            samples = scrape(url)
            assert value(samples, "milepost_http_requests_total", **labels) == sent
            assert value(samples, "milepost_database_up") == 1
    finally:
        server.terminate()
        server.wait(timeout=30)


def _server_processes(supervisor: int) -> list[int]:
    """The server processes uvicorn started (multiprocessing children), not its resource tracker."""
    children = Path(f"/proc/{supervisor}/task/{supervisor}/children").read_text().split()
    return [
        int(pid) for pid in children if b"spawn_main" in Path(f"/proc/{pid}/cmdline").read_bytes()
    ]


def _anonymous_me(url: str) -> int:
    with httpx.Client(timeout=30) as fresh:  # a connection of its own
        return fresh.get(f"{url}/v1/me").status_code
