"""The in-process e-mail sender: a background thread that runs ``deliver_due_emails`` every few seconds,
and at once when a unit of work that queued e-mail commits (``wake_mail_senders``)."""

from __future__ import annotations

import logging
import threading

from milepost.kit.db import Database, log_failure
from milepost.notifications.mail import BATCH_SIZE, deliver_due_emails
from milepost.settings import Settings

log = logging.getLogger("milepost.notifications")

_senders: set[MailSender] = set()
_senders_lock = threading.Lock()


def wake_mail_senders() -> None:
    with _senders_lock:
        senders = list(_senders)
    for sender in senders:
        sender.wake()


class MailSender:
    def __init__(self, db: Database, settings: Settings, *, interval: float = 5.0) -> None:
        self.db = db
        self.settings = settings
        self.interval = interval
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="mail-sender", daemon=True)

    def start(self) -> None:
        with _senders_lock:
            _senders.add(self)
        self._thread.start()

    def stop(self, timeout: float | None = None) -> None:
        with _senders_lock:
            _senders.discard(self)
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout=timeout or 2 * self.settings.smtp_timeout_seconds + 5)

    def wake(self) -> None:
        self._wake.set()

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.clear()
            try:
                # A full batch means there may be more due: go again without waiting.
                while (
                    deliver_due_emails(self.db, self.settings) == BATCH_SIZE
                    and not self._stop.is_set()
                ):
                    pass
            except Exception as error:
                log_failure(self.db, log, "e-mail delivery failed; trying again shortly", error)
            self._wake.wait(self.interval)
