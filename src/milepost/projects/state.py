"""Projects' and proposals' statuses, the moves between them, and the actions their pages may offer.

Plain Python, no database, like ``milestones.state``: services change a status only through
``PROJECTS.move`` and ``PROPOSALS.move``; the guards beside each action in ``projects.service`` decide who
may act when.
"""

from __future__ import annotations

from enum import StrEnum

from milepost.kit.guards import StateTable


class ProjectStatus(StrEnum):
    OPEN = "open"  # taking proposals, no freelancer yet
    AWARDED = "awarded"  # has its freelancer


class ProposalStatus(StrEnum):
    PENDING = "pending"
    ACCEPTED = "accepted"
    DECLINED = "declined"  # another proposal on the project was accepted
    WITHDRAWN = "withdrawn"  # by its freelancer, or replaced by a newer proposal of theirs


class OfferStatus(StrEnum):
    PENDING = "pending"
    ACCEPTED = "accepted"  # the freelancer took it: the project is awarded to them
    DECLINED = "declined"
    WITHDRAWN = "withdrawn"  # by the client, before an answer


class MilestoneRequestStatus(StrEnum):
    PENDING = "pending"
    ACCEPTED = "accepted"  # the client made it a draft milestone with its terms
    REJECTED = "rejected"
    WITHDRAWN = "withdrawn"  # by its freelancer


PROJECTS = StateTable(
    "project",
    {ProjectStatus.OPEN: {ProjectStatus.AWARDED}, ProjectStatus.AWARDED: ()},
)

PROPOSALS = StateTable(
    "proposal",
    {
        ProposalStatus.PENDING: {
            ProposalStatus.ACCEPTED,
            ProposalStatus.DECLINED,
            ProposalStatus.WITHDRAWN,
        },
        ProposalStatus.ACCEPTED: (),
        ProposalStatus.DECLINED: (),
        ProposalStatus.WITHDRAWN: (),
    },
)


class ProjectAction(StrEnum):
    """What can be done to a project (``projects.service.available_actions``)."""

    PROPOSE = "propose"
    ACCEPT_PROPOSAL = "accept_proposal"  # some pending proposal; each proposal answers for itself
    PAUSE = "pause"
    RESUME = "resume"
    CREATE_MILESTONE = "create_milestone"
    ADD_BONUS = "add_bonus"


class OfferAction(StrEnum):
    """What can be done to one offer (``projects.offers.available_offer_actions``)."""

    ACCEPT = "accept"
    DECLINE = "decline"
    WITHDRAW = "withdraw"


class RequestAction(StrEnum):
    """What can be done to one milestone request (``available_request_actions``)."""

    ACCEPT = "accept"
    REJECT = "reject"
    WITHDRAW = "withdraw"


class ProposalAction(StrEnum):
    """What can be done to one proposal (``projects.service.available_proposal_actions``)."""

    ACCEPT = "accept"
    WITHDRAW = "withdraw"


MILESTONE_REQUESTS = StateTable(
    "milestone request",
    {
        MilestoneRequestStatus.PENDING: {
            MilestoneRequestStatus.ACCEPTED,
            MilestoneRequestStatus.REJECTED,
            MilestoneRequestStatus.WITHDRAWN,
        },
        MilestoneRequestStatus.ACCEPTED: (),
        MilestoneRequestStatus.REJECTED: (),
        MilestoneRequestStatus.WITHDRAWN: (),
    },
)

OFFERS = StateTable(
    "offer",
    {
        OfferStatus.PENDING: {OfferStatus.ACCEPTED, OfferStatus.DECLINED, OfferStatus.WITHDRAWN},
        OfferStatus.ACCEPTED: (),
        OfferStatus.DECLINED: (),
        OfferStatus.WITHDRAWN: (),
    },
)
