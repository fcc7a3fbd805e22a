"""Staff pages: the dispute queue and resolution, manual deposits and payouts to confirm, ledger status.

Everything here is staff only; the read models and services refuse anyone else (PermissionDenied, or
NotFound for a dispute that is not theirs), and the pages answer both with the HTML 404, so a non-staff
user cannot even tell the pages exist.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from fastapi import APIRouter
from fastapi.responses import Response

from milepost.disputes import queue
from milepost.kit.context import Context
from milepost.kit.errors import NotFound, PermissionDenied
from milepost.ledger.verify import VerifyReport, verify_as_staff
from milepost.wallets import pending
from milepost.wallets import service as wallets
from milepost.web.common import FormText, form_errors
from milepost.web.session import WebDep

router = APIRouter(include_in_schema=False)

HIDDEN = (
    NotFound,
    PermissionDenied,
)  # what a non-staff user causes: the page does not exist for them


# The queue ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Overview:
    disputes: list[queue.QueueLine]
    transfers: pending.PendingTransfers
    ledger: VerifyReport | None
    checked_at: datetime

    @property
    def form_names(self) -> set[str]:
        """The confirm, mark-paid, reject and fail forms on the page; a refusal's message goes next to its
        form."""
        deposits = {line.id for line in self.transfers.deposits}
        payouts = {line.id for line in self.transfers.payouts}
        return (
            {f"deposit-{id_}" for id_ in deposits}
            | {f"reject-{id_}" for id_ in deposits}
            | {f"payout-{id_}" for id_ in payouts}
            | {f"fail-{id_}" for id_ in payouts}
        )


def _overview(
    web: WebDep,
    *,
    verify: bool = False,
    status: int = 200,
    errors: dict[str, str] | None = None,
    values: dict[str, str] | None = None,
) -> Response:
    """The staff home. Verifying the ledger reads every posting, so it runs only when staff press "Verify
    the ledger now" (a GET: it changes nothing), not on every view of the queue; the result says when."""

    def load(ctx: Context) -> _Overview:
        return _Overview(
            disputes=queue.dispute_queue(ctx),
            transfers=pending.pending_transfers(ctx),
            ledger=verify_as_staff(ctx) if verify else None,
            checked_at=ctx.now,
        )

    return web.page(
        "staff.html", load, status=status, hidden=HIDDEN, errors=errors or {}, values=values or {}
    )


@router.get("/staff")
def staff_page(web: WebDep, verify: bool = False) -> Response:
    return _overview(web, verify=verify)


def _transfer_action(
    web: WebDep, csrf_token: str, name: str, action: Any, *, reason: str | None = None
) -> Response:
    """Confirm, reject, mark paid or fail a transfer; on refusal, the staff page with the error by its
    form (and the reason typed, to correct rather than retype)."""
    return web.act(
        csrf_token,
        action,
        done=lambda _: "/staff",
        refused=lambda error: _overview(
            web,
            status=error.status,
            errors={name: error.message},
            values={} if reason is None else {name: reason},
        ),
        hidden=HIDDEN,
    )


@router.post("/staff/deposits/{deposit_id}/confirm")
def confirm_deposit(web: WebDep, deposit_id: str, csrf_token: FormText = "") -> Response:
    return _transfer_action(
        web,
        csrf_token,
        f"deposit-{deposit_id}",
        lambda ctx: wallets.confirm_deposit(ctx, deposit_id),
    )


@router.post("/staff/deposits/{deposit_id}/reject")
def reject_deposit(
    web: WebDep, deposit_id: str, reason: FormText = "", csrf_token: FormText = ""
) -> Response:
    return _transfer_action(
        web,
        csrf_token,
        f"reject-{deposit_id}",
        lambda ctx: wallets.reject_deposit(ctx, deposit_id, reason=reason),
        reason=reason,
    )


@router.post("/staff/payouts/{payout_id}/fail")
def fail_payout(
    web: WebDep, payout_id: str, reason: FormText = "", csrf_token: FormText = ""
) -> Response:
    return _transfer_action(
        web,
        csrf_token,
        f"fail-{payout_id}",
        lambda ctx: wallets.fail_payout(ctx, payout_id, reason=reason),
        reason=reason,
    )


@router.post("/staff/payouts/{payout_id}/mark-paid")
def mark_payout_paid(web: WebDep, payout_id: str, csrf_token: FormText = "") -> Response:
    return _transfer_action(
        web,
        csrf_token,
        f"payout-{payout_id}",
        lambda ctx: wallets.mark_payout_paid(ctx, payout_id),
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


@router.post("/staff/disputes/{dispute_id}/resolve")
def resolve(
    web: WebDep,
    dispute_id: str,
    to_freelancer: FormText = "",
    note: FormText = "",
    csrf_token: FormText = "",
) -> Response:
    return web.act(
        csrf_token,
        lambda ctx: queue.resolve_with_freelancer_part(
            ctx, dispute_id, to_freelancer=to_freelancer, note=note or None
        ),
        done=lambda _: f"/staff/disputes/{dispute_id}",
        refused=lambda error: _dispute(
            web,
            dispute_id,
            status=error.status,
            errors=form_errors(error, ("to_freelancer", "note")),
            values={"to_freelancer": to_freelancer, "note": note},
        ),
        # A refusal re-renders the page, which is the 404 for anyone but staff; staff who are a party
        # see why they may not resolve it (403 staff_is_party, as over the API).
        hidden=(NotFound,),
    )
