"""The review context with an LLM reviewer configured: its verdicts where usable, the local matcher
elsewhere, the vetoes over both; against a real HTTP server on 127.0.0.1 (tests/review/test_llm.py)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from milepost.kit.db import Database
from milepost.milestones import service as milestones
from milepost.review import service as review
from milepost.settings import Settings
from milepost.users.models import User
from tests.review.test_llm import FakeLlm, Reply, answer, entry, server
from tests.world import World

__all__ = ["server"]

CRITERIA = [
    "Initial data migration completed",
    "Unit test coverage of at least 80%",
    "Admin training delivered",
]
EVIDENCE = [
    {"type": "text", "text": "Migrated 48,000 customer records from Salesforce into the CRM."},
    {"type": "text", "text": "Unit test coverage is 62% on the backend."},
    {"type": "text", "text": "Ran a two-hour hands-on handover with your two administrators."},
]


@pytest.fixture
def settings(tmp_path: Path, server: FakeLlm) -> Settings:
    return Settings(
        fee_bps=1000,
        providers="sandbox,manual",
        files_dir=str(tmp_path / "files"),
        review_matcher="keywords",
        review_llm_url=server.url,
        review_llm_model="test-model",
        review_llm_timeout=0.5,
    )


@pytest.fixture
def world(db: Database, settings: Settings) -> Iterator[World]:
    yield World(db, settings)


def delivered(world: World, evidence: list[dict[str, str]] = EVIDENCE) -> tuple[User, str]:
    client, freelancer, milestone = world.funded(
        1_000_000, title="CRM roll-out", acceptance_criteria=CRITERIA
    )
    world.act(freelancer, milestones.submit, milestone.id, note="", evidence=evidence)
    return client, milestone.id


def context(world: World, client: User, milestone_id: str) -> Any:
    return world.act(client, review.review_context, milestone_id)


def test_the_llms_verdicts_are_used_where_usable_and_the_vetoes_still_apply(
    world: World, server: FakeLlm
) -> None:
    client, milestone_id = delivered(world)
    server.answer(
        answer(
            entry(0, "met", ["evidence[0]"], "Migrated 48,000 customer records", "Records moved."),
            entry(1, "met", ["evidence[1]"], "coverage is 62%", "Coverage reported."),
            entry(2, "met", ["evidence[7]"], "handover", "A handover."),  # a ref that is not there
        )
    )

    result = context(world, client, milestone_id)

    migration, coverage, training = result.criteria
    assert result.matcher == "llm"
    assert (migration.verdict, migration.matcher) == ("met", "llm")
    assert [found.item.ref for found in migration.evidence] == ["evidence[0]"]
    assert migration.evidence[0].quote == "Migrated 48,000 customer records"
    assert migration.explanation == "Records moved."
    # The LLM said met; the figure misses the bound, so the veto overrules it.
    assert (coverage.verdict, coverage.matcher) == ("unmet", "llm")
    assert coverage.closest is not None
    assert coverage.closest.veto == '"62%" does not meet "at least 80%"'
    # The hallucinated ref makes that verdict unusable: the local matcher judged it.
    assert training.matcher == "keywords"
    assert result.suggestion.decision == "request_changes"
    [request] = server.requests
    assert [item["ref"] for item in request.user["evidence"]] == [
        "evidence[0]",
        "evidence[1]",
        "evidence[2]",
    ]


def test_approval_is_suggested_only_when_every_verdict_is_met_after_the_vetoes(
    world: World, server: FakeLlm
) -> None:
    client, milestone_id = delivered(world)
    server.answer(
        answer(
            entry(0, "met", ["evidence[0]"]),
            entry(1, "met", ["evidence[1]"]),
            entry(2, "unclear", ["evidence[2]"]),
        )
    )
    result = context(world, client, milestone_id)
    assert [check.verdict for check in result.criteria] == ["met", "unmet", "unclear"]
    assert result.suggestion.decision == "request_changes"
    assert [term.index for term in result.suggestion.unclear_criteria] == [2]
    # A later view of the same revision is answered from the cache: no second request.
    context(world, client, milestone_id)
    assert len(server.requests) == 1

    good = [*EVIDENCE[:1], {"type": "text", "text": "Coverage is 84%."}, EVIDENCE[2]]
    client, milestone_id = delivered(world, good)
    server.answer(answer(*(entry(i, "met", [f"evidence[{i}]"]) for i in range(3))))
    result = context(world, client, milestone_id)
    assert [check.verdict for check in result.criteria] == ["met", "met", "met"]
    assert result.suggestion.decision == "approve"


def test_an_endpoint_that_does_not_answer_in_time_leaves_the_local_matcher(
    world: World, server: FakeLlm
) -> None:
    client, milestone_id = delivered(world)
    server.answer(Reply(answer(entry(0, "met", ["evidence[0]"])).body, delay=2.0))
    started = time.monotonic()
    result = context(world, client, milestone_id)
    assert time.monotonic() - started < 1.9
    assert result.matcher == "keywords"
    assert {check.matcher for check in result.criteria} == {"keywords"}


def test_nothing_is_sent_when_no_llm_is_configured(
    db: Database, tmp_path: Path, server: FakeLlm
) -> None:
    world = World(db, Settings(providers="sandbox,manual", files_dir=str(tmp_path / "files")))
    client, milestone_id = delivered(world)
    result = context(world, client, milestone_id)
    assert result.matcher == "semantic"
    assert server.requests == []
