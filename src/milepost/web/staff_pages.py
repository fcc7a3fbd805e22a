"""Staff pages: the dispute queue and resolution, manual deposits and payouts to confirm, ledger status.

Everything here is staff only; the read models and services refuse anyone else (PermissionDenied, or
NotFound for a dispute that is not theirs), and the pages answer both with the HTML 404, so a non-staff
user cannot even tell the pages exist.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from fastapi import APIRouter
from fastapi.responses import Response

from milepost.kit.errors import MilepostError, NotFound, PermissionDenied
from milepost.wallets import service as wallets
from milepost.web import confirm
from milepost.web.common import form_errors
from milepost.web.confirm import Confirm
from milepost.web.forms import dispute as dispute_forms
from milepost.web.posts import Post, Posted, register
from milepost.web.session import Web, WebDep
from milepost.web.views import dispute_queue as queue
from milepost.web.views import staff

router = APIRouter(include_in_schema=False)

HIDDEN = (
    NotFound,
    PermissionDenied,
)  # what a non-staff user causes: the page does not exist for them


# The queue ------------------------------------------------------------------------------------------------


def _overview(
    web: WebDep,
    *,
    verify: bool = False,
    cursors: Mapping[str, str | None] | None = None,
    status: int = 200,
    errors: dict[str, str] | None = None,
    values: dict[str, str] | None = None,
) -> Response:
    """The staff home. Verifying the ledger reads every posting, so it runs only when staff press "Verify
    the ledger now" (a GET: it changes nothing), not on every view of the queue; the result says when.
    ``cursors``: where each list's page starts (``staff.DISPUTES_AFTER`` ...); by default, at the top."""
    return web.page(
        "staff.html",
        lambda ctx: staff.staff_overview(ctx, verify=verify, cursors=cursors),
        status=status,
        hidden=HIDDEN,
        errors=errors or {},
        values=values or {},
    )


@router.get("/staff")
def staff_page(
    web: WebDep,
    verify: bool = False,
    disputes_after: str | None = None,
    deposits_after: str | None = None,
    payouts_after: str | None = None,
) -> Response:
    return _overview(
        web,
        verify=verify,
        cursors={
            staff.DISPUTES_AFTER: disputes_after,
            staff.DEPOSITS_AFTER: deposits_after,
            staff.PAYOUTS_AFTER: payouts_after,
        },
    )


def _transfer_refused(web: Web, posted: Posted, error: MilepostError) -> Response:
    """The staff page again, with the message by the refused form (and the reason typed, to correct
    rather than retype)."""
    reason = posted.typed.get("reason")
    return _overview(
        web,
        status=error.status,
        errors={posted.form: error.message},
        values={} if reason is None else {posted.form: reason},
    )


def _transfer(
    path: str,
    form: str,
    call: Callable[..., object],
    *fields: str,
    confirm: Confirm | None = None,
) -> Post:
    """Confirm, reject, mark paid or fail a transfer: back to the staff page."""
    return Post(
        path,
        call,
        "/staff",
        _transfer_refused,
        form=form,
        fields=fields,
        hidden=HIDDEN,
        confirm=confirm,
    )


register(
    router,
    (
        _transfer(
            "/staff/deposits/{deposit_id}/confirm",
            staff.CONFIRM_DEPOSIT,
            wallets.confirm_deposit,
            confirm=confirm.CONFIRM_DEPOSIT,
        ),
        _transfer(
            "/staff/deposits/{deposit_id}/reject",
            staff.REJECT_DEPOSIT,
            wallets.reject_deposit,
            "reason",
        ),
        _transfer(
            "/staff/payouts/{payout_id}/fail", staff.FAIL_PAYOUT, wallets.fail_payout, "reason"
        ),
        _transfer(
            "/staff/payouts/{payout_id}/mark-paid",
            staff.MARK_PAYOUT_PAID,
            wallets.mark_payout_paid,
            confirm=confirm.MARK_PAYOUT_PAID,
        ),
    ),
)


# One dispute ----------------------------------------------------------------------------------------------


def _dispute(
    web: WebDep,
    dispute_id: str,
    *,
    status: int = 200,
    errors: dict[str, str] | None = None,
    values: dict[str, str] | None = None,
) -> Response:
    return web.page(
        "staff_dispute.html",
        lambda ctx: queue.dispute_detail(ctx, dispute_id),
        status=status,
        hidden=HIDDEN,
        errors=errors or {},
        values=values or {},
    )


@router.get("/staff/disputes/{dispute_id}")
def dispute_page(web: WebDep, dispute_id: str) -> Response:
    return _dispute(web, dispute_id)


def _dispute_refused(web: Web, posted: Posted, error: MilepostError) -> Response:
    return _dispute(
        web,
        posted.params["dispute_id"],
        status=error.status,
        errors=form_errors(error, posted.places),
        values=dict(posted.typed),
    )


def _message_refused(web: Web, posted: Posted, error: MilepostError) -> Response:
    # Every refusal of the message form stands by it (the partial's "post_message").
    words = form_errors(error, ())
    return _dispute(
        web,
        posted.params["dispute_id"],
        status=error.status,
        errors={"post_message": " ".join(words.values())},
    )


register(
    router,
    (
        Post(
            "/staff/disputes/{dispute_id}/messages",
            dispute_forms.write_in_dispute,
            "/staff/disputes/{dispute_id}#conversation",
            _message_refused,
            fields=("body", "links"),
            uploads="files",
        ),
        Post(
            "/staff/disputes/{dispute_id}/resolve",
            dispute_forms.resolve_with_freelancer_part,
            "/staff/disputes/{dispute_id}",
            _dispute_refused,
            fields=("to_freelancer", "note"),
            confirm=confirm.RESOLVE,
            # A refusal re-renders the page, which is the 404 for anyone but staff; staff who are a party
            # see why they may not resolve it (403 staff_is_party, as over the API).
            hidden=(NotFound,),
        ),
    ),
)
