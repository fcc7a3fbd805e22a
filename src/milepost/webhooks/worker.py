"""The in-process sender: a background thread that runs ``deliver_due`` every second, and at once when a
unit of work that queued deliveries commits (``wake_senders``)."""

from __future__ import annotations

import logging
import threading

import httpx

from milepost.kit.db import Database, log_failure
from milepost.webhooks.delivery import BATCH_SIZE, TIMEOUT_SECONDS, deliver_due

log = logging.getLogger("milepost.webhooks")

_senders: set[WebhookSender] = set()
_senders_lock = threading.Lock()


def wake_senders() -> None:
    with _senders_lock:
        senders = list(_senders)
    for sender in senders:
        sender.wake()


class WebhookSender:
    def __init__(
        self, db: Database, *, interval: float = 1.0, allow_private_networks: bool = False
    ) -> None:
        self.db = db
        self.allow_private_networks = allow_private_networks
        self.interval = interval
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="webhook-sender", daemon=True)

    def start(self) -> None:
        with _senders_lock:
            _senders.add(self)
        self._thread.start()

    def stop(self, timeout: float = TIMEOUT_SECONDS + 5) -> None:
        with _senders_lock:
            _senders.discard(self)
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout=timeout)

    def wake(self) -> None:
        self._wake.set()

    def _run(self) -> None:
        with httpx.Client(timeout=TIMEOUT_SECONDS, follow_redirects=False) as client:
            while not self._stop.is_set():
                self._wake.clear()
                try:
                    # A full batch means there may be more due: go again without waiting.
                    while (
                        len(
                            deliver_due(
                                self.db,
                                client=client,
                                allow_private_networks=self.allow_private_networks,
                            )
                        )
                        == BATCH_SIZE
                        and not self._stop.is_set()
                    ):
                        pass
                except Exception as error:
                    log_failure(
                        self.db, log, "webhook delivery failed; trying again shortly", error
                    )
                self._wake.wait(self.interval)
