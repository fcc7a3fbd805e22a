"""Load benchmark: the full milestone lifecycle over HTTP, against SQLite and PostgreSQL.

Starts `milepost serve` on a database of its own, signs up one client and one freelancer per simulated user,
then for a fixed time each simulated user loops: create a milestone, fund it, submit a delivery, approve
(which releases). Prints requests and money operations (fund, approve) per second with p50/p99 latency,
the server's CPU per request and per money operation, and the load generator's own CPU per request. On
PostgreSQL it then runs pgbench (TPC-B-like, same number of clients, same server) and prints the ratio of
money operations to pgbench transactions.

The load generator is meant to cost the machine it measures as little as it can: a bare HTTP/1.1 client
on asyncio streams, one keep-alive connection per simulated user, in one or more processes
(``--client-processes``); each process times its own CPU (``time.process_time``) over the measured
window only, and the sum is printed per request. The server's CPU is read from /proc for every process of
its session (the uvicorn supervisor and its workers), over the same window.

It touches no database it did not make: PostgreSQL databases are created under names of their own
(``milepost_bench_<pid>_<random>``, ``milepost_pgbench_<pid>_<random>``) and only those are dropped; the
SQLite file lives in a temporary directory that is removed afterwards.

    .venv/bin/python bench/api_load.py                          # both backends, 16 clients, 20 s each
    .venv/bin/python bench/api_load.py --backends postgres --clients 16 --seconds 30 --workers 2
    .venv/bin/python bench/api_load.py --seconds 5 --clients 4 --no-pgbench     # a quick check

Options:
    --backends sqlite,postgres   which databases, in order (comma-separated)
    --clients N                  simulated users, each with its own connection (default 16)
    --seconds S                  measured time per backend (default 20; pgbench runs as long)
    --workers N                  server processes on PostgreSQL (default 2; SQLite always 1)
    --client-processes N         load generator processes sharing the clients (default 1)
    --idempotency-keys           send an Idempotency-Key with every write (default: none, as before)
    --pgbench / --no-pgbench     pair the PostgreSQL run with pgbench (default: on)
    --profile PREFIX             sample the server with py-spy (pip install py-spy) during the run and
                                 print its CPU per money op by where it was spent (the sampler costs
                                 CPU of its own: measure throughput without it)
    --pg-url URL                 the PostgreSQL server (any database on it; default
                                 MILEPOST_TEST_POSTGRES_URL, else postgresql://postgres@127.0.0.1:5432/test)
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import multiprocessing
import os
import re
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg

MILEPOST = str(Path(sys.executable).parent / "milepost")
PASSWORD = "benchmark-password"
MONEY_OPS = {"fund", "approve"}
SUBMISSION = {"note": "Done", "evidence": [{"type": "text", "text": "Delivered"}]}
MILESTONE = {"title": "Bench milestone", "amount": 100_000, "acceptance_criteria": ["Works"]}
# The loop's bodies never change: encoded once, not per request.
SUBMISSION_JSON = json.dumps(SUBMISSION).encode()
MILESTONE_JSON = json.dumps(MILESTONE).encode()


# --- the databases: our own names, and only ours dropped ---------------------------------------------


def own_database_name(kind: str) -> str:
    """A name no one else uses: this process's id and a random part."""
    return f"milepost_{kind}_{os.getpid()}_{secrets.token_hex(4)}"


def create_postgres_database(admin_url: str, name: str) -> str:
    """CREATE (never DROP first: an existing database of that name is someone else's, and this fails)."""
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    return admin_url.rsplit("/", 1)[0] + "/" + name


def drop_postgres_database(admin_url: str, name: str) -> None:
    """Drop a database this run created (and only such a one)."""
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


# --- the server ------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_server(url: str, workers: int, workdir: Path) -> tuple[subprocess.Popen[bytes], int]:
    subprocess.run([MILEPOST, "db", "upgrade", "--db", url], check=True, capture_output=True)
    port = free_port()
    env = dict(os.environ)
    env.setdefault("MILEPOST_PROVIDERS", "sandbox,manual")  # deposits credited at once
    env.setdefault("MILEPOST_SECRET_KEY", secrets.token_urlsafe(32))  # --workers > 1 needs one
    env["MILEPOST_FILES_DIR"] = str(workdir / "files")
    process = subprocess.Popen(
        [
            *(MILEPOST, "serve", "--db", url, "--port", str(port)),
            *("--workers", str(workers), "--no-worker"),
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,  # request logs would cost the benchmark its own I/O
        start_new_session=True,
    )
    return wait_until_serving(process, port), port


def wait_until_serving(process: subprocess.Popen[bytes], port: int) -> subprocess.Popen[bytes]:
    """The server once it answers on ``port`` (its OpenAPI document), within 30 s; else stopped."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/openapi.json", timeout=1):
                return process
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            time.sleep(0.2)
    stop_server(process)
    raise SystemExit("the server did not start")


def stop_server(process: subprocess.Popen[bytes]) -> None:
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def session_cpu_seconds(session_id: int) -> float:
    """User + system CPU of every live process in the session (the server and its worker processes)."""
    ticks = 0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as stat:
                fields = stat.read().rsplit(b")", 1)[1].split()
        except OSError:  # gone meanwhile
            continue
        if int(fields[3]) == session_id:  # fields after the name: state ppid pgrp session ...
            ticks += int(fields[11]) + int(fields[12])  # utime, stime
    return ticks / os.sysconf("SC_CLK_TCK")


# --- a bare HTTP/1.1 keep-alive client ----------------------------------------------------------------


class HttpError(Exception):
    pass


class Connection:
    """One keep-alive HTTP/1.1 connection on asyncio streams: a request is a few bytes written, a response
    is its head and its Content-Length (or chunked) body read back. Nothing else: no cookies, redirects,
    compression or TLS, which is all this benchmark needs and most of what a general client costs."""

    idempotency_keys = False  # a fresh Idempotency-Key on every POST (--idempotency-keys)

    def __init__(self, port: int) -> None:
        self.port = port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            with contextlib.suppress(OSError):
                await self.writer.wait_closed()
        self.reader = self.writer = None

    async def request(
        self, method: str, path: str, token: str | None = None, body: object = None
    ) -> tuple[int, bytes]:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)
        if body is None:
            payload = b""
        elif isinstance(body, bytes):  # encoded once by the caller
            payload = body
        else:
            payload = json.dumps(body).encode()
        head = f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: {len(payload)}\r\n"
        if payload:
            head += "Content-Type: application/json\r\n"
        if token is not None:
            head += f"Authorization: Bearer {token}\r\n"
        if method == "POST" and self.idempotency_keys:
            head += f"Idempotency-Key: {secrets.token_hex(8)}\r\n"
        assert self.reader is not None
        try:
            self.writer.write(head.encode() + b"\r\n" + payload)
            return await self._response(self.reader)
        except (OSError, asyncio.IncompleteReadError) as error:
            await self.close()  # reconnect for the next request; this one is an error
            raise HttpError(f"connection lost: {type(error).__name__}") from error

    async def _response(self, reader: asyncio.StreamReader) -> tuple[int, bytes]:
        head = (await reader.readuntil(b"\r\n\r\n")).lower()
        status = int(head[9:12])
        length = re.search(rb"\r\ncontent-length: *(\d+)", head)
        if length is not None:
            body = await reader.readexactly(int(length.group(1)))
        elif b"\r\ntransfer-encoding: chunked" in head:
            body = await self._chunks(reader)
        else:
            body = b""
        if b"\r\nconnection: close" in head:
            await self.close()
        return status, body

    async def _chunks(self, reader: asyncio.StreamReader) -> bytes:
        parts = []
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
            if size == 0:
                await reader.readuntil(b"\r\n")
                return b"".join(parts)
            parts.append(await reader.readexactly(size))
            await reader.readexactly(2)


# --- the simulated users --------------------------------------------------------------------------


@dataclass
class Tally:
    """What one load generator process saw in the measured window."""

    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    errors: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    cpu_seconds: float = 0.0
    started: float = 0.0
    ended: float = 0.0


async def ok(
    connection: Connection, method: str, path: str, token: str | None, body: object
) -> Any:
    status, raw = await connection.request(method, path, token, body)
    if status >= 300:
        raise SystemExit(f"set-up failed: {method} {path} -> {status} {raw[:300]!r}")
    return json.loads(raw)


async def set_up(connection: Connection, index: int, run: str) -> tuple[str, str, str]:
    """One simulated user: (client token, freelancer token, project id)."""
    tokens = []
    for role in ("client", "freelancer"):
        email = f"{role}{index}-{run}@bench.example"
        await ok(
            connection,
            "POST",
            "/v1/users",
            None,
            {"email": email, "name": email, "password": PASSWORD},
        )
        signed_in = await ok(
            connection, "POST", "/v1/tokens", None, {"email": email, "password": PASSWORD}
        )
        tokens.append(str(signed_in["token"]))
    client, freelancer = tokens
    freelancer_id = (await ok(connection, "GET", "/v1/me", freelancer, None))["id"]
    deposit = {"amount": 10**11, "currency": "USD", "provider": "sandbox"}
    await ok(connection, "POST", "/v1/deposits", client, deposit)
    project = {"title": f"Bench {index}", "currency": "USD", "freelancer_id": freelancer_id}
    return (
        client,
        freelancer,
        str((await ok(connection, "POST", "/v1/projects", client, project))["id"]),
    )


async def lifecycle_loop(
    connection: Connection, user: tuple[str, str, str], stop_at: float, tally: Tally
) -> None:
    client, freelancer, project_id = user

    async def call(name: str, path: str, token: str, body: object = None) -> bytes | None:
        started = time.perf_counter()
        try:
            status, raw = await connection.request("POST", path, token, body)
        except HttpError as error:
            tally.errors[f"{name} {error}"] += 1
            return None
        tally.latencies[name].append(time.perf_counter() - started)
        if status >= 300:
            tally.errors[f"{name} {status}"] += 1
            return None
        return raw

    while time.monotonic() < stop_at:
        created = await call(
            "create", f"/v1/projects/{project_id}/milestones", client, MILESTONE_JSON
        )
        if created is None:
            continue
        path = f"/v1/milestones/{json.loads(created)['id']}"
        if await call("fund", path + "/fund", client) is None:
            continue
        if await call("submit", path + "/submissions", freelancer, SUBMISSION_JSON) is None:
            continue
        await call("approve", path + "/approve", client)


async def generate(port: int, indices: list[int], run: str, keys: bool, pipe: Any) -> Tally:
    """One load generator process: set its users up, say so, wait for the start, loop until the stop."""
    Connection.idempotency_keys = keys
    connections = [Connection(port) for _ in indices]
    users = await asyncio.gather(
        *(
            set_up(connection, index, run)
            for connection, index in zip(connections, indices, strict=True)
        )
    )
    for connection in connections:  # fresh connections for the window: idle ones may have timed out
        await connection.close()
    pipe.send("ready")
    start_at, stop_at = pipe.recv()
    await asyncio.sleep(max(0.0, start_at - time.monotonic()))
    tally = Tally(started=time.monotonic())
    cpu_before = time.process_time()
    await asyncio.gather(
        *(
            lifecycle_loop(c, user, stop_at, tally)
            for c, user in zip(connections, users, strict=True)
        )
    )
    tally.cpu_seconds = time.process_time() - cpu_before
    tally.ended = time.monotonic()
    for connection in connections:
        await connection.close()
    return tally


def generator_process(port: int, indices: list[int], run: str, keys: bool, pipe: Any) -> None:
    try:
        tally = asyncio.run(generate(port, indices, run, keys, pipe))
    except BaseException as error:  # say so, or the parent would wait for "ready" for ever
        pipe.send(f"failed: {error}")
        raise
    pipe.send(
        (dict(tally.latencies), dict(tally.errors), tally.cpu_seconds, tally.started, tally.ended)
    )


# --- one run against one server ----------------------------------------------------------------


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))] if ordered else float("nan")


def drive(
    server: subprocess.Popen[bytes],
    port: int,
    clients: int,
    seconds: float,
    processes: int,
    keys: bool,
    profile: str | None = None,
) -> dict[str, float]:
    """Run the generators against the server at ``port`` for ``seconds``; print per-operation figures and
    return the totals. With ``profile``, the server's processes are sampled meanwhile (py-spy)."""
    run = f"{int(time.time() * 1000)}-{secrets.token_hex(2)}"
    spawn = multiprocessing.get_context("spawn")
    pipes, children = [], []
    for number in range(processes):
        indices = list(range(number, clients, processes))
        parent_end, child_end = spawn.Pipe()
        child = spawn.Process(target=generator_process, args=(port, indices, run, keys, child_end))
        child.start()
        pipes.append(parent_end)
        children.append(child)
    for pipe in pipes:
        answer = pipe.recv()
        if answer != "ready":
            for child in children:
                child.terminate()
            raise SystemExit(f"a load generator failed to set up ({answer})")
    start_at = time.monotonic() + 0.2
    for pipe in pipes:
        pipe.send((start_at, start_at + seconds))
    time.sleep(max(0.0, start_at - time.monotonic()))
    server_cpu_before = session_cpu_seconds(server.pid)
    sampler = start_profiler(server.pid, seconds, profile) if profile else None
    tallies = [pipe.recv() for pipe in pipes]
    server_cpu = session_cpu_seconds(server.pid) - server_cpu_before
    if sampler is not None:
        sampler.wait()
    for child in children:
        child.join()
    latencies: dict[str, list[float]] = defaultdict(list)
    errors: dict[str, int] = defaultdict(int)
    for their_latencies, their_errors, _cpu, _started, _ended in tallies:
        for name, values in their_latencies.items():
            latencies[name].extend(values)
        for name, count in their_errors.items():
            errors[name] += count
    elapsed = max(t[4] for t in tallies) - min(t[3] for t in tallies)
    client_cpu = sum(t[2] for t in tallies)
    every = [value for values in latencies.values() for value in values]
    money = [value for name in MONEY_OPS for value in latencies[name]]
    requests = len(every) + sum(errors.values())
    for name, values in sorted(latencies.items()):
        print(
            f"    {name:8} {len(values):7d} calls  p50 {percentile(values, 0.5) * 1000:7.1f} ms"
            f"  p99 {percentile(values, 0.99) * 1000:7.1f} ms  mean {statistics.fmean(values) * 1000:7.1f} ms"
        )
    if errors:
        print("    errors:", dict(errors))
    return {
        "elapsed": elapsed,
        "requests_per_s": len(every) / elapsed,
        "money_ops_per_s": len(money) / elapsed,
        "p50_ms": percentile(every, 0.50) * 1000,
        "p99_ms": percentile(every, 0.99) * 1000,
        "money_p50_ms": percentile(money, 0.50) * 1000,
        "money_p99_ms": percentile(money, 0.99) * 1000,
        "errors": sum(errors.values()),
        "server_cpu_ms_per_request": server_cpu * 1000 / max(requests, 1),
        "server_cpu_ms_per_money_op": server_cpu * 1000 / max(len(money), 1),
        "client_cpu_ms_per_request": client_cpu * 1000 / max(requests, 1),
        "client_cpu_share": client_cpu / elapsed,
    }


# Where a sampled stack's innermost frame lies, by file path: what the server's CPU was spent on.
CPU_PARTS = (
    ("SQLAlchemy ORM", ("sqlalchemy/orm/",)),
    ("SQLAlchemy Core", ("sqlalchemy/",)),
    ("psycopg", ("psycopg/", "psycopg_binary/", "psycopg_c/")),
    ("FastAPI, Starlette, Pydantic", ("fastapi/", "starlette/", "pydantic/", "pydantic_core/")),
    (
        "uvicorn, asyncio, threads",
        (
            "uvicorn/",
            "asyncio/",
            "uvloop/",
            "httptools/",
            "threading.py",
            "concurrent/",
            "anyio/",
            "selectors.py",
            "queue.py",
        ),
    ),
    ("Jinja2 (notification texts)", ("jinja2/", "markupsafe/")),
    ("Babel (money formats)", ("babel/",)),
    ("logging, JSON, hashing", ("logging/", "json/", "hashlib", "hmac.py", "uuid.py")),
    ("prometheus-client", ("prometheus_client/",)),
    ("Milepost", ("milepost/",)),
)


def start_profiler(pid: int, seconds: float, output: str) -> subprocess.Popen[bytes]:
    """py-spy sampling every process of the server (its workers are children) for ``seconds``, in raw
    (collapsed stacks) format, only threads that hold the GIL: Python at work, not a thread waiting for
    the database in C (which py-spy would otherwise count as running)."""
    spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    return subprocess.Popen(
        [
            *(spy, "record", "--pid", str(pid), "--subprocesses", "--nonblocking", "--gil"),
            *("--rate", "200", "--duration", str(max(1, round(seconds))), "--format", "raw"),
            *("--output", output),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def cpu_breakdown(path: str) -> list[tuple[str, float]]:
    """Shares of the samples in py-spy's raw output, by where their innermost frame is (CPU_PARTS)."""
    counts: dict[str, int] = defaultdict(int)
    with open(path) as samples:
        for line in samples:
            stack, _, number = line.rstrip("\n").rpartition(" ")
            if not stack or not number.isdigit():
                continue
            leaf = stack.rsplit(";", 1)[-1]
            part = next(
                (name for name, paths in CPU_PARTS if any(p in leaf for p in paths)), "other"
            )
            counts[part] += int(number)
    total = sum(counts.values()) or 1
    return sorted(((part, count / total) for part, count in counts.items()), key=lambda x: -x[1])


def pgbench_tps(admin_url: str, clients: int, seconds: int) -> float:
    name = own_database_name("pgbench")
    url = create_postgres_database(admin_url, name)
    try:
        subprocess.run(
            ["pgbench", "-i", "-q", "-s", str(max(clients, 10)), url],
            check=True,
            capture_output=True,
        )
        output = subprocess.run(
            [
                *("pgbench", "-c", str(clients), "-j", str(min(clients, os.cpu_count() or 2))),
                *("-T", str(seconds), "-b", "tpcb-like", url),
            ],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
    finally:
        drop_postgres_database(admin_url, name)
    match = re.search(r"tps = ([0-9.]+) \(without initial connection time\)", output)
    if match is None:
        raise SystemExit("could not read pgbench's tps:\n" + output)
    return float(match.group(1))


def run_backend(backend: str, args: argparse.Namespace) -> None:
    workdir = Path(tempfile.mkdtemp(prefix="milepost-bench-"))
    database = None
    try:
        if backend == "sqlite":
            url = f"sqlite:///{workdir / 'bench.db'}"
            workers = 1  # SQLite has one writer at a time; more processes only add lock waits
        else:
            database = own_database_name("bench")
            url = create_postgres_database(args.pg_url, database)
            workers = args.workers
        server, port = start_server(url, workers, workdir)
        try:
            print(f"{backend} ({workers} server process{'es' if workers > 1 else ''}):")
            result = drive(
                server,
                port,
                args.clients,
                args.seconds,
                args.client_processes,
                args.idempotency_keys,
                args.profile and f"{args.profile}.{backend}.txt",
            )
        finally:
            stop_server(server)
    finally:
        if database is not None:
            drop_postgres_database(args.pg_url, database)
        shutil.rmtree(workdir, ignore_errors=True)
    print(
        f"  {backend}: {result['money_ops_per_s']:.1f} money ops/s "
        f"({result['requests_per_s']:.1f} requests/s), all requests p50 {result['p50_ms']:.1f} ms "
        f"p99 {result['p99_ms']:.1f} ms; money ops p50 {result['money_p50_ms']:.1f} ms "
        f"p99 {result['money_p99_ms']:.1f} ms; errors {int(result['errors'])}"
    )
    print(
        f"  server CPU {result['server_cpu_ms_per_request']:.2f} ms/request, "
        f"{result['server_cpu_ms_per_money_op']:.2f} ms/money op (the app's processes, not the database); "
        f"load generator CPU {result['client_cpu_ms_per_request']:.3f} ms/request "
        f"({result['client_cpu_share'] * 100:.0f}% of one core, {args.client_processes} process"
        f"{'es' if args.client_processes > 1 else ''})"
    )
    if args.profile:
        print(
            f"  server CPU per money op by where it was spent ({args.profile}.{backend}.txt): "
            + ", ".join(
                f"{part} {share * result['server_cpu_ms_per_money_op']:.2f} ms"
                for part, share in cpu_breakdown(f"{args.profile}.{backend}.txt")
            )
        )
    if backend == "postgres" and args.pgbench:
        tps = pgbench_tps(args.pg_url, args.clients, max(1, round(args.seconds)))
        print(
            f"  pgbench tpcb-like, {args.clients} clients: {tps:.1f} tps; "
            f"money ops / pgbench tps = {result['money_ops_per_s'] / tps:.3f} (target >= 0.10)"
        )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--backends", default="sqlite,postgres")
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--workers", type=int, default=2, help="server processes")
    parser.add_argument("--client-processes", type=int, default=1, help="load generator processes")
    parser.add_argument("--idempotency-keys", action="store_true", help="a key on every write")
    parser.add_argument("--pgbench", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument(
        "--profile",
        metavar="PREFIX",
        help="sample the server with py-spy meanwhile (PREFIX.<backend>.txt) and print where its CPU went",
    )
    parser.add_argument(
        "--pg-url",
        default=os.environ.get(
            "MILEPOST_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
        ),
    )
    args = parser.parse_args()
    args.client_processes = max(1, min(args.client_processes, args.clients))
    print(
        f"machine: {os.cpu_count()} cores; {args.clients} clients in {args.client_processes} load "
        f"generator process{'es' if args.client_processes > 1 else ''}; {args.seconds:.0f} s per backend"
    )
    for backend in args.backends.split(","):
        run_backend(backend.strip(), args)


if __name__ == "__main__":
    main()
