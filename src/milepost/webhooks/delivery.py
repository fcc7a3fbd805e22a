"""Sending queued webhook deliveries: claim, POST (signed), log the attempt, retry with back-off.

A delivery is claimed in one short transaction (PostgreSQL: ``FOR UPDATE SKIP LOCKED``, so several
senders never take the same row; SQLite serialises writers anyway) by pushing its ``next_attempt_at``
a lease into the future. The POST happens outside any transaction, so no database lock is held while a
receiver is slow. The outcome is then recorded in a second transaction. A sender that dies mid-way
leaves the delivery to be retried when the lease ends.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import urlsplit

import httpx
from sqlalchemy import select
from standardwebhooks.webhooks import Webhook

from milepost.kit.db import Database, is_sqlite
from milepost.kit.ids import new_id
from milepost.kit.time import as_utc, utcnow
from milepost.webhooks.addresses import resolves_to_private
from milepost.webhooks.models import (
    DeliveryStatus,
    WebhookAttempt,
    WebhookDelivery,
    WebhookEndpoint,
)

log = logging.getLogger("milepost.webhooks")

# Waits before each retry. With the first attempt, 8 attempts spread over about 31 hours (a receiver that is
# down for a whole day still gets the event); then ``failed``.
RETRY_DELAYS: tuple[timedelta, ...] = (
    timedelta(minutes=1),
    timedelta(minutes=5),
    timedelta(minutes=30),
    timedelta(hours=2),
    timedelta(hours=5),
    timedelta(hours=10),
    timedelta(hours=14),
)
MAX_ATTEMPTS = len(RETRY_DELAYS) + 1
# A claimed delivery whose sender never reports back is tried again after this.
CLAIM_LEASE = timedelta(minutes=2)
TIMEOUT_SECONDS = 10.0
BATCH_SIZE = 20
USER_AGENT = "Milepost-Webhooks/1"


@dataclass(frozen=True)
class Claimed:
    delivery_id: str
    event_id: str
    url: str
    secret: str
    body: str
    number: int  # which attempt this is, from 1


@dataclass(frozen=True)
class Outcome:
    delivery_id: str
    number: int
    status_code: int | None
    error: str | None
    duration_ms: int
    status: DeliveryStatus  # the delivery's status after this attempt

    @property
    def ok(self) -> bool:
        return self.status is DeliveryStatus.DELIVERED


def sign(secret: str, message_id: str, timestamp: datetime, body: str) -> str:
    """The ``webhook-signature`` header value (Standard Webhooks: ``v1,`` + base64 HMAC-SHA256 of
    ``id.timestamp.body`` keyed with the secret's bytes)."""
    return Webhook(secret).sign(message_id, timestamp, body)


def is_deliverable_url(url: str) -> bool:
    try:
        parts = urlsplit(url)
        return parts.scheme in ("http", "https") and bool(parts.hostname)
    except ValueError:
        return False


def deliver_due(
    db: Database,
    now: datetime | None = None,
    *,
    client: httpx.Client | None = None,
    limit: int = BATCH_SIZE,
    allow_private_networks: bool = False,
) -> list[Outcome]:
    """Send up to ``limit`` deliveries due at ``now`` (default: the current time), one after another.

    Unless ``allow_private_networks``, a URL whose host is or resolves to a non-public address is not
    called: the attempt is logged as failed with the reason (see ``addresses``).

    With an explicit ``now`` (tests, ``tick``), attempts are logged and retries scheduled from it; the
    signature's timestamp is always the real time of sending, as receivers check it against their clock.
    """
    clock: Callable[[], datetime] = utcnow if now is None else (lambda: as_utc(now))
    claimed = claim_due(db, clock(), limit=limit)
    if not claimed:
        return []
    own_client = client is None
    http = client or httpx.Client(timeout=TIMEOUT_SECONDS, follow_redirects=False)
    try:
        outcomes = []
        for item in claimed:
            attempted_at = clock()
            status_code, error, duration_ms = _post(http, item, allow_private_networks)
            outcomes.append(_record(db, item, attempted_at, status_code, error, duration_ms))
        return outcomes
    finally:
        if own_client:
            http.close()


def claim_due(db: Database, now: datetime, *, limit: int = BATCH_SIZE) -> list[Claimed]:
    # A cheap look first: the sender polls every second, and on SQLite a write transaction takes the
    # database's write lock.
    with db.read_only() as session:
        anything_due = session.scalar(
            select(WebhookDelivery.id)
            .where(
                WebhookDelivery.status == DeliveryStatus.PENDING,
                WebhookDelivery.next_attempt_at <= now,
            )
            .limit(1)
        )
    if anything_due is None:
        return []
    with db.unit_of_work() as session:
        query = (
            select(WebhookDelivery, WebhookEndpoint)
            .join(WebhookEndpoint, WebhookEndpoint.id == WebhookDelivery.endpoint_id)
            .where(
                WebhookDelivery.status == DeliveryStatus.PENDING,
                WebhookDelivery.next_attempt_at <= now,
                WebhookEndpoint.deleted_at.is_(None),
            )
            .order_by(
                WebhookDelivery.next_attempt_at,
                WebhookDelivery.created_at,
                WebhookDelivery.event_seq,
                WebhookDelivery.id,
            )
            .limit(limit)
        )
        if not is_sqlite(session):
            query = query.with_for_update(of=WebhookDelivery, skip_locked=True)
        claimed = []
        for delivery, endpoint in session.execute(query).all():
            delivery.next_attempt_at = now + CLAIM_LEASE
            claimed.append(
                Claimed(
                    delivery_id=delivery.id,
                    event_id=delivery.event_id,
                    url=endpoint.url,
                    secret=endpoint.secret,
                    body=json.dumps(delivery.payload, separators=(",", ":")),
                    number=delivery.attempts + 1,
                )
            )
        return claimed


def _post(
    http: httpx.Client, item: Claimed, allow_private_networks: bool
) -> tuple[int | None, str | None, int]:
    if not is_deliverable_url(item.url):
        return None, "not an http(s) URL: never sent", 0
    if not allow_private_networks:
        refusal = resolves_to_private(urlsplit(item.url).hostname or "")
        if refusal is not None:
            return None, f"refused: {refusal}", 0
    sent_at = utcnow()
    headers = {
        "content-type": "application/json",
        "user-agent": USER_AGENT,
        "webhook-id": item.event_id,
        "webhook-timestamp": str(int(sent_at.timestamp())),
        "webhook-signature": sign(item.secret, item.event_id, sent_at, item.body),
    }
    started = time.perf_counter()
    try:
        response = http.post(
            item.url, content=item.body.encode(), headers=headers, timeout=TIMEOUT_SECONDS
        )
    except httpx.HTTPError as error:
        elapsed = round((time.perf_counter() - started) * 1000)
        return None, f"{type(error).__name__}: {error}"[:500], elapsed
    elapsed = round((time.perf_counter() - started) * 1000)
    return response.status_code, None, elapsed


def _record(
    db: Database,
    item: Claimed,
    attempted_at: datetime,
    status_code: int | None,
    error: str | None,
    duration_ms: int,
) -> Outcome:
    with db.unit_of_work() as session:
        query = select(WebhookDelivery).where(WebhookDelivery.id == item.delivery_id)
        delivery = session.scalar(query.with_for_update())
        assert delivery is not None  # deliveries are never deleted
        session.add(
            WebhookAttempt(
                id=new_id("wha"),
                delivery_id=delivery.id,
                number=item.number,
                attempted_at=attempted_at,
                status_code=status_code,
                error=error,
                duration_ms=duration_ms,
            )
        )
        delivery.attempts = max(delivery.attempts, item.number)
        # Cancelled meanwhile (the endpoint was deleted): log the attempt, change nothing else.
        if delivery.status is DeliveryStatus.PENDING:
            if status_code is not None and 200 <= status_code < 300:
                delivery.status = DeliveryStatus.DELIVERED
                delivery.delivered_at = attempted_at
                delivery.next_attempt_at = None
            elif delivery.attempts >= MAX_ATTEMPTS or not is_deliverable_url(item.url):
                delivery.status = DeliveryStatus.FAILED
                delivery.next_attempt_at = None
            else:
                delivery.next_attempt_at = attempted_at + RETRY_DELAYS[delivery.attempts - 1]
        if delivery.status is not DeliveryStatus.DELIVERED:
            log.info(
                "webhook attempt failed",
                extra={
                    "fields": {
                        "delivery_id": delivery.id,
                        "attempt": item.number,
                        "status_code": status_code,
                        "error": error,
                    }
                },
            )
        return Outcome(
            delivery_id=delivery.id,
            number=item.number,
            status_code=status_code,
            error=error,
            duration_ms=duration_ms,
            status=delivery.status,
        )
