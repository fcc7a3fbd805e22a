"""Receipts for releases: a JSON list per milestone; each receipt as HTML, PDF or JSON."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from fastapi.responses import Response

from milepost.kit.context import Context
from milepost.kit.http import ApiDep, Document
from milepost.kit.schemas import ListOf, error_responses
from milepost.receipts import render, service
from milepost.receipts.schemas import ReceiptOut

router = APIRouter(tags=["receipts"])
Format = Literal["html", "pdf", "json"]
_HTML = {"schema": {"type": "string"}}
_PDF = {"schema": {"type": "string", "format": "binary"}}
# JSON (from the response model) comes first: a generated client reads the first content type it knows.
DOCUMENTS: dict[int | str, dict[str, Any]] = {
    200: {
        "content": {"text/html": _HTML, "application/pdf": _PDF},
        "description": "The receipt: an HTML page by default (`format=html`), the receipt object with "
        "`format=json`, or a PDF with `format=pdf`.",
    },
    **error_responses(400, 401, 404, 422),
}
PDF_ONLY: dict[int | str, dict[str, Any]] = {
    200: {"content": {"application/pdf": _PDF}, "description": "The receipt as a PDF document."},
    **error_responses(401, 404, 422),
}


@router.get(
    "/milestones/{milestone_id}/receipts",
    response_model=ListOf[ReceiptOut],
    summary="List a milestone's receipts",
    responses=error_responses(401, 404, 422),
)
def list_receipts(milestone_id: str, api: ApiDep) -> Response:
    """One receipt per release (or dispute split) of the milestone: gross, platform fee, net to the
    freelancer and refund to the client, in minor units, with links to the HTML and PDF documents. Its
    parties only."""
    return api.read(
        lambda ctx: service.list_receipts(ctx, milestone_id),
        lambda rows: ListOf[ReceiptOut](data=[ReceiptOut.of(row) for row in rows], has_more=False),
    )


def _receipt(api: ApiDep, receipt_id: str, format: Format) -> Response:
    if format == "json":
        return api.read(lambda ctx: service.get_receipt(ctx, receipt_id), ReceiptOut.of)

    def document(ctx: Context) -> Document:
        receipt = service.get_receipt(ctx, receipt_id)
        if format == "pdf":
            return Document(
                render.to_pdf(receipt), "application/pdf", filename=f"receipt-{receipt_id}.pdf"
            )
        return Document(render.to_html(receipt).encode(), "text/html; charset=utf-8")

    return api.read(document, Document.response)


# Declared first: "/receipts/{id}" would otherwise take "je_....pdf" as the id.
@router.get(
    "/receipts/{receipt_id}.pdf",
    response_class=Response,
    summary="Download a receipt as PDF",
    responses=PDF_ONLY,
)
def get_receipt_pdf(receipt_id: str, api: ApiDep) -> Response:
    """The receipt as a PDF document, for the milestone's parties."""
    return _receipt(api, receipt_id, "pdf")


@router.get(
    "/receipts/{receipt_id}",
    response_model=ReceiptOut,
    summary="Get a receipt (JSON, HTML or PDF)",
    responses=DOCUMENTS,
)
def get_receipt(
    receipt_id: str,
    api: ApiDep,
    format: Annotated[
        Format,
        Query(description="`html` (a page to print), `json` (the receipt object) or `pdf`."),
    ] = "html",
) -> Response:
    """One receipt of a release, for the milestone's parties: who paid whom, gross, platform fee, net and
    refund (minor units), and the hashes that tie it to the ledger entry and the milestone's event. A
    client that parses JSON sends `format=json`."""
    return _receipt(api, receipt_id, format)
