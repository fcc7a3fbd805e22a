"""Sending the e-mail outbox through SMTP: claim one due e-mail, send it, record the outcome.

Exactly once, as far as SMTP allows:

* **Claim before sending.** An e-mail is claimed in its own short transaction, committed before anything is
  sent: ``attempts`` goes up by one and ``next_attempt_at`` is pushed a lease (``CLAIM_LEASE``) into the
  future. Only pending rows due at "now" can be claimed, so while the lease runs no other sender takes it:
  on PostgreSQL the claim locks the row (``FOR UPDATE SKIP LOCKED``: a concurrent claimer skips it rather
  than waits) and the committed lease hides it afterwards; on SQLite every write transaction holds the
  database's write lock (``BEGIN IMMEDIATE``), so claims are serialised.
* **The lease outlasts any send.** One claim covers one e-mail, taken just before it is sent, and a send is
  bounded by the SMTP timeout (a connect plus one message: well under a minute with the default 20 s),
  while the lease is ten minutes. A live sender therefore always records its outcome before anyone else
  may take the e-mail again. The lease runs on the real clock even when ``now`` is given (``milepost tick
  --now`` in the past cannot make a claim look expired to the real-time sender in the server).
* **Sent is recorded at once.** Right after the server accepts the message (its 250 to DATA), the e-mail is
  marked ``sent`` in one transaction (retried briefly if the database hiccups). Sent e-mails are never
  claimed again, so running the sender twice, or several senders at once, sends nothing twice.
* **Failures keep the e-mail.** If the server cannot be reached or will not take mail from us (refused,
  timed out, TLS or login failed, our From address refused), the e-mail is not at fault: it stays pending
  and is retried with back-off (``RETRY_DELAYS``, then every ``RETRY_DELAYS[-1]``) for as long as it
  takes. A temporary refusal of the message itself (4xx) is retried the same way for up to ``MAX_AGE``; a
  permanent refusal (5xx), or a 4xx past ``MAX_AGE``, marks it ``failed``, with the server's answer in
  ``last_error``. Nothing is ever deleted.
* **The one gap.** A sender that dies (or loses the database) after the SMTP server accepted a message but
  before ``sent`` is committed leaves the claim to expire, and the e-mail is sent again after the lease.
  No protocol closes this gap (the SMTP server and our database cannot commit together); every attempt
  carries the same ``Message-ID`` (``<eml_...@host>``), so receiving systems can drop the copy.
"""

from __future__ import annotations

import logging
import smtplib
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.message import EmailMessage
from email.utils import format_datetime, parseaddr

from sqlalchemy import select

from milepost.kit.db import Database, is_sqlite
from milepost.kit.time import as_utc, utcnow
from milepost.notifications.models import EmailStatus, OutgoingEmail
from milepost.settings import Settings

log = logging.getLogger("milepost.notifications")

# Waits before each retry; after the last, every RETRY_DELAYS[-1].
RETRY_DELAYS: tuple[timedelta, ...] = (
    timedelta(minutes=1),
    timedelta(minutes=5),
    timedelta(minutes=15),
    timedelta(hours=1),
)
# A message the server keeps refusing temporarily is given up after this long (as mail servers do).
MAX_AGE = timedelta(days=3)
# A claimed e-mail whose sender never reports back is tried again after this.
CLAIM_LEASE = timedelta(minutes=10)
# At most this many e-mails per call (one after another); the caller calls again for more.
BATCH_SIZE = 20


@dataclass(frozen=True)
class Claimed:
    email_id: str
    to_address: str
    subject: str
    text_body: str
    html_body: str | None
    created_at: datetime
    attempt: int


class SendFailed(Exception):
    """One attempt failed. ``server_down``: the server could not be reached or refused the session, so the
    e-mail is not at fault; ``permanent``: the server refused this message for good (5xx)."""

    def __init__(self, message: str, *, server_down: bool = False, permanent: bool = False) -> None:
        super().__init__(message)
        self.server_down = server_down
        self.permanent = permanent


def deliver_due_emails(db: Database, settings: Settings, now: datetime | None = None) -> int:
    """Send the e-mails due at ``now`` (default: the current time), up to ``BATCH_SIZE``, one at a time;
    returns how many were sent. Does nothing while SMTP is not configured (``settings.smtp_host``).

    With an explicit ``now`` (tests, ``tick``), due-ness and retries are computed from it. Safe to run in
    several processes at once, and to run again: see the module's docstring.
    """
    if not settings.smtp_host:
        return 0
    clock: Callable[[], datetime] = utcnow if now is None else (lambda: as_utc(now))
    if not _anything_due(db, clock()):
        return 0
    sent = 0
    connection: smtplib.SMTP | None = None
    try:
        for _ in range(BATCH_SIZE):
            item = claim_next(db, clock())
            if item is None:
                break
            try:
                if connection is None:
                    connection = _connect(settings)
                _send(connection, settings, item)
            except SendFailed as failure:
                _close(connection, polite=False)
                connection = None
                _record_failure(db, item, clock(), failure)
                if failure.server_down:
                    break  # the others wait for their turn: no point knocking again right now
                continue
            _record_sent(db, item, clock())
            sent += 1
    finally:
        _close(connection)
    return sent


def _anything_due(db: Database, now: datetime) -> bool:
    # A cheap look first: the sender polls, and on SQLite a write transaction takes the write lock.
    with db.read_only() as session:
        return (
            session.scalar(
                select(OutgoingEmail.id)
                .where(
                    OutgoingEmail.status == EmailStatus.PENDING,
                    OutgoingEmail.next_attempt_at <= now,
                )
                .limit(1)
            )
            is not None
        )


def claim_next(db: Database, now: datetime) -> Claimed | None:
    """Claim the e-mail due longest, if any: committed before it is sent (see the module's docstring)."""
    with db.unit_of_work() as session:
        query = (
            select(OutgoingEmail)
            .where(
                OutgoingEmail.status == EmailStatus.PENDING,
                OutgoingEmail.next_attempt_at <= now,
            )
            .order_by(OutgoingEmail.next_attempt_at, OutgoingEmail.id)
            .limit(1)
        )
        if not is_sqlite(session):
            query = query.with_for_update(skip_locked=True)
        email = session.scalar(query)
        if email is None:
            return None
        email.attempts += 1
        email.next_attempt_at = max(now, utcnow()) + CLAIM_LEASE
        return Claimed(
            email_id=email.id,
            to_address=email.to_address,
            subject=email.subject,
            text_body=email.text_body,
            html_body=email.html_body,
            created_at=email.created_at,
            attempt=email.attempts,
        )


# SMTP ------------------------------------------------------------------------------------------------------


def _connect(settings: Settings) -> smtplib.SMTP:
    host = settings.smtp_host or ""
    timeout = settings.smtp_timeout_seconds
    connection: smtplib.SMTP | None = None
    try:
        if settings.smtp_tls == "ssl":
            connection = smtplib.SMTP_SSL(
                host, settings.smtp_port, timeout=timeout, context=_tls_context(settings)
            )
        else:
            connection = smtplib.SMTP(host, settings.smtp_port, timeout=timeout)
            if settings.smtp_tls == "starttls":
                connection.starttls(context=_tls_context(settings))
        if settings.smtp_username:
            password = settings.smtp_password.get_secret_value() if settings.smtp_password else ""
            connection.login(settings.smtp_username, password)
        return connection
    except (OSError, smtplib.SMTPException) as error:
        _close(connection, polite=False)
        raise SendFailed(
            f"SMTP server {host}:{settings.smtp_port}: {_describe(error)}", server_down=True
        ) from error


def _tls_context(settings: Settings) -> ssl.SSLContext:
    context = ssl.create_default_context()
    if settings.smtp_ca_file:
        context.load_verify_locations(cafile=settings.smtp_ca_file)
    return context


def build_message(settings: Settings, item: Claimed) -> EmailMessage:
    message = EmailMessage()
    _, sender = parseaddr(settings.mail_from)
    domain = sender.rpartition("@")[2] or "milepost.localhost"
    message["From"] = settings.mail_from
    message["To"] = item.to_address
    message["Subject"] = item.subject
    message["Date"] = format_datetime(utcnow())
    # The same on every attempt: a copy sent again after a crash can be recognised.
    message["Message-ID"] = f"<{item.email_id}@{domain}>"
    message.set_content(item.text_body)
    if item.html_body:
        message.add_alternative(item.html_body, subtype="html")
    return message


def _send(connection: smtplib.SMTP, settings: Settings, item: Claimed) -> None:
    try:
        message = build_message(settings, item)
    except (
        ValueError,
        TypeError,
    ) as error:  # e.g. a header that cannot be encoded: it never will be
        raise SendFailed(f"cannot build the message: {_describe(error)}", permanent=True) from error
    _, sender = parseaddr(settings.mail_from)
    try:
        refused = connection.send_message(message, from_addr=sender, to_addrs=[item.to_address])
    except smtplib.SMTPRecipientsRefused as error:
        codes = [code for code, _ in error.recipients.values()]
        raise SendFailed(
            f"recipient refused: {error.recipients}", permanent=all(code >= 500 for code in codes)
        ) from error
    except smtplib.SMTPSenderRefused as error:
        # Our From address was refused: a configuration matter, not this e-mail's fault. It waits.
        raise SendFailed(f"sender refused: {_describe(error)}", server_down=True) from error
    except smtplib.SMTPResponseException as error:
        raise SendFailed(_describe(error), permanent=error.smtp_code >= 500) from error
    except (OSError, smtplib.SMTPException) as error:
        # Disconnected or timed out mid-way: the server may or may not have taken it; try again later.
        raise SendFailed(_describe(error), server_down=True) from error
    if (
        refused
    ):  # cannot happen with one recipient (all refused raises), but never claim success on it
        raise SendFailed(f"recipient refused: {refused}")


def _describe(error: BaseException) -> str:
    if isinstance(error, smtplib.SMTPResponseException):
        raw = error.smtp_error
        detail = raw.decode(errors="replace") if isinstance(raw, bytes) else str(raw or "")
        return f"{error.smtp_code} {detail}".strip()[:500]
    return f"{type(error).__name__}: {error}"[:500]


def _close(connection: smtplib.SMTP | None, *, polite: bool = True) -> None:
    """End the session: with QUIT when it is healthy; after a failure just drop the socket, as the server
    may be waiting for something else (a TLS handshake) and QUIT would wait for the timeout."""
    if connection is None:
        return
    if not polite:
        connection.close()
        return
    try:
        connection.quit()
    except (OSError, smtplib.SMTPException):
        connection.close()


# Outcomes --------------------------------------------------------------------------------------------------


def _record_sent(db: Database, item: Claimed, at: datetime) -> None:
    # The server has the message: record it now, retrying briefly, since until this commits a crash means
    # sending it again after the lease.
    for attempt in range(3):
        try:
            with db.unit_of_work() as session:
                email = session.scalar(
                    select(OutgoingEmail).where(OutgoingEmail.id == item.email_id).with_for_update()
                )
                assert email is not None  # e-mails are never deleted
                email.status = EmailStatus.SENT
                email.sent_at = at
                email.next_attempt_at = None
                email.last_error = None
            return
        except Exception:
            if attempt == 2:
                raise
            log.warning("could not record a sent e-mail; retrying", exc_info=True)
            time.sleep(0.5)


def _record_failure(db: Database, item: Claimed, at: datetime, failure: SendFailed) -> None:
    with db.unit_of_work() as session:
        email = session.scalar(
            select(OutgoingEmail).where(OutgoingEmail.id == item.email_id).with_for_update()
        )
        assert email is not None
        email.last_error = str(failure)[:2000]
        if email.status is not EmailStatus.PENDING:
            return
        gave_up = failure.permanent or (not failure.server_down and at - item.created_at > MAX_AGE)
        if gave_up:
            email.status = EmailStatus.FAILED
            email.next_attempt_at = None
        else:
            delay = RETRY_DELAYS[min(item.attempt, len(RETRY_DELAYS)) - 1]
            email.next_attempt_at = at + delay
    log.info(
        "e-mail attempt failed",
        extra={
            "fields": {
                "email_id": item.email_id,
                "attempt": item.attempt,
                "error": str(failure),
                "gave_up": gave_up,
            }
        },
    )
