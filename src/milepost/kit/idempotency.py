"""Idempotency keys (API.md): the same user, key and body within 24 hours gets the first response again.

A key is claimed in its own short transaction before the request runs, so a duplicate arriving while the
first is running sees the claim and gets 409 at once. The response is stored in the same transaction as
the request's own changes: either both are committed or neither is. A refused request (4xx) stores its
error response in a second transaction after the rollback; a conflict or an unexpected failure releases
the key so that the client can retry. A claim left by a crashed process expires after a few minutes
(no request runs that long: locks time out well before).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from milepost.kit.db import Database, insert_ignoring_conflicts
from milepost.kit.errors import Conflict, MilepostError, ValidationFailed
from milepost.kit.idempotency_models import IdempotencyKey

KEY_LIFETIME = timedelta(hours=24)
ABANDONED_AFTER = timedelta(minutes=5)
MAX_KEY_LENGTH = 255


@dataclass(frozen=True)
class StoredResponse:
    status: int
    body: Any


def fingerprint(method: str, path: str, body: bytes) -> str:
    """What makes two requests "the same": method, path and body (JSON compared by value)."""
    try:
        canonical = json.dumps(json.loads(body), sort_keys=True, separators=(",", ":")).encode()
    except ValueError:
        canonical = body
    return hashlib.sha256(method.encode() + b" " + path.encode() + b"\n" + canonical).hexdigest()


def scope(user_id: str | None, key: str) -> str:
    if not key or len(key) > MAX_KEY_LENGTH:
        raise ValidationFailed(
            f"Idempotency-Key must be 1 to {MAX_KEY_LENGTH} characters.", param="Idempotency-Key"
        )
    return f"{user_id or 'anonymous'}:{key}"


def claim(db: Database, scope_key: str, request_hash: str, now: datetime) -> StoredResponse | None:
    """Claim the key for this request. Returns a stored response to replay, or None: go ahead."""
    with db.unit_of_work() as session:
        inserted = insert_ignoring_conflicts(
            session,
            IdempotencyKey,
            [{"scope_key": scope_key, "request_hash": request_hash, "created_at": now}],
        )
        if inserted:
            return None
        row = session.scalar(
            select(IdempotencyKey)
            .where(IdempotencyKey.scope_key == scope_key)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
        assert row is not None
        expired = now - row.created_at >= KEY_LIFETIME
        abandoned = row.response_status is None and now - row.created_at >= ABANDONED_AFTER
        if expired or abandoned:
            row.request_hash = request_hash
            row.response_status = None
            row.response_body = None
            row.created_at = now
            return None
        if row.request_hash != request_hash:
            raise ValidationFailed(
                "This Idempotency-Key was used with a different request.",
                code="idempotency_key_reused",
                param="Idempotency-Key",
            )
        if row.response_status is None:
            raise Conflict(
                "A request with this Idempotency-Key is still running.",
                code="idempotency_key_in_flight",
            )
        return StoredResponse(row.response_status, row.response_body)


def store(session: Session, scope_key: str, status: int, body: Any) -> None:
    """Record the response in the request's own transaction."""
    row = session.get(IdempotencyKey, scope_key)
    if row is not None:
        row.response_status = status
        row.response_body = body


def settle_failure(db: Database, scope_key: str, error: MilepostError | None) -> None:
    """After a rollback: keep a refusal's response for replay; release the key on conflicts and crashes."""
    with db.unit_of_work() as session:
        if error is None or isinstance(error, Conflict) or error.status >= 500:
            session.execute(delete(IdempotencyKey).where(IdempotencyKey.scope_key == scope_key))
        else:
            store(session, scope_key, error.status, error.to_dict())


def purge_expired(session: Session, now: datetime) -> int:
    result = session.execute(
        delete(IdempotencyKey).where(IdempotencyKey.created_at < now - KEY_LIFETIME)
    )
    return int(getattr(result, "rowcount", 0) or 0)
