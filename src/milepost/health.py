"""Health checks and metrics for load balancers, orchestrators and Prometheus: ``/healthz``, ``/readyz``
and ``/metrics``, outside /v1 and not in the API's OpenAPI document.

- ``/healthz``: the process answers (nothing else is checked: a database outage must not get every server
  process restarted).
- ``/readyz``: the database answers, its schema is at this release's migration head, and a scheduler
  (``milepost worker``, or ``serve``'s own thread) reported within ``heartbeat_max_age_seconds``. 200 when
  all three hold; else 503 with every check and the reason of the first that failed.
- ``/metrics``: Prometheus text format. A 404, like any unknown path, unless ``MILEPOST_METRICS_TOKEN`` is
  set; then only for ``Authorization: Bearer <token>``. The request and money counters are per process
  (summed over ``serve --workers N`` in multiprocess mode, kit/metrics.py); the outbox backlog, the
  scheduler's heartbeat and the last ledger verification are read from the database at scrape time.
"""

from __future__ import annotations

import hmac
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import func, select, text
from sqlalchemy.exc import DBAPIError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from milepost.kit.db import Database
from milepost.kit.errors import AuthenticationFailed, ServiceUnavailable
from milepost.kit.metrics import HTTP_DURATION, HTTP_REQUESTS, scrape_registry
from milepost.kit.schema import head_revision
from milepost.kit.time import utcnow
from milepost.settings import Settings


def current_revision(db: Database) -> str | None:
    """The revision the database's schema is at; None when it has no schema (no alembic_version)."""
    try:
        with db.read_only() as session:
            revision = session.scalar(text("SELECT version_num FROM alembic_version"))
    except DBAPIError:
        return None
    return None if revision is None else str(revision)


@dataclass
class Check:
    name: str
    ok: bool
    reason: str = ""
    details: dict[str, Any] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        return {"ok": self.ok, **({"reason": self.reason} if self.reason else {}), **self.details}


def readiness(db: Database, settings: Settings) -> list[Check]:
    """The checks of /readyz, in order; each later one is only tried when the ones before it pass."""
    if not db.ping():
        return [Check("database", False, "the database cannot be reached")]
    checks = [Check("database", True)]
    head, current = head_revision(), current_revision(db)
    schema = Check("schema", current == head, details={"revision": current, "head": head})
    if current is None:
        schema.reason = "the database has no schema: run 'milepost db upgrade'"
    elif current != head:
        schema.reason = (
            f"the schema is at revision {current}, this release needs {head}: "
            "run 'milepost db upgrade'"
        )
    checks.append(schema)
    if not schema.ok:
        return checks
    checks.append(_worker_check(db, settings))
    return checks


def _worker_check(db: Database, settings: Settings) -> Check:
    from milepost.schedule.heartbeat import last_beat

    limit = settings.heartbeat_max_age_seconds
    try:
        with db.read_only() as session:
            beat = last_beat(session)
    except (ServiceUnavailable, DBAPIError):
        return Check("worker", False, "the scheduler's heartbeat cannot be read")
    if beat is None:
        return Check(
            "worker",
            False,
            "no scheduler has reported: run 'milepost worker' (or serve without --no-worker)",
            {"max_age_seconds": limit},
        )
    age = max(0.0, (utcnow() - beat).total_seconds())
    details = {"heartbeat_age_seconds": round(age, 1), "max_age_seconds": limit}
    if age > limit:
        return Check(
            "worker",
            False,
            f"the scheduler last reported {age:.0f} seconds ago (more than {limit:g}): is "
            "'milepost worker' running?",
            details,
        )
    return Check("worker", True, details=details)


def install_health_routes(app: FastAPI) -> None:
    @app.get("/healthz", include_in_schema=False)
    def healthz() -> JSONResponse:
        # Alive: the process answers. The database is /readyz's business.
        return JSONResponse({"status": "ok"})

    @app.get("/readyz", include_in_schema=False)
    def readyz(request: Request) -> JSONResponse:
        checks = readiness(request.app.state.db, request.app.state.settings)
        body: dict[str, Any] = {"checks": {check.name: check.as_json() for check in checks}}
        failed = next((check for check in checks if not check.ok), None)
        if failed is None:
            return JSONResponse({"status": "ok", **body})
        return JSONResponse(
            {"status": "unavailable", "failed": failed.name, "reason": failed.reason, **body},
            status_code=503,
            headers={"Retry-After": str(ServiceUnavailable.retry_after_seconds)},
        )

    @app.get("/metrics", include_in_schema=False)
    def metrics(request: Request) -> Response:
        settings: Settings = request.app.state.settings
        if settings.metrics_token is None:
            raise StarletteHTTPException(404)  # not there at all, like any unknown path
        expected = f"Bearer {settings.metrics_token.get_secret_value()}"
        sent = request.headers.get("authorization", "")
        if not hmac.compare_digest(sent.encode(), expected.encode()):
            error = AuthenticationFailed(
                "Send the metrics token as 'Authorization: Bearer <MILEPOST_METRICS_TOKEN>'."
            )
            return JSONResponse(
                error.to_dict(), status_code=401, headers={"WWW-Authenticate": "Bearer"}
            )
        registry = scrape_registry()
        registry.register(DatabaseCollector(request.app.state.db, settings))
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)


class DatabaseCollector(Collector):
    """The figures a scrape reads from the database: the same for every process, so read by the one that
    answers. If the database cannot be read, ``milepost_database_up`` is 0 and the rest is left out."""

    def __init__(self, db: Database, settings: Settings) -> None:
        self.db = db
        self.settings = settings

    def collect(self) -> Iterator[Any]:
        try:
            families = list(self._read())
        except Exception:
            families = []
        yield _gauge(
            "milepost_database_up",
            "1 if this scrape could read the database's figures (outbox, heartbeat, verification).",
            1 if families else 0,
        )
        yield from families

    def _read(self) -> Iterable[Any]:
        from milepost.ledger.models import LedgerVerification
        from milepost.notifications.models import EmailStatus, OutgoingEmail
        from milepost.schedule.heartbeat import last_beat
        from milepost.webhooks.models import DeliveryStatus, WebhookDelivery

        now = utcnow()
        pending = GaugeMetricFamily(
            "milepost_outbox_pending",
            "Messages waiting to be sent (or being sent), by queue.",
            labels=["queue"],
        )
        oldest = GaugeMetricFamily(
            "milepost_outbox_oldest_pending_age_seconds",
            "Age of the oldest message waiting to be sent, by queue (0 when none waits).",
            labels=["queue"],
        )
        with self.db.read_only() as session:
            for queue, model, status in (
                ("email", OutgoingEmail, EmailStatus.PENDING),
                ("webhook", WebhookDelivery, DeliveryStatus.PENDING),
            ):
                count, first = session.execute(
                    select(func.count(), func.min(model.created_at)).where(model.status == status)
                ).one()
                pending.add_metric([queue], count)
                oldest.add_metric([queue], _age(now, first))
            beat = last_beat(session)
            verification = session.scalars(
                select(LedgerVerification).order_by(LedgerVerification.finished_at.desc()).limit(1)
            ).first()
        families: list[Any] = [pending, oldest]
        if beat is not None:
            families.append(
                _gauge(
                    "milepost_scheduler_heartbeat_age_seconds",
                    "Seconds since a scheduler (milepost worker, or serve's thread) last completed a "
                    "run of the due work: the scheduler's lag.",
                    _age(now, beat),
                )
            )
            families.append(
                _gauge(
                    "milepost_scheduler_last_heartbeat_timestamp_seconds",
                    "When a scheduler last completed a run (Unix time).",
                    beat.timestamp(),
                )
            )
        if verification is not None:
            families.append(
                _gauge(
                    "milepost_ledger_last_verification_timestamp_seconds",
                    "When 'milepost ledger verify' last finished (Unix time).",
                    verification.finished_at.timestamp(),
                )
            )
            families.append(
                _gauge(
                    "milepost_ledger_last_verification_ok",
                    "1 if the last 'milepost ledger verify' found no problem, else 0.",
                    1 if verification.ok else 0,
                )
            )
            families.append(
                _gauge(
                    "milepost_ledger_last_verification_problems",
                    "Problems the last 'milepost ledger verify' found.",
                    verification.problems,
                )
            )
        return families


def _gauge(name: str, documentation: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, documentation, value=value)


def _age(now: datetime, then: datetime | None) -> float:
    return 0.0 if then is None else max(0.0, (now - then).total_seconds())


_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


class MetricsMiddleware:
    """Counts every HTTP request and times it, by route template (``/v1/milestones/{milestone_id}``, never
    the raw path: one series per route, whatever ids or junk clients send), method and status."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_with_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_with_status)
        finally:
            method = scope["method"] if scope["method"] in _METHODS else "other"
            route = route_template(scope)
            HTTP_REQUESTS.labels(method=method, route=route, status=str(status)).inc()
            HTTP_DURATION.labels(method=method, route=route).observe(time.perf_counter() - started)


def route_template(scope: Scope) -> str:
    """The route that answered, as declared; ``unmatched`` for paths no route knows."""
    # FastAPI that keeps included routers nested records the route's whole path (prefixes included) in its
    # own part of the scope; one that flattens them has it on the route itself.
    effective = (scope.get("fastapi") or {}).get("effective_route_context")
    path = getattr(effective, "path_format", None) or getattr(scope.get("route"), "path", None)
    if isinstance(path, str):
        return path
    if "app_root_path" in scope:  # a mounted app (the static files)
        return f"{scope.get('root_path', '')}/{{path}}"
    return "unmatched"
