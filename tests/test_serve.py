"""``milepost serve`` and ``milepost worker`` as an operator runs them: real processes on loopback.

What they refuse before they start (a port out of range or taken, a schema behind the migrations, a
missing secret key for several processes, a database that cannot be used), that the banner means the
socket is listening, how a reverse proxy's forwarded headers are believed (only from trusted peers), and
that SIGTERM lets the request in flight finish and ends with exit code 0.
"""

from __future__ import annotations

import itertools
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import psycopg
import pytest
from sqlalchemy import create_engine, select, text

from milepost.files.models import StoredFile
from milepost.kit.db import Database, normalise_url
from milepost.kit.proxies import forwarded_client
from milepost.kit.schema import upgrade_schema
from tests.conftest import _postgres_admin_url, _with_database

MILEPOST = Path(sys.executable).with_name("milepost")
PASSWORD = "correct horse battery"
KEY = "k" * 43
_names = itertools.count(1)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def clean_env(**extra: str) -> dict[str, str]:
    """The environment without any MILEPOST_* setting of the test run, plus ``extra``."""
    env = {name: value for name, value in os.environ.items() if not name.startswith("MILEPOST_")}
    return {**env, **extra}


def milepost(
    *args: str, env: dict[str, str] | None = None, cwd: Path | None = None, stdin: str = ""
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(MILEPOST), *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=env if env is not None else clean_env(),
        cwd=cwd,
        input=stdin,
        check=False,
    )


@pytest.fixture(params=["sqlite", "postgres"])
def fresh_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A database with no schema at all, on each backend (PostgreSQL: created here, dropped after)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'serve.db'}"
        return
    admin, reason = _postgres_admin_url()
    if admin is None:
        pytest.skip(reason)
    name = f"milepost_serve_{os.getpid()}_{next(_names)}"
    with psycopg.connect(admin, autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        connection.execute(f'CREATE DATABASE "{name}"')
    try:
        yield _with_database(admin, name)
    finally:
        with psycopg.connect(admin, autocommit=True) as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'milepost.db'}"
    upgrade_schema(url)
    return url


class Server:
    """``milepost serve`` in its own process, its output in files."""

    def __init__(self, tmp_path: Path, *args: str, env: dict[str, str] | None = None) -> None:
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.stdout_path = tmp_path / f"serve-{self.port}.out"
        self.stderr_path = tmp_path / f"serve-{self.port}.err"
        with self.stdout_path.open("w") as out, self.stderr_path.open("w") as err:
            self.process = subprocess.Popen(
                [str(MILEPOST), "serve", "--port", str(self.port), *args],
                stdout=out,
                stderr=err,
                env=env if env is not None else clean_env(),
                cwd=tmp_path,
            )

    def wait_for_banner(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while "running at" not in self.stdout_path.read_text():
            assert self.process.poll() is None, self.stderr_path.read_text()
            assert time.monotonic() < deadline, "no banner"
            time.sleep(0.02)

    def wait_until_serving(self, timeout: float = 60) -> None:
        self.wait_for_banner(timeout)
        httpx.get(f"{self.base_url}/healthz", timeout=timeout).raise_for_status()

    def stop(self, timeout: float = 60) -> int:
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=timeout)

    def request_log(self) -> list[dict[str, object]]:
        lines = self.stderr_path.read_text().splitlines()
        entries = [json.loads(line) for line in lines if line.startswith("{")]
        return [entry for entry in entries if entry.get("message") == "request"]

    def __enter__(self) -> Server:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=30)


# Refused before anything listens --------------------------------------------------------------------


@pytest.mark.parametrize("port", ["80000", "0", "-1"])
def test_a_port_out_of_range_is_refused_with_usage_exit_2(port: str, tmp_path: Path) -> None:
    result = milepost("serve", "--port", port, "--db", f"sqlite:///{tmp_path / 'x.db'}")

    assert result.returncode == 2
    assert "--port" in result.stderr
    assert "running" not in result.stdout


def test_a_taken_port_is_one_error_line_and_no_banner(sqlite_url: str, tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = milepost("serve", "--db", sqlite_url, "--port", str(port), cwd=tmp_path)

    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr == (
        f"error: cannot listen on 127.0.0.1:{port}: the port is already in use (another "
        "server?); stop it or choose another --port\n"
    )


def test_the_banner_is_printed_once_the_socket_listens(sqlite_url: str, tmp_path: Path) -> None:
    with Server(tmp_path, "--db", sqlite_url) as server:
        server.wait_for_banner()
        # At the moment the banner is out, a connection is accepted (not refused).
        socket.create_connection(("127.0.0.1", server.port), timeout=5).close()
        banner = server.stdout_path.read_text()
        assert banner.startswith(f"Milepost is running at http://127.0.0.1:{server.port}")
        assert httpx.get(f"{server.base_url}/healthz", timeout=60).status_code == 200


def test_serve_and_worker_refuse_a_schema_behind_the_migrations_until_upgraded(
    fresh_url: str, tmp_path: Path
) -> None:
    missing = milepost("serve", "--db", fresh_url, "--port", str(free_port()), cwd=tmp_path)
    assert missing.returncode == 1
    shown = normalise_url(fresh_url) if fresh_url.startswith("sqlite") else fresh_url
    assert missing.stderr.startswith("error: the database at ")
    assert missing.stderr.endswith(
        f"has no schema yet: run 'milepost db upgrade --db {fresh_url}' first\n"
    )
    assert shown.split("://")[1] in missing.stderr
    assert missing.stdout == ""
    if fresh_url.startswith("sqlite"):
        assert not (tmp_path / "serve.db").exists()  # not created by being looked at

    # One migration behind the head.
    from alembic import command

    from milepost.kit.schema import _alembic_config

    command.upgrade(_alembic_config(fresh_url), "0011")
    for args in (["serve", "--port", str(free_port())], ["worker"]):
        behind = milepost(*args, "--db", fresh_url, cwd=tmp_path)
        assert behind.returncode == 1, behind.stderr
        assert behind.stderr.endswith(
            "has an older schema than this version of Milepost: "
            f"run 'milepost db upgrade --db {fresh_url}' first\n"
        )
        assert len(behind.stderr.splitlines()) == 1
        assert "running" not in behind.stdout

    assert milepost("db", "upgrade", "--db", fresh_url).returncode == 0
    with Server(tmp_path, "--db", fresh_url, "--no-worker") as server:
        server.wait_until_serving()
        assert server.stop() == 0


def test_a_newer_schema_than_the_code_is_refused(sqlite_url: str, tmp_path: Path) -> None:
    engine = create_engine(sqlite_url)
    with engine.begin() as connection:
        connection.execute(text("UPDATE alembic_version SET version_num = '9999'"))
    engine.dispose()

    result = milepost("serve", "--db", sqlite_url, "--port", str(free_port()), cwd=tmp_path)

    assert result.returncode == 1
    assert "has a newer schema than this version of Milepost knows: upgrade Milepost" in (
        result.stderr
    )


def test_several_processes_need_a_persistent_secret_key(sqlite_url: str, tmp_path: Path) -> None:
    result = milepost(
        "serve", "--db", sqlite_url, "--workers", "2", "--port", str(free_port()), cwd=tmp_path
    )

    assert result.returncode == 1
    assert result.stderr == (
        "error: --workers 2 needs MILEPOST_SECRET_KEY (or MILEPOST_SECRET_KEY_FILE), the same in "
        "every process, or each would refuse the others' forms; make one with: "
        "python3 -c 'import secrets; print(secrets.token_urlsafe(32))'\n"
    )
    assert result.stdout == ""


def test_a_secret_key_file_readable_by_others_is_refused(sqlite_url: str, tmp_path: Path) -> None:
    key_file = tmp_path / "secret"
    key_file.write_text(KEY + "\n")
    key_file.chmod(0o644)
    env = clean_env(MILEPOST_SECRET_KEY_FILE=str(key_file))

    result = milepost("serve", "--db", sqlite_url, "--port", str(free_port()), env=env)

    assert result.returncode == 1
    assert result.stderr == (
        f"error: bad setting: MILEPOST_SECRET_KEY_FILE {key_file} can be read by other users: "
        f"chmod 600 {key_file}\n"
    )


def test_two_server_processes_share_the_key_from_its_file_and_stop_with_exit_0(
    sqlite_url: str, tmp_path: Path
) -> None:
    key_file = tmp_path / "secret"
    key_file.write_text(KEY + "\n")
    key_file.chmod(0o600)
    env = clean_env(MILEPOST_SECRET_KEY_FILE=str(key_file))

    with Server(tmp_path, "--db", sqlite_url, "--workers", "2", env=env) as server:
        server.wait_until_serving()
        # A form made by one process is accepted by whichever process takes the post.
        # A new connection for each request, so that both processes take some.
        with httpx.Client(
            base_url=server.base_url, timeout=60, headers={"Connection": "close"}
        ) as browser:
            for _ in range(6):
                page = browser.get("/signup")
                token = page.text.split('name="csrf_token" value="')[1].split('"')[0]
                answer = browser.post(
                    "/login",
                    data={"email": "x@example.com", "password": "x" * 12, "csrf_token": token},
                )
                assert answer.status_code != 403, answer.text
        assert server.stop() == 0


# Databases that cannot be used: one sentence with the fix -------------------------------------------


def test_an_unreachable_database_is_one_sentence(tmp_path: Path) -> None:
    url = f"postgresql://postgres@127.0.0.1:{free_port()}/milepost"
    for args in (["serve", "--port", str(free_port())], ["worker"], ["db", "upgrade"]):
        result = milepost(*args, "--db", url, cwd=tmp_path)
        assert result.returncode == 1, result.stderr
        assert result.stderr.startswith(f"error: cannot reach the database at {url} (")
        assert result.stderr.endswith(
            "is the server running, and is the URL (--db or MILEPOST_DATABASE_URL) right?\n"
        )
        assert "internal error" not in result.stderr and "Traceback" not in result.stderr
        assert result.stdout == ""


def test_a_postgresql_role_without_rights_is_one_sentence(tmp_path: Path) -> None:
    admin, reason = _postgres_admin_url()
    if admin is None:
        pytest.skip(reason)
    name, role = f"milepost_rights_{os.getpid()}", f"milepost_weak_{os.getpid()}"
    with psycopg.connect(admin, autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        connection.execute(f'DROP ROLE IF EXISTS "{role}"')
        connection.execute(f'CREATE DATABASE "{name}"')
        connection.execute(f'CREATE ROLE "{role}" LOGIN')
    try:
        with psycopg.connect(_with_database(admin, name), autocommit=True) as connection:
            connection.execute("REVOKE CREATE ON SCHEMA public FROM PUBLIC")
        base = _with_database(admin, name)
        weak = base.replace("postgres@", f"{role}@", 1)

        result = milepost("db", "upgrade", "--db", weak, cwd=tmp_path)

        assert result.returncode == 1
        assert result.stderr.startswith(
            f"error: the PostgreSQL role {role} lacks a right it needs at {weak} "
            "(permission denied for schema public): make it the owner"
        )
        assert len(result.stderr.splitlines()) == 1
        assert "OperationalError" not in result.stderr and "ProgrammingError" not in result.stderr
    finally:
        with psycopg.connect(admin, autocommit=True) as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            connection.execute(f'DROP ROLE IF EXISTS "{role}"')


def test_a_sqlite_file_in_a_read_only_directory_is_one_sentence() -> None:
    # Run as an unprivileged user (root writes anywhere), on a database it may read but not write.
    if os.geteuid() != 0:
        pytest.skip("needs root to run the command as another user (setpriv)")
    import shutil
    import tempfile

    # pytest's own temporary folders are private to root: one that others may enter.
    folder = Path(tempfile.mkdtemp(prefix="milepost-ro-"))
    try:
        folder.chmod(0o755)
        url = f"sqlite:///{folder / 'milepost.db'}"
        upgrade_schema(url)
        (folder / "milepost.db").chmod(0o644)
        as_nobody = ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups"]

        result = subprocess.run(
            [*as_nobody, str(MILEPOST), "serve", "--db", url, "--port", str(free_port())],
            capture_output=True,
            text=True,
            timeout=120,
            env=clean_env(),
            cwd="/",
            check=False,
        )
    finally:
        shutil.rmtree(folder)

    assert result.returncode == 1, result.stderr
    assert result.stderr.startswith("error: ")
    assert f"{folder / 'milepost.db'}" in result.stderr
    assert result.stderr.endswith(
        "is read-only for this user: make the file and its directory writable (SQLite keeps -wal "
        "and -shm files beside it)\n"
    )
    assert len(result.stderr.splitlines()) == 1
    assert "internal error" not in result.stderr
    assert result.stdout == ""


# Configuration from a file --------------------------------------------------------------------------


def test_a_config_file_configures_every_command_and_the_environment_wins(tmp_path: Path) -> None:
    from_file, from_env = tmp_path / "file.db", tmp_path / "env.db"
    config = tmp_path / "milepost.env"
    config.write_text(
        f"# production settings\nMILEPOST_DATABASE_URL=sqlite:///{from_file}\nMILEPOST_FEE_BPS=500\n"
    )

    assert milepost("--config", str(config), "db", "upgrade", cwd=tmp_path).returncode == 0
    created = milepost(
        "--config", str(config), "users", "create", "--email", "f@example.com", "--name", "F",
        "--password", PASSWORD, cwd=tmp_path,
    )  # fmt: skip
    assert created.returncode == 0, created.stderr
    assert from_file.exists() and not from_env.exists()

    # MILEPOST_CONFIG_FILE does the same as --config; a variable in the environment beats the file.
    env = clean_env(MILEPOST_CONFIG_FILE=str(config), MILEPOST_DATABASE_URL=f"sqlite:///{from_env}")
    assert milepost("db", "upgrade", env=env, cwd=tmp_path).returncode == 0
    assert from_env.exists()
    with Server(tmp_path, "--no-worker", env=env) as server:
        server.wait_until_serving()
        signed_up = httpx.post(
            f"{server.base_url}/v1/users",
            json={"email": "e@example.com", "name": "E", "password": PASSWORD},
            timeout=60,
        )
        assert signed_up.status_code == 201, signed_up.text
        assert server.stop() == 0
    for path, emails in ((from_file, ["f@example.com"]), (from_env, ["e@example.com"])):
        engine = create_engine(f"sqlite:///{path}")
        with engine.connect() as connection:
            assert list(connection.execute(text("SELECT email FROM users")).scalars()) == emails
        engine.dispose()


def test_a_missing_or_mistyped_config_file_is_refused(tmp_path: Path) -> None:
    missing = milepost("--config", str(tmp_path / "nope.env"), "db", "upgrade", cwd=tmp_path)
    assert missing.returncode == 1
    assert missing.stderr == (
        f"error: the configuration file {tmp_path / 'nope.env'} does not exist (from --config or "
        "MILEPOST_CONFIG_FILE)\n"
    )

    typo = tmp_path / "typo.env"
    typo.write_text("MILEPOST_DATABASE_URL=sqlite:///x.db\nMILEPOST_TRUSTED_PROXY=10.0.0.1\n")
    result = milepost("--config", str(typo), "db", "upgrade", cwd=tmp_path)
    assert result.returncode == 1
    assert result.stderr == (
        f"error: the configuration file {typo} names unknown setting(s) MILEPOST_TRUSTED_PROXY "
        "(each line is MILEPOST_<NAME>=value)\n"
    )
    assert not (tmp_path / "x.db").exists()


# The first staff user, without a terminal -----------------------------------------------------------


def test_users_create_staff_without_a_terminal(sqlite_url: str, tmp_path: Path) -> None:
    new = ["users", "create", "--email", "ops@example.com", "--name", "Ops", "--staff"]

    weak = milepost(*new, "--password", "short", "--db", sqlite_url)
    assert (weak.returncode, weak.stderr) == (
        1,
        "error: Password must be at least 10 characters.\n",
    )
    nothing = milepost(*new, "--db", sqlite_url, stdin="")
    assert nothing.returncode == 1
    assert nothing.stderr == (
        "error: give the password with --password, or on the first line of stdin\n"
    )
    piped = milepost(*new, "--db", sqlite_url, stdin=PASSWORD + "\n")
    assert piped.returncode == 0, piped.stderr
    assert piped.stdout.startswith("created staff user usr_")
    with Server(tmp_path, "--db", sqlite_url, "--no-worker") as server:
        server.wait_until_serving()
        signed_in = httpx.post(
            f"{server.base_url}/v1/tokens",
            json={"email": "ops@example.com", "password": PASSWORD},
            timeout=60,
        )
        assert signed_in.status_code == 201, signed_in.text
        assert signed_in.json()["user"]["is_staff"] is True


# Behind a reverse proxy -----------------------------------------------------------------------------


def test_the_client_is_the_rightmost_untrusted_hop() -> None:
    from ipaddress import ip_network

    proxies = [ip_network("10.0.0.0/8"), ip_network("127.0.0.1")]
    assert forwarded_client("127.0.0.1", "203.0.113.9", proxies) == "203.0.113.9"
    # The client wrote the leftmost entry itself: only what the proxies appended counts.
    assert forwarded_client("127.0.0.1", "1.2.3.4, 203.0.113.9, 10.1.2.3", proxies) == (
        "203.0.113.9"
    )
    assert forwarded_client("127.0.0.1", "10.0.0.2, 10.0.0.1", proxies) == "10.0.0.2"
    assert forwarded_client("127.0.0.1", "not-an-address", proxies) == "127.0.0.1"
    assert forwarded_client("127.0.0.1", "garbage, 203.0.113.9", proxies) == "203.0.113.9"


def _failed_sign_ins(base_url: str, forwarded: list[str]) -> list[int]:
    """One failed sign-in per forwarded address, each for a new e-mail (so that only the per-address
    limit can be reached), in parallel; their statuses in order."""
    statuses: list[int] = [0] * len(forwarded)

    def attempt(index: int) -> None:
        answer = httpx.post(
            f"{base_url}/v1/tokens",
            json={"email": f"nobody{next(_names)}@example.com", "password": "wrong password"},
            headers={"X-Forwarded-For": forwarded[index]},
            timeout=120,
        )
        statuses[index] = answer.status_code

    threads = [threading.Thread(target=attempt, args=(index,)) for index in range(len(forwarded))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return statuses


def test_forwarded_for_from_an_untrusted_peer_is_ignored(sqlite_url: str, tmp_path: Path) -> None:
    with Server(tmp_path, "--db", sqlite_url, "--no-worker") as server:
        server.wait_until_serving()
        # Twenty failures, each claiming to come from somewhere else: all are counted against the peer.
        spoofed = [f"198.51.100.{n}" for n in range(1, 21)]
        assert _failed_sign_ins(server.base_url, spoofed) == [401] * 20
        assert _failed_sign_ins(server.base_url, ["198.51.100.200"]) == [429]
        assert server.stop() == 0
        clients = {entry["client"] for entry in server.request_log() if entry["path"] != "/healthz"}
        assert clients == {"127.0.0.1"}


def test_a_trusted_proxy_gives_each_forwarded_client_its_own_limit(
    sqlite_url: str, tmp_path: Path
) -> None:
    env = clean_env(MILEPOST_TRUSTED_PROXIES="127.0.0.1, 10.0.0.0/8")
    with Server(tmp_path, "--db", sqlite_url, "--no-worker", env=env) as server:
        server.wait_until_serving()
        first, second = "203.0.113.5", "203.0.113.6"
        # What the client wrote on the left is not believed; the hops the proxies added are.
        assert _failed_sign_ins(server.base_url, [f"6.6.6.{n}, {first}" for n in range(20)]) == (
            [401] * 20
        )
        assert _failed_sign_ins(server.base_url, [f"{first}, 10.0.0.7"]) == [429]
        assert _failed_sign_ins(server.base_url, [second]) == [401]
        # X-Forwarded-Proto from the proxy: the session cookie is Secure.
        page = httpx.get(
            f"{server.base_url}/signup", headers={"X-Forwarded-Proto": "https"}, timeout=60
        )
        assert "secure" in page.headers["set-cookie"].lower()
        assert server.stop() == 0
        clients = [
            entry["client"] for entry in server.request_log() if entry["path"] == "/v1/tokens"
        ]
        assert set(clients) == {first, second}


def test_forwarded_proto_from_an_untrusted_peer_is_ignored(sqlite_url: str, tmp_path: Path) -> None:
    with Server(tmp_path, "--db", sqlite_url, "--no-worker") as server:
        server.wait_until_serving()
        page = httpx.get(
            f"{server.base_url}/signup", headers={"X-Forwarded-Proto": "https"}, timeout=60
        )
        assert "secure" not in page.headers["set-cookie"].lower()


# Graceful shutdown -----------------------------------------------------------------------------------


def test_sigterm_finishes_the_upload_in_flight_refuses_new_connections_and_exits_0(
    sqlite_url: str, tmp_path: Path
) -> None:
    with Server(tmp_path, "--db", sqlite_url) as server:
        server.wait_until_serving()
        httpx.post(
            f"{server.base_url}/v1/users",
            json={"email": "up@example.com", "name": "Up", "password": PASSWORD},
            timeout=60,
        ).raise_for_status()
        token = httpx.post(
            f"{server.base_url}/v1/tokens",
            json={"email": "up@example.com", "password": PASSWORD},
            timeout=60,
        ).json()["token"]

        boundary = "milepostboundary"
        head = (
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; '
            f'filename="report.txt"\r\nContent-Type: text/plain\r\n\r\n'
        ).encode()
        chunk = b"x" * 64 * 1024
        chunks = 40
        tail = f"\r\n--{boundary}--\r\n".encode()
        halfway = threading.Event()

        def body() -> Iterator[bytes]:
            yield head
            for index in range(chunks):
                if index == 5:
                    halfway.set()
                time.sleep(0.1)
                yield chunk
            yield tail

        result: dict[str, httpx.Response] = {}

        def upload() -> None:
            result["response"] = httpx.post(
                f"{server.base_url}/v1/files",
                content=body(),
                headers={
                    "Authorization": f"Bearer {token}",
                    "Content-Type": f"multipart/form-data; boundary={boundary}",
                    "Content-Length": str(len(head) + chunks * len(chunk) + len(tail)),
                    "Idempotency-Key": "upload-1",
                },
                timeout=120,
            )

        uploading = threading.Thread(target=upload)
        uploading.start()
        assert halfway.wait(30)
        server.process.send_signal(signal.SIGTERM)

        # While the upload is still being sent, the server takes no new connection.
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", server.port), timeout=1).close()
            except ConnectionRefusedError:
                break
            assert time.monotonic() < deadline, "new connections were still accepted"
            time.sleep(0.05)
        assert uploading.is_alive()

        uploading.join(timeout=60)
        response = result["response"]
        assert response.status_code == 201, response.text
        assert server.process.wait(timeout=60) == 0
        assert "Traceback" not in server.stderr_path.read_text()

    database = Database(sqlite_url)
    try:
        with database.read_only() as session:
            stored = session.scalars(select(StoredFile)).all()
    finally:
        database.dispose()
    assert [(row.id, row.size) for row in stored] == [(response.json()["id"], chunks * len(chunk))]
    # The process let go of its claim mark on the way out.
    holders = tmp_path / "milepost.db-holders"
    assert not holders.exists() or list(holders.iterdir()) == []


def test_sigterm_stops_the_worker_with_exit_0(fresh_url: str, tmp_path: Path) -> None:
    upgrade_schema(fresh_url)
    out = tmp_path / "worker.out"
    with out.open("w") as stdout:
        process = subprocess.Popen(
            [str(MILEPOST), "worker", "--db", fresh_url, "--interval", "0.2"],
            stdout=stdout,
            stderr=subprocess.PIPE,
            text=True,
            env=clean_env(),
            cwd=tmp_path,
        )
    try:
        deadline = time.monotonic() + 60
        while "worker running" not in out.read_text():
            assert process.poll() is None, process.stderr.read() if process.stderr else ""
            assert time.monotonic() < deadline
            time.sleep(0.05)
        time.sleep(1)  # a few rounds
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0
        assert out.read_text().splitlines()[-1] == "worker stopped"
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_make_keeps_the_demo_secret_key_in_a_private_file(tmp_path: Path) -> None:
    """``make run`` serves with MILEPOST_SECRET_KEY_FILE: the file is made once, mode 0600, and kept."""
    repository = Path(__file__).resolve().parent.parent
    key_file = tmp_path / "key"

    def make() -> None:
        subprocess.run(
            ["make", "-s", "-C", str(repository), f"SECRET_KEY_FILE={key_file}", str(key_file)],
            check=True,
            capture_output=True,
            timeout=60,
        )

    make()
    first = key_file.read_text()
    make()
    assert key_file.read_text() == first
    assert key_file.stat().st_mode & 0o777 == 0o600
    from milepost.settings import Settings

    settings = Settings(secret_key_file=str(key_file))
    assert settings.secret_key_is_persistent
    assert settings.secret_key.get_secret_value() == first.strip()


def test_a_files_directory_that_cannot_be_made_is_refused(sqlite_url: str, tmp_path: Path) -> None:
    (tmp_path / "a-file").write_text("")
    files = tmp_path / "a-file" / "files"
    env = clean_env(MILEPOST_FILES_DIR=str(files))

    result = milepost("serve", "--db", sqlite_url, "--port", str(free_port()), env=env)

    assert result.returncode == 1
    assert result.stderr == (
        f"error: cannot create the files directory {files} (MILEPOST_FILES_DIR): Not a directory\n"
    )
    assert result.stdout == ""


def test_a_server_process_keeps_what_it_built_at_start_out_of_full_collections(
    sqlite_url: str,
) -> None:
    # What the server processes of ``milepost serve`` run (uvicorn's factory), in a process of its own:
    # the objects built at start-up are frozen, so the full garbage collections that stop every request
    # of the process do not scan them again and again.
    probe = (
        "import gc\n"
        "from milepost.app import app_from_environment\n"
        "before = gc.get_freeze_count()\n"
        "app_from_environment()\n"
        "print(before, gc.get_freeze_count(), len(gc.get_objects()))\n"
    )
    before, frozen, still_tracked = _server_probe(sqlite_url, probe)
    assert before == 0
    assert frozen > 100_000  # the imports, the app and its routes (some 300,000 objects)
    assert still_tracked < frozen / 10


# A server process as ``milepost serve`` runs it, serving real HTTP on loopback in a thread, asked for a
# few API paths and pages twice: it prints how many objects the collector tracks more after each round.
_FIRST_REQUESTS_PROBE = """
import gc, socket, threading, time, urllib.error, urllib.request
import uvicorn
from milepost.app import app_from_environment

app = app_from_environment()
sock = socket.socket()
sock.bind(("127.0.0.1", 0))
server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True).start()
while not server.started:
    time.sleep(0.01)

def visit():
    for path in ("/v1/me", "/login", "/healthz", "/v1/projects/x/milestones", "/v1/wallet"):
        url = f"http://127.0.0.1:{sock.getsockname()[1]}{path}"
        try:
            urllib.request.urlopen(url, timeout=30).read()
        except urllib.error.HTTPError as error:
            error.read()
    gc.collect()
    return len(gc.get_objects())

started = len(gc.get_objects())
first = visit()
second = visit()
print(first - started, second - first)
server.should_exit = True
"""


def test_a_server_process_builds_its_routes_before_the_first_request(sqlite_url: str) -> None:
    # FastAPI builds an included router's routes when a request is first matched against them (some
    # 30,000 objects here): built at start-up instead, they are frozen with the rest, and no early
    # request waits for them.
    after_first, after_second = _server_probe(sqlite_url, _FIRST_REQUESTS_PROBE)
    # The first round builds only what any first use of the HTTP machinery does (about 2,000 objects;
    # some 34,000 when the routes were built on demand); the second, next to nothing.
    assert after_first < 10_000, (after_first, after_second)
    assert after_second < 1_000, (after_first, after_second)


def _server_probe(sqlite_url: str, probe: str) -> list[int]:
    """Run ``probe`` in a Python process of its own with the server's environment (a migrated SQLite
    database, no worker) and read back the integers it prints."""
    upgrade_schema(sqlite_url)
    result = subprocess.run(
        [sys.executable, "-c", probe],
        capture_output=True,
        text=True,
        timeout=120,
        env=clean_env(MILEPOST_DATABASE_URL=sqlite_url, MILEPOST_RUN_WORKER="false"),
    )
    assert result.returncode == 0, result.stderr
    return [int(value) for value in result.stdout.split()]
