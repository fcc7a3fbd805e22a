"""The dispute state machine: which statuses a dispute and a settlement offer may move between, with one
guarded setter each.

Plain Python, no database, like ``milestones.state``. A dispute opens ``open`` and ends once: withdrawn by
its opener, or resolved (an accepted offer, staff's split, or the other party's silence). An offer is
open until it is accepted, replaced by its maker's newer offer, or closed when the dispute ends.
The disputes service changes a status only through ``set_status`` and ``set_offer_status``.
"""

from __future__ import annotations

from collections.abc import Mapping

from milepost.disputes.models import Dispute, DisputeStatus, OfferStatus, SettlementOffer
from milepost.kit.errors import InvalidState

D = DisputeStatus
O = OfferStatus  # noqa: E741 -- read as "offer status", like S for the milestone's

ALLOWED_TRANSITIONS: Mapping[DisputeStatus, frozenset[DisputeStatus]] = {
    D.OPEN: frozenset({D.WITHDRAWN, D.RESOLVED}),
    D.WITHDRAWN: frozenset(),
    D.RESOLVED: frozenset(),
}

OFFER_TRANSITIONS: Mapping[OfferStatus, frozenset[OfferStatus]] = {
    O.OPEN: frozenset({O.ACCEPTED, O.SUPERSEDED, O.CLOSED}),
    O.ACCEPTED: frozenset(),
    O.SUPERSEDED: frozenset(),
    O.CLOSED: frozenset(),
}


def set_status(dispute: Dispute, new_status: DisputeStatus) -> DisputeStatus:
    """Move ``dispute`` to ``new_status`` if the table allows it; return the old status."""
    old_status = dispute.status
    if new_status not in ALLOWED_TRANSITIONS[old_status]:
        raise InvalidState(f"A dispute cannot go from {old_status} to {new_status}.")
    dispute.status = new_status
    return old_status


def set_offer_status(offer: SettlementOffer, new_status: OfferStatus) -> OfferStatus:
    """Move ``offer`` to ``new_status`` if the table allows it; return the old status."""
    old_status = offer.status
    if new_status not in OFFER_TRANSITIONS[old_status]:
        raise InvalidState(f"An offer cannot go from {old_status} to {new_status}.")
    offer.status = new_status
    return old_status
