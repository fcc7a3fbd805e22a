"""Staff's dispute centre: the queue of open disputes and everything needed to decide one.

Read models for the staff pages (the resolve form's write is ``web.forms.dispute``). Staff only: anyone
else is refused with PermissionDenied, as the staff-only wallet and ledger calls are (the pages show them
a 404).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from milepost.audit.models import MilestoneEvent
from milepost.audit.service import list_events
from milepost.disputes import service as disputes
from milepost.disputes.models import Dispute, DisputeStatus, SettlementOffer
from milepost.events import EventAction
from milepost.files.models import StoredFile
from milepost.kit.context import Context
from milepost.kit.pagination import Page, key_of, keyset
from milepost.milestones import service as milestones
from milepost.milestones.models import Milestone
from milepost.projects.models import Project
from milepost.users.models import User

if TYPE_CHECKING:  # conversation builds on this module's items
    from milepost.web.views.conversation import MessageView


def _overdue(ctx: Context, dispute: Dispute) -> bool:
    """Past the mediation window. The scheduler stamps ``overdue_at``; the deadline itself counts too, so
    the queue is right even when the worker has not run since."""
    return dispute.overdue_at is not None or ctx.now >= dispute.mediation_due_at


# The queue ------------------------------------------------------------------------------------------------

QUEUE_PAGE = 50  # disputes per page of the queue


@dataclass(frozen=True)
class QueueLine:
    dispute_id: str
    milestone_id: str
    milestone_title: str
    project_title: str
    currency: str
    escrow: int
    client_name: str
    freelancer_name: str
    opener_role: str
    opened_at: datetime
    respond_by: datetime
    mediation_due_at: datetime
    answered: bool
    overdue: bool


def dispute_queue(
    ctx: Context, *, starting_after: str | None = None, limit: int = QUEUE_PAGE
) -> Page[QueueLine]:
    """Open disputes, a page at a time: overdue ones first, then by mediation deadline (soonest first).

    Ordered by (deadline, id) in SQL: that puts the overdue ones first, since a dispute is overdue once
    its deadline has passed (the scheduler's stamp too is only set then: ``disputes.flag_overdue``).
    ``starting_after``: the last dispute of the previous page."""
    ctx.require_staff("mediate disputes")
    order = (Dispute.mediation_due_at, Dispute.id)
    after = (
        None
        if starting_after is None
        else key_of(ctx.session, order, Dispute.id, starting_after, param="disputes_after")
    )
    page = keyset(
        ctx.session,
        select(Dispute, Milestone, Project)
        .join(Milestone, Milestone.id == Dispute.milestone_id)
        .join(Project, Project.id == Milestone.project_id)
        .where(Dispute.status == DisputeStatus.OPEN),
        order,
        limit=limit,
        after=after,
    )
    rows = page.data
    user_ids = {m.client_id for _, m, _ in rows} | {
        p.freelancer_id for _, _, p in rows if p.freelancer_id
    }
    names = dict(ctx.session.execute(select(User.id, User.name).where(User.id.in_(user_ids))).all())
    lines = [
        QueueLine(
            dispute_id=dispute.id,
            milestone_id=milestone.id,
            milestone_title=milestone.title,
            project_title=project.title,
            currency=milestone.currency,
            escrow=milestone.escrow_balance,
            client_name=names.get(milestone.client_id, ""),
            freelancer_name=names.get(project.freelancer_id or "", ""),
            opener_role=dispute.opener_role,
            opened_at=dispute.created_at,
            respond_by=dispute.respond_by,
            mediation_due_at=dispute.mediation_due_at,
            answered=dispute.responded_at is not None,
            overdue=_overdue(ctx, dispute),
        )
        for dispute, milestone, project in rows
    ]
    return Page(data=lines, has_more=page.has_more)


# One dispute ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class EvidenceItem:
    kind: str  # link, file or text
    text: str  # the URL, the file's name, or the text itself
    href: str | None  # where a link or file opens


@dataclass(frozen=True)
class SubmissionView:
    revision: int
    note: str
    created_at: datetime
    evidence: list[EvidenceItem]


@dataclass(frozen=True)
class OfferView:
    offer: SettlementOffer
    to_client: int  # the rest of the escrow when the offer was made
    fee: int | None  # what the platform would take from the freelancer's part; None once it is over


@dataclass(frozen=True)
class DisputeDetail:
    dispute: Dispute
    milestone: Milestone
    project: Project
    client: User
    freelancer: User
    opener: User
    escrow: int
    overdue: bool
    fee_rate_bps: int
    fee_if_all_to_freelancer: int  # the fee on the whole escrow: the most the resolution can take
    submissions: list[SubmissionView]
    offers: list[OfferView]
    events: list[MilestoneEvent]
    messages: list[MessageView]  # the conversation, oldest first
    may_write: bool  # the disputes service would take a message from this staff member now
    # Why this staff member may not resolve it now (the disputes service's guard), or None: they may.
    resolve_refused: str | None

    @property
    def is_open(self) -> bool:
        return self.dispute.status is DisputeStatus.OPEN

    @property
    def fee_percent(self) -> str:
        """The fee rate as people read it: 1000 bps -> "10", 250 -> "2.5"."""
        whole, rest = divmod(self.fee_rate_bps, 100)
        return f"{whole}" if not rest else f"{whole}.{rest:02d}".rstrip("0")


def evidence_item(item: dict[str, Any], file_names: dict[str, str]) -> EvidenceItem:
    """An evidence item (of a delivery, or attached to a dispute message) as a page shows it."""
    kind = str(item.get("type", ""))
    if kind == "link":
        return EvidenceItem("link", str(item["url"]), str(item["url"]))
    if kind == "file":
        file_id = str(item["file_id"])
        return EvidenceItem("file", file_names.get(file_id, file_id), f"/files/{file_id}")
    return EvidenceItem("text", str(item.get("text", "")), None)


def dispute_detail(ctx: Context, dispute_id: str) -> DisputeDetail:
    from milepost.web.views.conversation import conversation  # it builds on this module's items

    """The dispute with the milestone's terms, both parties, every delivery with its evidence, the offers
    and the timeline: what staff need to decide it."""
    ctx.require_staff("mediate disputes")
    access = disputes.load_dispute(ctx, dispute_id, lock=False)
    dispute, milestone, project = (
        access.dispute,
        access.milestone_access.milestone,
        access.milestone_access.project,
    )
    users = {
        user.id: user
        for user in ctx.session.scalars(
            select(User).where(
                User.id.in_(
                    {milestone.client_id, dispute.opened_by, access.milestone_access.freelancer_id}
                )
            )
        )
    }
    submissions = milestones.list_submissions(ctx, milestone.id)
    file_ids = {
        str(item["file_id"])
        for submission in submissions
        for item in submission.evidence
        if item.get("type") == "file"
    }
    file_names = dict(
        ctx.session.execute(
            select(StoredFile.id, StoredFile.filename).where(StoredFile.id.in_(file_ids))
        ).all()
    )
    escrow = milestone.escrow_balance
    is_open = dispute.status is DisputeStatus.OPEN
    events = list_events(ctx, milestone.id)
    # The client's side of each offer as recorded when it was made: once the dispute is over the escrow
    # has moved on, and the fee would depend on what was released since.
    offered_to_client = {
        str(event.data["offer_id"]): int(event.data["to_client"])
        for event in events
        if event.action == EventAction.SETTLEMENT_OFFERED and "offer_id" in event.data
    }
    return DisputeDetail(
        dispute=dispute,
        milestone=milestone,
        project=project,
        client=users[milestone.client_id],
        freelancer=users[access.milestone_access.freelancer_id],
        opener=users[dispute.opened_by],
        escrow=escrow,
        overdue=is_open and _overdue(ctx, dispute),
        fee_rate_bps=milestone.fee_rate_bps or 0,
        fee_if_all_to_freelancer=milestone.fee_on_release(escrow),
        submissions=[
            SubmissionView(
                revision=submission.revision,
                note=submission.note,
                created_at=submission.created_at,
                evidence=[evidence_item(item, file_names) for item in submission.evidence],
            )
            for submission in submissions
        ],
        offers=[
            OfferView(
                offer,
                offered_to_client.get(offer.id, escrow - offer.to_freelancer),
                milestone.fee_on_release(offer.to_freelancer) if is_open else None,
            )
            for offer in disputes.list_offers(ctx, dispute.id)
        ],
        events=events,
        messages=conversation(ctx, dispute.id),
        may_write=disputes.DisputeAction.POST_MESSAGE
        in disputes.available_actions_for(access).actions,
        resolve_refused=_resolve_refused(access),
    )


def _resolve_refused(access: disputes.DisputeAccess) -> str | None:
    refusal = disputes.available_actions_for(access).refusals.get(disputes.DisputeAction.RESOLVE)
    return None if refusal is None else refusal.message


# Resolving ------------------------------------------------------------------------------------------------
