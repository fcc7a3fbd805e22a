"""Prometheus metrics counted in each process: HTTP requests and money operations.

One process (``serve``, the tests): the metrics live in this process's default registry. Several
(``serve --workers N``): prometheus_client's multiprocess mode, where every process writes its values to
files in ``PROMETHEUS_MULTIPROC_DIR`` and a scrape, whichever process answers it, sums them all. The mode is
chosen when prometheus_client is first imported, so ``serve`` prepares the directory (``prepare_for_workers``)
before the server processes start. What is read from the database at scrape time (outbox backlog, scheduler
heartbeat, last ledger verification) is not here but in ``milepost.health``.
"""

from __future__ import annotations

import atexit
import os
import re
import shutil
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.registry import REGISTRY, Collector
from sqlalchemy import event
from sqlalchemy.orm import Session

MULTIPROCESS_ENV = "PROMETHEUS_MULTIPROC_DIR"
# Whether this process writes its values to the shared directory: decided by prometheus_client when it
# was imported (just above), from the same variable.
MULTIPROCESS = bool(os.environ.get(MULTIPROCESS_ENV))

HTTP_REQUESTS = Counter(
    "milepost_http_requests_total",
    "HTTP requests answered, by method, route template and status.",
    ["method", "route", "status"],
)
HTTP_DURATION = Histogram(
    "milepost_http_request_duration_seconds",
    "Time to answer an HTTP request, by method and route template.",
    ["method", "route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
)
MONEY_OPERATIONS = Counter(
    "milepost_money_operations_total",
    "Journal entries committed, by kind (deposit, fund, release, refund, payout, dispute_split, ...).",
    ["kind"],
)
MONEY_MOVED = Counter(
    "milepost_money_moved_minor_units_total",
    "Money moved by committed journal entries (the sum of their credits), in minor units.",
    ["kind", "currency"],
)
PLATFORM_FEES = Counter(
    "milepost_platform_fees_minor_units_total",
    "Platform fees taken by committed journal entries (releases, dispute splits, bonuses), in minor units.",
    ["currency"],
)

_PENDING = "milepost_metrics_pending_entries"


def count_when_committed(session: Session, kind: str, legs: Iterable[tuple[str, str, int]]) -> None:
    """Count a journal entry once its unit of work commits (never if it rolls back): ``legs`` are
    (account kind, currency, signed amount)."""
    pending: list[tuple[str, list[tuple[str, str, int]]]] = session.info.setdefault(_PENDING, [])
    pending.append((kind, list(legs)))


@event.listens_for(Session, "after_commit")
def _count_committed(session: Session) -> None:
    pending: list[tuple[str, Sequence[tuple[str, str, int]]]] | None = session.info.pop(
        _PENDING, None
    )
    for kind, legs in pending or ():
        MONEY_OPERATIONS.labels(kind=kind).inc()
        moved: dict[str, int] = {}
        for account_kind, currency, amount in legs:
            if amount > 0:
                moved[currency] = moved.get(currency, 0) + amount
                if account_kind == "platform_fee":
                    PLATFORM_FEES.labels(currency=currency).inc(amount)
        for currency, total in moved.items():
            MONEY_MOVED.labels(kind=kind, currency=currency).inc(total)


@event.listens_for(Session, "after_soft_rollback")
def _forget_uncommitted(session: Session, _previous_transaction: object) -> None:
    session.info.pop(_PENDING, None)


class _ThisProcess(Collector):
    """The default registry's metrics (this process's counters, and its process and GC figures)."""

    def collect(self) -> Iterable[Any]:
        return REGISTRY.collect()


def scrape_registry() -> CollectorRegistry:
    """A registry for one scrape: every server process's counters (multiprocess mode) or this one's."""
    registry = CollectorRegistry(auto_describe=False)
    if MULTIPROCESS:
        from prometheus_client import multiprocess

        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    else:
        registry.register(_ThisProcess())
    return registry


# The files prometheus_client writes in the multiprocess directory (counter_<pid>.db, ...): only these are
# removed when the directory is cleaned, whatever else an operator keeps there.
_VALUE_FILE = re.compile(r"^(counter|histogram|summary|gauge_[a-z]+)_\d+\.db$")


def prepare_for_workers(workers: int) -> Path | None:
    """Before ``serve`` starts its server processes: with PROMETHEUS_MULTIPROC_DIR set, empty it of the
    values of processes that ran before (the counters start again from zero, as for any restart); else,
    with more than one process, make a private directory for this run (removed when serve exits) and set
    the variable, so that each process's /metrics sums them all. One process and no variable: nothing to
    do. Returns the directory in use, if any."""
    given = os.environ.get(MULTIPROCESS_ENV)
    if given:
        directory = Path(given)
        directory.mkdir(parents=True, exist_ok=True)
        for path in directory.iterdir():
            if _VALUE_FILE.match(path.name):
                path.unlink(missing_ok=True)
        return directory
    if workers <= 1:
        return None
    directory = Path(tempfile.mkdtemp(prefix="milepost-metrics-"))
    atexit.register(shutil.rmtree, directory, ignore_errors=True)
    os.environ[MULTIPROCESS_ENV] = str(directory)
    return directory
