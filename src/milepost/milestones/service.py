"""Milestone use cases: terms, funding, delivery, review, release, cancellation.

Each action loads the milestone with its row locked, asks ``guards.authorize_action`` whether the actor
may act (the state table and the action's guards: the same answer the pages get from
``guards.available_actions``), moves money through the ledger, changes status through ``transition`` and
records an audit event. Nothing here commits: the caller's unit of work does, or rolls everything back if
anything raised.

``transition`` is public for the disputes service, whose actions move milestones too.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlparse

from sqlalchemy import bindparam, func, or_, select

from milepost.audit import service as audit
from milepost.events import EventAction
from milepost.files import service as files
from milepost.kit import validate
from milepost.kit.context import Context
from milepost.kit.db import insert_at_flush, row_of
from milepost.kit.errors import InvalidState, PermissionDenied, ValidationFailed
from milepost.kit.ids import new_id
from milepost.kit.pagination import Page, paginate
from milepost.ledger.models import EntryKind
from milepost.ledger.service import escrow_account, fee_account, post, user_account
from milepost.milestones.access import MilestoneAccess, load_milestone
from milepost.milestones.factory import new_milestone
from milepost.milestones.guards import authorize_action
from milepost.milestones.late_fees import accrued_late_fee
from milepost.milestones.models import Milestone, Submission
from milepost.milestones.state import (
    IN_PROGRESS,
    TERMINAL,
    Action,
    MilestoneStatus,
    Role,
    set_status,
)
from milepost.milestones.terms import validate_terms
from milepost.money import format_money, validate_amount
from milepost.projects.models import Project
from milepost.projects.service import check_create_milestone, get_project
from milepost.wallets.clearing import funding_legs

S = MilestoneStatus
MAX_EVIDENCE_ITEMS = 50


def transition(
    ctx: Context,
    access: MilestoneAccess,
    to_status: MilestoneStatus,
    action: EventAction,
    *,
    amount: int | None = None,
    data: dict[str, Any] | None = None,
) -> None:
    """Move the locked milestone to ``to_status`` (refused unless the state table allows it) and record
    ``action`` as its audit event. A milestone that ends drops any pending cancellation request, and so
    does a dispute: what happens to the escrow is then the dispute's to decide (the freelancer could not
    answer the request meanwhile, so its answer period must not run out behind the dispute)."""
    milestone = access.milestone
    from_status = set_status(milestone, to_status)
    milestone.updated_at = ctx.now
    if to_status in TERMINAL:
        milestone.ended_at = ctx.now
    if to_status in TERMINAL or to_status is S.DISPUTED:
        milestone.cancellation_requested = False
        milestone.cancellation_answer_due_at = None
    audit.record(
        ctx,
        milestone,
        action,
        role=access.role,
        from_status=from_status,
        to_status=to_status,
        amount=amount,
        data=data,
    )


def record_in_place(
    ctx: Context,
    access: MilestoneAccess,
    action: EventAction,
    *,
    amount: int | None = None,
    data: dict[str, Any] | None = None,
) -> None:
    """Record ``action`` as an audit event of a milestone whose status it leaves as it is (a partial
    release, a request, an offer, a late fee): the one shape of every such event."""
    milestone = access.milestone
    audit.record(
        ctx,
        milestone,
        action,
        role=access.role,
        from_status=milestone.status,
        to_status=milestone.status,
        amount=amount,
        data=data,
    )


# Terms ------------------------------------------------------------------------------------------------


def create_milestone(ctx: Context, project_id: str, **values: Any) -> Milestone:
    # The project row lock numbers the project's milestones one at a time.
    project = get_project(ctx, project_id, lock=True)
    role = check_create_milestone(ctx, project)
    return new_milestone(ctx, project, values, role=role)


def update_terms(ctx: Context, milestone_id: str, **values: Any) -> Milestone:
    """Edit terms while the milestone is a draft; from funding on they are frozen."""
    access = load_milestone(ctx, milestone_id, lock=True)
    authorize_action(access, Action.EDIT)
    terms = validate_terms(values, creating=False)
    milestone = access.milestone
    changed = {}
    for name, value in terms.items():
        if getattr(milestone, name) != value:
            setattr(milestone, name, value)
            changed[name] = value.isoformat() if hasattr(value, "isoformat") else value
    if changed.keys() & {"amount", "fund_by", "late_fee"}:
        # The late fee shown is the one accrued under the terms as they now stand (the scheduler keeps it
        # current as days pass; funding takes what has accrued by then).
        late_fee = accrued_late_fee(
            milestone.late_fee, milestone.amount, milestone.fund_by, ctx.now.date()
        )
        if late_fee != milestone.late_fee_amount:
            milestone.late_fee_amount = late_fee
            changed["late_fee_amount"] = late_fee
    if changed:
        milestone.updated_at = ctx.now
        audit.record(
            ctx,
            milestone,
            EventAction.TERMS_EDITED,
            role=access.role,
            from_status=S.DRAFT,
            to_status=S.DRAFT,
            data={"changed": changed},
        )
    return milestone


def get_milestone(ctx: Context, milestone_id: str) -> Milestone:
    return load_milestone(ctx, milestone_id, lock=False).milestone


def list_milestones(
    ctx: Context,
    *,
    role: str | None = None,
    status: str | None = None,
    project_id: str | None = None,
    limit: int = 20,
    starting_after: str | None = None,
) -> Page[Milestone]:
    """Milestones the actor is a party to: ``role='client'`` outgoing, ``'freelancer'`` incoming."""
    from milepost.kit.errors import InvalidRequest

    actor = ctx.require_actor()
    query = select(Milestone).join(Project, Project.id == Milestone.project_id)
    if role == "client":
        query = query.where(Milestone.client_id == actor.id)
    elif role == "freelancer":
        query = query.where(Project.freelancer_id == actor.id)
    elif role is None:
        if not actor.is_staff:
            query = query.where(
                or_(Milestone.client_id == actor.id, Project.freelancer_id == actor.id)
            )
    else:
        raise InvalidRequest("role must be client or freelancer.", param="role")
    if status is not None:
        if status not in set(MilestoneStatus):
            raise InvalidRequest(f"Unknown status {status}.", param="status")
        query = query.where(Milestone.status == status)
    if project_id is not None:
        query = query.where(Milestone.project_id == project_id)
    return paginate(ctx.session, query, Milestone.id, limit=limit, starting_after=starting_after)


# Money in: funding ---------------------------------------------------------------------------------------


def amount_to_fund(milestone: Milestone, ctx: Context) -> tuple[int, int]:
    """What funding takes now: (amount + accrued late fee, the late fee).

    Computed from the terms at ``ctx.now``; before funding, ``late_fee_amount`` shows the same figure as
    of the scheduler's last run (``accrue_late_fee`` records each increase as ``late_fee_accrued``).
    """
    late_fee = accrued_late_fee(
        milestone.late_fee, milestone.amount, milestone.fund_by, ctx.now.date()
    )
    return milestone.amount + late_fee, late_fee


def accrue_late_fee(ctx: Context, milestone_id: str) -> int:
    """Time-driven: bring a draft's stored late fee up to what its terms have accrued by now, recorded as
    ``late_fee_accrued``; returns the increase (0: nothing more has accrued).

    Only the system does this, and only before funding (from funding on the late fee is frozen in the
    funded amount). The scheduler holds the milestone's row lock already; taking it again is free."""
    access = load_milestone(ctx, milestone_id, lock=True)
    if access.role is not Role.SYSTEM:
        raise PermissionDenied("Late fees accrue by the clock only.", code="system_only")
    milestone = access.milestone
    if milestone.status is not S.DRAFT or milestone.fund_by is None:
        raise InvalidState("Only a draft with a fund-by date accrues a late fee.")
    accrued = accrued_late_fee(
        milestone.late_fee, milestone.amount, milestone.fund_by, ctx.now.date()
    )
    increase = accrued - milestone.late_fee_amount
    if increase <= 0:
        return 0
    milestone.late_fee_amount = accrued
    milestone.updated_at = ctx.now
    record_in_place(
        ctx,
        access,
        EventAction.LATE_FEE_ACCRUED,
        amount=increase,
        data={"late_fee_amount": accrued, "fund_by": milestone.fund_by.isoformat()},
    )
    return increase


def fund(ctx: Context, milestone_id: str) -> Milestone:
    """Move the milestone's amount (plus any accrued late fee) from the client's wallet into escrow."""
    access = load_milestone(ctx, milestone_id, lock=True)
    authorize_action(access, Action.FUND)
    milestone = access.milestone
    total, late_fee = amount_to_fund(milestone, ctx)
    post(
        ctx,
        EntryKind.FUND,
        [
            *funding_legs(ctx, milestone.client_id, milestone.currency, total),
            (escrow_account(milestone.id, milestone.currency), total),
        ],
        milestone_id=milestone.id,
        memo=f"fund milestone {milestone.id}",
    )
    milestone.funded_amount = total
    milestone.late_fee_amount = late_fee
    milestone.fee_rate_bps = ctx.settings.fee_bps
    milestone.funded_at = ctx.now
    transition(ctx, access, S.FUNDED, EventAction.FUNDED, amount=total, data={"late_fee": late_fee})
    return milestone


# Delivery and review -----------------------------------------------------------------------------------


def validate_evidence(
    value: Any, param: str = "evidence", noun: str = "evidence item"
) -> list[dict[str, str]]:
    """Evidence items (a delivery's evidence, a dispute message's attachments), each checked: a link
    (http or https), an uploaded file (its id) or a text."""
    if value is None:
        return []
    if not isinstance(value, list):
        raise ValidationFailed(f"{param} must be a list.", param=param)
    if len(value) > MAX_EVIDENCE_ITEMS:
        raise ValidationFailed(f"At most {MAX_EVIDENCE_ITEMS} {noun}s.", param=param)
    items = []
    for index, item in enumerate(value):
        item_param = f"{param}[{index}]"
        kind = item.get("type") if isinstance(item, dict) else None
        if kind == "link":
            url = validate.text(item.get("url"), f"{item_param}.url", max_length=2000)
            if urlparse(url).scheme not in ("http", "https") or not urlparse(url).netloc:
                raise ValidationFailed("A link must be an http(s) URL.", param=f"{item_param}.url")
            items.append({"type": "link", "url": url})
        elif kind == "file":
            file_id = validate.text(item.get("file_id"), f"{item_param}.file_id", max_length=40)
            if not file_id.startswith("file_"):
                raise ValidationFailed("file_id must be a file id.", param=f"{item_param}.file_id")
            items.append({"type": "file", "file_id": file_id})
        elif kind == "text":
            items.append(
                {
                    "type": "text",
                    "text": validate.text(
                        item.get("text"), f"{item_param}.text", max_length=20_000
                    ),
                }
            )
        else:
            raise ValidationFailed(
                f"Each {noun}'s type must be link, file or text.", param=item_param
            )
    return items


def submit(
    ctx: Context, milestone_id: str, *, note: object = None, evidence: object = None
) -> Submission:
    """The freelancer delivers: a note and evidence. Starts the review period."""
    access = load_milestone(ctx, milestone_id, lock=True)
    authorize_action(access, Action.SUBMIT)
    milestone = access.milestone
    text = validate.text(note, "note", max_length=20_000, required=False)
    items = validate_evidence(evidence)
    file_ids = files.check_evidence_files(ctx, items)
    if not text and not items:
        raise ValidationFailed(
            "A delivery needs a note or evidence.", code="missing", param="evidence"
        )
    revision = (ctx.session.scalar(_SUBMISSIONS, {"milestone_id": milestone.id}) or 0) + 1
    submission = Submission(
        id=new_id("sub"),
        milestone_id=milestone.id,
        revision=revision,
        submitted_by=ctx.require_actor().id,
        note=text,
        evidence=items,
        created_at=ctx.now,
    )
    insert_at_flush(ctx.session, Submission, row_of(submission))  # never changed afterwards
    files.link_to_submission(ctx, submission.id, file_ids)
    milestone.submitted_at = ctx.now
    milestone.review_due_at = ctx.now + timedelta(days=milestone.review_period_days)
    transition(
        ctx,
        access,
        S.SUBMITTED,
        EventAction.SUBMITTED,
        data={"submission_id": submission.id, "revision": revision},
    )
    ctx.session.flush()
    return submission


_SUBMISSIONS = select(func.count()).where(Submission.milestone_id == bindparam("milestone_id"))


def list_submissions(ctx: Context, milestone_id: str) -> list[Submission]:
    milestone = get_milestone(ctx, milestone_id)
    return list(
        ctx.session.scalars(
            select(Submission)
            .where(Submission.milestone_id == milestone.id)
            .order_by(Submission.revision)
        )
    )


def request_changes(
    ctx: Context, milestone_id: str, *, reason: object, unmet_criteria: object = None
) -> Milestone:
    access = load_milestone(ctx, milestone_id, lock=True)
    authorize_action(access, Action.REQUEST_CHANGES)
    milestone = access.milestone
    why = validate.text(reason, "reason", max_length=20_000)
    unmet: list[int] = []
    if unmet_criteria is not None:
        if not isinstance(unmet_criteria, list):
            raise ValidationFailed(
                "unmet_criteria must be a list of indexes.", param="unmet_criteria"
            )
        last = len(milestone.acceptance_criteria) - 1
        unmet = sorted(
            {
                validate.integer(i, "unmet_criteria", minimum=0, maximum=max(last, 0))
                for i in unmet_criteria
            }
        )
        if unmet and last < 0:
            raise ValidationFailed(
                "This milestone has no acceptance criteria.", param="unmet_criteria"
            )
    milestone.review_due_at = None  # the clock stops until the next delivery
    transition(
        ctx,
        access,
        S.CHANGES_REQUESTED,
        EventAction.CHANGES_REQUESTED,
        data={"reason": why, "unmet_criteria": unmet},
    )
    return milestone


def approve(ctx: Context, milestone_id: str, *, automatic: bool = False) -> Milestone:
    """Accept the delivery. Released at once, or when the release delay has passed."""
    access = load_milestone(ctx, milestone_id, lock=True)
    authorize_action(access, Action.APPROVE)
    milestone = access.milestone
    milestone.approved_at = ctx.now
    milestone.review_due_at = None
    transition(
        ctx, access, S.APPROVED, EventAction.AUTO_APPROVED if automatic else EventAction.APPROVED
    )
    if milestone.release_delay_days == 0:
        _release(ctx, access, milestone.escrow_balance)
    else:
        milestone.release_due_at = ctx.now + timedelta(days=milestone.release_delay_days)
    return milestone


# Money out: releases -----------------------------------------------------------------------------------


def release(ctx: Context, milestone_id: str, *, amount: object = None) -> Milestone:
    """Release part (``amount``) or all that remains of the escrow to the freelancer."""
    access = load_milestone(ctx, milestone_id, lock=True)
    authorize_action(access, Action.RELEASE)
    escrow = access.milestone.escrow_balance
    value = escrow if amount is None else validate_amount(amount)
    _release(ctx, access, value)
    return access.milestone


def release_matured(ctx: Context, milestone_id: str) -> Milestone:
    """Release an approved milestone whose release delay has passed (time-driven, by the system)."""
    access = load_milestone(ctx, milestone_id, lock=True)
    milestone = access.milestone
    authorize_action(access, Action.RELEASE)
    if milestone.status is not S.APPROVED or milestone.release_due_at is None:
        raise InvalidState("Only an approved milestone waiting out its release delay can mature.")
    if ctx.now < milestone.release_due_at:
        raise InvalidState("The release delay has not passed yet.", code="not_due")
    _release(ctx, access, milestone.escrow_balance)
    return milestone


def _release(ctx: Context, access: MilestoneAccess, amount: int) -> None:
    milestone = access.milestone
    freelancer_id = access.freelancer_id
    escrow = milestone.escrow_balance
    if amount > escrow:
        from milepost.kit.errors import InsufficientFunds

        raise InsufficientFunds(
            f"The escrow holds {format_money(escrow, milestone.currency)}; cannot release "
            f"{format_money(amount, milestone.currency)}.",
            param="amount",
        )
    fee = milestone.fee_on_release(amount)
    post(
        ctx,
        EntryKind.RELEASE,
        [
            (escrow_account(milestone.id, milestone.currency), -amount),
            (user_account(freelancer_id, milestone.currency), amount - fee),
            (fee_account(milestone.currency), fee),
        ],
        milestone_id=milestone.id,
        memo=f"release from milestone {milestone.id}",
    )
    milestone.released_amount += amount
    milestone.fee_amount += fee
    data = {"fee": fee, "to_freelancer": amount - fee}
    if milestone.escrow_balance == 0:
        transition(ctx, access, S.RELEASED, EventAction.RELEASED, amount=amount, data=data)
    else:
        milestone.updated_at = ctx.now
        record_in_place(
            ctx,
            access,
            EventAction.RELEASED_PART,
            amount=amount,
            data=data,
        )


def request_release(ctx: Context, milestone_id: str) -> Milestone:
    """The freelancer nudges the client to review and release."""
    access = load_milestone(ctx, milestone_id, lock=True)
    authorize_action(access, Action.REQUEST_RELEASE)
    milestone = access.milestone
    record_in_place(
        ctx,
        access,
        EventAction.RELEASE_REQUESTED,
    )
    return milestone


# Cancellation ------------------------------------------------------------------------------------------


def cancel(ctx: Context, milestone_id: str, *, reason: object = None) -> Milestone:
    """Cancel; whatever is left in escrow goes back to the client."""
    access = load_milestone(ctx, milestone_id, lock=True)
    authorize_action(access, Action.CANCEL)
    why = validate.text(reason, "reason", max_length=20_000, required=False)
    _cancel(ctx, access, action=EventAction.CANCELLED, reason=why)
    return access.milestone


def _cancel(ctx: Context, access: MilestoneAccess, *, action: EventAction, reason: str) -> None:
    milestone = access.milestone
    refund = milestone.escrow_balance
    if refund:
        post(
            ctx,
            EntryKind.REFUND,
            [
                (escrow_account(milestone.id, milestone.currency), -refund),
                (user_account(milestone.client_id, milestone.currency), refund),
            ],
            milestone_id=milestone.id,
            memo=f"refund of milestone {milestone.id}",
        )
        milestone.refunded_amount += refund
    transition(ctx, access, S.CANCELLED, action, amount=refund, data={"reason": reason})


def _drop_cancellation_request(milestone: Milestone) -> None:
    milestone.cancellation_requested = False
    milestone.cancellation_reason = None
    milestone.cancellation_answer_due_at = None


def cancellation_lapsed(milestone: Milestone, now: datetime) -> bool:
    """Whether the milestone's pending cancellation request has gone unanswered past its answer period,
    while the freelancer could still answer it (so the system may grant it)."""
    due = milestone.cancellation_answer_due_at
    return (
        milestone.cancellation_requested
        and due is not None
        and now >= due
        and milestone.status in IN_PROGRESS
    )


def request_cancellation(ctx: Context, milestone_id: str, *, reason: object) -> Milestone:
    """The client asks the freelancer to agree to cancel a funded milestone."""
    access = load_milestone(ctx, milestone_id, lock=True)
    authorize_action(access, Action.REQUEST_CANCELLATION)
    milestone = access.milestone
    why = validate.text(reason, "reason", max_length=20_000)
    milestone.cancellation_requested = True
    milestone.cancellation_reason = why
    milestone.cancellation_answer_due_at = ctx.now + timedelta(
        days=ctx.settings.cancellation_answer_days
    )
    milestone.updated_at = ctx.now
    record_in_place(
        ctx,
        access,
        EventAction.CANCELLATION_REQUESTED,
        data={"reason": why},
    )
    return milestone


def answer_cancellation(
    ctx: Context, milestone_id: str, *, accept: bool, automatic: bool = False
) -> Milestone:
    """The freelancer accepts (cancelled, refund) or declines (unchanged) the client's request.

    ``automatic``: the system grants a request left unanswered past its answer period (the
    time-driven work decides when; see ``cancellation_lapsed``)."""
    access = load_milestone(ctx, milestone_id, lock=True)
    authorize_action(access, Action.ANSWER_CANCELLATION)
    milestone = access.milestone
    reason = milestone.cancellation_reason or ""
    _drop_cancellation_request(milestone)
    if accept:
        action = (
            EventAction.CANCELLATION_AUTO_ACCEPTED
            if automatic
            else EventAction.CANCELLATION_ACCEPTED
        )
        _cancel(ctx, access, action=action, reason=reason)
    else:
        milestone.updated_at = ctx.now
        record_in_place(
            ctx,
            access,
            EventAction.CANCELLATION_DECLINED,
        )
    return milestone


def freelancer_ids(ctx: Context, milestones: list[Milestone]) -> dict[str, str | None]:
    """The freelancer of each milestone's project, by milestone id (one query for a whole page)."""
    project_ids = {milestone.project_id for milestone in milestones}
    by_project: dict[str, str | None] = {}
    for project_id in project_ids:
        # Projects loaded earlier in this unit of work come from the identity map without a query.
        loaded = ctx.session.identity_map.get(ctx.session.identity_key(Project, project_id))
        if isinstance(loaded, Project):
            by_project[project_id] = loaded.freelancer_id
    missing = project_ids - set(by_project)
    if missing:
        rows = ctx.session.execute(
            select(Project.id, Project.freelancer_id).where(Project.id.in_(missing))
        ).all()
        by_project.update({project_id: freelancer_id for project_id, freelancer_id in rows})
    return {milestone.id: by_project.get(milestone.project_id) for milestone in milestones}
