"""The project pages' forms: text as people type it ("1,500.50", one criterion per line, blank rows)
turned into the services' arguments in the project's currency, and the service called. The services stay
the authority on every rule; a refusal names the form's field.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields
from itertools import zip_longest
from typing import Any

from milepost.kit import validate
from milepost.kit.context import Context
from milepost.kit.errors import MilepostError, ValidationFailed
from milepost.milestones import service as milestones
from milepost.milestones.models import Milestone
from milepost.money import parse_amount, to_decimal
from milepost.projects import milestone_requests
from milepost.projects import service as projects
from milepost.projects.models import Bonus, MilestoneRequest, Project, Proposal

PROPOSAL_ROWS = projects.MAX_PROPOSAL_MILESTONES


def lines(text: str) -> list[str]:
    """One item per non-blank line of a textarea."""
    return [line.strip() for line in text.splitlines() if line.strip()]


def _whole_number(text: str, param: str) -> int:
    cleaned = text.strip()
    if not cleaned.isdigit():
        raise ValidationFailed(f"{param} must be a whole number.", param=param)
    return int(cleaned)


@dataclass(frozen=True)
class TermsForm:
    """Terms as typed; a field left None is not on the form and so not changed."""

    title: str | None = None
    description: str | None = None
    amount: str | None = None
    due_date: str | None = None
    fund_by: str | None = None
    review_period_days: str | None = None
    release_delay_days: str | None = None
    acceptance_criteria: str | None = None
    required_evidence: str | None = None
    exclusions: str | None = None
    dependencies: str | None = None

    @classmethod
    def of(cls, milestone: Milestone) -> TermsForm:
        """The milestone's terms as typed text: "1500.00", dates as YYYY-MM-DD, one item a line."""
        return cls(
            title=milestone.title,
            description=milestone.description,
            amount=format(to_decimal(milestone.amount, milestone.currency), "f"),
            due_date=milestone.due_date.isoformat() if milestone.due_date else "",
            fund_by=milestone.fund_by.isoformat() if milestone.fund_by else "",
            review_period_days=str(milestone.review_period_days),
            release_delay_days=str(milestone.release_delay_days),
            acceptance_criteria="\n".join(milestone.acceptance_criteria),
            required_evidence="\n".join(milestone.required_evidence),
            exclusions="\n".join(milestone.exclusions),
            dependencies="\n".join(milestone.dependencies),
        )

    def terms(self, currency: str) -> dict[str, Any]:
        """The service's terms: amount in minor units, blank dates cleared, lists one item a line."""
        values: dict[str, Any] = {}
        for field in fields(self):
            text = getattr(self, field.name)
            if text is None:
                continue
            name = field.name
            if name == "amount":
                values[name] = parse_amount(text, currency)
            elif name in ("due_date", "fund_by"):
                values[name] = text.strip() or None
            elif name in ("review_period_days", "release_delay_days"):
                values[name] = _whole_number(text, name)
            elif name in ("acceptance_criteria", "required_evidence", "exclusions", "dependencies"):
                values[name] = lines(text)
            else:
                values[name] = text
        return values


def edit_terms(ctx: Context, milestone_id: str, form: TermsForm) -> Milestone:
    currency = milestones.get_milestone(ctx, milestone_id).currency
    return milestones.update_terms(ctx, milestone_id, **form.terms(currency))


def add_milestone(ctx: Context, project_id: str, form: TermsForm) -> Milestone:
    currency = projects.get_project(ctx, project_id).currency
    return milestones.create_milestone(ctx, project_id, **form.terms(currency))


def request_milestone(ctx: Context, project_id: str, form: TermsForm) -> MilestoneRequest:
    currency = projects.get_project(ctx, project_id).currency
    return milestone_requests.request_milestone(ctx, project_id, **form.terms(currency))


def give_bonus(ctx: Context, project_id: str, *, amount: str, note: str) -> Bonus:
    currency = projects.get_project(ctx, project_id).currency
    return projects.create_bonus(ctx, project_id, amount=parse_amount(amount, currency), note=note)


@dataclass(frozen=True)
class ProposedRow:
    """One milestone row of the proposal form, as typed."""

    title: str = ""
    amount: str = ""
    due_date: str = ""
    acceptance_criteria: str = ""

    @property
    def blank(self) -> bool:
        return not any(getattr(self, field.name).strip() for field in fields(self))


def propose(
    ctx: Context, project_id: str, *, amount: str, cover_letter: str, rows: Sequence[ProposedRow]
) -> Proposal:
    """Propose from the form: blank rows are ignored. A refusal about a milestone names the form's row
    (``milestones[<row>].<field>``), not its place among the rows that were filled in."""
    currency = projects.get_project(ctx, project_id).currency
    filled = [(index, row) for index, row in enumerate(rows) if not row.blank]
    try:
        # Every typed amount is read, and all that cannot be are refused together.
        typed = validate.Problems()
        total = typed.check(parse_amount, amount, currency)
        proposed = [
            {
                "title": row.title,
                "amount": typed.check(
                    parse_amount, row.amount, currency, param=f"milestones[{position}].amount"
                ),
                "due_date": row.due_date.strip() or None,
                "acceptance_criteria": lines(row.acceptance_criteria),
            }
            for position, (_, row) in enumerate(filled)
        ]
        try:
            # Asked even when an amount could not be read (it goes as none), so that what the service
            # refuses of the rest is told too; by a field, what was typed is refused once.
            proposal = projects.create_proposal(
                ctx, project_id, amount=total, milestones=proposed, cover_letter=cover_letter
            )
        except ValidationFailed as refused:
            told = {problem.param for problem in typed.found}
            typed.found.extend(each for each in refused.all if each.param not in told)
            typed.done()
            raise
        typed.done()
        return proposal
    except MilepostError as error:
        for each in error.all:
            param = _form_row_param(each.param, [index for index, _ in filled])
            if each.param and param != each.param:
                each.message = each.message.replace(each.param, param or "")
                each.param = param
        raise


def _form_row_param(param: str | None, rows: list[int]) -> str | None:
    """``milestones[2].amount`` among the filled rows -> the same field of the form row it came from."""
    prefix = "milestones["
    if param is None or not param.startswith(prefix) or "]" not in param:
        return param
    position, rest = param[len(prefix) :].split("]", 1)
    if not position.isdigit() or int(position) >= len(rows):
        return param
    return f"{prefix}{rows[int(position)]}]{rest}"


def post_project(
    ctx: Context, *, title: str, description: str, currency: str, billing_contact_email: str
) -> Project:
    """The new-project form: the currency code in any case, a blank billing e-mail as none."""
    return projects.create_project(
        ctx,
        title=title,
        description=description,
        currency=currency.strip().upper(),
        billing_contact_email=billing_contact_email.strip() or None,
    )


def proposed_rows(
    milestone_title: Sequence[str],
    milestone_amount: Sequence[str],
    milestone_due_date: Sequence[str],
    milestone_criteria: Sequence[str],
) -> list[ProposedRow]:
    """The proposal form's milestone rows, from its columns (one value per row each, as posted)."""
    columns = (milestone_title, milestone_amount, milestone_due_date, milestone_criteria)
    return [ProposedRow(*row) for row in zip_longest(*columns, fillvalue="")]


def propose_typed(
    ctx: Context, project_id: str, *, amount: str, cover_letter: str, **columns: Sequence[str]
) -> Proposal:
    """``propose`` from the form as posted: its milestone rows as columns."""
    return propose(
        ctx, project_id, amount=amount, cover_letter=cover_letter, rows=proposed_rows(**columns)
    )
