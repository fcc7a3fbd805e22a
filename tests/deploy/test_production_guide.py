"""docs/production.md, followed on loopback: the guide's own commands, in order, with a few substitutions.

Every ``sh`` block of the guide is preceded by ``<!-- test: ACTION (why) -->``:

- ``run``: the block runs as written, in ``bash -euo pipefail``, after the substitutions below;
- ``skip``: not run (system packages, systemd, certbot, ...), the reason is in the comment;
- ``units``: stands for installing and starting the systemd units: the test starts each unit's
  ``ExecStart=`` in its ``WorkingDirectory=`` with its ``EnvironmentFile=``, as systemd would;
- ``nginx``: stands for enabling the site: the test runs ``/usr/sbin/nginx`` in the foreground with
  ``deploy/nginx/milepost.conf``, its TLS server turned into plain HTTP on a free loopback port.

Substitutions (``Machine.substitutions``; a command still naming a guide path after them fails): the
guide's paths (``/opt/milepost/src`` the checkout, ``/opt/milepost/venv`` its ``.venv``, ``/etc/milepost``,
``/var/lib/milepost``, ``/var/backups/milepost``, ``/var/tmp/milepost-drill``) go under a temporary
folder, in the commands and in the installed configuration file; the database and role ``milepost`` get
names of this run's own on the shared PostgreSQL at 127.0.0.1:5432 (created by the guide's commands,
dropped by the test); ``sudo`` is dropped (one user runs everything), with ``PGHOST``/``PGUSER`` standing
for ``sudo -u postgres``; port 8000 and ``https://milepost.example.com`` become free loopback ports.
Between the guide's set-up and its backup section, the test signs up, moves money and uploads a file
through nginx, and reads /metrics; after the restore drill it checks that the drill found every row
and every file.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psycopg
import pytest

from tests.conftest import _postgres_admin_url
from tests.system import require_program

REPO = Path(__file__).resolve().parents[2]
GUIDE = REPO / "docs" / "production.md"
DEPLOY = REPO / "deploy"
NGINX = "/usr/sbin/nginx"
BACKUP_SECTION = "## 9. Backups"

MARKER = re.compile(r"<!-- test: (run|skip|units|nginx)\b[^>]*-->\s*\n```sh\n(.*?)\n```", re.S)
SH_BLOCK = re.compile(r"```sh\n")


@dataclass
class Block:
    action: str
    text: str
    before_backups: bool


def guide_blocks() -> list[Block]:
    guide = GUIDE.read_text()
    split = guide.index(BACKUP_SECTION)
    blocks = [Block(m.group(1), m.group(2), m.start() < split) for m in MARKER.finditer(guide)]
    # Every sh block says what the test does with it: none is left out by accident.
    assert len(blocks) == len(SH_BLOCK.findall(guide)), "an ```sh block of the guide has no marker"
    return blocks


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Machine:
    """The temporary stand-in for the machine the guide sets up."""

    root: Path
    db: str
    role: str
    app_port: int
    nginx_port: int
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)

    @property
    def env_file(self) -> Path:
        return self.root / "etc" / "milepost.env"

    @property
    def public_url(self) -> str:
        return f"http://127.0.0.1:{self.nginx_port}"

    @property
    def app_url(self) -> str:
        return f"http://127.0.0.1:{self.app_port}"

    def substitutions(self) -> list[tuple[str, str]]:
        """(as in the guide, in the test), applied in this order."""
        return [
            # Held aside until the end, so that the rules for "milepost" below leave it alone.
            ("milepost_drill", "\x01drill\x01"),
            ("/opt/milepost/src", str(REPO)),
            ("/opt/milepost/venv", str(REPO / ".venv")),
            ("/etc/milepost", str(self.root / "etc")),
            ("/var/lib/milepost", str(self.root / "var-lib")),
            ("/var/backups/milepost", str(self.root / "backups")),
            ("/var/tmp/milepost-drill", str(self.root / "drill")),
            ("sudo -u postgres ", ""),
            ("sudo -u milepost ", ""),
            ("sudo ", ""),
            (" -o root -g milepost", ""),
            (" -o milepost -g milepost", ""),
            ("CREATE ROLE milepost ", f"CREATE ROLE {self.role} "),
            (
                "CREATE DATABASE milepost OWNER milepost",
                f"CREATE DATABASE {self.db} OWNER {self.role}",
            ),
            ("postgresql://milepost:", f"postgresql://{self.role}:"),
            ("@127.0.0.1:5432/milepost", f"@127.0.0.1:5432/{self.db}"),
            ("--dbname=milepost", f"--dbname={self.db}"),
            ("--owner=milepost", f"--owner={self.role}"),
            ("--role=milepost", f"--role={self.role}"),
            ("/milepost$|", f"/{self.db}$|"),
            ("https://milepost.example.com", self.public_url),
            ("127.0.0.1:8000", f"127.0.0.1:{self.app_port}"),
            ("--port 8000", f"--port {self.app_port}"),
        ]

    def localise(self, text: str, *, check: bool = True) -> str:
        masked = text
        for old, new in self.substitutions():
            text = text.replace(old, new)
            masked = masked.replace(old, "\0")
        text = text.replace("\x01drill\x01", f"{self.db}_drill")
        for left in (
            "sudo",
            "/opt/milepost",
            "/etc/milepost",
            "/var/lib/milepost",
            "milepost.example",
        ):
            assert not check or left not in masked, (
                f"{left!r} left after the substitutions in:\n{text}"
            )
        return text

    def shell_env(self) -> dict[str, str]:
        """An administrator's shell: no MILEPOST_* of the test's own; libpq finds the PostgreSQL server."""
        return {
            "PATH": os.environ["PATH"],
            "HOME": str(self.root),
            "LANG": "C.UTF-8",
            "PGHOST": "127.0.0.1",
            "PGPORT": "5432",
            "PGUSER": "postgres",
        }

    def run(self, block: str) -> str:
        script = self.localise(block)
        result = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", script],
            cwd=self.root,
            env=self.shell_env(),
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert result.returncode == 0, (
            f"guide block failed (exit {result.returncode}):\n{script}\n"
            f"--- stdout\n{result.stdout}\n--- stderr\n{result.stderr}"
        )
        return result.stdout

    def start_unit(self, unit: str) -> subprocess.Popen[bytes]:
        """Start a systemd unit's ExecStart= the way systemd would: its environment file, its directory."""
        lines = self.localise((DEPLOY / "systemd" / unit).read_text()).splitlines()
        directives = dict(
            line.split("=", 1) for line in lines if "=" in line and not line.startswith("#")
        )
        env = {
            "PATH": os.environ["PATH"],
            "LANG": "C.UTF-8",
            **read_env_file(Path(directives["EnvironmentFile"])),
        }
        log = open(self.root / f"{unit}.log", "wb")  # noqa: SIM115 (closed with the process)
        process = subprocess.Popen(
            directives["ExecStart"].split(),
            cwd=directives["WorkingDirectory"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.processes.append(process)
        return process

    def start_nginx(self) -> subprocess.Popen[bytes]:
        conf = self.root / "nginx"
        conf.mkdir()
        site = nginx_site_for_test(
            self.localise((DEPLOY / "nginx" / "milepost.conf").read_text(), check=False),
            self.nginx_port,
        )
        (conf / "nginx.conf").write_text(
            f"daemon off;\nworker_processes 1;\npid {conf}/nginx.pid;\nerror_log stderr warn;\n"
            "events { worker_connections 64; }\n"
            f"http {{\n  access_log {conf}/access.log;\n"
            f"  client_body_temp_path {conf}/body;\n  proxy_temp_path {conf}/proxy;\n"
            f"  fastcgi_temp_path {conf}/fastcgi;\n  uwsgi_temp_path {conf}/uwsgi;\n"
            f"  scgi_temp_path {conf}/scgi;\n{site}\n}}\n"
        )
        log = open(self.root / "nginx.log", "wb")  # noqa: SIM115 (closed with the process)
        process = subprocess.Popen(
            [NGINX, "-p", str(conf), "-c", str(conf / "nginx.conf")],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.processes.append(process)
        return process

    def log(self, name: str) -> str:
        path = self.root / name
        return path.read_text(errors="replace")[-3000:] if path.exists() else ""


def read_env_file(path: Path) -> dict[str, str]:
    """systemd's EnvironmentFile= reading of the guide's file: KEY=value, # comments, quotes removed."""
    values = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, value = line.split("=", 1)
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
            value = value[1:-1]
        values[key.strip()] = value
    return values


def nginx_site_for_test(site: str, port: int) -> str:
    """The deployed site with its TLS server made plain HTTP on a loopback port; the port-80 redirect server
    (whose only job is sending people to HTTPS) is left out."""
    servers = re.split(r"\n(?=server \{)", site)
    upstream = servers[0]
    tls = next(s for s in servers if "listen 443" in s)
    kept = []
    for line in tls.splitlines():
        stripped = line.strip()
        if stripped.startswith(("listen ", "ssl_", "add_header Strict-Transport-Security")):
            continue
        kept.append(line)
    kept.insert(1, f"    listen 127.0.0.1:{port};")
    assert any("proxy_pass http://milepost;" in line for line in kept)
    return re.sub(r"(?m)^#.*\n", "", upstream) + "\n" + "\n".join(kept)


def wait_for(url: str, process: subprocess.Popen[bytes], seconds: float = 30.0) -> httpx.Response:
    deadline = time.monotonic() + seconds
    last: object = None
    while time.monotonic() < deadline:
        assert process.poll() is None, f"exited with {process.returncode} before {url} answered"
        try:
            response = httpx.get(url, timeout=2)
            if response.status_code == 200:
                return response
            last = f"{response.status_code} {response.text[:200]}"
        except httpx.HTTPError as error:
            last = error
        time.sleep(0.2)
    raise AssertionError(f"{url} not ready after {seconds} s: {last}")


def metric_total(text: str) -> float:
    """The sum of every request counter in a Prometheus text page (`*request*_total` samples)."""
    total = 0.0
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        name = re.split(r"[{ ]", line, maxsplit=1)[0]
        if "request" in name and name.endswith("_total"):
            total += float(line.rsplit(" ", 1)[-1])
    return total


@pytest.fixture
def machine(tmp_path: Path) -> Iterator[Machine]:
    admin_url, reason = _postgres_admin_url()
    if admin_url is None:
        pytest.skip(reason)
    require_program(NGINX, "nginx", "the production guide's proxy")
    name = f"milepost_guide_{os.getpid()}"
    machine = Machine(tmp_path, db=name, role=name, app_port=free_port(), nginx_port=free_port())
    with psycopg.connect(admin_url, autocommit=True) as admin:
        for database in (f"{name}_drill", name):
            admin.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        admin.execute(f'DROP ROLE IF EXISTS "{name}"')
    try:
        yield machine
    finally:
        for process in machine.processes:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        with psycopg.connect(admin_url, autocommit=True) as admin:
            for database in (f"{name}_drill", name):
                admin.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
            admin.execute(f'DROP ROLE IF EXISTS "{name}"')


def use_it(machine: Machine, staff_password: str) -> dict[str, object]:
    """What a first client does, through nginx: sign up, sign in, a bank-transfer deposit that staff
    confirm, a project with a milestone funded from it, an uploaded file. Returns what the restore must
    hold."""
    with httpx.Client(base_url=machine.public_url, timeout=30) as http:
        assert http.get("/readyz").json()["status"] == "ok"
        assert http.get("/metrics").status_code == 404  # never public
        user = http.post(
            "/v1/users",
            json={
                "email": "ana@example.com",
                "name": "Ana Client",
                "password": "a long passphrase",
            },
        )
        assert user.status_code == 201, user.text
        token = http.post(
            "/v1/tokens", json={"email": "ana@example.com", "password": "a long passphrase"}
        )
        assert token.status_code == 201, token.text
        ana = {"Authorization": f"Bearer {token.json()['token']}"}
        staff_token = http.post(
            "/v1/tokens", json={"email": "ops@example.com", "password": staff_password}
        )
        assert staff_token.status_code == 201, staff_token.text
        staff = {"Authorization": f"Bearer {staff_token.json()['token']}"}

        deposit = http.post(
            "/v1/deposits",
            json={"amount": 1_500_000, "currency": "USD"},
            headers={**ana, "Idempotency-Key": "first-deposit"},
        )
        assert deposit.status_code == 201, deposit.text
        assert deposit.json()["status"] == "pending"  # manual: a bank transfer staff confirm
        confirmed = http.post(f"/v1/deposits/{deposit.json()['id']}/confirm", headers=staff)
        assert confirmed.status_code == 200, confirmed.text
        project = http.post("/v1/projects", json={"title": "CRM", "currency": "USD"}, headers=ana)
        assert project.status_code == 201, project.text
        milestone = http.post(
            f"/v1/projects/{project.json()['id']}/milestones",
            json={"title": "Data migration", "amount": 1_500_000},
            headers=ana,
        )
        assert milestone.status_code == 201, milestone.text
        funded = http.post(f"/v1/milestones/{milestone.json()['id']}/fund", headers=ana)
        assert funded.status_code == 200, funded.text
        assert funded.json()["status"] == "funded"
        upload = http.post(
            "/v1/files",
            files={"file": ("brief.txt", b"Migrate 12,000 contacts.\n", "text/plain")},
            headers=ana,
        )
        assert upload.status_code == 201, upload.text
        balances = http.get("/v1/balances", headers=ana).json()["data"]
        assert balances == [
            {
                "object": "balance",
                "currency": "USD",
                "available": 0,
                "escrow_outgoing": 1_500_000,
                "escrow_incoming": 0,
                "pending": 0,
            }
        ]
        return {"milestone_id": milestone.json()["id"], "sha256": upload.json()["sha256"]}


def test_the_production_guide_on_loopback(machine: Machine) -> None:
    blocks = guide_blocks()
    web = worker = None
    staff_password = None
    made: dict[str, object] = {}
    for block in blocks:
        if not block.before_backups and not made:
            # The guide's set-up is done: use the deployment before backing it up.
            assert web is not None and staff_password is not None
            token = read_env_file(machine.env_file)["MILEPOST_METRICS_TOKEN"]
            scrape = {"Authorization": f"Bearer {token}"}
            assert httpx.get(f"{machine.app_url}/metrics").status_code in (401, 403)
            before = httpx.get(f"{machine.app_url}/metrics", headers=scrape)
            assert before.status_code == 200, before.text[:300]
            assert before.headers["content-type"].startswith("text/plain")
            made = use_it(machine, staff_password)
            after = httpx.get(f"{machine.app_url}/metrics", headers=scrape)
            assert metric_total(after.text) > metric_total(before.text), (
                "request counters did not move"
            )
        if block.action == "skip":
            continue
        if block.action == "units":
            web = machine.start_unit("milepost-web.service")
            worker = machine.start_unit("milepost-worker.service")
            try:
                # Two processes importing the app: seconds alone, tens of seconds on a busy machine.
                wait_for(f"{machine.app_url}/readyz", web, seconds=120)
            except AssertionError as error:
                raise AssertionError(
                    f"{error}\n{machine.log('milepost-web.service.log')}"
                ) from None
            continue
        if block.action == "nginx":
            nginx = machine.start_nginx()
            try:
                wait_for(f"{machine.public_url}/healthz", nginx, seconds=10)
            except AssertionError as error:
                raise AssertionError(f"{error}\n{machine.log('nginx.log')}") from None
            continue
        output = machine.run(block.text)
        if "deploy/milepost.env" in block.text:
            # The installed configuration names the guide's paths too (MILEPOST_FILES_DIR): moved alike.
            machine.env_file.write_text(machine.localise(machine.env_file.read_text(), check=False))
        if "milepost db upgrade" in block.text:
            # The command line read the configuration file: the schema is in the guide's PostgreSQL.
            with psycopg.connect(f"postgresql://postgres@127.0.0.1:5432/{machine.db}") as database:
                tables = database.execute(
                    "SELECT count(*) FROM pg_tables WHERE tablename = 'alembic_version'"
                ).fetchone()
            assert tables == (1,), (
                "db upgrade did not migrate MILEPOST_DATABASE_URL of the config file"
            )
        found = re.search(r"staff login: ops@example\.com / (\S+)", output)
        if found:
            staff_password = found.group(1)
        if "milepost-drill/files -type f" in block.text:
            # The drill: every acknowledged write in the restored database, every file in the archive.
            assert int(output.strip().splitlines()[-1]) == 1
            sha = str(made["sha256"])
            assert (machine.root / "drill" / "files" / sha[:2] / sha[2:4] / sha).exists()
            with psycopg.connect(
                f"postgresql://postgres@127.0.0.1:5432/{machine.db}_drill", autocommit=True
            ) as drill:
                row = drill.execute(
                    "SELECT status, funded_amount FROM milestones WHERE id = %s",
                    (made["milestone_id"],),
                ).fetchone()
            assert row == ("funded", 1_500_000)
    assert made, "the guide has no backup section after its set-up"
    assert web is not None and worker is not None

    # systemctl stop: SIGTERM, and both are gone well within TimeoutStopSec.
    for process in (web, worker):
        os.killpg(process.pid, signal.SIGTERM)
    for process in (web, worker):
        assert process.wait(timeout=30) == 0
