"""Notification tests: a real SMTP server (aiosmtpd) on loopback that records what it is given, and the
real HTTP server with its lifespan on, so the in-process e-mail sender runs."""

from __future__ import annotations

import shutil
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult

from milepost.kit.db import Database
from milepost.settings import Settings
from tests.api.conftest import LiveServer, sign_up
from tests.world import World

__all__ = ["sign_up"]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    message: EmailMessage

    @property
    def text(self) -> str:
        part = self.message.get_body(preferencelist=("plain",))
        assert part is not None
        return str(part.get_content())

    @property
    def html(self) -> str:
        part = self.message.get_body(preferencelist=("html",))
        assert part is not None
        return str(part.get_content())


@dataclass
class Mailbox:
    """An SMTP server on a fixed loopback port; it can be stopped (an outage) and started again."""

    port: int = field(default_factory=free_port)
    received: list[Received] = field(default_factory=list)
    # Addresses answered with a permanent refusal (550) at RCPT.
    refuse: set[str] = field(default_factory=set)
    lock: threading.Lock = field(default_factory=threading.Lock)
    controller: Controller | None = None
    # "starttls" or "ssl": serve TLS with this certificate (PEM cert, key); "starttls" also demands it.
    tls: str = "none"
    certificate: tuple[Path, Path] | None = None
    # When set, the server requires AUTH with this (login, password).
    credentials: tuple[str, str] | None = None

    def start(self) -> None:
        mailbox = self

        class Handler:
            async def handle_RCPT(
                self, server: Any, session: Any, envelope: Any, address: str, options: Any
            ) -> str:
                if address in mailbox.refuse:
                    return "550 5.1.1 No such user here"
                envelope.rcpt_tos.append(address)
                return "250 OK"

            async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
                message = message_from_bytes(envelope.content, policy=policy.default)
                assert isinstance(message, EmailMessage)
                with mailbox.lock:
                    mailbox.received.append(
                        Received(envelope.mail_from, list(envelope.rcpt_tos), message)
                    )
                return "250 Message accepted for delivery"

        options: dict[str, Any] = {}
        if self.tls != "none":
            assert self.certificate is not None
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            context.load_cert_chain(*self.certificate)
            if self.tls == "ssl":
                options["ssl_context"] = context
            else:
                options.update(tls_context=context, require_starttls=True)
        if self.credentials is not None:
            expected = (self.credentials[0].encode(), self.credentials[1].encode())

            def authenticator(
                server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any
            ) -> AuthResult:
                given = (getattr(auth_data, "login", None), getattr(auth_data, "password", None))
                return AuthResult(success=given == expected)

            options.update(
                auth_required=True,
                # aiosmtpd counts only STARTTLS as TLS here; with "ssl" the whole session is TLS anyway.
                auth_require_tls=self.tls == "starttls",
                authenticator=authenticator,
            )
        self.controller = Controller(Handler(), hostname="127.0.0.1", port=self.port, **options)
        self.controller.start()

    def stop(self) -> None:
        if self.controller is not None:
            self.controller.stop()
            self.controller = None

    def messages(self) -> list[Received]:
        with self.lock:
            return list(self.received)

    def to(self, address: str) -> list[Received]:
        return [item for item in self.messages() if address in item.rcpt_tos]

    def wait_for(self, count: int, timeout: float = 15) -> list[Received]:
        deadline = time.monotonic() + timeout
        while len(self.messages()) < count and time.monotonic() < deadline:
            time.sleep(0.05)
        return self.messages()


@pytest.fixture(scope="session")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 (cert.pem, key.pem), made with the openssl command."""
    if shutil.which("openssl") is None:
        pytest.skip("the openssl command is needed to make a test certificate")
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-keyout",
            str(key),
            "-out",
            str(cert),
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


@pytest.fixture
def mailbox() -> Iterator[Mailbox]:
    """A running SMTP server (tests stop and start it to make outages)."""
    box = Mailbox()
    box.start()
    yield box
    box.stop()


@pytest.fixture
def mail_settings(tmp_path: Path, mailbox: Mailbox) -> Settings:
    return Settings(
        fee_bps=1000,
        providers="sandbox,manual",
        files_dir=str(tmp_path / "files"),
        smtp_host="127.0.0.1",
        smtp_port=mailbox.port,
        mail_from="Milepost <noreply@milepost.test>",
        public_url="https://milepost.test",
    )


@pytest.fixture
def mail_world(db: Database, mail_settings: Settings) -> World:
    """A world whose units of work run with SMTP configured, so e-mail is queued."""
    return World(db, mail_settings)


@pytest.fixture
def run_worker() -> bool:
    return False


@pytest.fixture
def settings(tmp_path: Path, run_worker: bool, request: pytest.FixtureRequest) -> Settings:
    """The HTTP server's settings: SMTP on the test mailbox when the test uses one."""
    if "mailbox" in request.fixturenames:
        mailbox: Mailbox = request.getfixturevalue("mailbox")
        return Settings(
            fee_bps=1000,
            providers="sandbox,manual",
            files_dir=str(tmp_path / "files"),
            run_worker=run_worker,
            smtp_host="127.0.0.1",
            smtp_port=mailbox.port,
            schedule_interval_seconds=3600,
        )
    return Settings(
        fee_bps=1000,
        providers="sandbox,manual",
        files_dir=str(tmp_path / "files"),
        run_worker=run_worker,
    )


@pytest.fixture
def base_url(db: Database, settings: Settings) -> Iterator[str]:
    with LiveServer(db, settings, lifespan=True) as url:  # the lifespan runs the background threads
        yield url
