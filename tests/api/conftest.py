"""HTTP tests talk to a real server: uvicorn on a loopback port, over the test's database."""

from __future__ import annotations

import itertools
import logging
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from milepost.app import create_app
from milepost.kit.db import Database
from milepost.kit.logs import JsonFormatter
from milepost.settings import Settings
from tests.stripe_standin import StandIn, running

_emails = itertools.count(1)
PASSWORD = "correct horse battery"


class LiveServer:
    """The app on a real uvicorn server on loopback, in a thread. ``lifespan=True`` also runs the app's
    background threads (webhook sender, scheduler, mailer, as ``settings.run_worker`` says); they stop when
    the server does."""

    def __init__(self, database: Database, settings: Settings, *, lifespan: bool = False) -> None:
        app = create_app(settings, database=database)
        config = uvicorn.Config(
            app,
            host="127.0.0.1",
            port=0,
            log_level="warning",
            lifespan="on" if lifespan else "off",
            # As milepost serve: forwarded headers are the app's to believe (MILEPOST_TRUSTED_PROXIES).
            proxy_headers=False,
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> str:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("the test server did not start")
            time.sleep(0.01)
        host, port = self.server.servers[0].sockets[0].getsockname()[:2]
        return f"http://{host}:{port}"

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)


@pytest.fixture
def settings(tmp_path: Any) -> Settings:
    return Settings(fee_bps=1000, providers="sandbox,manual", files_dir=str(tmp_path / "files"))


@pytest.fixture
def base_url(db: Database, settings: Settings) -> Iterator[str]:
    with LiveServer(db, settings) as url:
        yield url


class Client:
    """An API client for one person: signs up, signs in, then sends the token with every request."""

    def __init__(
        self, base_url: str, token: str | None = None, user: dict[str, Any] | None = None
    ) -> None:
        self.http = httpx.Client(base_url=base_url, timeout=60)
        self.token = token
        self.user = user or {}

    @property
    def id(self) -> str:
        return str(self.user["id"])

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        headers = dict(kwargs.pop("headers", {}) or {})
        if self.token:
            headers.setdefault("Authorization", f"Bearer {self.token}")
        return self.http.request(method, path, headers=headers, **kwargs)

    def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, json: Any = None, **kwargs: Any) -> httpx.Response:
        return self.request("POST", path, json=json, **kwargs)

    def patch(self, path: str, json: Any = None, **kwargs: Any) -> httpx.Response:
        return self.request("PATCH", path, json=json, **kwargs)

    def delete(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.request("DELETE", path, **kwargs)

    def ok(self, method: str, path: str, json: Any = None, status: int | None = None) -> Any:
        """Send and insist on success; return the JSON body (None for 204)."""
        response = self.request(method, path, json=json)
        expected = status or (201 if method == "POST" and response.status_code == 201 else 200)
        assert response.status_code in (expected, 204), (response.status_code, response.text)
        return None if response.status_code == 204 else response.json()


@pytest.fixture
def sign_up(base_url: str, db: Database) -> Any:
    """sign_up(name, staff=False) -> a signed-in Client. Staff are made as the CLI would (no API for it)."""
    from milepost.users.service import create_user

    def make(name: str = "user", *, staff: bool = False) -> Client:
        email = f"{name}{next(_emails)}@example.com"
        if staff:
            with db.unit_of_work() as session:
                create_user(session, email=email, name=name, password=PASSWORD, is_staff=True)
        else:
            anonymous = Client(base_url)
            anonymous.ok("POST", "/v1/users", {"email": email, "name": name, "password": PASSWORD})
        response = Client(base_url).post("/v1/tokens", {"email": email, "password": PASSWORD})
        assert response.status_code == 201, response.text
        body = response.json()
        return Client(base_url, body["token"], body["user"])

    return make


@contextmanager
def capture_logs(name: str) -> Iterator[list[str]]:
    """What the ``name`` logger (and its children) write while the block runs, formatted as the server
    formats it (JSON lines)."""
    lines: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            lines.append(self.format(record))

    handler = Collect(level=logging.DEBUG)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger(name)
    old_level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    try:
        yield lines
    finally:
        logger.removeHandler(handler)
        logger.setLevel(old_level)


def assert_error(
    response: httpx.Response,
    status: int,
    type_: str,
    code: str | None = None,
    param: str | None = None,
) -> dict[str, Any]:
    """The response is an error in API.md's shape, with this status and type (and code and param when
    given), a request id, and no stack trace; returns the error object."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"error"}, body
    error: dict[str, Any] = body["error"]
    assert set(error) == {"type", "code", "message", "param"}, error
    assert error["type"] == type_, error
    if code is not None:
        assert error["code"] == code, error
    if param is not None:
        assert error["param"] == param, error
    assert isinstance(error["message"], str) and error["message"]
    assert "Traceback" not in response.text
    assert response.headers["x-request-id"].startswith("req_")
    return error


@pytest.fixture
def standin() -> Iterator[StandIn]:
    """A stand-in of Stripe's API on loopback (tests/stripe_standin.py)."""
    with running() as standin:
        yield standin


@pytest.fixture
def stripe_url(db: Database, tmp_path: Path, standin: StandIn) -> Iterator[str]:
    """A live server with Stripe enabled, talking to the stand-in."""
    from tests.api.stripe_support import stripe_settings

    with LiveServer(db, stripe_settings(tmp_path, standin)) as address:
        yield address
