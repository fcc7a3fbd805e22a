"""The caller's ledger postings (JSON, or a CSV statement), and verification for staff."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query
from fastapi.responses import Response

from milepost.kit.context import Context
from milepost.kit.errors import InvalidRequest
from milepost.kit.http import ApiDep, Document
from milepost.kit.schemas import Day
from milepost.ledger import service, statement
from milepost.ledger.schemas import PostingList, PostingOut, VerifyOut
from milepost.ledger.verify import verify_as_staff

router = APIRouter(tags=["ledger"])


@router.get(
    "/ledger/entries",
    response_model=PostingList,
    responses={200: {"content": {"text/csv": {}}, "description": "JSON, or CSV with format=csv."}},
)
def entries(
    api: ApiDep,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    starting_after: str | None = None,
    format: Annotated[
        Literal["json", "csv"],
        Query(description="`csv`: a statement, oldest first, with running balances."),
    ] = "json",
    start: Annotated[
        Day | None, Query(alias="from", description="CSV: first day (UTC), included.")
    ] = None,
    end: Annotated[
        Day | None, Query(alias="to", description="CSV: last day (UTC), included.")
    ] = None,
) -> Response:
    if format == "csv":

        def csv_statement(ctx: Context) -> Document:
            lines = statement.my_statement(ctx, start=start, end=end)
            return Document(
                statement.to_csv(lines).encode(),
                "text/csv; charset=utf-8",
                filename="milepost-statement.csv",
            )

        return api.read(csv_statement, Document.response)

    def page(ctx: Context) -> PostingList:
        ctx.require_actor()
        if start is not None or end is not None:
            raise InvalidRequest(
                "from and to apply to the CSV statement (format=csv).",
                param="from" if start is not None else "to",
            )
        views, has_more = service.list_postings(ctx, limit=limit, starting_after=starting_after)
        return PostingList(data=[PostingOut.of(view) for view in views], has_more=has_more)

    return api.read(page, lambda result: result)


@router.get("/ledger/verify", response_model=VerifyOut)
def verify(api: ApiDep) -> Response:
    return api.read(verify_as_staff, VerifyOut.of)
