"""/metrics: absent unless a token is configured, then only for that bearer token; requests counted by
route template, money operations when they commit, the outbox backlog, the scheduler's lag and the last
ledger verification read from the database."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select, update

from milepost.kit.db import Database
from milepost.ledger.models import Account, AccountKind
from milepost.schedule.heartbeat import Heartbeat
from milepost.settings import Settings
from milepost.webhooks.models import DeliveryStatus, WebhookDelivery
from tests.api.conftest import LiveServer, assert_error
from tests.health.conftest import AUTH, TOKEN, milepost, scrape, value


def test_without_a_token_configured_there_is_no_metrics_endpoint(
    db: Database, tmp_path: Path
) -> None:
    settings = Settings(files_dir=str(tmp_path / "files"))
    assert settings.metrics_token is None  # the default
    with LiveServer(db, settings) as url:
        for headers in ({}, AUTH, {"Authorization": "Bearer x"}):
            response = httpx.get(f"{url}/metrics", headers=headers)
            assert_error(response, 404, "not_found")
            assert "milepost_" not in response.text


def test_a_short_token_is_refused_when_the_settings_load() -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="metrics_token"):
        Settings(metrics_token="guessable")


def test_the_metrics_want_the_bearer_token(base_url: str) -> None:
    for headers in (
        {},
        {"Authorization": "Bearer wrong-token-of-some-length"},
        {"Authorization": TOKEN},
        {"Authorization": f"Basic {TOKEN}"},
    ):
        response = httpx.get(f"{base_url}/metrics", headers=headers)
        assert_error(response, 401, "authentication")
        assert response.headers["www-authenticate"] == "Bearer"
        assert "milepost_" not in response.text
    assert httpx.get(f"{base_url}/metrics", headers=AUTH).status_code == 200


def test_requests_are_counted_by_route_template_method_and_status(
    base_url: str, sign_up: Any
) -> None:
    alice = sign_up("alice")
    route = "/v1/milestones/{milestone_id}"
    before = scrape(base_url)
    for missing in ("ms_nope1", "ms_nope2", "ms_nope3"):
        assert alice.get(f"/v1/milestones/{missing}").status_code == 404
    assert alice.get("/v1/me").status_code == 200
    assert httpx.get(f"{base_url}/no/such/place/42").status_code == 404
    after = scrape(base_url)

    def moved(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    labels = {"method": "GET", "route": route}
    assert moved("milepost_http_requests_total", **labels, status="404") == 3
    assert moved("milepost_http_requests_total", method="GET", route="/v1/me", status="200") == 1
    assert moved("milepost_http_requests_total", method="GET", route="unmatched", status="404") == 1
    assert moved("milepost_http_request_duration_seconds_count", **labels) == 3
    assert moved("milepost_http_request_duration_seconds_sum", **labels) > 0
    # The raw paths never become series of their own.
    text = httpx.get(f"{base_url}/metrics", headers=AUTH).text
    assert "ms_nope1" not in text and "/no/such/place" not in text


def test_money_operations_are_counted_when_they_commit(
    base_url: str, sign_up: Any, db: Database
) -> None:
    client, freelancer = sign_up("client"), sign_up("freelancer")
    before = scrape(base_url)
    client.ok("POST", "/v1/deposits", {"amount": 250_000, "currency": "USD", "provider": "sandbox"})
    project = client.ok(
        "POST", "/v1/projects", {"title": "Site", "currency": "USD", "freelancer_id": freelancer.id}
    )
    milestone = client.ok(
        "POST", f"/v1/projects/{project['id']}/milestones", {"title": "M1", "amount": 200_000}
    )
    client.ok("POST", f"/v1/milestones/{milestone['id']}/fund")
    # Refused for want of money: nothing committed, nothing counted.
    second = client.ok(
        "POST", f"/v1/projects/{project['id']}/milestones", {"title": "M2", "amount": 900_000}
    )
    assert client.post(f"/v1/milestones/{second['id']}/fund").status_code == 402
    after = scrape(base_url)

    def moved(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert moved("milepost_money_operations_total", kind="deposit") == 1
    assert moved("milepost_money_operations_total", kind="fund") == 1
    assert (
        moved("milepost_money_moved_minor_units_total", kind="deposit", currency="USD") == 250_000
    )
    assert moved("milepost_money_moved_minor_units_total", kind="fund", currency="USD") == 200_000
    assert moved("milepost_money_operations_total", kind="release") == 0


def test_a_release_counts_its_fee(base_url: str, sign_up: Any) -> None:
    client, freelancer = sign_up("client"), sign_up("freelancer")
    client.ok("POST", "/v1/deposits", {"amount": 100_000, "currency": "EUR", "provider": "sandbox"})
    project = client.ok(
        "POST", "/v1/projects", {"title": "Site", "currency": "EUR", "freelancer_id": freelancer.id}
    )
    milestone = client.ok(
        "POST", f"/v1/projects/{project['id']}/milestones", {"title": "M1", "amount": 100_000}
    )
    client.ok("POST", f"/v1/milestones/{milestone['id']}/fund")
    freelancer.ok("POST", f"/v1/milestones/{milestone['id']}/submissions", {"note": "Done"})
    before = scrape(base_url)
    client.ok("POST", f"/v1/milestones/{milestone['id']}/approve")
    after = scrape(base_url)
    fees = "milepost_platform_fees_minor_units_total"
    assert value(after, fees, currency="EUR") - value(before, fees, currency="EUR") == 10_000
    released = "milepost_money_operations_total"
    assert value(after, released, kind="release") - value(before, released, kind="release") == 1


def test_the_outbox_backlog_is_read_from_the_database(
    base_url: str, sign_up: Any, db: Database
) -> None:
    samples = scrape(base_url)
    assert value(samples, "milepost_database_up") == 1
    assert value(samples, "milepost_outbox_pending", queue="webhook") == 0
    assert value(samples, "milepost_outbox_oldest_pending_age_seconds", queue="webhook") == 0
    assert value(samples, "milepost_outbox_pending", queue="email") == 0

    client, freelancer = sign_up("client"), sign_up("freelancer")
    client.ok("POST", "/v1/webhook-endpoints", {"url": "https://hooks.example.com/milepost"})
    client.ok("POST", "/v1/deposits", {"amount": 300_000, "currency": "USD", "provider": "sandbox"})
    project = client.ok(
        "POST", "/v1/projects", {"title": "Site", "currency": "USD", "freelancer_id": freelancer.id}
    )
    for title in ("M1", "M2"):
        milestone = client.ok(
            "POST", f"/v1/projects/{project['id']}/milestones", {"title": title, "amount": 100_000}
        )
        client.ok("POST", f"/v1/milestones/{milestone['id']}/fund")
    with db.read_only() as session:
        queued = session.scalar(
            select(func.count())
            .select_from(WebhookDelivery)
            .where(WebhookDelivery.status == DeliveryStatus.PENDING)
        )
    assert queued and queued >= 4  # created and funded, twice; nobody sends them (no worker here)
    time.sleep(1.1)
    samples = scrape(base_url)
    assert value(samples, "milepost_outbox_pending", queue="webhook") == queued
    assert value(samples, "milepost_outbox_oldest_pending_age_seconds", queue="webhook") >= 1


def test_the_scheduler_lag_is_the_age_of_its_heartbeat(base_url: str, db: Database) -> None:
    assert ("milepost_scheduler_heartbeat_age_seconds", ()) not in scrape(base_url)  # none yet
    Heartbeat(db, role="worker", interval=5).beat()
    samples = scrape(base_url)
    assert 0 <= value(samples, "milepost_scheduler_heartbeat_age_seconds") < 5
    assert value(samples, "milepost_scheduler_last_heartbeat_timestamp_seconds") > time.time() - 5


def test_ledger_verify_records_its_run_for_the_metrics(base_url: str, db_url: str) -> None:
    assert ("milepost_ledger_last_verification_ok", ()) not in scrape(base_url)  # never run
    started = time.time()
    result = milepost("ledger", "verify", "--db", db_url)
    assert result.returncode == 0, result.stderr
    assert "ledger OK" in result.stdout and "warning" not in result.stderr
    samples = scrape(base_url)
    assert value(samples, "milepost_ledger_last_verification_ok") == 1
    assert value(samples, "milepost_ledger_last_verification_problems") == 0
    finished = value(samples, "milepost_ledger_last_verification_timestamp_seconds")
    assert started - 1 <= finished <= time.time()


@pytest.mark.tampers
def test_a_failed_verification_shows_in_the_metrics(
    base_url: str, db_url: str, db: Database, sign_up: Any
) -> None:
    alice = sign_up("alice")
    alice.ok("POST", "/v1/deposits", {"amount": 5_000, "currency": "USD", "provider": "sandbox"})
    with db.unit_of_work() as session:  # someone edits a balance behind the ledger's back
        session.execute(
            update(Account).where(Account.kind == AccountKind.USER).values(balance=1_000_000)
        )
    result = milepost("ledger", "verify", "--db", db_url)
    assert result.returncode == 1
    samples = scrape(base_url)
    assert value(samples, "milepost_ledger_last_verification_ok") == 0
    assert value(samples, "milepost_ledger_last_verification_problems") >= 1
