"""Projects: posting, proposals and their acceptance, the milestone table, pause and resume, bonuses, and
editing a draft milestone's terms."""

from __future__ import annotations

from collections.abc import Callable
from itertools import zip_longest
from typing import Annotated, Any

from fastapi import APIRouter, Form
from fastapi.responses import Response

from milepost.kit.context import Context
from milepost.projects import service as projects
from milepost.web.common import FormText, form_errors
from milepost.web.forms import project as forms
from milepost.web.session import WebDep
from milepost.web.views import project as views
from milepost.web.views.project import Form as ProjectForm

router = APIRouter(include_in_schema=False)

FormList = Annotated[list[str], Form()]
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


@router.post("/projects/new")
def post_project(
    web: WebDep,
    title: FormText = "",
    description: FormText = "",
    currency: FormText = "",
    billing_contact_email: FormText = "",
    csrf_token: FormText = "",
) -> Response:
    values = {
        "title": title,
        "description": description,
        "currency": currency,
        "billing_contact_email": billing_contact_email,
    }
    return web.act(
        csrf_token,
        lambda ctx: projects.create_project(
            ctx,
            title=title,
            description=description,
            currency=currency.strip().upper(),
            billing_contact_email=billing_contact_email.strip() or None,
        ),
        done=lambda project: f"/projects/{project.id}",
        refused=lambda error: _new_project_form(
            web,
            status=error.status,
            errors=form_errors(error, tuple(values)),
            values=values,
        ),
    )


# One project and its forms -----------------------------------------------------------------------------


def _project(
    web: WebDep,
    project_id: str,
    *,
    status: int = 200,
    failed: str | None = None,
    errors: dict[str, str] | None = None,
    values: dict[str, Any] | None = None,
) -> Response:
    """The project page; after a refused form, with the message by that form and what was typed."""
    return web.page(
        "project.html",
        lambda ctx: views.project_page(ctx, project_id),
        status=status,
        Form=ProjectForm,
        failed=failed,
        errors=errors or {},
        values=values or {},
        rows=range(forms.PROPOSAL_ROWS),
    )


@router.get("/projects/{project_id}")
def project_page(web: WebDep, project_id: str) -> Response:
    return _project(web, project_id)


def _act(
    web: WebDep,
    project_id: str,
    csrf_token: str,
    form: str,
    action: Callable[[Context], object],
    *,
    fields: tuple[str, ...] = (),
    values: dict[str, Any] | None = None,
) -> Response:
    """Run one form's service call; on refusal, the project page again with the error by that form."""
    return web.act(
        csrf_token,
        action,
        done=lambda _: f"/projects/{project_id}",
        refused=lambda error: _project(
            web,
            project_id,
            status=error.status,
            failed=form,
            errors=form_errors(error, fields),
            values=values,
        ),
    )


@router.post("/projects/{project_id}/proposals")
def propose(
    web: WebDep,
    project_id: str,
    amount: FormText = "",
    cover_letter: FormText = "",
    milestone_title: FormList = [],  # noqa: B006 (FastAPI copies defaults)
    milestone_amount: FormList = [],  # noqa: B006
    milestone_due_date: FormList = [],  # noqa: B006
    milestone_criteria: FormList = [],  # noqa: B006
    csrf_token: FormText = "",
) -> Response:
    rows = [
        forms.ProposedRow(*row)
        for row in zip_longest(
            milestone_title, milestone_amount, milestone_due_date, milestone_criteria, fillvalue=""
        )
    ]
    return _act(
        web,
        project_id,
        csrf_token,
        ProjectForm.PROPOSE,
        lambda ctx: forms.propose(
            ctx, project_id, amount=amount, cover_letter=cover_letter, rows=rows
        ),
        fields=PROPOSAL_FIELDS,
        values={"amount": amount, "cover_letter": cover_letter, "rows": rows},
    )


@router.post("/projects/{project_id}/proposals/{proposal_id}/accept")
def accept(web: WebDep, project_id: str, proposal_id: str, csrf_token: FormText = "") -> Response:
    return _act(
        web,
        project_id,
        csrf_token,
        ProjectForm.ACCEPT,
        lambda ctx: projects.accept_proposal(ctx, proposal_id),
        values={"proposal_id": proposal_id},
    )


@router.post("/projects/{project_id}/pause")
def pause(web: WebDep, project_id: str, csrf_token: FormText = "") -> Response:
    return _act(
        web,
        project_id,
        csrf_token,
        ProjectForm.PAUSE,
        lambda ctx: projects.pause_project(ctx, project_id),
    )


@router.post("/projects/{project_id}/resume")
def resume(web: WebDep, project_id: str, csrf_token: FormText = "") -> Response:
    return _act(
        web,
        project_id,
        csrf_token,
        ProjectForm.RESUME,
        lambda ctx: projects.resume_project(ctx, project_id),
    )


@router.post("/projects/{project_id}/milestones")
def add_milestone(
    web: WebDep,
    project_id: str,
    title: FormText = "",
    amount: FormText = "",
    due_date: FormText = "",
    fund_by: FormText = "",
    acceptance_criteria: FormText = "",
    csrf_token: FormText = "",
) -> Response:
    form = forms.TermsForm(
        title=title,
        amount=amount,
        due_date=due_date,
        fund_by=fund_by,
        acceptance_criteria=acceptance_criteria,
    )
    return _act(
        web,
        project_id,
        csrf_token,
        ProjectForm.MILESTONE,
        lambda ctx: forms.add_milestone(ctx, project_id, form),
        fields=TERMS_FIELDS,
        values=vars(form),
    )


@router.post("/projects/{project_id}/bonuses")
def give_bonus(
    web: WebDep,
    project_id: str,
    amount: FormText = "",
    note: FormText = "",
    csrf_token: FormText = "",
) -> Response:
    return _act(
        web,
        project_id,
        csrf_token,
        ProjectForm.BONUS,
        lambda ctx: forms.give_bonus(ctx, project_id, amount=amount, note=note),
        fields=("amount", "note"),
        values={"amount": amount, "note": note},
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


@router.post("/milestones/{milestone_id}/terms")
def edit_terms(
    web: WebDep,
    milestone_id: str,
    title: FormText = "",
    description: FormText = "",
    amount: FormText = "",
    due_date: FormText = "",
    fund_by: FormText = "",
    review_period_days: FormText = "",
    release_delay_days: FormText = "",
    acceptance_criteria: FormText = "",
    required_evidence: FormText = "",
    exclusions: FormText = "",
    dependencies: FormText = "",
    csrf_token: FormText = "",
) -> Response:
    form = forms.TermsForm(
        title=title,
        description=description,
        amount=amount,
        due_date=due_date,
        fund_by=fund_by,
        review_period_days=review_period_days,
        release_delay_days=release_delay_days,
        acceptance_criteria=acceptance_criteria,
        required_evidence=required_evidence,
        exclusions=exclusions,
        dependencies=dependencies,
    )
    return web.act(
        csrf_token,
        lambda ctx: forms.edit_terms(ctx, milestone_id, form),
        done=lambda milestone: f"/projects/{milestone.project_id}",
        refused=lambda error: _terms(
            web,
            milestone_id,
            status=error.status,
            errors=form_errors(error, TERMS_FIELDS),
            form=form,
        ),
    )
