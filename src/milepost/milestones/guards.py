"""May this actor take this milestone action now? One answer, asked by the services and by the pages.

``state.authorize`` answers from the role and the status alone. Some actions have preconditions beyond
that, and each is a named guard here, beside the action it guards: the predicate the mutation itself runs
(``authorize_action``, called first by every milestone action and by ``disputes.open_dispute``), and the
one ``available_actions`` runs to tell a page what to offer. A new rule ("a milestone over a configured
amount needs a second approver before release") is one more guard in ``GUARDS``: the service refuses it
and every page stops offering it, with no second copy to drift.

Guards raise the same errors the API has always answered with (PermissionDenied 403, InvalidState 409),
so the refusal a user sees does not depend on who asked.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from milepost.kit.context import Context
from milepost.kit.errors import InvalidState, MilepostError, PermissionDenied
from milepost.milestones.access import MilestoneAccess, load_milestone
from milepost.milestones.state import Action, authorize

Guard = Callable[[MilestoneAccess], None]


def someone_to_pay(access: MilestoneAccess) -> None:
    """Approving and releasing pay the project's freelancer: refused while the project has none."""
    access.freelancer_id  # noqa: B018 -- raises InvalidState no_freelancer


def someone_to_ask(access: MilestoneAccess) -> None:
    """A cancellation request asks the freelancer; without one the client cancels directly."""
    if access.project.freelancer_id is None:
        raise InvalidState(
            "The project has no freelancer yet: cancel the milestone directly.",
            code="cancel_directly",
        )


def no_request_pending(access: MilestoneAccess) -> None:
    """One cancellation request at a time."""
    if access.milestone.cancellation_requested:
        raise InvalidState("A cancellation request is pending already.", code="already_requested")


def request_pending(access: MilestoneAccess) -> None:
    """The freelancer answers a cancellation request only while there is one."""
    if not access.milestone.cancellation_requested:
        raise InvalidState("There is no cancellation request to answer.", code="no_request")


def someone_to_dispute_with(access: MilestoneAccess) -> None:
    """A dispute needs two parties: refused while the project has no freelancer."""
    access.freelancer_id  # noqa: B018 -- raises InvalidState no_freelancer


# The guards of each action, run in order after the state table's role and status check.
GUARDS: Mapping[Action, tuple[Guard, ...]] = {
    Action.APPROVE: (someone_to_pay,),
    Action.RELEASE: (someone_to_pay,),
    Action.REQUEST_CANCELLATION: (someone_to_ask, no_request_pending),
    Action.ANSWER_CANCELLATION: (request_pending,),
    Action.OPEN_DISPUTE: (someone_to_dispute_with,),
}


def authorize_action(access: MilestoneAccess, action: Action) -> None:
    """Raise unless the actor may take ``action`` on the milestone now: the state table (role, then
    status), then the action's guards. Every milestone action calls this before it changes anything."""
    authorize(
        action,
        access.role,
        access.milestone.status,
        project_has_freelancer=access.project.freelancer_id is not None,
    )
    for guard in GUARDS.get(action, ()):
        guard(access)


def refusal(access: MilestoneAccess, action: Action) -> MilepostError | None:
    """Why the actor may not take ``action`` now (the error the service would raise), or None."""
    try:
        authorize_action(access, action)
    except (PermissionDenied, InvalidState) as error:
        return error
    return None


def available_actions_for(access: MilestoneAccess) -> frozenset[Action]:
    """Every action the actor may take on the loaded milestone now: exactly what the services accept
    (given valid input and, for funding, the money to fund with)."""
    return frozenset(action for action in Action if refusal(access, action) is None)


def available_actions(ctx: Context, milestone_id: str) -> frozenset[Action]:
    """Every milestone action the actor may take now; NotFound for anyone who is not a party."""
    return available_actions_for(load_milestone(ctx, milestone_id, lock=False))
