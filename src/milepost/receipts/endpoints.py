"""Receipts for releases: a JSON list per milestone; each receipt as HTML, PDF or JSON."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from fastapi.responses import Response

from milepost.kit.context import Context
from milepost.kit.http import ApiDep, Document
from milepost.kit.schemas import ListOf
from milepost.receipts import render, service
from milepost.receipts.schemas import ReceiptOut

router = APIRouter(tags=["receipts"])
Format = Literal["html", "pdf", "json"]
DOCUMENTS: dict[int | str, dict[str, Any]] = {
    200: {
        "content": {"text/html": {}, "application/pdf": {}},
        "description": "The receipt: HTML by default, PDF, or JSON with format=json.",
    }
}


@router.get("/milestones/{milestone_id}/receipts", response_model=ListOf[ReceiptOut])
def list_receipts(milestone_id: str, api: ApiDep) -> Response:
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
@router.get("/receipts/{receipt_id}.pdf", response_class=Response, responses=DOCUMENTS)
def get_receipt_pdf(receipt_id: str, api: ApiDep) -> Response:
    return _receipt(api, receipt_id, "pdf")


@router.get("/receipts/{receipt_id}", response_class=Response, responses=DOCUMENTS)
def get_receipt(
    receipt_id: str, api: ApiDep, format: Annotated[Format, Query()] = "html"
) -> Response:
    return _receipt(api, receipt_id, format)
