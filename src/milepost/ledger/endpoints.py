"""The caller's ledger postings (JSON, or a CSV statement), and verification for staff."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Literal

from fastapi import APIRouter, Query
from fastapi.responses import Response

from milepost.kit.context import Context
from milepost.kit.errors import InvalidRequest
from milepost.kit.http import ApiDep, Document
from milepost.kit.schemas import Day, error_responses
from milepost.ledger import service, statement
from milepost.ledger.schemas import PostingList, PostingOut, VerifyOut
from milepost.ledger.verify import verify_as_staff

router = APIRouter(tags=["ledger"])


_CSV = {"schema": {"type": "string"}}
_STATEMENT = (
    "A CSV statement (`text/csv`, UTF-8, with a header row), oldest first: one line per posting, "
    "with the account's running balance, amounts in minor units."
)
From = Annotated[Day | None, Query(alias="from", description="First day (UTC), included.")]
To = Annotated[Day | None, Query(alias="to", description="Last day (UTC), included.")]


def _csv_statement(api: ApiDep, start: date | None, end: date | None) -> Response:
    def csv_statement(ctx: Context) -> Document:
        lines = statement.my_statement(ctx, start=start, end=end)
        return Document(
            statement.to_csv(lines).encode(),
            "text/csv; charset=utf-8",
            filename="milepost-statement.csv",
        )

    return api.read(csv_statement, Document.response)


@router.get(
    "/ledger/entries",
    response_model=PostingList,
    summary="List my ledger postings",
    responses={
        200: {
            "description": "JSON by default; with `format=csv`, the CSV statement.",
            "content": {"text/csv": _CSV},
        },
        **error_responses(400, 401, 422),
    },
)
def entries(
    api: ApiDep,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    starting_after: str | None = None,
    format: Annotated[
        Literal["json", "csv"],
        Query(description="`csv`: the statement (as `GET /v1/ledger/statement.csv`)."),
    ] = "json",
    start: Annotated[
        Day | None, Query(alias="from", description="CSV only: first day (UTC), included.")
    ] = None,
    end: Annotated[
        Day | None, Query(alias="to", description="CSV only: last day (UTC), included.")
    ] = None,
) -> Response:
    """The postings to the caller's accounts (staff: every account), newest first, paginated: each is one
    side of a balanced journal entry, with a signed amount in minor units. `format=csv` answers the CSV
    statement instead (a generated client should call `GET /v1/ledger/statement.csv` for it, which is
    documented as CSV only); `from`/`to` without it are 400."""
    if format == "csv":
        return _csv_statement(api, start, end)

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


@router.get(
    "/ledger/statement.csv",
    response_class=Response,
    summary="Download my CSV statement",
    responses={
        200: {"description": _STATEMENT, "content": {"text/csv": _CSV}},
        **error_responses(400, 401, 422),
    },
)
def csv_statement(api: ApiDep, start: From = None, end: To = None) -> Response:
    """The caller's statement as CSV for a period (`from`, `to`: UTC days, both included; by default
    everything), oldest first with running balances per currency; the opening balance of the period
    first. A period whose start is after its end is 400. Any signed-in user, for their own accounts
    (staff: every account, as in `GET /v1/ledger/entries`)."""
    return _csv_statement(api, start, end)


@router.get(
    "/ledger/verify",
    response_model=VerifyOut,
    summary="Verify the ledger (staff)",
    responses=error_responses(401, 403),
)
def verify(api: ApiDep) -> Response:
    """Staff only: check every invariant of the books (entries balance, balances match their postings, no
    account that holds people's money is negative, escrow matches each milestone, the event chain and,
    with MILEPOST_LEDGER_KEY, its keyed MACs); `ok` is true only if none is broken. Reads only."""
    return api.read(verify_as_staff, VerifyOut.of, snapshot=True)
