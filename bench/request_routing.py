"""What a request costs Milepost's app before any work of its own: the CPU of a request answered 401.

Calls the ASGI app in this process (no HTTP server, no socket) with requests that carry no token, so
each is answered 401 by the same path: the middlewares, FastAPI's route matching, the dependencies, the
hand-off to the threadpool, the unit of work that finds no token (an in-memory SQLite database), the
error response. The operations differ only in where they are listed among the API's routes, so their
difference is what matching a request to its route costs: an operation listed late (a milestone's fund
or approval) is matched after every route listed before it.

    .venv/bin/python bench/request_routing.py                   # 3 runs of 2,000 requests each
    .venv/bin/python bench/request_routing.py --runs 5 --times 5000

Prints, per operation, the median over the runs of the CPU time (``time.process_time``) per request.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from typing import Any

from milepost.app import create_app
from milepost.kit.db import Database
from milepost.settings import Settings

# (method, path): the first listed early among the API's routes, the others late.
OPERATIONS = (
    ("GET", "/v1/me"),
    ("POST", "/v1/projects/prj_x/milestones"),
    ("POST", "/v1/milestones/mst_x/fund"),
    ("POST", "/v1/milestones/mst_x/submissions"),
    ("POST", "/v1/milestones/mst_x/approve"),
)
BODY = b"{}"


async def call(app: Any, method: str, path: str) -> int:
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": [
            (b"host", b"bench"),
            (b"content-type", b"application/json"),
            (b"content-length", str(len(BODY)).encode()),
        ],
        "client": ("127.0.0.1", 1),
        "server": ("127.0.0.1", 80),
        "state": {},
    }
    delivered = False

    async def receive() -> dict[str, Any]:
        nonlocal delivered
        if not delivered:
            delivered = True
            return {"type": "http.request", "body": BODY, "more_body": False}
        await asyncio.Event().wait()  # the client never disconnects
        raise AssertionError("unreachable")

    statuses: list[int] = []

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            statuses.append(message["status"])

    await app(scope, receive, send)
    return statuses[0]


async def measure(app: Any, runs: int, times: int) -> None:
    for method, path in OPERATIONS:
        for _ in range(200):  # warm: caches, the threadpool's threads, the connection
            status = await call(app, method, path)
        if status != 401:
            raise SystemExit(f"{method} {path} answered {status}, not 401: not the path measured")
        per_run = []
        for _ in range(runs):
            started = time.process_time()
            for _ in range(times):
                await call(app, method, path)
            per_run.append((time.process_time() - started) / times * 1e6)
        runs_text = ", ".join(f"{value:.0f}" for value in per_run)
        print(
            f"{method:4} {path:36} {statistics.median(per_run):6.0f} µs CPU per request "
            f"(runs: {runs_text})"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--times", type=int, default=2000, help="requests per operation and run")
    args = parser.parse_args()
    app = create_app(Settings(), database=Database("sqlite://"))
    asyncio.run(measure(app, args.runs, args.times))


if __name__ == "__main__":
    main()
