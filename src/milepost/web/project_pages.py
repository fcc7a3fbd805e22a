"""Projects: posting, proposals and their acceptance, offers to a freelancer and their answers, milestone
requests and theirs, the milestone table, pause and resume, bonuses, and editing a draft milestone's
terms."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import APIRouter
from fastapi.responses import Response

from milepost.kit.context import Context
from milepost.kit.errors import MilepostError
from milepost.milestones.models import Milestone
from milepost.projects import milestone_requests, offers
from milepost.projects import service as projects
from milepost.projects.models import Project
from milepost.web import confirm
from milepost.web.common import form_errors
from milepost.web.confirm import Confirm
from milepost.web.forms import project as forms
from milepost.web.posts import Post, Posted, register
from milepost.web.session import Web, WebDep
from milepost.web.views import project as views
from milepost.web.views.project import Form as ProjectForm

router = APIRouter(include_in_schema=False)

PROJECT = "/projects/{project_id}"
PROPOSAL_COLUMNS = (
    "milestone_title",
    "milestone_amount",
    "milestone_due_date",
    "milestone_criteria",
)
PROPOSAL_FIELDS = (
    "amount",
    "cover_letter",
    "milestones",
    *(
        f"milestones[{row}].{field}"
        for row in range(forms.PROPOSAL_ROWS)
        for field in ("title", "amount", "due_date", "acceptance_criteria")
    ),
)
TERMS_FIELDS = tuple(forms.TermsForm.__dataclass_fields__)


# The list and posting a project ------------------------------------------------------------------------


@router.get("/projects")
def projects_page(web: WebDep) -> Response:
    return web.page("projects.html", views.projects_page)


def _new_project_form(
    web: WebDep, *, status: int = 200, errors: dict[str, str], values: dict[str, str]
) -> Response:
    return web.page(
        "project_new.html",
        lambda ctx: ctx.require_actor(),
        status=status,
        errors=errors,
        values=values,
    )


@router.get("/projects/new")
def new_project_page(web: WebDep) -> Response:
    return _new_project_form(web, errors={}, values={"currency": "USD"})


def _new_project_refused(web: Web, posted: Posted, error: MilepostError) -> Response:
    return _new_project_form(
        web,
        status=error.status,
        errors=form_errors(error, posted.places),
        values=dict(posted.typed),
    )


# One project and its forms -----------------------------------------------------------------------------


def _project(
    web: WebDep,
    project_id: str,
    *,
    after: int | None = None,
    status: int = 200,
    failed: str | None = None,
    errors: dict[str, str] | None = None,
    values: dict[str, Any] | None = None,
) -> Response:
    """The project page (its milestones after position ``after``: a page of them); after a refused
    form, with the message by that form and what was typed."""
    return web.page(
        "project.html",
        lambda ctx: views.project_page(ctx, project_id, after=after),
        status=status,
        Form=ProjectForm,
        failed=failed,
        errors=errors or {},
        values=values or {},
        rows=range(forms.PROPOSAL_ROWS),
    )


@router.get("/projects/{project_id}")
def project_page(web: WebDep, project_id: str, after: int | None = None) -> Response:
    return _project(web, project_id, after=after)


def _as_typed(posted: Posted) -> dict[str, Any]:
    """What a refused form sent, to show again; the proposal's milestone columns as its rows."""
    values = {**posted.params, **posted.typed}
    if "milestone_title" in values:
        values["rows"] = forms.proposed_rows(*(posted.typed[name] for name in PROPOSAL_COLUMNS))
    return values


def _refused(web: Web, posted: Posted, error: MilepostError) -> Response:
    """The project page again, with the message by the refused form (by its field, where it names one)
    and what was typed in it."""
    return _project(
        web,
        posted.params["project_id"],
        status=error.status,
        failed=posted.form,
        errors=form_errors(error, posted.places),
        values=_as_typed(posted),
    )


def _form(
    path: str,
    form: str,
    call: Callable[..., object],
    *fields: str,
    lists: tuple[str, ...] = (),
    places: tuple[str, ...] | None = None,
    confirm: Confirm | None = None,
) -> Post:
    """A form of the project page: back to the page when it is taken, or when it is refused."""
    return Post(
        PROJECT + path,
        call,
        PROJECT,
        _refused,
        form=form,
        fields=fields,
        lists=lists,
        places=places,
        confirm=confirm,
    )


def _accept(ctx: Context, project_id: str, proposal_id: str) -> Project:
    return projects.accept_proposal(ctx, proposal_id)


def _withdraw(ctx: Context, project_id: str, proposal_id: str) -> object:
    return projects.withdraw_proposal(ctx, proposal_id)


def _add_milestone(ctx: Context, project_id: str, **typed: str) -> Milestone:
    return forms.add_milestone(ctx, project_id, forms.TermsForm(**typed))


def _offer(ctx: Context, project_id: str, *, email: str, message: str) -> object:
    return offers.offer_project(ctx, project_id, email=email, message=message)


def _accept_offer(ctx: Context, project_id: str, offer_id: str) -> object:
    return offers.accept_offer(ctx, offer_id)


def _decline_offer(ctx: Context, project_id: str, offer_id: str) -> object:
    return offers.decline_offer(ctx, offer_id)


def _withdraw_offer(ctx: Context, project_id: str, offer_id: str) -> object:
    return offers.withdraw_offer(ctx, offer_id)


def _request(ctx: Context, project_id: str, **typed: str) -> object:
    return forms.request_milestone(ctx, project_id, forms.TermsForm(**typed))


def _accept_request(ctx: Context, project_id: str, request_id: str) -> object:
    return milestone_requests.accept_request(ctx, request_id)


def _reject_request(ctx: Context, project_id: str, request_id: str, *, reason: str) -> object:
    return milestone_requests.reject_request(ctx, request_id, reason=reason)


def _withdraw_request(ctx: Context, project_id: str, request_id: str) -> object:
    return milestone_requests.withdraw_request(ctx, request_id)


# The new-project form, and every form of the project page: path, form name, call, fields.
register(
    router,
    (
        Post(
            "/projects/new",
            forms.post_project,
            lambda project: f"/projects/{project.id}",
            _new_project_refused,
            fields=("title", "description", "currency", "billing_contact_email"),
        ),
        _form(
            "/proposals",
            ProjectForm.PROPOSE,
            forms.propose_typed,
            "amount",
            "cover_letter",
            lists=PROPOSAL_COLUMNS,
            places=PROPOSAL_FIELDS,
        ),
        _form(
            "/proposals/{proposal_id}/accept",
            ProjectForm.ACCEPT,
            _accept,
            confirm=confirm.ACCEPT_PROPOSAL,
        ),
        _form("/proposals/{proposal_id}/withdraw", ProjectForm.WITHDRAW, _withdraw),
        _form("/pause", ProjectForm.PAUSE, projects.pause_project),
        _form("/resume", ProjectForm.RESUME, projects.resume_project),
        _form(
            "/milestones",
            ProjectForm.MILESTONE,
            _add_milestone,
            "title",
            "amount",
            "due_date",
            "fund_by",
            "acceptance_criteria",
            places=TERMS_FIELDS,
        ),
        _form("/offers", ProjectForm.OFFER, _offer, "email", "message"),
        _form("/offers/{offer_id}/accept", ProjectForm.OFFER_ACCEPT, _accept_offer),
        _form("/offers/{offer_id}/decline", ProjectForm.OFFER_DECLINE, _decline_offer),
        _form("/offers/{offer_id}/withdraw", ProjectForm.OFFER_WITHDRAW, _withdraw_offer),
        _form(
            "/milestone-requests",
            ProjectForm.REQUEST,
            _request,
            "title",
            "amount",
            "due_date",
            "acceptance_criteria",
            places=TERMS_FIELDS,
        ),
        _form(
            "/milestone-requests/{request_id}/accept", ProjectForm.REQUEST_ACCEPT, _accept_request
        ),
        _form(
            "/milestone-requests/{request_id}/reject",
            ProjectForm.REQUEST_REJECT,
            _reject_request,
            "reason",
        ),
        _form(
            "/milestone-requests/{request_id}/withdraw",
            ProjectForm.REQUEST_WITHDRAW,
            _withdraw_request,
        ),
        _form(
            "/bonuses",
            ProjectForm.BONUS,
            forms.give_bonus,
            "amount",
            "note",
            confirm=confirm.BONUS,
        ),
    ),
)


# A draft milestone's terms -----------------------------------------------------------------------------


def _terms(
    web: WebDep,
    milestone_id: str,
    *,
    status: int = 200,
    errors: dict[str, str] | None = None,
    form: forms.TermsForm | None = None,
) -> Response:
    return web.page(
        "project_terms.html",
        lambda ctx: views.terms_page(ctx, milestone_id),
        status=status,
        errors=errors or {},
        form=form,
    )


@router.get("/milestones/{milestone_id}/terms")
def terms_page(web: WebDep, milestone_id: str) -> Response:
    return _terms(web, milestone_id)


def _terms_refused(web: Web, posted: Posted, error: MilepostError) -> Response:
    return _terms(
        web,
        posted.params["milestone_id"],
        status=error.status,
        errors=form_errors(error, posted.places),
        form=forms.TermsForm(**posted.typed),
    )


def _edit_terms(ctx: Context, milestone_id: str, **typed: str) -> Milestone:
    return forms.edit_terms(ctx, milestone_id, forms.TermsForm(**typed))


register(
    router,
    (
        Post(
            "/milestones/{milestone_id}/terms",
            _edit_terms,
            lambda milestone: f"/projects/{milestone.project_id}",
            _terms_refused,
            fields=TERMS_FIELDS,
        ),
    ),
)
