"""Webhook tests: the real HTTP server with its lifespan on, so the in-process sender runs (unless a
test parametrizes ``run_worker`` to False to drive ``deliver_due`` itself), and a receiver on loopback."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from standardwebhooks.webhooks import Webhook

from milepost.audit.models import MilestoneEvent, ProjectEvent
from milepost.kit.db import Database
from milepost.settings import Settings
from tests.api.conftest import LiveServer, sign_up

__all__ = ["sign_up"]


@pytest.fixture
def run_worker() -> bool:
    return True


@pytest.fixture
def settings(tmp_path: Path, run_worker: bool) -> Settings:
    # The receiver is on loopback, so these tests allow private addresses; test_addresses.py checks the
    # default, which refuses them.
    return Settings(
        fee_bps=1000,
        providers="sandbox,manual",
        files_dir=str(tmp_path / "files"),
        run_worker=run_worker,
        webhook_allow_private_networks=True,
    )


@pytest.fixture
def base_url(db: Database, settings: Settings) -> Iterator[str]:
    with LiveServer(db, settings, lifespan=True) as url:  # the lifespan runs the background threads
        yield url


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: dict[str, Any]
    signature_ok: bool
    committed: bool  # the event was visible to another transaction when it arrived


@dataclass
class Receiver:
    """An HTTP server on loopback that checks each request's signature with the path's secret."""

    db: Database
    secrets: dict[str, str] = field(default_factory=dict)
    statuses: list[int] = field(default_factory=list)  # answers to give, in order; then 200
    received: list[Received] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def url(self, path: str) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host!s}:{port}{path}"

    def start(self) -> None:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                data = self.rfile.read(int(self.headers.get("content-length", "0")))
                headers = {key.lower(): value for key, value in self.headers.items()}
                try:
                    Webhook(receiver.secrets[self.path]).verify(data, headers)
                    signature_ok = True
                except Exception:
                    signature_ok = False
                body = json.loads(data)
                with receiver.db.read_only() as session:
                    committed = any(
                        session.get(model, body["id"]) is not None
                        for model in (MilestoneEvent, ProjectEvent)
                    )
                with receiver.lock:
                    receiver.received.append(
                        Received(self.path, headers, body, signature_ok, committed)
                    )
                    status = receiver.statuses.pop(0) if receiver.statuses else 200
                self.send_response(status)
                self.send_header("content-length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def at(self, path: str) -> list[Received]:
        with self.lock:
            return [item for item in self.received if item.path == path]

    def wait_for(self, path: str, count: int, timeout: float = 15) -> list[Received]:
        deadline = time.monotonic() + timeout
        while len(self.at(path)) < count and time.monotonic() < deadline:
            time.sleep(0.05)
        return self.at(path)


@pytest.fixture
def receiver(db: Database) -> Iterator[Receiver]:
    receiver = Receiver(db)
    receiver.start()
    yield receiver
    receiver.stop()
