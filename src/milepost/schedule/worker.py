"""Running the due work over and over: a loop for ``milepost worker``, and a thread inside ``serve``.

Both call ``run_due`` with the real time every ``interval`` seconds. Any number of them may run against one
PostgreSQL database: the claims in ``run_due`` keep them from doing anything twice.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from milepost.kit.db import Database, log_failure
from milepost.kit.time import utcnow
from milepost.schedule.heartbeat import Heartbeat
from milepost.schedule.service import TickReport, run_due
from milepost.settings import Settings

log = logging.getLogger("milepost.schedule")


def run_once_logged(db: Database, settings: Settings, *, deliver: bool) -> TickReport | None:
    """One run at the current time; a failure of the whole run is logged, never raised."""
    try:
        report = run_due(db, settings, utcnow(), deliver_emails=deliver, deliver_webhooks=deliver)
    except Exception as error:
        log_failure(db, log, "time-driven work failed; trying again shortly", error)
        return None
    if report.done or report.failed:
        log.info(
            "time-driven work done",
            extra={"fields": {"counts": report.counts(), "failed": len(report.failed)}},
        )
    return report


def run_until_stopped(
    db: Database,
    settings: Settings,
    stop: threading.Event,
    *,
    interval: float,
    deliver: bool = True,
    on_report: Callable[[TickReport], None] | None = None,
    role: str = "worker",
) -> None:
    """Run the due work every ``interval`` seconds until ``stop`` is set; with ``deliver``, send due
    e-mails and webhooks too (the server has its own senders for those). After each completed run the
    heartbeat says this scheduler is alive (schedule/heartbeat.py); ``role`` says which process it is."""
    heartbeat = Heartbeat(db, role=role, interval=interval)
    while not stop.is_set():
        report = run_once_logged(db, settings, deliver=deliver)
        if report is not None:  # a run that failed as a whole is no sign of life
            heartbeat.beat()
            if on_report is not None:
                on_report(report)
        stop.wait(interval)


class Scheduler:
    """The background thread of ``serve``. E-mails and webhooks are left to the server's own senders."""

    def __init__(self, db: Database, settings: Settings) -> None:
        self.db = db
        self.settings = settings
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="scheduler", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        self._stop.set()
        self._thread.join(timeout=timeout)

    def _run(self) -> None:
        run_until_stopped(
            self.db,
            self.settings,
            self._stop,
            interval=self.settings.schedule_interval_seconds,
            deliver=False,
            role="serve",
        )
