from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    CheckConstraint,
    ColumnElement,
    Date,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    and_,
    case,
    event,
    literal_column,
)
from sqlalchemy.engine import Connection
from sqlalchemy.ext.hybrid import hybrid_property
from sqlalchemy.orm import Mapped, Mapper, PassiveFlag, mapped_column, object_session
from sqlalchemy.orm.attributes import get_history

from milepost.kit.db import Base, Money, UTCDateTime, increment_at_commit, json_column, str_enum
from milepost.milestones.state import MilestoneStatus
from milepost.money import cumulative_fee
from milepost.projects.models import ProjectTotals


class Milestone(Base):
    __tablename__ = "milestones"
    __table_args__ = (
        CheckConstraint("amount > 0", name="amount_positive"),
        CheckConstraint(
            "funded_amount >= 0 AND released_amount >= 0 AND refunded_amount >= 0 "
            "AND fee_amount >= 0 AND late_fee_amount >= 0",
            name="amounts_not_negative",
        ),
        CheckConstraint(
            "released_amount + refunded_amount <= funded_amount", name="escrow_not_negative"
        ),
        CheckConstraint("fee_amount <= released_amount", name="fee_within_released"),
        UniqueConstraint("project_id", "position"),
        # The project page's totals, summed from the index alone (web/views/project.py); the drafts past
        # fund-by of a project (projects.service.overdue_milestone_ids) without reading its other rows.
        Index(
            "ix_milestones_project_totals",
            "project_id",
            "status",
            "fund_by",
            "amount",
            "funded_amount",
            "released_amount",
            "refunded_amount",
        ),
        # The reads of one party's milestones (the dashboard, balances), which must not grow with the
        # ended ones: a client's or a project's newest; a client's or a project's in some statuses
        # (the open ones); and, below the class, those whose escrow holds money.
        Index("ix_milestones_client_id_created_at", "client_id", "created_at"),
        Index("ix_milestones_project_id_created_at", "project_id", "created_at"),
        Index("ix_milestones_client_id_status", "client_id", "status"),
        Index("ix_milestones_project_id_status", "project_id", "status"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    project_id: Mapped[str] = mapped_column(ForeignKey("projects.id"), index=True)
    client_id: Mapped[str] = mapped_column(ForeignKey("users.id"), index=True)
    position: Mapped[int] = mapped_column(Integer)
    # active_history: the value before a change is at hand for the project's totals (below).
    status: Mapped[MilestoneStatus] = mapped_column(
        str_enum(MilestoneStatus), index=True, active_history=True
    )

    # Terms: editable while draft, frozen from funding on.
    title: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    amount: Mapped[int] = mapped_column(Money, active_history=True)
    currency: Mapped[str] = mapped_column(String(3))
    due_date: Mapped[date | None] = mapped_column(Date)
    fund_by: Mapped[date | None] = mapped_column(Date)
    acceptance_criteria: Mapped[list[str]] = mapped_column(json_column())
    required_evidence: Mapped[list[str]] = mapped_column(json_column())
    exclusions: Mapped[list[str]] = mapped_column(json_column())
    dependencies: Mapped[list[str]] = mapped_column(json_column())
    review_period_days: Mapped[int] = mapped_column(Integer)
    release_delay_days: Mapped[int] = mapped_column(Integer)
    late_fee: Mapped[dict[str, Any] | None] = mapped_column(json_column())

    # Money, kept in step with the ledger (verify checks the escrow account against these).
    funded_amount: Mapped[int] = mapped_column(Money, default=0, active_history=True)
    released_amount: Mapped[int] = mapped_column(  # gross, fee included
        Money, default=0, active_history=True
    )
    refunded_amount: Mapped[int] = mapped_column(Money, default=0, active_history=True)
    fee_amount: Mapped[int] = mapped_column(Money, default=0)
    late_fee_amount: Mapped[int] = mapped_column(Money, default=0)
    fee_rate_bps: Mapped[int | None] = mapped_column(Integer)  # fixed at funding

    cancellation_requested: Mapped[bool] = mapped_column(default=False)
    cancellation_reason: Mapped[str | None] = mapped_column(Text)
    # While a request is pending: when it is granted if the freelancer has not answered (fixed when asked).
    cancellation_answer_due_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)

    funded_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    submitted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    review_due_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    approved_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    release_due_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)

    # The head of the milestone's audit chain (see audit.record): its length and its newest hash.
    event_count: Mapped[int] = mapped_column(Integer, default=0)
    last_event_hash: Mapped[str] = mapped_column(String(64), default="0" * 64)
    # The newest event's keyed MAC (None: unsigned), so appending needs no read of the previous event.
    last_event_mac: Mapped[str | None] = mapped_column(String(64))

    @hybrid_property
    def escrow_balance(self) -> int:
        """What the milestone's escrow holds: funded, less what was released and refunded. The same
        expression in SQL (``Milestone.escrow_balance``), for sums over many milestones."""
        return escrow_of(self.funded_amount, self.released_amount, self.refunded_amount)

    def fee_on_release(self, amount: int) -> int:
        """The platform fee a release of ``amount`` out of the escrow takes from the freelancer's part
        (at the rate fixed at funding, on the cumulative amount: see ``money.cumulative_fee``)."""
        return cumulative_fee(self.released_amount, amount, self.fee_amount, self.fee_rate_bps or 0)

    @hybrid_property
    def planned_share(self) -> int:
        """What the milestone adds to its project's planned total: its amount, unless cancelled. The
        same expression in SQL (``Milestone.planned_share``), for ``ledger verify``'s sums."""
        return planned_share_of(self.amount, self.status)

    @planned_share.inplace.expression
    @classmethod
    def _planned_share_expression(cls) -> ColumnElement[int]:
        return case((cls.status != MilestoneStatus.CANCELLED, cls.amount), else_=0)


def planned_share_of(amount: int, status: MilestoneStatus) -> int:
    return 0 if status == MilestoneStatus.CANCELLED else amount


def escrow_of(funded: int, released: int, refunded: int) -> int:
    return funded - released - refunded


# A project's totals (projects.models.ProjectTotals) follow its milestones: each INSERT or UPDATE of a
# milestone adds the change of its shares to them, at commit (kit.db.increment_at_commit). Here, at the
# flush, rather than in each service that changes a milestone, so that no change can forget them.


@event.listens_for(Milestone, "before_insert")
def _count_new(_mapper: Mapper[Milestone], _connection: Connection, milestone: Milestone) -> None:
    _add_to_totals(milestone, _shares(milestone, getattr))


@event.listens_for(Milestone, "before_update")
def _count_change(
    _mapper: Mapper[Milestone], _connection: Connection, milestone: Milestone
) -> None:
    def before(_milestone: Milestone, key: str) -> Any:
        # The attribute's own history: ``inspect(milestone).attrs[key]`` would first build a view of
        # every attribute of the milestone, at each of the six reads.
        deleted = get_history(milestone, key, PassiveFlag.PASSIVE_NO_INITIALIZE).deleted
        return deleted[0] if deleted else getattr(milestone, key)

    now, then = _shares(milestone, getattr), _shares(milestone, before)
    _add_to_totals(milestone, {column: now[column] - then[column] for column in now})


def _shares(milestone: Milestone, value: Callable[[Milestone, str], Any]) -> dict[str, int]:
    """What the milestone adds to each of its project's totals, its columns read with ``value``."""
    funded, released, refunded = (
        value(milestone, key) or 0
        for key in ("funded_amount", "released_amount", "refunded_amount")
    )
    return {
        "planned_amount": planned_share_of(value(milestone, "amount"), value(milestone, "status")),
        "in_escrow_amount": escrow_of(funded, released, refunded),
        "released_amount": released,
    }


def _add_to_totals(milestone: Milestone, deltas: dict[str, int]) -> None:
    session = object_session(milestone)
    if session is not None and any(deltas.values()):
        increment_at_commit(session, ProjectTotals, milestone.project_id, **deltas)


def escrow_held() -> ColumnElement[int]:
    """``Milestone.escrow_balance`` in SQL."""
    return Milestone.funded_amount - Milestone.released_amount - Milestone.refunded_amount


def holds_escrow() -> ColumnElement[bool]:
    """Milestones whose escrow holds money: the open ones that were funded, a few among the many that
    ended. The WHERE of the two partial indexes below: a query that filters with this same expression
    may read only those (both databases match a partial index's WHERE against the query's expression,
    so the zero is a literal: a bound parameter would not match)."""
    return escrow_held() > literal_column("0")


# The columns the escrow sums read (the dashboard's totals, the balances) are in the indexes themselves:
# the sums are read from these two small indexes alone, and SQLite, which keeps no statistics here, takes
# them over the other indexes of the same party for that reason.
_SUMMED = ("currency", "status", "funded_amount", "released_amount", "refunded_amount")
Index(
    "ix_milestones_client_id_holding",
    Milestone.client_id,
    Milestone.project_id,  # the join to the project, which the party's condition may name
    *(getattr(Milestone, column) for column in _SUMMED),
    sqlite_where=holds_escrow(),
    postgresql_where=holds_escrow(),
)
Index(
    "ix_milestones_project_id_holding",
    Milestone.project_id,
    *(getattr(Milestone, column) for column in _SUMMED),
    sqlite_where=holds_escrow(),
    postgresql_where=holds_escrow(),
)


def funding_overdue(today: date) -> ColumnElement[bool]:
    """Milestones whose funding is due or overdue on ``today``: still draft, and the fund-by date has
    come (the fund-by day itself counts: it is the day of the first reminder)."""
    return and_(Milestone.status == MilestoneStatus.DRAFT, Milestone.fund_by <= today)


class Submission(Base):
    __tablename__ = "submissions"
    __table_args__ = (UniqueConstraint("milestone_id", "revision"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    milestone_id: Mapped[str] = mapped_column(ForeignKey("milestones.id"), index=True)
    revision: Mapped[int] = mapped_column(Integer)
    submitted_by: Mapped[str] = mapped_column(ForeignKey("users.id"))
    note: Mapped[str] = mapped_column(Text, default="")
    # [{type: link, url} | {type: file, file_id} | {type: text, text}]
    evidence: Mapped[list[dict[str, Any]]] = mapped_column(json_column())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
