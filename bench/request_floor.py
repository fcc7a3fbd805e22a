"""What one request costs the stack before Milepost does anything: the floor under server CPU per request.

Serves a FastAPI app of four endpoints, each one of Milepost's ways of answering with nothing of
Milepost in it, with uvicorn set up as ``milepost serve`` sets it up (2 worker processes, no access
log), loads it with ``bench/api_load.py``'s HTTP/1.1 client (16 keep-alive connections, one process),
and prints the server's CPU per request (every process of its session, from /proc) for each:

- ``echo``: a ``def`` endpoint (run in the threadpool, as Milepost's are) that validates a JSON body
  with Pydantic and answers it as JSON: uvicorn, Starlette, FastAPI, Pydantic and the thread hand-off;
- ``echo-async``: the same as ``async def``, on the event loop: the hand-off's cost is the difference;
- ``insert``: the same, plus one ``INSERT ... RETURNING`` and its COMMIT through a SQLAlchemy Core
  engine on psycopg (a pooled connection, no pre-ping): the least a write can cost on this stack;
- ``insert-async``: the same write from an ``async def`` endpoint on psycopg's async connections,
  without the threadpool or SQLAlchemy (the INSERT autocommitted: one round trip, where the ``def``
  endpoint's BEGIN, INSERT and COMMIT take three): what taking both out of a hot path could save.

Milepost's money operation (a funding, an approval) is one request and costs what its statements and
its rules cost on top of this; ``bench/api_load.py``'s loop counts two requests per money operation (a
creation and a delivery come with each funding and approval), so a floor F per request puts the loop's
server CPU per money operation at 2F at the very least.

    .venv/bin/python bench/request_floor.py                       # 10 s per endpoint, 16 clients
    .venv/bin/python bench/request_floor.py --seconds 20 --endpoints insert,insert-async

It creates a PostgreSQL database of its own (``milepost_floor_<pid>_<random>``) and drops only that.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from pydantic import BaseModel

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.api_load import (
    Connection,
    create_postgres_database,
    drop_postgres_database,
    free_port,
    own_database_name,
    percentile,
    session_cpu_seconds,
    stop_server,
    wait_until_serving,
)

ROOT = Path(__file__).resolve().parent.parent
BODY = b'{"title": "Bench milestone", "amount": 100000, "acceptance_criteria": ["Works"]}'
ENDPOINTS = ("echo", "echo-async", "insert", "insert-async")


class Milestone(BaseModel):
    title: str
    amount: int
    acceptance_criteria: list[str]


def make_app() -> Any:
    """The app uvicorn serves (a factory: each worker process builds its own pools)."""
    from contextlib import asynccontextmanager

    import psycopg
    from fastapi import FastAPI
    from sqlalchemy import create_engine, text

    url = os.environ["FLOOR_DATABASE_URL"]
    engine = create_engine(url.replace("postgresql://", "postgresql+psycopg://"), pool_size=10)
    # A queue of open async connections is the pool (psycopg_pool is not one of Milepost's packages).
    pool: asyncio.Queue[psycopg.AsyncConnection[Any]] = asyncio.Queue()
    insert = text(
        "INSERT INTO floor_rows (id, title, amount) VALUES (:id, :title, :amount) RETURNING id"
    )

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> Any:
        connections = [
            await psycopg.AsyncConnection.connect(url, autocommit=True) for _ in range(10)
        ]
        for connection in connections:
            pool.put_nowait(connection)
        yield
        for connection in connections:
            await connection.close()

    app = FastAPI(lifespan=lifespan)

    @app.post("/echo")
    def echo(body: Milestone) -> Milestone:
        return body

    @app.post("/echo-async")
    async def echo_async(body: Milestone) -> Milestone:
        return body

    @app.post("/insert")
    def insert_row(body: Milestone) -> dict[str, str]:
        with engine.begin() as connection:
            row_id = connection.execute(
                insert, {"id": secrets.token_hex(8), "title": body.title, "amount": body.amount}
            ).scalar_one()
        return {"id": row_id}

    @app.post("/insert-async")
    async def insert_row_async(body: Milestone) -> dict[str, str]:
        connection = await pool.get()
        try:  # autocommit: the INSERT is its own transaction, committed with its answer
            cursor = await connection.execute(
                "INSERT INTO floor_rows (id, title, amount) VALUES (%s, %s, %s) RETURNING id",
                (secrets.token_hex(8), body.title, body.amount),
            )
            row = await cursor.fetchone()
        finally:
            pool.put_nowait(connection)
        assert row is not None
        return {"id": row[0]}

    return app


def start(url: str, workers: int) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    process = subprocess.Popen(
        [
            *(sys.executable, "-m", "uvicorn", "bench.request_floor:make_app", "--factory"),
            *("--port", str(port), "--workers", str(workers), "--log-level", "warning"),
            *("--no-access-log", "--no-server-header"),
        ],
        cwd=ROOT,
        env={**os.environ, "FLOOR_DATABASE_URL": url},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    return wait_until_serving(process, port), port


async def load(
    port: int, path: str, clients: int, seconds: float, server_pid: int
) -> tuple[list[float], int, float, float]:
    """Each client posts BODY to path in a loop for ``seconds``: latencies, errors, the client's CPU
    and the server's, both over the measured loop only."""
    connections = [Connection(port) for _ in range(clients)]
    for connection in connections:  # warm: connections open, the server's pools filled
        await connection.request("POST", path, None, BODY)
    latencies: list[float] = []
    errors = 0
    stop_at = time.monotonic() + seconds
    cpu_before, server_before = time.process_time(), session_cpu_seconds(server_pid)

    async def loop(connection: Connection) -> None:
        nonlocal errors
        while time.monotonic() < stop_at:
            started = time.perf_counter()
            status, _ = await connection.request("POST", path, None, BODY)
            if status != 200:
                errors += 1
            latencies.append(time.perf_counter() - started)

    await asyncio.gather(*(loop(connection) for connection in connections))
    cpu = time.process_time() - cpu_before
    server_cpu = session_cpu_seconds(server_pid) - server_before
    for connection in connections:
        await connection.close()
    return latencies, errors, cpu, server_cpu


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--endpoints", default=",".join(ENDPOINTS))
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--workers", type=int, default=2, help="server processes")
    parser.add_argument(
        "--pg-url",
        default=os.environ.get(
            "MILEPOST_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
        ),
    )
    args = parser.parse_args()
    import psycopg

    name = own_database_name("floor")
    url = create_postgres_database(args.pg_url, name)
    try:
        with psycopg.connect(url, autocommit=True) as connection:
            connection.execute(
                "CREATE TABLE floor_rows (id text PRIMARY KEY, title text NOT NULL, "
                "amount bigint NOT NULL, created_at timestamptz NOT NULL DEFAULT now())"
            )
        server, port = start(url, args.workers)
        try:
            print(
                f"machine: {os.cpu_count()} cores; {args.clients} clients, {args.workers} server "
                f"processes, {args.seconds:.0f} s per endpoint"
            )
            for endpoint in args.endpoints.split(","):
                latencies, errors, client_cpu, server_cpu = asyncio.run(
                    load(port, f"/{endpoint}", args.clients, args.seconds, server.pid)
                )
                elapsed = args.seconds
                requests = len(latencies)
                print(
                    f"  {endpoint:13} {requests / elapsed:7.0f} requests/s  "
                    f"server CPU {server_cpu * 1000 / requests:5.2f} ms/request  "
                    f"p50 {percentile(latencies, 0.5) * 1000:6.1f} ms  "
                    f"p99 {percentile(latencies, 0.99) * 1000:6.1f} ms  errors {errors}  "
                    f"(load generator {client_cpu * 1000 / requests:.3f} ms/request)",
                    flush=True,
                )
        finally:
            stop_server(server)
    finally:
        drop_postgres_database(args.pg_url, name)


if __name__ == "__main__":
    main()
