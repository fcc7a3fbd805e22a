"""E-mail through a real SMTP server on loopback: delivered after commit, retried through outages, and
never sent twice."""

from __future__ import annotations

import threading
from datetime import timedelta
from pathlib import Path

import pytest
from pydantic import SecretStr
from sqlalchemy import func, select

from milepost.kit.db import Database
from milepost.kit.time import utcnow
from milepost.milestones import service as milestones
from milepost.notifications.mail import CLAIM_LEASE, RETRY_DELAYS, claim_next, deliver_due_emails
from milepost.notifications.models import EmailStatus, OutgoingEmail
from milepost.settings import Settings
from tests.notifications.conftest import Mailbox
from tests.world import World

EVIDENCE = [{"type": "link", "url": "https://example.com/pr/1"}]


def outbox(db: Database) -> list[OutgoingEmail]:
    with db.read_only() as session:
        return list(session.scalars(select(OutgoingEmail).order_by(OutgoingEmail.id)))


def pending(db: Database) -> int:
    with db.read_only() as session:
        return int(
            session.scalar(
                select(func.count())
                .select_from(OutgoingEmail)
                .where(OutgoingEmail.status == EmailStatus.PENDING)
            )
            or 0
        )


def assert_each_arrived_once(db: Database, mailbox: Mailbox) -> None:
    """Every e-mail in the outbox is sent, and the server got each exactly once."""
    ids = [message.message["Message-ID"] for message in mailbox.messages()]
    assert len(ids) == len(set(ids)), "an e-mail arrived twice"
    queued = outbox(db)
    assert all(email.status is EmailStatus.SENT for email in queued)
    domain = "milepost.test"
    assert sorted(ids) == sorted(f"<{email.id}@{domain}>" for email in queued)


def test_mail_is_delivered_with_recipient_subject_and_formatted_amount(
    db: Database, mail_world: World, mail_settings: Settings, mailbox: Mailbox
) -> None:
    client, freelancer, project = mail_world.parties()
    milestone = mail_world.milestone(client, project, 200_000, title="Landing page")
    mail_world.act(client, milestones.fund, milestone.id)
    assert (
        mailbox.messages() == []
    )  # queued, not sent: the outbox is sent after commit by the sender

    assert deliver_due_emails(db, mail_settings) == 2
    received = mailbox.to(freelancer.email)
    assert len(received) == 2 and mailbox.to(client.email) == []
    funded = received[1]
    assert funded.mail_from == "noreply@milepost.test"
    assert funded.rcpt_tos == [freelancer.email]
    assert funded.message["Subject"] == "“Landing page” is funded: $2,000.00 in escrow"
    assert funded.message["To"] == freelancer.email
    assert funded.message["From"] == "Milepost <noreply@milepost.test>"
    assert "$2,000.00 is now held in escrow" in funded.text
    assert f"https://milepost.test/milestones/{milestone.id}" in funded.text
    assert "$2,000.00" in funded.html and "<a href=" in funded.html

    mail_world.act(freelancer, milestones.submit, milestone.id, note="Done", evidence=EVIDENCE)
    mail_world.act(freelancer, milestones.request_release, milestone.id)
    assert deliver_due_emails(db, mail_settings) == 2
    subjects = [item.message["Subject"] for item in mailbox.to(client.email)]
    assert subjects == [
        "“Landing page” was delivered: please review",
        "Freelancer asks you to release “Landing page”",
    ]
    assert deliver_due_emails(db, mail_settings) == 0  # nothing twice
    assert_each_arrived_once(db, mailbox)
    emails = outbox(db)
    assert all(email.attempts == 1 and email.sent_at is not None for email in emails)


def test_an_smtp_outage_delays_mail_but_loses_none(
    db: Database, mail_world: World, mail_settings: Settings, mailbox: Mailbox
) -> None:
    mailbox.stop()  # nothing listens on the port now
    _client, freelancer, milestone = mail_world.submitted(100_000)
    mail_world.act(freelancer, milestones.request_release, milestone.id)
    queued = len(outbox(db))
    assert queued == 4  # created, funded (freelancer); submitted, release_requested (client)

    now = utcnow()
    # Each run knocks once (one e-mail), finds the server down, and leaves the rest for later.
    assert deliver_due_emails(db, mail_settings, now) == 0
    failed_once = [email for email in outbox(db) if email.attempts == 1]
    assert len(failed_once) == 1
    email = failed_once[0]
    assert email.status is EmailStatus.PENDING
    assert email.last_error and "Connection" in email.last_error
    assert email.next_attempt_at is not None
    assert abs((email.next_attempt_at - now) - RETRY_DELAYS[0]) < timedelta(seconds=1)
    for _ in range(5):
        assert deliver_due_emails(db, mail_settings, now) == 0
    assert all(email.attempts == 1 for email in outbox(db))
    # Still down an hour later: the back-off grows, the e-mails stay pending.
    assert deliver_due_emails(db, mail_settings, now + timedelta(hours=1)) == 0
    assert pending(db) == queued
    assert mailbox.messages() == []

    mailbox.start()  # the server is back
    later = now + timedelta(days=1)
    assert deliver_due_emails(db, mail_settings, later) == queued
    assert deliver_due_emails(db, mail_settings, later) == 0
    assert deliver_due_emails(db, mail_settings, later + timedelta(days=30)) == 0
    assert len(mailbox.messages()) == queued
    assert_each_arrived_once(db, mailbox)


def test_a_server_stopped_between_runs_loses_nothing(
    db: Database, mail_world: World, mail_settings: Settings, mailbox: Mailbox
) -> None:
    client, freelancer, milestone = mail_world.funded(100_000)
    assert deliver_due_emails(db, mail_settings) == 2

    mailbox.stop()
    mail_world.act(freelancer, milestones.submit, milestone.id, note="Done", evidence=EVIDENCE)
    mail_world.act(client, milestones.approve, milestone.id)
    assert deliver_due_emails(db, mail_settings) == 0
    assert pending(db) == 3  # submitted (client); approved, released (freelancer)

    mailbox.start()
    assert deliver_due_emails(db, mail_settings, utcnow() + timedelta(hours=2)) == 3
    assert deliver_due_emails(db, mail_settings, utcnow() + timedelta(hours=3)) == 0
    assert len(mailbox.messages()) == 5
    assert_each_arrived_once(db, mailbox)


def test_a_permanently_refused_address_fails_and_is_not_retried(
    db: Database, mail_world: World, mail_settings: Settings, mailbox: Mailbox
) -> None:
    client, freelancer, project = mail_world.parties()
    mailbox.refuse.add(freelancer.email)
    mail_world.milestone(client, project, 100_000)
    assert deliver_due_emails(db, mail_settings) == 0
    (email,) = outbox(db)
    assert email.status is EmailStatus.FAILED
    assert email.last_error and "550" in email.last_error
    assert email.next_attempt_at is None
    assert deliver_due_emails(db, mail_settings, utcnow() + timedelta(days=10)) == 0
    assert mailbox.messages() == []


def test_a_crashed_senders_claim_is_retried_only_after_its_lease(
    db: Database, mail_world: World, mail_settings: Settings, mailbox: Mailbox
) -> None:
    client, _freelancer, project = mail_world.parties()
    mail_world.milestone(client, project, 100_000)
    now = utcnow()
    claimed = claim_next(db, now)  # a sender claims the e-mail, then dies before sending
    assert claimed is not None

    assert deliver_due_emails(db, mail_settings, now) == 0
    assert deliver_due_emails(db, mail_settings, now + CLAIM_LEASE - timedelta(seconds=5)) == 0
    assert mailbox.messages() == []

    assert deliver_due_emails(db, mail_settings, now + CLAIM_LEASE + timedelta(seconds=5)) == 1
    (email,) = outbox(db)
    assert email.status is EmailStatus.SENT and email.attempts == 2
    assert_each_arrived_once(db, mailbox)


def test_a_claim_made_with_a_past_now_is_leased_on_the_real_clock(
    db: Database, mail_world: World, mail_settings: Settings, mailbox: Mailbox
) -> None:
    client, _freelancer, project = mail_world.parties()
    mail_world.milestone(client, project, 100_000)
    # ``milepost tick --now`` in the past claims it; the real-time sender must not take it meanwhile.
    assert claim_next(db, utcnow() + timedelta(days=1)) is not None
    assert deliver_due_emails(db, mail_settings) == 0
    assert mailbox.messages() == []


def test_concurrent_senders_send_each_email_exactly_once(
    db: Database, mail_world: World, mail_settings: Settings, mailbox: Mailbox
) -> None:
    client, _freelancer, project = mail_world.parties()
    for number in range(12):
        mail_world.milestone(client, project, 1_000 + number, title=f"Part {number}")
    assert pending(db) == 12

    start = threading.Barrier(4)
    errors: list[BaseException] = []

    def sender() -> None:
        try:
            start.wait()
            while deliver_due_emails(db, mail_settings):
                pass
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=sender) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not [error for error in errors if "try again" not in str(error)]
    # A sender that lost a race for the SQLite write lock only stopped early: finish the rest.
    while deliver_due_emails(db, mail_settings):
        pass
    assert len(mailbox.messages()) == 12
    assert_each_arrived_once(db, mailbox)


def test_without_smtp_nothing_is_queued_or_sent(world: World, db: Database) -> None:
    _client, _freelancer, _milestone = world.funded(100_000)
    assert outbox(db) == []
    assert deliver_due_emails(db, world.settings) == 0


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")
@pytest.mark.parametrize("tls", ["starttls", "ssl"])
def test_tls_and_login(
    db: Database, mail_settings: Settings, certificate: tuple[Path, Path], tls: str
) -> None:
    secure = Mailbox(tls=tls, certificate=certificate, credentials=("milepost", "s3cret-pass"))
    secure.start()
    try:
        settings = mail_settings.model_copy(
            update={
                "smtp_port": secure.port,
                "smtp_tls": tls,
                "smtp_username": "milepost",
                "smtp_password": SecretStr("s3cret-pass"),
                "smtp_ca_file": str(certificate[0]),
            }
        )
        world = World(db, settings)
        client, _freelancer, project = world.parties()
        world.milestone(client, project, 100_000, title="Secure")

        # A wrong password: the server is "down" for us; the e-mail waits, it is not failed. (aiosmtpd
        # answers smtplib's second login mechanism with silence: a short timeout keeps the test quick.)
        wrong = settings.model_copy(
            update={"smtp_password": SecretStr("nope"), "smtp_timeout_seconds": 1.0}
        )
        assert deliver_due_emails(db, wrong) == 0
        (email,) = outbox(db)
        assert email.status is EmailStatus.PENDING and email.last_error
        # Without trusting the server's certificate, nothing is sent either.
        untrusted = settings.model_copy(update={"smtp_ca_file": None})
        assert deliver_due_emails(db, untrusted, utcnow() + timedelta(hours=1)) == 0
        assert secure.messages() == []

        assert deliver_due_emails(db, settings, utcnow() + timedelta(hours=2)) == 1
        (received,) = secure.messages()
        assert received.message["Subject"] == "New milestone “Secure” ($1,000.00)"
    finally:
        secure.stop()
