"""The one list of events (``milepost.events``): every action and notice has what it needs everywhere, and
publishing with nobody subscribed is refused rather than silently losing e-mails and webhooks."""

from __future__ import annotations

import re
from importlib.resources import files
from pathlib import Path

import pytest
from sqlalchemy import func, select

from milepost import events
from milepost.audit import service as audit
from milepost.audit.models import MilestoneEvent
from milepost.events import EventAction, NoSubscribers, Notice, ProjectEventAction
from milepost.kit.context import Context
from milepost.milestones.models import Milestone
from milepost.notifications import rules
from milepost.notifications.models import Notification
from milepost.webhooks.events import EVENT_TYPES, event_type, project_event_type
from milepost.webhooks.models import WebhookDelivery
from milepost.webhooks.service import create_endpoint
from tests.world import World

ROOT = Path(__file__).resolve().parents[2]
SRC = ROOT / "src" / "milepost"
TEMPLATES = files("milepost.notifications") / "templates"
WRAPPERS = {"generic", "email"}  # not a kind: the fallback and the e-mail's text and HTML wrappers


def template_kinds() -> set[str]:
    return {
        entry.name.partition(".")[0]
        for entry in TEMPLATES.iterdir()
        if entry.name.endswith(".txt") and entry.name.partition(".")[0] not in WRAPPERS
    }


def test_every_action_has_a_notification_rule_and_nothing_else_has_one() -> None:
    assert set(rules.RECIPIENTS) == set(EventAction)


def test_every_action_sent_to_somebody_and_every_notice_has_its_own_template() -> None:
    sent = {action.value for action in EventAction if rules.recipients(action)}
    notices = {notice.value for notice in Notice}
    missing = (sent | notices) - template_kinds()
    assert not missing, f"no template for {sorted(missing)}"


def test_no_template_is_left_over_for_a_kind_that_no_longer_exists() -> None:
    known = {action.value for action in EventAction} | {notice.value for notice in Notice}
    assert template_kinds() <= known, sorted(template_kinds() - known)


def test_an_action_sent_to_nobody_has_no_template_to_go_stale() -> None:
    silent = {action.value for action in EventAction if not rules.recipients(action)}
    assert silent == {"dispute_overdue"}  # the staff queue shows it; no party is notified
    assert not silent & template_kinds()


def test_every_action_is_exactly_one_webhook_event_type_and_notices_are_none() -> None:
    assert (
        tuple(event_type(action) for action in EventAction)
        + tuple(project_event_type(action) for action in ProjectEventAction)
        == EVENT_TYPES
    )
    assert len(set(EVENT_TYPES)) == len(EventAction) + len(ProjectEventAction)
    assert not {f"milestone.{notice}" for notice in Notice} & set(EVENT_TYPES)


def test_the_api_docs_list_exactly_the_webhook_event_types() -> None:
    text = (ROOT / "docs" / "API.md").read_text()
    paragraph = text[text.index("Event types (`events`") :].split("\n\n")[0]
    documented = re.findall(r"`((?:milestone|project)\.[a-z_]+)`", paragraph)
    assert sorted(documented) == sorted(EVENT_TYPES)
    assert len(documented) == len(set(documented))


def test_actions_and_notices_do_not_share_a_name() -> None:
    """A notification's ``kind`` is either; one name for both would pick one template for two things."""
    assert not {action.value for action in EventAction} & {notice.value for notice in Notice}


# The layering (domain packages reach notifications and webhooks only through the registry) is checked
# with every other import rule in tests/test_architecture.py.


# Nobody subscribed --------------------------------------------------------------------------------------


@pytest.fixture
def nobody_subscribed(monkeypatch: pytest.MonkeyPatch) -> None:
    """This process as if start-up had forgotten ``milepost.subscribers.install()``."""
    monkeypatch.setattr(events, "registry", events.Registry())


def _counts(world: World, milestone_id: str) -> tuple[int, int, int]:
    with world.db.read_only() as session:
        return (
            session.scalar(
                select(func.count())
                .select_from(MilestoneEvent)
                .where(MilestoneEvent.milestone_id == milestone_id)
            )
            or 0,
            session.scalar(select(func.count()).select_from(Notification)) or 0,
            session.scalar(select(func.count()).select_from(WebhookDelivery)) or 0,
        )


def test_an_event_recorded_with_nobody_subscribed_is_refused_and_nothing_is_written(
    world: World, request: pytest.FixtureRequest
) -> None:
    client, _freelancer, project = world.parties()
    world.act(client, create_endpoint, url="https://hooks.example.com/milepost")
    milestone = world.milestone(client, project, 10_000)
    before = _counts(world, milestone.id)
    assert before[1] and before[2]  # with subscribers, "created" was notified and queued

    request.getfixturevalue("nobody_subscribed")

    def record(ctx: Context) -> None:
        loaded = ctx.session.get(Milestone, milestone.id)
        assert loaded is not None
        audit.record(ctx, loaded, EventAction.RELEASE_REQUESTED, role="freelancer")

    with pytest.raises(NoSubscribers, match=r"subscribers\.install"):
        world.act(client, record)
    assert _counts(world, milestone.id) == before
    assert world.get(milestone.id).event_count == 1


def test_a_notice_sent_with_nobody_subscribed_is_refused(
    world: World, request: pytest.FixtureRequest
) -> None:
    user = world.user("someone")
    request.getfixturevalue("nobody_subscribed")

    def tell(ctx: Context) -> None:
        events.notify(ctx, Notice.PAYOUT_PAID, user_ids=[user.id], key="k")

    with pytest.raises(NoSubscribers, match="payout_paid"):
        world.act(None, tell)
    with world.db.read_only() as session:
        assert session.scalar(select(func.count()).select_from(Notification)) == 0


def test_installing_twice_subscribes_nothing_twice(world: World) -> None:
    from milepost import subscribers

    subscribers.install()
    subscribers.install()
    assert len(events.registry.events) == 2 and len(events.registry.notices) == 1
    assert len(events.registry.project_events) == 1
    client, freelancer, project = world.parties()
    world.milestone(client, project, 10_000)
    with world.db.read_only() as session:
        told = session.scalars(select(Notification).where(Notification.user_id == freelancer.id))
        assert [row.kind for row in told] == ["created"]
