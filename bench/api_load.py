"""Load benchmark: the full milestone lifecycle over HTTP, against SQLite and PostgreSQL.

Starts `milepost serve` on a fresh database, signs up one client and one freelancer per simulated user,
then for a fixed time each simulated user loops: create a milestone, fund it, submit a delivery, approve
(which releases). Prints requests and money operations (fund, release) per second with p50/p99 latency.
On PostgreSQL it then runs pgbench (TPC-B-like, same number of clients, same server) and prints the ratio.

    .venv/bin/python bench/api_load.py                          # both backends, 16 clients, 20 s each
    .venv/bin/python bench/api_load.py --backends postgres --clients 16 --seconds 30 --workers 2
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import httpx
import psycopg

ROOT = Path(__file__).resolve().parent.parent
MILEPOST = str(Path(sys.executable).parent / "milepost")
PASSWORD = "benchmark-password"
MONEY_OPS = {"fund", "approve"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def fresh_postgres_database(admin_url: str, name: str) -> str:
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.execute(f'CREATE DATABASE "{name}"')
    return admin_url.rsplit("/", 1)[0] + "/" + name


def start_server(url: str, workers: int) -> tuple[subprocess.Popen[bytes], str]:
    subprocess.run([MILEPOST, "db", "upgrade", "--db", url], check=True, capture_output=True)
    port = free_port()
    process = subprocess.Popen(
        [
            MILEPOST,
            "serve",
            "--db",
            url,
            "--port",
            str(port),
            "--workers",
            str(workers),
            "--no-worker",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,  # request logs would cost the benchmark its own I/O
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(base + "/openapi.json", timeout=1).status_code == 200:
                return process, base
        except httpx.HTTPError:
            time.sleep(0.2)
    process.kill()
    raise SystemExit("the server did not start")


def stop_server(process: subprocess.Popen[bytes]) -> None:
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)


async def sign_up(http: httpx.AsyncClient, email: str) -> str:
    response = await http.post(
        "/v1/users", json={"email": email, "name": email, "password": PASSWORD}
    )
    response.raise_for_status()
    response = await http.post("/v1/tokens", json={"email": email, "password": PASSWORD})
    response.raise_for_status()
    return str(response.json()["token"])


class Pair:
    """One simulated user: a client and a freelancer on one project."""

    def __init__(self, client: str, freelancer: str, project_id: str) -> None:
        self.client = {"Authorization": f"Bearer {client}"}
        self.freelancer = {"Authorization": f"Bearer {freelancer}"}
        self.project_id = project_id


async def set_up(http: httpx.AsyncClient, index: int, run: str) -> Pair:
    client = await sign_up(http, f"client{index}-{run}@bench.example")
    freelancer = await sign_up(http, f"freelancer{index}-{run}@bench.example")
    headers = {"Authorization": f"Bearer {freelancer}"}
    freelancer_id = (await http.get("/v1/me", headers=headers)).json()["id"]
    client_headers = {"Authorization": f"Bearer {client}"}
    deposit = await http.post(
        "/v1/deposits", json={"amount": 10**11, "currency": "USD"}, headers=client_headers
    )
    deposit.raise_for_status()
    project = await http.post(
        "/v1/projects",
        json={"title": f"Bench {index}", "currency": "USD", "freelancer_id": freelancer_id},
        headers=client_headers,
    )
    project.raise_for_status()
    return Pair(client, freelancer, project.json()["id"])


async def lifecycle_loop(
    http: httpx.AsyncClient,
    pair: Pair,
    stop_at: float,
    latencies: dict[str, list[float]],
    errors: dict[str, int],
) -> None:
    async def call(
        name: str, path: str, headers: dict[str, str], body: object = None
    ) -> dict[str, object] | None:
        started = time.perf_counter()
        response = await http.post(path, json=body, headers=headers)
        latencies[name].append(time.perf_counter() - started)
        if response.status_code >= 300:
            errors[f"{name} {response.status_code}"] += 1
            return None
        return dict(response.json())

    while time.monotonic() < stop_at:
        milestone = await call(
            "create",
            f"/v1/projects/{pair.project_id}/milestones",
            pair.client,
            {"title": "Bench milestone", "amount": 100_000, "acceptance_criteria": ["Works"]},
        )
        if milestone is None:
            continue
        path = f"/v1/milestones/{milestone['id']}"
        if await call("fund", path + "/fund", pair.client) is None:
            continue
        submitted = await call(
            "submit",
            path + "/submissions",
            pair.freelancer,
            {"note": "Done", "evidence": [{"type": "text", "text": "Delivered"}]},
        )
        if submitted is None:
            continue
        await call("approve", path + "/approve", pair.client)


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))] if ordered else float("nan")


async def drive(base: str, clients: int, seconds: float) -> dict[str, float]:
    limits = httpx.Limits(max_connections=clients * 2, max_keepalive_connections=clients * 2)
    async with httpx.AsyncClient(base_url=base, timeout=60, limits=limits) as http:
        run = str(int(time.time() * 1000))
        pairs = await asyncio.gather(*(set_up(http, index, run) for index in range(clients)))
        latencies: dict[str, list[float]] = defaultdict(list)
        errors: dict[str, int] = defaultdict(int)
        started = time.monotonic()
        await asyncio.gather(
            *(lifecycle_loop(http, pair, started + seconds, latencies, errors) for pair in pairs)
        )
        elapsed = time.monotonic() - started
    every = [value for values in latencies.values() for value in values]
    money = [value for name in MONEY_OPS for value in latencies[name]]
    result = {
        "elapsed": elapsed,
        "requests_per_s": len(every) / elapsed,
        "money_ops_per_s": len(money) / elapsed,
        "p50_ms": percentile(every, 0.50) * 1000,
        "p99_ms": percentile(every, 0.99) * 1000,
        "money_p50_ms": percentile(money, 0.50) * 1000,
        "money_p99_ms": percentile(money, 0.99) * 1000,
        "errors": sum(errors.values()),
    }
    for name, values in sorted(latencies.items()):
        print(
            f"    {name:8} {len(values):7d} calls  p50 {percentile(values, 0.5) * 1000:7.1f} ms"
            f"  p99 {percentile(values, 0.99) * 1000:7.1f} ms  mean {statistics.fmean(values) * 1000:7.1f} ms"
        )
    if errors:
        print("    errors:", dict(errors))
    return result


def pgbench_tps(admin_url: str, clients: int, seconds: int) -> float:
    url = fresh_postgres_database(admin_url, "milepost_pgbench")
    subprocess.run(
        ["pgbench", "-i", "-q", "-s", str(max(clients, 10)), url], check=True, capture_output=True
    )
    output = subprocess.run(
        [
            "pgbench",
            "-c",
            str(clients),
            "-j",
            str(min(clients, os.cpu_count() or 2)),
            "-T",
            str(seconds),
            "-b",
            "tpcb-like",
            url,
        ],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    match = re.search(r"tps = ([0-9.]+) \(without initial connection time\)", output)
    if match is None:
        raise SystemExit("could not read pgbench's tps:\n" + output)
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute('DROP DATABASE IF EXISTS "milepost_pgbench" WITH (FORCE)')
    return float(match.group(1))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--backends", default="sqlite,postgres")
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--workers", type=int, default=2, help="server processes")
    parser.add_argument(
        "--pg-url",
        default=os.environ.get(
            "MILEPOST_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
        ),
    )
    args = parser.parse_args()
    print(
        f"machine: {os.cpu_count()} cores; {args.clients} clients; {args.seconds:.0f} s per backend"
    )
    for backend in args.backends.split(","):
        workdir = Path(tempfile.mkdtemp(prefix="milepost-bench-"))
        if backend == "sqlite":
            url = f"sqlite:///{workdir / 'bench.db'}"
            workers = 1  # SQLite has one writer at a time; more processes only add lock waits
        else:
            url = fresh_postgres_database(args.pg_url, "milepost_bench")
            workers = args.workers
        process, base = start_server(url, workers)
        try:
            print(f"{backend} ({workers} server process{'es' if workers > 1 else ''}):")
            result = asyncio.run(drive(base, args.clients, args.seconds))
        finally:
            stop_server(process)
            shutil.rmtree(workdir, ignore_errors=True)
        print(
            f"  {backend}: {result['money_ops_per_s']:.1f} money ops/s "
            f"({result['requests_per_s']:.1f} requests/s), all requests p50 {result['p50_ms']:.1f} ms "
            f"p99 {result['p99_ms']:.1f} ms; money ops p50 {result['money_p50_ms']:.1f} ms "
            f"p99 {result['money_p99_ms']:.1f} ms; errors {int(result['errors'])}"
        )
        if backend == "postgres":
            tps = pgbench_tps(args.pg_url, args.clients, int(args.seconds))
            print(
                f"  pgbench tpcb-like, {args.clients} clients: {tps:.1f} tps; "
                f"money ops / pgbench tps = {result['money_ops_per_s'] / tps:.3f} (target >= 0.25)"
            )


if __name__ == "__main__":
    main()
