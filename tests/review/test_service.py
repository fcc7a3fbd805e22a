"""Review context for the seed's CRM milestone, on SQLite and PostgreSQL (the ``world`` fixture)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from milepost.files import service as files
from milepost.files.service import StagedBlob
from milepost.kit.errors import NotFound
from milepost.milestones import service as milestones
from milepost.review import cache
from milepost.review import service as review
from milepost.review.service import Term
from milepost.users.models import User
from tests.world import World

CRM_DELIVERABLES = [
    "Data migration",
    "Basic functionality",
    "Customizations and integrations",
    "Training",
    "Testing and QA",
]
T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def upload(world: World, owner: User, filename: str) -> str:
    blob = StagedBlob(sha256="0" * 64, size=1234, content_type="application/pdf")
    return world.act(owner, files.create_file, blob, filename=filename).id


def four_of_five(world: World, freelancer: User) -> list[dict[str, Any]]:
    """Evidence for every CRM deliverable except testing and QA."""
    return [
        {"type": "file", "file_id": upload(world, freelancer, "northwind-migration-report.pdf")},
        {
            "type": "text",
            "text": "Basic functionality is live in staging: contacts, companies, deals and pipeline.",
        },
        {
            "type": "text",
            "text": "Customizations: quote builder and custom fields. Integrations: two-way sync "
            "with the accounting system.",
        },
        {"type": "link", "url": "https://video.example/northwind/sales-team-training-recording"},
    ]


def crm(world: World, **terms: Any) -> tuple[User, User, str]:
    client, freelancer, milestone = world.funded(
        5_000_000, title="CRM implementation", acceptance_criteria=CRM_DELIVERABLES, **terms
    )
    return client, freelancer, milestone.id


def context(world: World, user: User, milestone_id: str, now: datetime = T0) -> Any:
    return world.act(user, review.review_context, milestone_id, now=now)


def test_four_of_five_deliverables_suggests_changes_naming_the_fifth(world: World) -> None:
    client, freelancer, milestone_id = crm(world)
    world.act(
        freelancer,
        milestones.submit,
        milestone_id,
        note="First four parts of the roll-out.",
        evidence=four_of_five(world, freelancer),
        now=T0,
    )

    result = context(world, client, milestone_id)

    assert result.matcher == "keywords"
    assert [check.met for check in result.criteria] == [True, True, True, True, False]
    migration = result.criteria[0]
    assert [found.item.ref for found in migration.evidence] == ["evidence[0]"]
    assert migration.evidence[0].item.label == "northwind-migration-report.pdf"
    assert migration.evidence[0].item.content_type == "application/pdf"
    assert "migration" in migration.evidence[0].matched_words
    assert migration.evidence[0].score >= 0.5
    assert result.criteria[3].evidence[0].item.type == "link"
    assert result.criteria[4].evidence == ()
    suggestion = result.suggestion
    assert suggestion.decision == "request_changes"
    assert suggestion.unmet_criteria == (Term(4, "Testing and QA"),)
    assert suggestion.missing_evidence == ()
    assert len(suggestion.reasons) == 1
    assert '"Testing and QA"' in suggestion.reasons[0]
    # Under review: the period is the default 14 days from the delivery.
    assert result.review_time.due_at == T0 + timedelta(days=14)
    assert result.review_time.seconds_left == 14 * 86_400
    assert not result.review_time.overdue


def test_full_coverage_suggests_approval(world: World) -> None:
    _, freelancer, milestone_id = crm(world)
    evidence = [
        *four_of_five(world, freelancer),
        {"type": "file", "file_id": upload(world, freelancer, "QA-test-report-final.pdf")},
    ]
    world.act(freelancer, milestones.submit, milestone_id, note="All done.", evidence=evidence)

    result = context(world, freelancer, milestone_id)  # the freelancer sees it too

    assert all(check.met for check in result.criteria)
    assert result.suggestion.decision == "approve"
    assert result.suggestion.unmet_criteria == result.suggestion.missing_evidence == ()
    assert result.suggestion.reasons


def test_missing_required_evidence_is_reported(world: World) -> None:
    client, freelancer, milestone_id = crm(
        world, required_evidence=["Migration report", "Row counts before and after"]
    )
    evidence = [
        *four_of_five(world, freelancer),
        {"type": "text", "text": "Test plan run in full: every user story passed QA."},
    ]
    # The note mentions row counts, but saying so is not attaching them.
    world.act(
        freelancer, milestones.submit, milestone_id, note="Row counts match.", evidence=evidence
    )

    result = context(world, client, milestone_id)

    assert all(check.met for check in result.criteria)
    assert [(c.required.text, c.found) for c in result.required_evidence] == [
        ("Migration report", True),
        ("Row counts before and after", False),
    ]
    assert result.required_evidence[0].evidence[0].item.ref == "evidence[0]"
    assert result.suggestion.decision == "request_changes"
    assert result.suggestion.unmet_criteria == ()
    assert result.suggestion.missing_evidence == (Term(1, "Row counts before and after"),)
    assert result.suggestion.reasons == (
        'Required evidence "Row counts before and after" is missing from revision 1.',
    )


def test_revision_history_after_a_change_request_and_a_resubmission(world: World) -> None:
    client, freelancer, milestone_id = crm(world)
    first = four_of_five(world, freelancer)
    world.act(
        freelancer, milestones.submit, milestone_id, note="Four parts.", evidence=first, now=T0
    )
    world.act(
        client,
        milestones.request_changes,
        milestone_id,
        reason="Testing and QA has no evidence yet.",
        unmet_criteria=[4],
        now=T0 + timedelta(days=2),
    )
    stopped = context(world, client, milestone_id, now=T0 + timedelta(days=3))
    assert stopped.review_time.seconds_left is None  # the clock stops until the next delivery
    assert stopped.milestone_status == "changes_requested"

    qa_report = {"type": "file", "file_id": upload(world, freelancer, "qa-report.pdf")}
    second = [*first[:3], qa_report]  # the training link is dropped, the QA report added
    world.act(
        freelancer,
        milestones.submit,
        milestone_id,
        note="QA report added.",
        evidence=second,
        now=T0 + timedelta(days=4),
    )

    result = context(world, client, milestone_id, now=T0 + timedelta(days=5))

    first_revision, second_revision = result.revisions
    assert first_revision.revision == 1
    assert len(first_revision.added) == 4 and first_revision.removed == ()
    request = first_revision.changes_requested
    assert request is not None
    assert request.reason == "Testing and QA has no evidence yet."
    assert request.unmet_criteria == (Term(4, "Testing and QA"),)
    assert request.requested_at == T0 + timedelta(days=2)
    assert second_revision.revision == 2
    assert second_revision.changes_requested is None
    assert [item.label for item in second_revision.added] == ["qa-report.pdf"]
    assert [item.url for item in second_revision.removed] == [first[3]["url"]]
    assert second_revision.note_changed
    assert result.submission == second_revision
    # The latest delivery is judged: QA now met, training no longer.
    assert [check.met for check in result.criteria] == [True, True, True, False, True]
    assert result.suggestion.unmet_criteria == (Term(3, "Training"),)
    assert result.review_time.seconds_left == 13 * 86_400


def test_before_any_delivery_there_is_no_suggestion(world: World) -> None:
    client, _, milestone_id = crm(world)
    result = context(world, client, milestone_id)
    assert result.submission is None and result.revisions == ()
    assert [check.met for check in result.criteria] == [False] * 5
    assert result.suggestion is None
    assert result.review_time.seconds_left is None


def test_an_overdue_review_has_no_time_left(world: World) -> None:
    client, freelancer, milestone_id = crm(world)
    world.act(freelancer, milestones.submit, milestone_id, note="Data migration done.", now=T0)
    result = context(world, client, milestone_id, now=T0 + timedelta(days=15))
    assert (result.review_time.seconds_left, result.review_time.overdue) == (0, True)
    # The note alone is evidence: it speaks for the migration.
    assert [found.item.ref for found in result.criteria[0].evidence] == ["note"]


def test_a_non_party_gets_not_found(world: World) -> None:
    _, _, milestone_id = crm(world)
    with pytest.raises(NotFound):
        context(world, world.user("stranger"), milestone_id)


def test_a_delivery_is_matched_once_and_the_time_left_is_computed_on_every_view(
    world: World,
) -> None:
    client, freelancer, milestone_id = crm(world)
    evidence = four_of_five(world, freelancer)
    world.act(freelancer, milestones.submit, milestone_id, evidence=evidence, now=T0)
    cache.matches.clear()
    computed = cache.matches.computed

    first = context(world, client, milestone_id, now=T0 + timedelta(hours=1))
    later = context(world, freelancer, milestone_id, now=T0 + timedelta(days=2))

    assert cache.matches.computed == computed + 1  # the criteria; there is no required evidence
    assert later.criteria == first.criteria
    assert first.review_time.seconds_left == 14 * 86_400 - 3_600
    assert later.review_time.seconds_left == 12 * 86_400
    assert first.read_in_part == ()

    # A new revision is matched afresh: the QA report now meets the fifth criterion.
    world.act(
        client,
        milestones.request_changes,
        milestone_id,
        reason="Testing and QA has no evidence yet.",
        now=T0 + timedelta(days=2),
    )
    qa_report = {"type": "text", "text": "Testing and QA: 212 test cases run, all passed."}
    world.act(
        freelancer,
        milestones.submit,
        milestone_id,
        evidence=[*evidence, qa_report],
        now=T0 + timedelta(days=3),
    )
    resubmitted = context(world, client, milestone_id, now=T0 + timedelta(days=3))
    assert cache.matches.computed == computed + 2
    assert [check.met for check in resubmitted.criteria] == [True] * 5
    assert resubmitted.suggestion is not None and resubmitted.suggestion.decision == "approve"
