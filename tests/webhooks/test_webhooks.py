"""Webhook endpoints over HTTP, the outbox, signed delivery after commit, retries and the delivery log."""

from __future__ import annotations

import base64
import itertools
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select, update

from milepost.kit.context import Context
from milepost.kit.db import Database
from milepost.kit.errors import PermissionDenied
from milepost.kit.time import utcnow
from milepost.milestones import service as milestones
from milepost.users.models import User
from milepost.webhooks.delivery import MAX_ATTEMPTS, RETRY_DELAYS, Outcome, deliver_due, sign
from milepost.webhooks.models import DeliveryStatus, WebhookDelivery, WebhookEndpoint
from tests.api.conftest import Client
from tests.webhooks.conftest import Receiver
from tests.world import World

no_worker = pytest.mark.parametrize("run_worker", [False])


def send_due(db: Database, now: datetime) -> list[Outcome]:
    """``deliver_due`` with private addresses allowed: the receiver is on loopback."""
    return deliver_due(db, now, allow_private_networks=True)


def user(db: Database, client: Client) -> User:
    with db.read_only() as session:
        found = session.get(User, client.id)
        assert found is not None
        return found


def register(client: Client, receiver: Receiver, path: str, events: Any = None) -> dict[str, Any]:
    body: dict[str, Any] = {"url": receiver.url(path)}
    if events is not None:
        body["events"] = events
    endpoint = client.ok("POST", "/v1/webhook-endpoints", body)
    receiver.secrets[path] = endpoint["secret"]
    return dict(endpoint)


def deliveries(db: Database) -> list[WebhookDelivery]:
    with db.read_only() as session:
        return list(session.scalars(select(WebhookDelivery).order_by(WebhookDelivery.id)))


class Parties:
    def __init__(self, db: Database, sign_up: Any) -> None:
        self.db, self.world = db, World(db)
        self.client, self.freelancer = sign_up("client"), sign_up("freelancer")
        self.world.deposit(self.client_user, 1_000_000)
        self.project = self.world.project(self.client_user, self.freelancer_user)

    @property
    def client_user(self) -> User:
        return user(self.db, self.client)

    @property
    def freelancer_user(self) -> User:
        return user(self.db, self.freelancer)

    def funded_milestone(self) -> str:
        milestone = self.world.milestone(self.client_user, self.project, 100_000)
        self.world.act(self.client_user, milestones.fund, milestone.id)
        return milestone.id


# Endpoints -------------------------------------------------------------------------------------------------


def test_endpoints_are_created_listed_read_and_deleted_by_their_owner(sign_up: Any) -> None:
    alice, bob = sign_up("alice"), sign_up("bob")
    created = alice.ok(
        "POST",
        "/v1/webhook-endpoints",
        {"url": "https://hooks.example.com/milepost", "events": ["milestone.funded"]},
    )
    assert created["id"].startswith("whe_")
    assert created["object"] == "webhook_endpoint"
    assert created["events"] == ["milestone.funded"]
    assert created["secret"].startswith("whsec_")
    assert len(base64.b64decode(created["secret"][len("whsec_") :])) == 24
    every = alice.ok("POST", "/v1/webhook-endpoints", {"url": "http://127.0.0.1:9/x"})
    assert every["events"] == []

    listed = alice.ok("GET", "/v1/webhook-endpoints")
    assert listed["object"] == "list" and listed["has_more"] is False
    assert [item["id"] for item in listed["data"]] == [every["id"], created["id"]]
    assert all("secret" not in item for item in listed["data"])
    shown = alice.ok("GET", f"/v1/webhook-endpoints/{created['id']}")
    assert shown["url"] == "https://hooks.example.com/milepost" and "secret" not in shown

    assert bob.ok("GET", "/v1/webhook-endpoints")["data"] == []
    for method in ("GET", "DELETE"):
        response = bob.request(method, f"/v1/webhook-endpoints/{created['id']}")
        assert response.status_code == 404
    assert bob.get(f"/v1/webhook-endpoints/{created['id']}/deliveries").status_code == 404

    deleted = alice.ok("DELETE", f"/v1/webhook-endpoints/{created['id']}")
    assert deleted == {"id": created["id"], "object": "webhook_endpoint", "deleted": True}
    assert alice.get(f"/v1/webhook-endpoints/{created['id']}").status_code == 404
    assert [item["id"] for item in alice.ok("GET", "/v1/webhook-endpoints")["data"]] == [
        every["id"]
    ]


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"url": "ftp://example.com/hook"}, "url"),
        ({"url": "file:///etc/passwd"}, "url"),
        ({"url": "javascript:alert(1)"}, "url"),
        ({"url": "http://"}, "url"),
        ({"url": "example.com/hook"}, "url"),
        ({"url": "https://example.com:99999/"}, "url"),
        ({"url": "https://example.com", "events": ["milestone.exploded"]}, "events[0]"),
        ({"url": "https://example.com", "events": "milestone.funded"}, "events"),
        ({"events": []}, "url"),
    ],
)
def test_bad_urls_and_event_types_are_refused(sign_up: Any, body: Any, param: str) -> None:
    alice = sign_up("alice")
    response = alice.post("/v1/webhook-endpoints", body)
    assert response.status_code == 422, response.text
    assert response.json()["error"]["param"] == param
    assert alice.ok("GET", "/v1/webhook-endpoints")["data"] == []


def test_signature_matches_the_standard_webhooks_example() -> None:
    # The example of the Standard Webhooks specification.
    signature = sign(
        "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        "msg_p5jXN8AQM9LWM0D4loKWxJek",
        datetime.fromtimestamp(1614265330, UTC),
        '{"test": 2432232314}',
    )
    assert signature == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


# Delivery --------------------------------------------------------------------------------------------------


def test_a_flow_is_delivered_signed_in_order_after_commit(
    sign_up: Any, db: Database, receiver: Receiver
) -> None:
    parties = Parties(db, sign_up)
    client_hook = register(parties.client, receiver, "/client")
    register(
        parties.freelancer, receiver, "/freelancer", ["milestone.approved", "milestone.released"]
    )
    milestone_id = parties.funded_milestone()
    world = parties.world
    # A refused action (the freelancer cannot approve) and a rolled-back one queue nothing.
    with pytest.raises(PermissionDenied):
        world.act(parties.freelancer_user, milestones.approve, milestone_id)
    with pytest.raises(RuntimeError), db.unit_of_work() as session:
        milestones.request_cancellation(
            Context(session, session.get(User, parties.client.id)), milestone_id, reason="x"
        )
        raise RuntimeError("the request fails after the event was recorded")
    world.act(
        parties.freelancer_user,
        milestones.submit,
        milestone_id,
        note="Done",
        evidence=[{"type": "link", "url": "https://example.com/pr/1"}],
    )
    world.act(parties.client_user, milestones.approve, milestone_id)

    expected = [
        "milestone.created",
        "milestone.funded",
        "milestone.submitted",
        "milestone.approved",
        "milestone.released",
    ]
    got = receiver.wait_for("/client", len(expected))
    assert [item.body["type"] for item in got] == expected
    assert all(item.signature_ok and item.committed for item in got)
    assert [item.headers["webhook-id"] for item in got] == [item.body["id"] for item in got]
    released = got[-1].body
    assert released["id"].startswith("evt_")
    milestone = released["data"]["milestone"]
    assert milestone["id"] == milestone_id
    assert milestone["status"] == "released"
    assert milestone["released_amount"] == 100_000 and milestone["escrow_balance"] == 0
    assert released["data"]["actor"] == {"id": parties.client.id, "role": "client"}
    assert got[1].body["data"]["milestone"]["status"] == "funded"
    assert got[1].body["data"]["amount"] == 100_000

    theirs = receiver.wait_for("/freelancer", 2)
    assert [item.body["type"] for item in theirs] == ["milestone.approved", "milestone.released"]
    assert all(item.signature_ok for item in theirs)
    time.sleep(0.5)  # nothing else arrives
    assert len(receiver.received) == 7

    log = parties.client.ok("GET", f"/v1/webhook-endpoints/{client_hook['id']}/deliveries")
    assert [item["event_type"] for item in log["data"]] == list(reversed(expected))
    for item in log["data"]:
        assert item["status"] == "delivered" and item["attempts"] == 1
        assert [attempt["status_code"] for attempt in item["log"]] == [200]
        assert item["log"][0]["duration_ms"] >= 0
    assert all(item.event_type != "milestone.cancellation_requested" for item in deliveries(db))


@no_worker
def test_a_failing_receiver_gets_retries_on_the_back_off_schedule(
    sign_up: Any, db: Database, receiver: Receiver
) -> None:
    parties = Parties(db, sign_up)
    hook = register(parties.client, receiver, "/client", ["milestone.funded"])
    receiver.statuses = [500] * 100
    parties.funded_milestone()
    start = utcnow()
    assert [o.status_code for o in send_due(db, start)] == [500]

    moment = start
    for number, delay in enumerate(RETRY_DELAYS, start=2):
        assert send_due(db, moment + delay - timedelta(seconds=1)) == []  # not yet
        moment += delay
        outcomes = send_due(db, moment)
        assert [(o.number, o.status_code) for o in outcomes] == [(number, 500)]
    assert outcomes[0].status is DeliveryStatus.FAILED
    assert moment - start > timedelta(days=1)  # a receiver down for a whole day still gets it
    assert send_due(db, start + timedelta(days=30)) == []

    got = receiver.at("/client")
    assert len(got) == MAX_ATTEMPTS == 8
    assert all(item.signature_ok for item in got)
    assert len({item.headers["webhook-id"] for item in got}) == 1  # the same message each time

    log = parties.client.ok("GET", f"/v1/webhook-endpoints/{hook['id']}/deliveries")["data"]
    assert len(log) == 1 and log[0]["status"] == "failed" and log[0]["attempts"] == 8
    assert log[0]["next_attempt_at"] is None
    attempts = log[0]["log"]
    assert [a["number"] for a in attempts] == list(range(1, MAX_ATTEMPTS + 1))
    assert all(a["status_code"] == 500 and a["error"] is None for a in attempts)
    times = [datetime.fromisoformat(a["attempted_at"]) for a in attempts]
    assert [later - earlier for earlier, later in itertools.pairwise(times)] == list(RETRY_DELAYS)


@no_worker
def test_a_receiver_that_recovers_gets_the_event_and_unreachable_ones_are_logged(
    sign_up: Any, db: Database, receiver: Receiver
) -> None:
    parties = Parties(db, sign_up)
    hook = register(parties.client, receiver, "/client", ["milestone.funded"])
    dead = parties.client.ok(
        "POST",
        "/v1/webhook-endpoints",
        {"url": "http://127.0.0.1:1/nobody-listens", "events": ["milestone.funded"]},
    )
    receiver.statuses = [503, 404]
    parties.funded_milestone()
    start = utcnow()
    send_due(db, start)
    send_due(db, start + RETRY_DELAYS[0])
    outcomes = send_due(db, start + RETRY_DELAYS[0] + RETRY_DELAYS[1])
    assert {(o.number, o.status_code, o.status) for o in outcomes} == {
        (3, 200, DeliveryStatus.DELIVERED),
        (3, None, DeliveryStatus.PENDING),
    }
    log = parties.client.ok("GET", f"/v1/webhook-endpoints/{hook['id']}/deliveries")["data"]
    assert [a["status_code"] for a in log[0]["log"]] == [503, 404, 200]
    assert log[0]["status"] == "delivered" and log[0]["delivered_at"] is not None
    unreachable = parties.client.ok("GET", f"/v1/webhook-endpoints/{dead['id']}/deliveries")
    errors = [a["error"] for a in unreachable["data"][0]["log"]]
    assert len(errors) == 3 and all(errors)


@no_worker
def test_a_deleted_endpoint_gets_nothing_more(
    sign_up: Any, db: Database, receiver: Receiver
) -> None:
    parties = Parties(db, sign_up)
    hook = register(parties.client, receiver, "/client")
    milestone_id = parties.funded_milestone()
    assert {d.status for d in deliveries(db)} == {DeliveryStatus.PENDING}
    parties.client.ok("DELETE", f"/v1/webhook-endpoints/{hook['id']}")
    assert {d.status for d in deliveries(db)} == {DeliveryStatus.CANCELLED}
    parties.world.act(parties.freelancer_user, milestones.submit, milestone_id, note="Done")
    assert send_due(db, utcnow() + timedelta(days=2)) == []
    assert len(deliveries(db)) == 2  # created and funded, both cancelled; nothing for submitted
    assert receiver.received == []


def live_endpoints(db: Database, owner: Client) -> tuple[int, int]:
    """(the owner's count of live endpoints as kept on their user row, the live endpoints there are)."""
    with db.read_only() as session:
        kept = session.scalar(select(User.webhook_endpoints).where(User.id == owner.id))
        live = session.scalar(
            select(func.count())
            .select_from(WebhookEndpoint)
            .where(WebhookEndpoint.owner_id == owner.id, WebhookEndpoint.deleted_at.is_(None))
        )
    return int(kept or 0), int(live or 0)


@no_worker
def test_a_party_whose_endpoints_are_all_deleted_gets_nothing_and_a_new_one_gets_what_follows(
    sign_up: Any, db: Database, receiver: Receiver
) -> None:
    parties = Parties(db, sign_up)
    first = register(parties.client, receiver, "/first")
    second = register(parties.client, receiver, "/second")
    assert live_endpoints(db, parties.client) == (2, 2)
    for hook in (first, second):
        parties.client.ok("DELETE", f"/v1/webhook-endpoints/{hook['id']}")
    assert live_endpoints(db, parties.client) == (0, 0)
    milestone_id = parties.funded_milestone()
    assert deliveries(db) == []
    register(parties.client, receiver, "/third")
    assert live_endpoints(db, parties.client) == (1, 1)
    parties.world.act(parties.freelancer_user, milestones.submit, milestone_id, note="Done")
    assert [(d.event_type, d.status) for d in deliveries(db)] == [
        ("milestone.submitted", DeliveryStatus.PENDING)
    ]
    send_due(db, utcnow())
    assert [item.path for item in receiver.received] == ["/third"]


def test_racing_registrations_stop_at_the_limit_and_the_count_stays_exact(
    sign_up: Any, db: Database, receiver: Receiver
) -> None:
    from milepost.webhooks.service import MAX_ENDPOINTS_PER_USER
    from tests.api.test_http_races import race

    owner = sign_up("owner")
    tries = MAX_ENDPOINTS_PER_USER + 5
    answers = race(
        owner,
        tries,
        lambda http: http.post("/v1/webhook-endpoints", json={"url": receiver.url("/r")}),
    )
    assert sorted(a.status_code for a in answers) == [201] * MAX_ENDPOINTS_PER_USER + [422] * 5
    assert {a.json()["error"]["code"] for a in answers if a.status_code == 422} == {
        "too_many_endpoints"
    }
    assert live_endpoints(db, owner) == (MAX_ENDPOINTS_PER_USER, MAX_ENDPOINTS_PER_USER)


@no_worker
def test_events_go_only_to_the_parties_endpoints_and_never_to_a_non_http_url(
    sign_up: Any, db: Database, receiver: Receiver
) -> None:
    parties = Parties(db, sign_up)
    outsider = sign_up("outsider")
    register(outsider, receiver, "/outsider")
    register(parties.freelancer, receiver, "/freelancer", ["milestone.funded"])
    # An endpoint whose URL slipped past validation (written directly) is never called.
    bad = register(parties.client, receiver, "/client")
    with db.unit_of_work() as session:
        session.execute(
            update(WebhookEndpoint)
            .where(WebhookEndpoint.id == bad["id"])
            .values(url="file:///etc/passwd")
        )
    parties.funded_milestone()
    outcomes = send_due(db, utcnow())
    assert sorted((str(o.status_code), o.status) for o in outcomes) == [
        ("200", DeliveryStatus.DELIVERED),
        ("None", DeliveryStatus.FAILED),
        ("None", DeliveryStatus.FAILED),
    ]
    assert [item.path for item in receiver.received] == ["/freelancer"]
    with db.read_only() as session:
        counted = session.scalar(
            select(func.count())
            .select_from(WebhookDelivery)
            .where(WebhookDelivery.endpoint_id == bad["id"])
        )
    assert counted == 2
