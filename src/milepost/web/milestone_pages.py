"""The milestone page and the forms of its actions; its evidence files and receipts."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse, HTMLResponse, Response

from milepost.disputes import service as disputes
from milepost.files import service as file_service
from milepost.files.endpoints import content_disposition
from milepost.files.models import StoredFile
from milepost.kit.context import Context
from milepost.kit.errors import MilepostError, NotFound
from milepost.kit.headers import DOCUMENT_CSP, HTML_HEADERS
from milepost.milestones import service as milestones
from milepost.milestones.state import Action
from milepost.receipts import render as receipt_render
from milepost.receipts import service as receipts
from milepost.web import confirm
from milepost.web.common import not_found
from milepost.web.confirm import Confirm
from milepost.web.forms import milestone as milestone_forms
from milepost.web.posts import Post, Posted, register
from milepost.web.session import SignedOut, Web, WebDep
from milepost.web.views import milestone as page_view
from milepost.web.views.milestone import Form

router = APIRouter(include_in_schema=False)

MILESTONE = "/milestones/{milestone_id}"


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
        Form=Form,
    )


@router.get("/milestones/{milestone_id}")
def milestone_page(web: WebDep, milestone_id: str) -> Response:
    return _milestone(web, milestone_id)


def _refused(web: Web, posted: Posted, error: MilepostError) -> Response:
    """The milestone page again, with the message by the refused form (and what was typed in it)."""
    return _milestone(
        web,
        posted.params["milestone_id"],
        status=error.status,
        errors={posted.form: error.message},
        values=dict(posted.typed),
    )


def _form(
    path: str,
    form: str,
    call: Callable[..., object],
    *fields: str,
    confirm: Confirm | None = None,
    uploads: str | None = None,
) -> Post:
    """A form of the milestone page: back to the page when it is taken, or when it is refused."""
    return Post(
        MILESTONE + path,
        call,
        MILESTONE,
        _refused,
        form=form,
        fields=fields,
        confirm=confirm,
        uploads=uploads,
    )


# Every form of the page: the path under the milestone's, the form's name on the page, the call its
# fields make (and the file input of those that carry files).
register(
    router,
    (
        _form("/fund", Action.FUND, milestones.fund),
        _form("/deposit-and-fund", Action.FUND, milestone_forms.deposit_and_fund, "provider"),
        _form("/request-changes", Action.REQUEST_CHANGES, milestones.request_changes, "reason"),
        _form(
            "/release",
            Action.RELEASE,
            milestone_forms.release,
            "amount",
            confirm=confirm.RELEASE,
        ),
        _form(
            "/approve",
            Action.APPROVE,
            milestones.approve,
            confirm=confirm.APPROVE,
        ),
        _form("/request-release", Action.REQUEST_RELEASE, milestones.request_release),
        _form(
            "/cancel",
            Action.CANCEL,
            milestone_forms.cancel,
            "reason",
            confirm=confirm.CANCEL,
        ),
        _form(
            "/cancellation-request",
            Action.REQUEST_CANCELLATION,
            milestones.request_cancellation,
            "reason",
        ),
        _form(
            "/cancellation-request/accept",
            Action.ANSWER_CANCELLATION,
            partial(milestones.answer_cancellation, accept=True),
            confirm=confirm.ACCEPT_CANCELLATION,
        ),
        _form(
            "/cancellation-request/decline",
            Action.ANSWER_CANCELLATION,
            partial(milestones.answer_cancellation, accept=False),
        ),
        _form("/dispute", Action.OPEN_DISPUTE, disputes.open_dispute, "reason"),
        _form("/dispute/offers", Form.MAKE_OFFER, milestone_forms.make_offer, "amount"),
        _form(
            "/dispute/offers/{offer_id}/accept",
            Form.ACCEPT_OFFER,
            milestone_forms.accept_offer,
            confirm=confirm.ACCEPT_OFFER,
        ),
        _form("/dispute/withdraw", Form.WITHDRAW_DISPUTE, milestone_forms.withdraw_dispute),
        _form(
            "/dispute/messages",
            Form.POST_MESSAGE,
            milestone_forms.post_dispute_message,
            "body",
            "links",
            uploads="files",
        ),
        _form(
            "/submit",
            Action.SUBMIT,
            milestone_forms.submit_delivery,
            "note",
            "links",
            "text",
            uploads="files",
        ),
        _form(
            "/feedback", Form.LEAVE_FEEDBACK, milestone_forms.leave_feedback, "rating", "comment"
        ),
    ),
)


# Evidence files and receipts, for whoever the services let see them --------------------------------------

# Receipts are the receipts package's own standalone document, which styles itself inline (its CSP); the
# other security headers of HTML come from middleware.SecurityHeadersMiddleware, and the PDF carries them too.
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
