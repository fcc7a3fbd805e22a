"""The web app's pages. Each handler checks the form's CSRF token, runs one service call in one unit of
work as the session's user (see ``session.Web``), and renders a template or redirects. A refused action
re-renders its form with the service's message beside it; no rule is decided in a page or a template.

One module per area; this one gathers their routers."""

from __future__ import annotations

from fastapi import APIRouter, Depends

from milepost.kit.http import refuse_control_characters
from milepost.web import (
    account_pages,
    auth_pages,
    dashboard_pages,
    milestone_pages,
    project_pages,
    staff_pages,
)

# Form fields, path and query parameters with NUL or another control character: a 422 page, nothing done.
router = APIRouter(include_in_schema=False, dependencies=[Depends(refuse_control_characters)])
for area in (
    auth_pages,
    dashboard_pages,
    project_pages,
    milestone_pages,
    staff_pages,
    account_pages,
):
    router.include_router(area.router)
