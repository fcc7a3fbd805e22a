"""Idempotency keys (API.md): the same user, key and body within 24 hours gets the first response again.

A key is claimed in its own short transaction before the request runs, so a duplicate arriving while the
first is running sees the claim and gets 409 at once. The response is stored in the same transaction as
the request's own changes: either both are committed or neither is.

A key keeps its first answer. A refused request (any 4xx, ``InvalidState`` and 402 included) stores its
error response in a second transaction after the rollback, and that refusal is what the key answers from
then on. Only a *transient* refusal (``MilepostError.transient``: a lock timeout, deadlock, serialisation
failure, busy or unreachable database) or an unexpected failure releases the key, so that the retry runs.

Releasing never deletes a stored response (``DELETE ... WHERE response_status IS NULL``): when the
connection breaks after COMMIT was sent, the request may have committed its response with its changes,
and the retry must replay it, not run again. If it did not commit, the claim is unanswered and is released.

A claim names the process that holds it (kit/liveness.py): a claim whose process is gone is free at once.
Claims without a holder fall back to a time limit (``ABANDONED_AFTER``).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import Table, bindparam, delete, select, update
from sqlalchemy.orm import Session

from milepost.kit import liveness
from milepost.kit.db import QUEUED, Database, insert_ignoring_conflicts
from milepost.kit.errors import Conflict, MilepostError, ValidationFailed
from milepost.kit.idempotency_models import IdempotencyKey

KEY_LIFETIME = timedelta(hours=24)
ABANDONED_AFTER = timedelta(minutes=5)
MAX_KEY_LENGTH = 255


@dataclass(frozen=True)
class StoredResponse:
    status: int
    body: Any


def form_canonical(fields: list[tuple[str, str | tuple[str, str]]]) -> bytes:
    """A multipart form as fingerprint input: each text field by value, each file by its name and the
    SHA-256 of its bytes (``(filename, sha256)``), in field order; never the random boundary."""
    return json.dumps({"multipart": fields}, separators=(",", ":")).encode()


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


@contextmanager
def running(db: Database, scope_key: str | None) -> Iterator[None]:
    """Around a keyed request, from before its claim until after its release: while it is here, this
    process's claim on the key is live."""
    if scope_key is None:
        yield
        return
    liveness.running.enter(db.url, scope_key)
    try:
        yield
    finally:
        liveness.running.leave(db.url, scope_key)


def claim(db: Database, scope_key: str, request_hash: str, now: datetime) -> StoredResponse | None:
    """Claim the key for this request. Returns a stored response to replay, or None: go ahead.

    Call it inside ``running(db, scope_key)``.
    """
    with db.autocommit() as session:
        if claim_new(db, session, scope_key, request_hash, now):
            return None
    return claim_taken(db, scope_key, request_hash, now)


def claim_new(
    db: Database, session: Session, scope_key: str, request_hash: str, now: datetime
) -> bool:
    """Claim a new key (the usual case) with one INSERT in ``session``, a ``db.autocommit()`` session
    (the claim is committed on its own, one round trip on PostgreSQL). False if the key has a row
    already: then ``claim_taken`` decides. Call it inside ``running(db, scope_key)``."""
    holder = liveness.mark_for(db.url, db.pooler).holder()
    fresh = _fresh(scope_key, request_hash, now, holder)
    return bool(insert_ignoring_conflicts(session, IdempotencyKey, [fresh]))


def _fresh(scope_key: str, request_hash: str, now: datetime, holder: str | None) -> dict[str, Any]:
    return {
        "scope_key": scope_key,
        "request_hash": request_hash,
        "created_at": now,
        "holder": holder,
    }


def claim_taken(
    db: Database, scope_key: str, request_hash: str, now: datetime
) -> StoredResponse | None:
    """A key that has a row: its stored response to replay, or None when this request may claim it (the
    row expired, or its request was released or abandoned meanwhile), else 409 or 422 (``claim``)."""
    mark = liveness.mark_for(db.url, db.pooler)
    holder = mark.holder()
    fresh = _fresh(scope_key, request_hash, now, holder)
    with db.unit_of_work() as session:
        row = session.scalar(
            select(IdempotencyKey)
            .where(IdempotencyKey.scope_key == scope_key)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
        if row is None:  # released meanwhile (its request failed): ours to claim again
            insert_ignoring_conflicts(session, IdempotencyKey, [fresh])
            return None
        expired = now - row.created_at >= KEY_LIFETIME
        abandoned = row.response_status is None and _abandoned(db, session, mark, row, now)
        if expired or abandoned:
            row.request_hash = request_hash
            row.response_status = None
            row.response_body = None
            row.created_at = now
            row.holder = holder
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


def _abandoned(
    db: Database, session: Session, mark: liveness.Mark, row: IdempotencyKey, now: datetime
) -> bool:
    """Whether an unanswered claim's process is gone (see kit/liveness.py)."""
    if row.holder == liveness.boot_id():
        # Ours: live only while its request is still running in this process.
        return liveness.running.others(db.url, row.scope_key) <= 0
    alive = None if row.holder is None else mark.is_alive(session, row.holder)
    if alive is None:  # no holder recorded, or its mark cannot be checked: the last resort
        return now - row.created_at >= ABANDONED_AFTER
    return not alive


# Built once (every keyed write runs it); the SET values are bound by column name. On the table rather
# than the mapped class: the ORM's bulk UPDATE around it was copied (annotated) and set up anew at every
# execution, and flushed the unit of work first, which the COMMIT does anyway.
_KEYS = cast(Table, IdempotencyKey.__table__)
_STORE = update(_KEYS).where(_KEYS.c.scope_key == bindparam("claimed")).execution_options(**QUEUED)


def store(session: Session, scope_key: str, status: int, body: Any) -> None:
    """Record the response in the request's own transaction (a write that waits for the COMMIT)."""
    session.execute(
        _STORE, {"claimed": scope_key, "response_status": status, "response_body": body}
    )


def keeps(error: MilepostError | None) -> bool:
    """Whether the key keeps this failure as its answer: every refusal except a transient one."""
    return error is not None and not error.transient and error.status < 500


def settle_failure(db: Database, scope_key: str, error: MilepostError | None) -> None:
    """After a failure: keep a refusal's response for replay; release the key after a transient refusal or
    a crash. Neither ever touches a claim that already holds a response (a commit whose answer was lost
    may have stored one: the retry must replay it)."""
    unanswered = (IdempotencyKey.scope_key == scope_key) & IdempotencyKey.response_status.is_(None)
    with db.unit_of_work() as session:
        if error is not None and keeps(error):
            session.execute(
                update(IdempotencyKey)
                .where(unanswered)
                .values(response_status=error.status, response_body=error.to_dict())
            )
        else:
            session.execute(delete(IdempotencyKey).where(unanswered))


def purge_expired(session: Session, now: datetime) -> int:
    """Delete the keys that are expired at ``now`` (the same test ``claim`` applies: at least
    ``KEY_LIFETIME`` old) and say how many; the scheduler runs it on every tick."""
    result = session.execute(
        delete(IdempotencyKey).where(IdempotencyKey.created_at <= now - KEY_LIFETIME)
    )
    return int(getattr(result, "rowcount", 0) or 0)
