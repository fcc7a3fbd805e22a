"""The caller's ledger postings, and verification for staff."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import Response

from milepost.kit.context import Context
from milepost.kit.http import ApiDep
from milepost.ledger import service
from milepost.ledger.schemas import PostingList, PostingOut, VerifyOut
from milepost.ledger.verify import verify_as_staff

router = APIRouter(tags=["ledger"])


@router.get("/ledger/entries", response_model=PostingList)
def entries(
    api: ApiDep,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    starting_after: str | None = None,
) -> Response:
    def page(ctx: Context) -> PostingList:
        views, has_more = service.list_postings(ctx, limit=limit, starting_after=starting_after)
        return PostingList(data=[PostingOut.of(view) for view in views], has_more=has_more)

    return api.read(page, lambda result: result)


@router.get("/ledger/verify", response_model=VerifyOut)
def verify(api: ApiDep) -> Response:
    return api.read(verify_as_staff, VerifyOut.of)
