"""The dispute forms: a message with its attachments (the milestone page's and the staff page's), and the
staff dispute page's resolve form, where staff type only the freelancer's part, in the milestone's
currency; the client gets the rest of the escrow."""

from __future__ import annotations

from collections.abc import Sequence

from milepost.disputes import service as disputes
from milepost.disputes.models import Dispute, DisputeMessage
from milepost.kit.context import Context
from milepost.kit.errors import ValidationFailed
from milepost.money import format_money, parse_amount
from milepost.web.uploads import Upload, links_and_files


def write_in_dispute(
    ctx: Context, dispute_id: str, *, body: str, links: str, uploads: Sequence[Upload]
) -> DisputeMessage:
    """A message in the dispute's conversation, with its links (one per line) and uploaded files as its
    attachments; the disputes service decides who may write and what may be attached."""
    attachments = links_and_files(ctx, links, uploads)
    return disputes.post_message(ctx, dispute_id, body=body, attachments=attachments or None)


def resolve_with_freelancer_part(
    ctx: Context, dispute_id: str, *, to_freelancer: object, note: object = None
) -> Dispute:
    """Staff type the freelancer's part in the milestone's currency (the fee still comes off it); the
    client gets the rest of the escrow; a blank note is none. The disputes service checks again, under
    its locks, that the two parts add up to the escrow.
    """
    ctx.require_staff("mediate disputes")
    dispute_access = disputes.load_dispute(ctx, dispute_id, lock=False)
    # The service's own guards first (staff who are a party are refused, 403 staff_is_party), so that
    # the form answers as the API does whatever was typed; the service checks again under its locks.
    disputes.authorize_dispute_action(dispute_access, disputes.DisputeAction.RESOLVE)
    milestone = dispute_access.milestone_access.milestone
    # Nothing to the freelancer is a valid ruling, unlike a payment.
    amount = parse_amount(to_freelancer, milestone.currency, param="to_freelancer", allow_zero=True)
    escrow = milestone.escrow_balance
    if amount > escrow:
        raise ValidationFailed(
            f"The escrow holds {format_money(escrow, milestone.currency)}; the freelancer's part "
            "cannot be more than that.",
            code="more_than_escrow",
            param="to_freelancer",
        )
    return disputes.resolve(
        ctx, dispute_id, to_freelancer=amount, to_client=escrow - amount, note=note or None
    )
