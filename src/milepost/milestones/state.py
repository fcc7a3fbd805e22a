"""The milestone state machine: statuses, who may do what from which state, and one guarded mutator.

Plain Python, no database: PRODUCT.md's lifecycle table written down once. Services call
``guards.authorize_action`` (this table's ``authorize``, then the action's guards) before acting and
change status only through ``set_status``.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import Protocol

from milepost.kit.errors import InvalidState, PermissionDenied


class MilestoneStatus(StrEnum):
    DRAFT = "draft"
    FUNDED = "funded"
    SUBMITTED = "submitted"
    CHANGES_REQUESTED = "changes_requested"
    APPROVED = "approved"
    RELEASED = "released"
    CANCELLED = "cancelled"
    DISPUTED = "disputed"
    RESOLVED = "resolved"


S = MilestoneStatus

TERMINAL = frozenset({S.RELEASED, S.CANCELLED, S.RESOLVED})
# States in which the escrow holds the client's money and work may still be going on.
IN_PROGRESS = frozenset({S.FUNDED, S.SUBMITTED, S.CHANGES_REQUESTED})

ALLOWED_TRANSITIONS: Mapping[MilestoneStatus, frozenset[MilestoneStatus]] = {
    S.DRAFT: frozenset({S.FUNDED, S.CANCELLED}),
    # A partial release that empties the escrow ends the milestone from any money-holding state.
    S.FUNDED: frozenset({S.SUBMITTED, S.RELEASED, S.CANCELLED, S.DISPUTED}),
    S.SUBMITTED: frozenset({S.CHANGES_REQUESTED, S.APPROVED, S.RELEASED, S.CANCELLED, S.DISPUTED}),
    S.CHANGES_REQUESTED: frozenset({S.SUBMITTED, S.RELEASED, S.CANCELLED, S.DISPUTED}),
    S.APPROVED: frozenset({S.RELEASED, S.DISPUTED}),
    # Withdrawing a dispute returns the milestone to the state it was in when the dispute opened.
    S.DISPUTED: frozenset({S.FUNDED, S.SUBMITTED, S.CHANGES_REQUESTED, S.APPROVED, S.RESOLVED}),
    S.RELEASED: frozenset(),
    S.CANCELLED: frozenset(),
    S.RESOLVED: frozenset(),
}


class Role(StrEnum):
    CLIENT = "client"
    FREELANCER = "freelancer"
    STAFF = "staff"
    SYSTEM = "system"  # time-driven work: auto-approval, delayed release, dispute deadlines


class Action(StrEnum):
    EDIT = "edit"
    FUND = "fund"
    SUBMIT = "submit"
    REQUEST_CHANGES = "request_changes"
    APPROVE = "approve"
    RELEASE = "release"
    REQUEST_RELEASE = "request_release"
    CANCEL = "cancel"
    REQUEST_CANCELLATION = "request_cancellation"
    ANSWER_CANCELLATION = "answer_cancellation"
    OPEN_DISPUTE = "open_dispute"


A = Action

# From which states each action may be taken.
ACTION_FROM: Mapping[Action, frozenset[MilestoneStatus]] = {
    A.EDIT: frozenset({S.DRAFT}),
    A.FUND: frozenset({S.DRAFT}),
    A.SUBMIT: frozenset({S.FUNDED, S.CHANGES_REQUESTED}),
    A.REQUEST_CHANGES: frozenset({S.SUBMITTED}),
    A.APPROVE: frozenset({S.SUBMITTED}),
    A.RELEASE: frozenset({S.FUNDED, S.SUBMITTED, S.CHANGES_REQUESTED, S.APPROVED}),
    A.REQUEST_RELEASE: frozenset({S.SUBMITTED, S.CHANGES_REQUESTED, S.APPROVED}),
    A.CANCEL: frozenset({S.DRAFT}) | IN_PROGRESS,
    A.REQUEST_CANCELLATION: IN_PROGRESS,
    A.ANSWER_CANCELLATION: IN_PROGRESS,
    A.OPEN_DISPUTE: IN_PROGRESS | {S.APPROVED},
}

# Who may ever take each action, and the error code for anyone else.
ACTION_ROLES: Mapping[Action, tuple[frozenset[Role], str]] = {
    A.EDIT: (frozenset({Role.CLIENT}), "only_client_can_edit"),
    A.FUND: (frozenset({Role.CLIENT}), "only_client_can_fund"),
    A.SUBMIT: (frozenset({Role.FREELANCER}), "only_freelancer_can_submit"),
    A.REQUEST_CHANGES: (frozenset({Role.CLIENT}), "only_client_can_review"),
    A.APPROVE: (frozenset({Role.CLIENT, Role.SYSTEM}), "only_client_can_review"),
    A.RELEASE: (frozenset({Role.CLIENT, Role.SYSTEM}), "only_client_can_release"),
    A.REQUEST_RELEASE: (frozenset({Role.FREELANCER}), "only_freelancer_can_request_release"),
    A.CANCEL: (
        frozenset({Role.CLIENT, Role.FREELANCER, Role.STAFF}),
        "not_allowed_to_cancel",
    ),
    A.REQUEST_CANCELLATION: (frozenset({Role.CLIENT}), "only_client_can_request_cancellation"),
    # The system answers for a freelancer who let the answer period pass (schedule.service).
    A.ANSWER_CANCELLATION: (
        frozenset({Role.FREELANCER, Role.SYSTEM}),
        "only_freelancer_can_answer",
    ),
    A.OPEN_DISPUTE: (frozenset({Role.CLIENT, Role.FREELANCER}), "only_parties_can_dispute"),
}


def authorize(
    action: Action, role: Role, status: MilestoneStatus, *, project_has_freelancer: bool
) -> None:
    """Raise PermissionDenied or InvalidState unless ``role`` may take ``action`` in ``status``.

    The role is checked first where the role may never take the action at all (403), then the state
    (409), then rules that depend on both, such as who may cancel a funded milestone (403).
    """
    roles, code = ACTION_ROLES[action]
    if role not in roles:
        raise PermissionDenied(
            f"A {role} may not {action.replace('_', ' ')} a milestone.", code=code
        )
    if status not in ACTION_FROM[action]:
        raise InvalidState(f"Cannot {action.replace('_', ' ')} a milestone that is {status}.")
    if action is A.CANCEL:
        _authorize_cancel(role, status, project_has_freelancer=project_has_freelancer)


def _authorize_cancel(role: Role, status: MilestoneStatus, *, project_has_freelancer: bool) -> None:
    if status is S.DRAFT:
        if role is Role.FREELANCER:
            raise PermissionDenied(
                "Only the client or staff can cancel a draft milestone.",
                code="only_client_can_cancel",
            )
        return
    # Money is in escrow: the client's protection is the freelancer's word, or staff.
    if role is Role.CLIENT and project_has_freelancer:
        raise PermissionDenied(
            "Only the freelancer or staff can cancel a funded milestone; request a cancellation instead.",
            code="only_freelancer_can_cancel",
        )


class HasStatus(Protocol):
    status: MilestoneStatus


def set_status(milestone: HasStatus, new_status: MilestoneStatus) -> MilestoneStatus:
    """Move ``milestone`` to ``new_status`` if the table allows it; return the old status."""
    old_status = milestone.status
    if new_status not in ALLOWED_TRANSITIONS[old_status]:
        raise InvalidState(f"A milestone cannot go from {old_status} to {new_status}.")
    milestone.status = new_status
    return old_status


def allowed_actions(
    role: Role, status: MilestoneStatus, *, project_has_freelancer: bool
) -> frozenset[Action]:
    """Every action ``role`` may take in ``status``: what ``authorize`` would let through, on role and
    state alone. What a page offers is ``guards.available_actions``: these, narrowed by the guards."""
    allowed = set()
    for action in Action:
        try:
            authorize(action, role, status, project_has_freelancer=project_has_freelancer)
        except (PermissionDenied, InvalidState):
            continue
        allowed.add(action)
    return frozenset(allowed)
