"""The milestone page and the forms of its actions."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import Response

from milepost.kit.context import Context
from milepost.kit.errors import MilepostError, NotFound
from milepost.milestones import page_view
from milepost.milestones import service as milestones
from milepost.milestones.state import Action
from milepost.money import parse_amount
from milepost.users.models import User
from milepost.web.common import FormText, not_found
from milepost.web.session import SignedOut, WebDep

router = APIRouter(include_in_schema=False)


# Milestones --------------------------------------------------------------------------------------------


def _milestone(
    web: WebDep, milestone_id: str, *, status: int = 200, errors: dict[str, str] | None = None
) -> Response:
    def load(ctx: Context) -> tuple[User, page_view.MilestonePage]:
        return ctx.require_actor(), page_view.milestone_page(ctx, milestone_id)

    try:
        viewer, page = web.read(load)
    except SignedOut:
        return web.to_login()
    except NotFound:
        return not_found(web)
    return web.render(
        "milestone.html",
        status=status,
        viewer=viewer,
        page=page,
        errors=errors or {},
        Action=Action,
    )


@router.get("/milestones/{milestone_id}")
def milestone_page(web: WebDep, milestone_id: str) -> Response:
    return _milestone(web, milestone_id)


def _act(web: WebDep, milestone_id: str, csrf_token: str, name: str, action: Any) -> Response:
    """Run one milestone action from its form; on refusal, the page again with the error by that form."""
    if not web.csrf_ok(csrf_token, signed_in=True):
        return web.forbidden()
    try:
        web.write(action)
    except SignedOut:
        return web.to_login()
    except NotFound:
        return not_found(web)
    except MilepostError as error:
        return _milestone(web, milestone_id, status=error.status, errors={name: error.message})
    return web.redirect(f"/milestones/{milestone_id}")


@router.post("/milestones/{milestone_id}/fund")
def fund(web: WebDep, milestone_id: str, csrf_token: FormText = "") -> Response:
    return _act(
        web, milestone_id, csrf_token, "fund", lambda ctx: milestones.fund(ctx, milestone_id)
    )


@router.post("/milestones/{milestone_id}/submit")
def submit(
    web: WebDep, milestone_id: str, note: FormText = "", csrf_token: FormText = ""
) -> Response:
    return _act(
        web,
        milestone_id,
        csrf_token,
        "submit",
        lambda ctx: milestones.submit(ctx, milestone_id, note=note),
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
