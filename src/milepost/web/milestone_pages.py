"""The milestone page and the forms of its actions; its evidence files and receipts."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, File, UploadFile
from fastapi.responses import FileResponse, HTMLResponse, Response

from milepost.disputes import service as disputes
from milepost.feedback import service as feedback
from milepost.files import service as file_service
from milepost.files.endpoints import content_disposition
from milepost.files.models import StoredFile
from milepost.kit.context import Context
from milepost.kit.errors import MilepostError, NotFound
from milepost.kit.headers import DOCUMENT_CSP, HTML_HEADERS
from milepost.milestones import service as milestones
from milepost.milestones.state import Action
from milepost.money import parse_amount
from milepost.receipts import render as receipt_render
from milepost.receipts import service as receipts
from milepost.web.common import FormText, not_found
from milepost.web.forms import milestone as milestone_forms
from milepost.web.session import SignedOut, WebDep
from milepost.web.views import milestone as page_view

router = APIRouter(include_in_schema=False)


# Milestones --------------------------------------------------------------------------------------------


def _milestone(
    web: WebDep,
    milestone_id: str,
    *,
    status: int = 200,
    errors: dict[str, str] | None = None,
    values: dict[str, str] | None = None,
) -> Response:
    return web.page(
        "milestone.html",
        lambda ctx: page_view.milestone_page(ctx, milestone_id),
        status=status,
        errors=errors or {},
        values=values or {},  # what was typed into a refused form, to type again no more
        Action=Action,
        Form=page_view.Form,
    )


@router.get("/milestones/{milestone_id}")
def milestone_page(web: WebDep, milestone_id: str) -> Response:
    return _milestone(web, milestone_id)


def _act(
    web: WebDep,
    milestone_id: str,
    csrf_token: str,
    name: str,
    action: Any,
    *,
    values: dict[str, str] | None = None,
) -> Response:
    """Run one milestone action from its form; on refusal, the page again with the error by that form
    (and, given ``values``, what was typed in it)."""
    return web.act(
        csrf_token,
        action,
        done=lambda _: f"/milestones/{milestone_id}",
        refused=lambda error: _milestone(
            web, milestone_id, status=error.status, errors={name: error.message}, values=values
        ),
    )


@router.post("/milestones/{milestone_id}/fund")
def fund(web: WebDep, milestone_id: str, csrf_token: FormText = "") -> Response:
    return _act(
        web, milestone_id, csrf_token, "fund", lambda ctx: milestones.fund(ctx, milestone_id)
    )


@router.post("/milestones/{milestone_id}/submit")
def submit(
    web: WebDep,
    milestone_id: str,
    note: FormText = "",
    links: FormText = "",
    text: FormText = "",
    files: Annotated[list[UploadFile] | None, File()] = None,
    csrf_token: FormText = "",
) -> Response:
    """The delivery: note, links, text and uploaded files, as one submission."""
    if not web.csrf_ok(csrf_token, signed_in=True):
        return web.forbidden()
    typed = {"note": note, "links": links, "text": text}
    try:
        # Signed in before anything is written to storage (as the API's upload does).
        web.read(lambda ctx: ctx.require_actor())
        # An empty file input still sends a part, without a file name.
        uploads = [
            milestone_forms.Upload(file_service.stage(web.settings, upload.file), upload.filename)
            for upload in files or []
            if upload.filename
        ]
    except SignedOut:
        return web.to_login()
    except MilepostError as error:
        return _milestone(
            web, milestone_id, status=error.status, errors={"submit": error.message}, values=typed
        )
    return _act(
        web,
        milestone_id,
        csrf_token,
        "submit",
        lambda ctx: milestone_forms.submit_delivery(
            ctx, milestone_id, note=note, links=links, text=text, uploads=uploads
        ),
        values=typed,
    )


@router.post("/milestones/{milestone_id}/request-changes")
def request_changes(
    web: WebDep, milestone_id: str, reason: FormText = "", csrf_token: FormText = ""
) -> Response:
    return _act(
        web,
        milestone_id,
        csrf_token,
        "request_changes",
        lambda ctx: milestones.request_changes(ctx, milestone_id, reason=reason),
    )


@router.post("/milestones/{milestone_id}/release")
def release(
    web: WebDep, milestone_id: str, amount: FormText = "", csrf_token: FormText = ""
) -> Response:
    def release_part(ctx: Context) -> None:
        # The amount is typed in the milestone's currency.
        currency = milestones.get_milestone(ctx, milestone_id).currency
        milestones.release(ctx, milestone_id, amount=parse_amount(amount, currency))

    return _act(web, milestone_id, csrf_token, "release", release_part)


@router.post("/milestones/{milestone_id}/approve")
def approve(web: WebDep, milestone_id: str, csrf_token: FormText = "") -> Response:
    return _act(
        web, milestone_id, csrf_token, "approve", lambda ctx: milestones.approve(ctx, milestone_id)
    )


@router.post("/milestones/{milestone_id}/request-release")
def request_release(web: WebDep, milestone_id: str, csrf_token: FormText = "") -> Response:
    return _act(
        web,
        milestone_id,
        csrf_token,
        "request_release",
        lambda ctx: milestones.request_release(ctx, milestone_id),
    )


@router.post("/milestones/{milestone_id}/cancel")
def cancel(
    web: WebDep, milestone_id: str, reason: FormText = "", csrf_token: FormText = ""
) -> Response:
    return _act(
        web,
        milestone_id,
        csrf_token,
        "cancel",
        lambda ctx: milestones.cancel(ctx, milestone_id, reason=reason or None),
    )


@router.post("/milestones/{milestone_id}/cancellation-request")
def request_cancellation(
    web: WebDep, milestone_id: str, reason: FormText = "", csrf_token: FormText = ""
) -> Response:
    return _act(
        web,
        milestone_id,
        csrf_token,
        "request_cancellation",
        lambda ctx: milestones.request_cancellation(ctx, milestone_id, reason=reason),
    )


@router.post("/milestones/{milestone_id}/cancellation-request/accept")
def accept_cancellation(web: WebDep, milestone_id: str, csrf_token: FormText = "") -> Response:
    return _act(
        web,
        milestone_id,
        csrf_token,
        "answer_cancellation",
        lambda ctx: milestones.answer_cancellation(ctx, milestone_id, accept=True),
    )


@router.post("/milestones/{milestone_id}/cancellation-request/decline")
def decline_cancellation(web: WebDep, milestone_id: str, csrf_token: FormText = "") -> Response:
    return _act(
        web,
        milestone_id,
        csrf_token,
        "answer_cancellation",
        lambda ctx: milestones.answer_cancellation(ctx, milestone_id, accept=False),
    )


# Disputes ------------------------------------------------------------------------------------------------


@router.post("/milestones/{milestone_id}/dispute")
def open_dispute(
    web: WebDep, milestone_id: str, reason: FormText = "", csrf_token: FormText = ""
) -> Response:
    return _act(
        web,
        milestone_id,
        csrf_token,
        "open_dispute",
        lambda ctx: disputes.open_dispute(ctx, milestone_id, reason=reason),
    )


@router.post("/milestones/{milestone_id}/dispute/offers")
def make_offer(
    web: WebDep, milestone_id: str, amount: FormText = "", csrf_token: FormText = ""
) -> Response:
    def offer(ctx: Context) -> None:
        # The freelancer's part is typed in the milestone's currency.
        currency = milestones.get_milestone(ctx, milestone_id).currency
        disputes.make_offer(
            ctx,
            milestone_forms.open_dispute_id(ctx, milestone_id),
            # Offering the freelancer nothing (all back to the client) is a valid offer.
            to_freelancer=parse_amount(amount, currency, param="to_freelancer", allow_zero=True),
        )

    return _act(web, milestone_id, csrf_token, page_view.Form.MAKE_OFFER, offer)


@router.post("/milestones/{milestone_id}/dispute/offers/{offer_id}/accept")
def accept_offer(
    web: WebDep, milestone_id: str, offer_id: str, csrf_token: FormText = ""
) -> Response:
    return _act(
        web,
        milestone_id,
        csrf_token,
        page_view.Form.ACCEPT_OFFER,
        lambda ctx: disputes.accept_offer(
            ctx, milestone_forms.open_dispute_id(ctx, milestone_id), offer_id
        ),
    )


@router.post("/milestones/{milestone_id}/dispute/withdraw")
def withdraw_dispute(web: WebDep, milestone_id: str, csrf_token: FormText = "") -> Response:
    return _act(
        web,
        milestone_id,
        csrf_token,
        page_view.Form.WITHDRAW_DISPUTE,
        lambda ctx: disputes.withdraw(ctx, milestone_forms.open_dispute_id(ctx, milestone_id)),
    )


# Feedback ------------------------------------------------------------------------------------------------


@router.post("/milestones/{milestone_id}/feedback")
def leave_feedback(
    web: WebDep,
    milestone_id: str,
    rating: FormText = "",
    comment: FormText = "",
    csrf_token: FormText = "",
) -> Response:
    # A rating that is not a number goes through as typed, for the service to refuse.
    value: object = int(rating) if rating.strip().isdigit() else rating
    return _act(
        web,
        milestone_id,
        csrf_token,
        page_view.Form.LEAVE_FEEDBACK,
        lambda ctx: feedback.leave_feedback(ctx, milestone_id, rating=value, comment=comment),
    )


# Evidence files and receipts, for whoever the services let see them --------------------------------------

# Receipts are the receipts package's own standalone document, which styles itself inline (its CSP); the
# other security headers of HTML come from app.SecurityHeadersMiddleware, and the PDF carries them too.
_RECEIPT_HEADERS = {
    **HTML_HEADERS,
    "Cache-Control": "private, no-store",
    "Content-Security-Policy": DOCUMENT_CSP,
}


@router.get("/files/{file_id}")
def download_file(web: WebDep, file_id: str) -> Response:
    def find(ctx: Context) -> tuple[StoredFile, Path]:
        stored = file_service.get_for_download(ctx, file_id)
        return stored, file_service.open_blob(ctx, stored)

    try:
        stored, path = web.read(find)
    except SignedOut:
        return web.to_login()
    except NotFound:
        return not_found(web)
    return FileResponse(
        path,
        media_type=stored.content_type,
        headers={
            "Content-Disposition": content_disposition(stored.filename),
            "X-Content-Type-Options": "nosniff",
            "Cache-Control": "private, no-store",
        },
    )


def _receipt(web: WebDep, receipt_id: str) -> receipts.Receipt | Response:
    try:
        return web.read(lambda ctx: receipts.get_receipt(ctx, receipt_id))
    except SignedOut:
        return web.to_login()
    except NotFound:
        return not_found(web)


# Declared first: "/receipts/{id}" would otherwise take "je_....pdf" as the id.
@router.get("/receipts/{receipt_id}.pdf")
def receipt_pdf(web: WebDep, receipt_id: str) -> Response:
    receipt = _receipt(web, receipt_id)
    if isinstance(receipt, Response):
        return receipt
    return Response(
        receipt_render.to_pdf(receipt),
        media_type="application/pdf",
        headers={
            **_RECEIPT_HEADERS,
            "Content-Disposition": f'inline; filename="receipt-{receipt.entry_id}.pdf"',
        },
    )


@router.get("/receipts/{receipt_id}")
def receipt_page(web: WebDep, receipt_id: str) -> Response:
    receipt = _receipt(web, receipt_id)
    if isinstance(receipt, Response):
        return receipt
    return HTMLResponse(receipt_render.to_html(receipt), headers=_RECEIPT_HEADERS)
