"""Time-driven work: everything that is due at a moment, as a function of the stored state and "now".

``run_due`` finds what is due (a cheap read), then takes each milestone in its own short unit of work:
it claims the milestone row (PostgreSQL: ``FOR UPDATE SKIP LOCKED``, so two workers never hold the same
milestone and neither waits for the other; SQLite: ``BEGIN IMMEDIATE`` serialises writers), checks again
under the lock that the work is still due, and does it through the same services a person's request uses.
What was done is visible in the state itself (a status, a stored late fee, a taken ladder step, a flagged
dispute), so running again for the same moment, or two workers at once, never does anything twice.

Every happening is an audit event with no actor and the role ``system``; notifications, e-mails and
webhooks follow from the events. After the state work, due e-mails and webhooks are sent.

``preview_due`` answers "what is due at this moment?" with the very same code: each milestone's work is
done in a transaction that is always rolled back (``Database.rehearsal``), and nothing is sent. So the
rules live in one place, and a dry run cannot drift from what a real run does; it keeps no row, no
audit event, no queued e-mail or webhook. (Work that one step of a real run would make due for a later
step of the same run, none today, would show only when that step is real.)

The moment is the caller's. The worker and the server's scheduler pass the real clock; ``milepost tick
--now`` may pass another, and a moment ahead of the clock (``ahead_of_clock``) is the future's work done
for real: the command refuses it unless asked to simulate.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from math import ceil
from typing import Any

from sqlalchemy import Select, and_, func, or_, select
from sqlalchemy.orm import Session

from milepost.audit import service as audit
from milepost.disputes import service as disputes
from milepost.disputes.models import Dispute, DisputeStatus
from milepost.events import EventAction
from milepost.kit import idempotency
from milepost.kit.context import Context
from milepost.kit.db import Database, insert_at_flush, is_sqlite
from milepost.kit.time import as_utc, utcnow
from milepost.milestones import service as milestones
from milepost.milestones.models import Milestone, funding_overdue
from milepost.milestones.state import IN_PROGRESS, MilestoneStatus, Role
from milepost.money import format_money
from milepost.notifications.mail import deliver_due_emails
from milepost.notifications.models import EmailStatus, OutgoingEmail
from milepost.projects.models import Project
from milepost.schedule import ladders
from milepost.schedule.models import ScheduleStep
from milepost.settings import Settings
from milepost.webhooks.delivery import deliver_due
from milepost.webhooks.models import DeliveryStatus, WebhookDelivery, WebhookEndpoint

log = logging.getLogger("milepost.schedule")
S = MilestoneStatus
DAY = timedelta(days=1)
# How far ahead of this machine's clock a moment may be and still count as now (clocks drift, and an
# operator may paste a time a little ahead).
CLOCK_TOLERANCE = timedelta(seconds=60)


@dataclass(frozen=True)
class Happening:
    """One thing the run did: the audit action, the milestone, and a line for people."""

    action: str
    milestone_id: str
    detail: str


@dataclass(frozen=True)
class Failure:
    job: str
    milestone_id: str
    error: str


@dataclass
class TickReport:
    now: datetime
    done: list[Happening] = field(default_factory=list)
    failed: list[Failure] = field(default_factory=list)
    emails_sent: int = 0
    webhooks_sent: int = 0
    # Stripe payouts sent (or refused by Stripe and failed back to the wallet).
    payouts_sent: int = 0
    # Deposits whose clearing hold ended: their money moved from pending to available.
    deposits_cleared: int = 0
    # Card deposits decided by asking Stripe, their events having not come.
    deposits_looked_up: int = 0
    rehearsal: bool = False  # a dry run: ``done`` is what is due, and none of it was kept
    # A dry run's count of messages already queued and due, that a real run would send, and of the
    # money work a real run would do after the milestones' (clear, look up, send).
    emails_due: int = 0
    webhooks_due: int = 0
    deposits_to_clear: int = 0
    deposits_to_look_up: int = 0
    payouts_to_send: int = 0

    def counts(self) -> dict[str, int]:
        """How many of each action, in the order they first happened."""
        return dict(Counter(happening.action for happening in self.done))

    def _tallies(self) -> list[tuple[int, str]]:
        """The counts of what was sent or moved besides the milestones' work, with their words."""
        return [
            (self.emails_sent, "e-mails sent"),
            (self.webhooks_sent, "webhooks sent"),
            (self.deposits_looked_up, "card deposits decided by looking them up"),
            (self.deposits_cleared, "deposits cleared"),
            (self.payouts_sent, "Stripe payouts sent or refused"),
            (self.emails_due, "queued e-mails to send"),
            (self.webhooks_due, "queued webhooks to send"),
            (self.deposits_to_clear, "deposits to clear"),
            (self.deposits_to_look_up, "card deposits to look up at Stripe"),
            (self.payouts_to_send, "Stripe payouts to send"),
        ]

    @property
    def nothing_done(self) -> bool:
        return not (self.done or self.failed or any(count for count, _ in self._tallies()))

    def lines(self) -> list[str]:
        """A readable summary: counts per kind, then one line per thing done."""
        when = f"{self.now.isoformat()}: " + (
            "dry run, nothing changed: " if self.rehearsal else ""
        )
        if self.nothing_done:
            return [f"{when}nothing due"]
        counts = [f"{count} {action}" for action, count in self.counts().items()]
        if self.rehearsal:
            counts = [f"due {', '.join(counts)}"] if counts else []
        counts += [f"{count} {words}" for count, words in self._tallies() if count]
        if self.failed:
            counts.append(f"{len(self.failed)} {'would fail' if self.rehearsal else 'failed'}")
        lines = [when + ", ".join(counts)]
        lines += [
            f"  {happening.milestone_id}  {happening.action}: {happening.detail}"
            for happening in self.done
        ]
        lines += [
            f"  {failure.milestone_id}  {'WOULD FAIL' if self.rehearsal else 'FAILED'} "
            f"{failure.job}: {failure.error}"
            for failure in self.failed
        ]
        return lines


def ahead_of_clock(now: datetime, clock: datetime | None = None) -> timedelta | None:
    """How far ``now`` is ahead of the real clock, if by more than ``CLOCK_TOLERANCE``; else None.

    Running the due work at such a moment does the future's work for real: it releases money whose
    review period has not ended, adds late fees not owed yet, sends reminders and escalations early, and
    writes audit events dated then into the hash chains."""
    ahead = as_utc(now) - as_utc(clock or utcnow())
    return ahead if ahead > CLOCK_TOLERANCE else None


Job = Callable[[Context, Milestone], list[Happening]]


def run_due(
    db: Database,
    settings: Settings,
    now: datetime,
    *,
    deliver_emails: bool = True,
    deliver_webhooks: bool = True,
) -> TickReport:
    """Do everything due at ``now``, each milestone in its own unit of work, then send due messages.

    A milestone that fails (a conflict, say) is logged and reported, and the run goes on; the next run
    tries it again. The worker inside ``serve`` passes ``deliver_emails=False, deliver_webhooks=False``:
    the server's own senders run beside it.
    """
    report = _run_jobs(db, settings, as_utc(now), rehearse=False)
    _purge_idempotency_keys(db, report.now)
    report.deposits_cleared = _clear_deposits(db, settings, report.now)
    report.deposits_looked_up = _look_up_deposits(db, settings, report.now)
    report.payouts_sent = _send_payouts(db, settings)
    if deliver_emails:
        report.emails_sent = deliver_due_emails(db, settings, report.now)
    if deliver_webhooks:
        report.webhooks_sent = len(
            deliver_due(
                db, report.now, allow_private_networks=settings.webhook_allow_private_networks
            )
        )
    return report


def _clear_deposits(db: Database, settings: Settings, now: datetime) -> int:
    """Deposits whose clearing hold is over at ``now``: their money moves to the available balance."""
    from milepost.wallets.clearing import clear_due

    try:
        return clear_due(db, settings, now)
    except Exception:
        log.exception("clearing deposits failed")
        return 0


def _look_up_deposits(db: Database, settings: Settings, now: datetime) -> int:
    """Card deposits whose provider's events are late: asked about directly."""
    from milepost.wallets.stripe_provider import look_up_pending_deposits

    try:
        return look_up_pending_deposits(db, settings, now)
    except Exception:
        log.exception("looking up pending card deposits failed")
        return 0


def _send_payouts(db: Database, settings: Settings) -> int:
    """Pending payouts through a provider that sends them itself (Stripe Connect): sent now, whatever
    moment the run is for (money goes out when it is asked for, not on a schedule). A failure is logged
    and does not stop the run; the next run tries again."""
    from milepost.wallets.stripe_provider import send_due_payouts

    try:
        return send_due_payouts(db, settings)
    except Exception:
        log.exception("sending provider payouts failed")
        return 0


def _purge_idempotency_keys(db: Database, now: datetime) -> None:
    """Delete the idempotency keys past their lifetime (kit/idempotency.py): an expired key answers
    nothing any more, so keeping it only grows the table. Expiry is judged at the earlier of ``now`` and
    the real clock, so that a tick simulated in the future never drops a key a client may still replay.
    A failure here is logged and does not stop the run; the next tick tries again."""
    try:
        with db.unit_of_work() as session:
            purged = idempotency.purge_expired(session, min(now, utcnow()))
    except Exception:
        log.exception("purging expired idempotency keys failed")
        return
    if purged:
        log.info("expired idempotency keys purged", extra={"fields": {"count": purged}})


def preview_due(db: Database, settings: Settings, now: datetime) -> TickReport:
    """What ``run_due`` would do at ``now`` (any moment, past or future), keeping none of it.

    The same jobs run on the same rows under the same locks, each in a transaction that is rolled back
    however it ends; no e-mail or webhook is sent, and none that the work would queue survives. The
    money work after the milestones' (clearing, card look-ups, Stripe payouts) is counted, not done:
    it calls Stripe."""
    from milepost.wallets.clearing import due_to_clear
    from milepost.wallets.stripe_provider import NAME as STRIPE
    from milepost.wallets.stripe_provider import due_for_look_up, due_to_send

    report = _run_jobs(db, settings, as_utc(now), rehearse=True)
    with db.read_only() as session:
        if settings.smtp_host:  # without SMTP nothing is sent (nor queued)
            report.emails_due = _count(
                session,
                select(OutgoingEmail.id).where(
                    OutgoingEmail.status == EmailStatus.PENDING,
                    OutgoingEmail.next_attempt_at <= report.now,
                ),
            )
        report.webhooks_due = _count(
            session,
            select(WebhookDelivery.id)
            .join(WebhookEndpoint, WebhookEndpoint.id == WebhookDelivery.endpoint_id)
            .where(
                WebhookDelivery.status == DeliveryStatus.PENDING,
                WebhookDelivery.next_attempt_at <= report.now,
                WebhookEndpoint.deleted_at.is_(None),
            ),
        )
        report.deposits_to_clear = _count(session, due_to_clear(report.now))
        if STRIPE in settings.enabled_providers:
            report.deposits_to_look_up = _count(session, due_for_look_up(report.now))
            report.payouts_to_send = _count(session, due_to_send())
    return report


def _count(session: Session, query: Select[*tuple[Any, ...]]) -> int:
    return int(session.scalar(select(func.count()).select_from(query.subquery())) or 0)


def _run_jobs(db: Database, settings: Settings, now: datetime, *, rehearse: bool) -> TickReport:
    report = TickReport(now=now, rehearsal=rehearse)
    jobs: list[tuple[str, Callable[[], list[str]], Job]] = [
        ("funding", lambda: _funding_candidates(db, now), _funding_overdue),
        ("review", lambda: _review_candidates(db, settings, now), _review_overdue),
        ("release", lambda: _release_candidates(db, now), _release_delay_passed),
        ("dispute", lambda: _dispute_candidates(db, now), _dispute_deadlines),
        ("cancellation", lambda: _cancellation_candidates(db, settings, now), _cancellation_due),
    ]
    for name, candidates, job in jobs:
        for milestone_id in candidates():
            _run_one(db, settings, now, name, milestone_id, job, report)
    return report


def _run_one(
    db: Database,
    settings: Settings,
    now: datetime,
    name: str,
    milestone_id: str,
    job: Job,
    report: TickReport,
) -> None:
    unit_of_work = db.rehearsal if report.rehearsal else db.unit_of_work
    try:
        with unit_of_work() as session:
            ctx = Context(session, None, now=now, settings=settings)
            milestone = _claim(ctx, milestone_id)
            happenings = [] if milestone is None else job(ctx, milestone)
    except Exception as error:  # one milestone's trouble must not stop the others
        if not report.rehearsal:
            log.exception(
                "time-driven work failed",
                extra={"fields": {"job": name, "milestone_id": milestone_id}},
            )
        report.failed.append(Failure(name, milestone_id, f"{type(error).__name__}: {error}"))
        return
    report.done.extend(happenings)


def _claim(ctx: Context, milestone_id: str) -> Milestone | None:
    """Lock the milestone row for this unit of work; None if another worker holds it (PostgreSQL)."""
    query = (
        select(Milestone)
        .where(Milestone.id == milestone_id)
        .execution_options(populate_existing=True)
    )
    if not is_sqlite(ctx.session):
        query = query.with_for_update(skip_locked=True)
    return ctx.session.scalar(query)


def _record(
    ctx: Context,
    milestone: Milestone,
    action: EventAction,
    *,
    amount: int | None = None,
    data: dict[str, object],
) -> str:
    """An event of the system's that changes no status; returns the event id."""
    event = audit.record(
        ctx,
        milestone,
        action,
        role=Role.SYSTEM,
        from_status=milestone.status,
        to_status=milestone.status,
        amount=amount,
        data=dict(data),
    )
    return event.id


def _take_step(
    ctx: Context,
    milestone: Milestone,
    ladder: str,
    deadline: str,
    step: ladders.Step,
    data: dict[str, object],
) -> None:
    event_id = _record(ctx, milestone, step.action, data=data)
    # Queued after its event, as the event's row is (see audit.seal): it refers to that row.
    insert_at_flush(
        ctx.session,
        ScheduleStep,
        {
            "milestone_id": milestone.id,
            "ladder": ladder,
            "deadline": deadline,
            "step": step.days,
            "event_id": event_id,
            "done_at": ctx.now,
        },
    )


def _steps_taken(ctx: Context, milestone_id: str, ladder: str, deadline: str) -> list[int]:
    return list(
        ctx.session.scalars(
            select(ScheduleStep.step).where(
                ScheduleStep.milestone_id == milestone_id,
                ScheduleStep.ladder == ladder,
                ScheduleStep.deadline == deadline,
            )
        )
    )


# Funding overdue: late fees, reminders, escalation ------------------------------------------------------


def _funding_candidates(db: Database, now: datetime) -> list[str]:
    with db.read_only() as session:
        return list(
            session.scalars(
                select(Milestone.id).where(funding_overdue(now.date())).order_by(Milestone.id)
            )
        )


def _funding_overdue(ctx: Context, milestone: Milestone) -> list[Happening]:
    fund_by = milestone.fund_by
    today = ctx.now.date()
    if milestone.status is not S.DRAFT or fund_by is None or today < fund_by:
        return []
    done = []
    # The late fee first, so that a reminder sent in the same run states the amount due with it.
    increase = milestones.accrue_late_fee(ctx, milestone.id)
    if increase:
        accrued = milestone.late_fee_amount
        done.append(
            Happening(
                EventAction.LATE_FEE_ACCRUED,
                milestone.id,
                f"late fee +{_money(increase, milestone)} (now {_money(accrued, milestone)})",
            )
        )
    deadline = fund_by.isoformat()
    step = ladders.step_due(
        ladders.funding_ladder(ctx.settings),
        ladders.start_of_day(fund_by),
        ctx.now,
        _steps_taken(ctx, milestone.id, ladders.FUNDING, deadline),
    )
    if step is None:
        return done
    days_overdue = (today - fund_by).days
    amount_due = milestone.amount + milestone.late_fee_amount
    data: dict[str, object] = {
        "days_overdue": days_overdue,
        "fund_by": deadline,
        "amount_due": amount_due,
        "step": step.days,
    }
    if step.action == EventAction.FUNDING_ESCALATED:
        project = ctx.session.get(Project, milestone.project_id)
        assert project is not None  # foreign key
        data["billing_contact_email"] = project.billing_contact_email
    _take_step(ctx, milestone, ladders.FUNDING, deadline, step, data)
    done.append(
        Happening(
            step.action,
            milestone.id,
            f"{days_overdue} days past fund-by {deadline}, {_money(amount_due, milestone)} due"
            + (
                f", escalated to {data['billing_contact_email']}"
                if data.get("billing_contact_email")
                else ""
            ),
        )
    )
    return done


# Review overdue: reminders, then approval when the period lapses ------------------------------------------


def _review_candidates(db: Database, settings: Settings, now: datetime) -> list[str]:
    earliest = ladders.earliest_step_days(ladders.review_ladder(settings))
    horizon = now - timedelta(days=min(earliest, 0))
    with db.read_only() as session:
        return list(
            session.scalars(
                select(Milestone.id)
                .where(Milestone.status == S.SUBMITTED, Milestone.review_due_at <= horizon)
                .order_by(Milestone.id)
            )
        )


def _review_overdue(ctx: Context, milestone: Milestone) -> list[Happening]:
    review_due_at = milestone.review_due_at
    if milestone.status is not S.SUBMITTED or review_due_at is None:
        return []
    if ctx.now >= review_due_at:
        # No decision within the review period: approved by the system, and released at once unless a
        # release delay applies, through the same code as a client's approval.
        in_escrow = milestone.escrow_balance  # what the approval releases, now or after the delay
        approved = milestones.approve(ctx, milestone.id, automatic=True)
        done = [
            Happening(
                EventAction.AUTO_APPROVED,
                milestone.id,
                f"{_money(in_escrow, milestone)} approved, review period ended "
                f"{review_due_at.isoformat()}",
            )
        ]
        if approved.status is S.RELEASED:
            done.append(_released(approved))
        return done
    return _reminder_before(
        ctx,
        milestone,
        ladders.REVIEW,
        ladders.review_ladder(ctx.settings),
        review_due_at,
        "review_due_at",
        "to review",
    )


def _reminder_before(
    ctx: Context,
    milestone: Milestone,
    ladder_name: str,
    ladder: list[ladders.Step],
    due: datetime,
    due_key: str,
    what: str,
) -> list[Happening]:
    """The reminder of ``ladder`` due now before the deadline ``due`` (the review period's end, a
    cancellation request's answer), once: recorded with the days left and the deadline (``due_key``)."""
    deadline = due.isoformat()
    step = ladders.step_due(
        ladder, due, ctx.now, _steps_taken(ctx, milestone.id, ladder_name, deadline)
    )
    if step is None:
        return []
    days_left = ceil((due - ctx.now) / DAY)
    _take_step(
        ctx,
        milestone,
        ladder_name,
        deadline,
        step,
        {"days_left": days_left, due_key: deadline, "step": step.days},
    )
    return [Happening(step.action, milestone.id, f"{days_left} days left {what}")]


def _money(amount: int, milestone: Milestone) -> str:
    return format_money(amount, milestone.currency)


def _released(milestone: Milestone) -> Happening:
    return Happening(
        EventAction.RELEASED,
        milestone.id,
        f"{_money(milestone.released_amount, milestone)} released "
        f"(fee {_money(milestone.fee_amount, milestone)})",
    )


# Cancellation requests nobody answers: reminders, then granted when the answer period ends ----------------


def _cancellation_candidates(db: Database, settings: Settings, now: datetime) -> list[str]:
    earliest = ladders.earliest_step_days(ladders.cancellation_ladder(settings))
    horizon = now - timedelta(days=min(earliest, 0))
    with db.read_only() as session:
        return list(
            session.scalars(
                select(Milestone.id)
                .where(
                    Milestone.cancellation_answer_due_at <= horizon,
                    Milestone.cancellation_requested,
                    Milestone.status.in_(IN_PROGRESS),
                )
                .order_by(Milestone.id)
            )
        )


def _cancellation_due(ctx: Context, milestone: Milestone) -> list[Happening]:
    due = milestone.cancellation_answer_due_at
    if not milestone.cancellation_requested or due is None or milestone.status not in IN_PROGRESS:
        return []
    if milestones.cancellation_lapsed(milestone, ctx.now):
        # Unanswered in time: granted by the system, through the same code as the freelancer's "yes".
        refund = milestone.escrow_balance
        milestones.answer_cancellation(ctx, milestone.id, accept=True, automatic=True)
        return [
            Happening(
                EventAction.CANCELLATION_AUTO_ACCEPTED,
                milestone.id,
                f"cancelled, {_money(refund, milestone)} refunded to the client: the request was "
                f"not answered by {due.isoformat()}",
            )
        ]
    return _reminder_before(
        ctx,
        milestone,
        ladders.CANCELLATION,
        ladders.cancellation_ladder(ctx.settings),
        due,
        "answer_due_at",
        "to answer",
    )


# Release delay ---------------------------------------------------------------------------------------------


def _release_candidates(db: Database, now: datetime) -> list[str]:
    with db.read_only() as session:
        return list(
            session.scalars(
                select(Milestone.id)
                .where(Milestone.status == S.APPROVED, Milestone.release_due_at <= now)
                .order_by(Milestone.id)
            )
        )


def _release_delay_passed(ctx: Context, milestone: Milestone) -> list[Happening]:
    if (
        milestone.status is not S.APPROVED
        or milestone.release_due_at is None
        or ctx.now < milestone.release_due_at
    ):
        return []
    milestones.release_matured(ctx, milestone.id)
    return [_released(milestone)]


# Dispute deadlines -----------------------------------------------------------------------------------------


def _dispute_candidates(db: Database, now: datetime) -> list[str]:
    with db.read_only() as session:
        return list(
            session.scalars(
                select(Dispute.milestone_id)
                .where(
                    Dispute.status == DisputeStatus.OPEN,
                    or_(
                        and_(Dispute.responded_at.is_(None), Dispute.respond_by <= now),
                        and_(Dispute.overdue_at.is_(None), Dispute.mediation_due_at <= now),
                    ),
                )
                .order_by(Dispute.milestone_id)
                .distinct()
            )
        )


def _dispute_deadlines(ctx: Context, milestone: Milestone) -> list[Happening]:
    if milestone.status is not S.DISPUTED:
        return []
    # The milestone is locked already; the dispute row next (the disputes service's lock order).
    dispute = ctx.session.scalar(
        select(Dispute)
        .where(Dispute.milestone_id == milestone.id, Dispute.status == DisputeStatus.OPEN)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    if dispute is None:
        return []
    if dispute.responded_at is None and ctx.now >= dispute.respond_by:
        disputes.resolve_unanswered(ctx, dispute.id)
        winner = "freelancer" if dispute.opener_role == Role.FREELANCER else "client"
        return [
            Happening(
                EventAction.DISPUTE_RESOLVED,
                milestone.id,
                f"no answer by {dispute.respond_by.isoformat()}: resolved for the {winner} "
                f"(to freelancer {_money(dispute.to_freelancer or 0, milestone)}, "
                f"to client {_money(dispute.to_client or 0, milestone)})",
            )
        ]
    if dispute.overdue_at is None and ctx.now >= dispute.mediation_due_at:
        disputes.flag_overdue(ctx, dispute.id)
        return [
            Happening(
                EventAction.DISPUTE_OVERDUE,
                milestone.id,
                f"dispute {dispute.id} open past {dispute.mediation_due_at.isoformat()}: "
                "in the staff queue",
            )
        ]
    return []
