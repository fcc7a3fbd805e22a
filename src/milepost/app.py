"""The FastAPI application: routers, error rendering, and the order of the middlewares (``middleware.py``)."""

from __future__ import annotations

import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import NoMatchFound

from milepost import __version__
from milepost.health import MetricsMiddleware, install_health_routes
from milepost.kit.db import Database, is_unreachable
from milepost.kit.errors import (
    InvalidRequest,
    MilepostError,
    NotFound,
    OutcomeUnknown,
    ServiceUnavailable,
    ValidationFailed,
)
from milepost.kit.headers import DOCS_CSP, REDOC_CSP
from milepost.kit.logs import REQUEST_LOGGER
from milepost.kit.proxies import ForwardedHeadersMiddleware
from milepost.middleware import (
    BodyLimitMiddleware,
    RequestLogMiddleware,
    SecurityHeadersMiddleware,
    error_json,
    internal_error,
)
from milepost.settings import Settings, get_settings

log = logging.getLogger(REQUEST_LOGGER)


def create_app(settings: Settings | None = None, database: Database | None = None) -> FastAPI:
    from milepost import openapi, subscribers

    subscribers.install()
    settings = settings or get_settings()
    app = FastAPI(
        title="Milepost",
        version=__version__,
        description="Escrow-backed milestone payments: fund, deliver, review, release.",
        openapi_url="/openapi.json",
        # Served below from the package's own assets, with a CSP that allows nothing else.
        docs_url=None,
        redoc_url=None,
        generate_unique_id_function=openapi.operation_id,
        lifespan=_lifespan,
    )
    openapi.install(app)
    app.state.settings = settings
    app.state.db = database or Database(settings.database_url, settings.database_pooler)
    _install_error_handlers(app)
    app.add_middleware(
        BodyLimitMiddleware,
        json_limit=settings.max_json_bytes,
        file_limit=settings.max_upload_bytes,
    )
    # Added after the body limit, so outside it: the body limit's 413 gets a request id and a log line.
    app.add_middleware(RequestLogMiddleware)
    # Outermost: every HTML response, whoever made it (pages, error pages, the API's receipts, the 413
    # page), carries the security headers.
    app.add_middleware(SecurityHeadersMiddleware)
    # Outside everything else: every answer is counted for /metrics, whoever made it.
    app.add_middleware(MetricsMiddleware)
    # Outside everything: who the client is (behind a trusted proxy, the forwarded address) is settled
    # before any log line, rate limit or cookie depends on it.
    app.add_middleware(ForwardedHeadersMiddleware, trusted=settings.trusted_networks)
    _add_docs(app)
    from fastapi.staticfiles import StaticFiles

    from milepost import api
    from milepost.web import pages

    api.include(app)
    install_health_routes(app)
    # The web app, at the root: the same services, through sessions instead of bearer tokens.
    pages.include(app)
    app.mount("/static", StaticFiles(packages=[("milepost.web", "static")]), name="static")
    # Pages name their icon; a client that asks for the conventional address anyway is sent to it.
    app.add_api_route("/favicon.ico", _favicon, include_in_schema=False)
    return app


def _favicon() -> RedirectResponse:
    return RedirectResponse("/static/favicon.svg", status_code=301)


def _add_docs(app: FastAPI) -> None:
    """The API reference: Swagger UI at /docs (try calls, "Authorize" with a bearer token) and Redoc at
    /redoc, from assets that ship in the package (web/static/vendor/), so that both work with no network."""

    def page(title: str, head: str, body: str, *, csp: str) -> HTMLResponse:
        html = (
            '<!doctype html><html lang="en"><head><meta charset="utf-8">'
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>{title}</title>{head}</head><body>{body}</body></html>"
        )
        return HTMLResponse(html, headers={"Content-Security-Policy": csp})

    @app.get("/docs", include_in_schema=False)
    def docs() -> HTMLResponse:
        return page(
            "Milepost API",
            '<link rel="stylesheet" href="/static/vendor/swagger-ui/swagger-ui.css">',
            '<div id="swagger-ui"></div>'
            '<script src="/static/vendor/swagger-ui/swagger-ui-bundle.js"></script>'
            '<script src="/static/api-docs.js" data-openapi-url="/openapi.json"></script>',
            csp=DOCS_CSP,
        )

    @app.get("/redoc", include_in_schema=False)
    def redoc() -> HTMLResponse:
        return page(
            "Milepost API reference",
            "",
            '<redoc spec-url="/openapi.json"></redoc>'
            '<script src="/static/vendor/redoc/redoc.standalone.js"></script>',
            csp=REDOC_CSP,
        )


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Background work in the server process (unless ``run_worker`` is off): the webhook sender, the
    scheduler that runs the time-driven work (reminders, late fees, auto-approval, ...) every few seconds,
    and the e-mail sender."""
    from starlette.concurrency import run_in_threadpool

    from milepost.kit.liveness import release_marks
    from milepost.notifications.worker import MailSender
    from milepost.schedule.worker import Scheduler
    from milepost.webhooks.worker import WebhookSender

    if not app.state.settings.run_worker:
        yield
        release_marks()
        return
    sender = WebhookSender(
        app.state.db,
        allow_private_networks=app.state.settings.webhook_allow_private_networks,
    )
    scheduler = Scheduler(app.state.db, app.state.settings)
    # E-mail goes out as soon as the unit of work that queued it commits (only when SMTP is configured).
    mailer = MailSender(app.state.db, app.state.settings) if app.state.settings.smtp_host else None
    sender.start()
    scheduler.start()
    if mailer is not None:
        mailer.start()
    try:
        yield
    finally:
        await run_in_threadpool(scheduler.stop)
        await run_in_threadpool(sender.stop)
        if mailer is not None:
            await run_in_threadpool(mailer.stop)
        release_marks()


def app_from_environment() -> FastAPI:
    """The app as ``milepost serve`` runs it: settings from MILEPOST_* variables, JSON logs on stderr."""
    from milepost.kit.logs import configure_logging

    configure_logging()
    app = create_app(Settings())
    _build_every_route(app)
    _freeze_what_lives_as_long_as_the_process()
    return app


def _build_every_route(app: FastAPI) -> None:
    """Have FastAPI build now what it would build for the first requests: FastAPI 0.165 builds an
    included router's routes (their dependencies, validators and serializers: some 30,000 objects and
    0.3-0.4 s of CPU here) when a request is first matched against them. Built here, they are frozen
    with the rest below, and no early request waits for them. Looking up a name no route has walks
    every route (public API; where FastAPI builds routes eagerly, it costs nothing). Measured under
    ``bench/api_load.py`` (PostgreSQL, 16 clients, three pairs against the code without it): the full
    collections of the measured 20 s took at most 18-21 ms each and 93-127 ms in all, against 38-41 ms
    and 196-318 ms."""
    with suppress(NoMatchFound):
        app.url_path_for("(no route has this name)")


def _freeze_what_lives_as_long_as_the_process() -> None:
    """Move what the server process has built by now (its imports, the app, its routes, some 300,000
    objects) out of the cyclic garbage collector's sight (``gc.freeze``), after one collection, so
    that a full collection scans only what the requests leave behind. A full collection holds the GIL
    and so stops every request of the process: measured under ``bench/api_load.py`` (PostgreSQL, 16
    clients, 2 server processes, three pairs against the code without it), the longest full collection
    of a 20 s run took 72-114 ms against 271-312 ms, all of them 0.42-0.59 s of the processes' time
    against 0.85-1.0 s, and the p99 of the requests came to 260-274 ms from 337-376. The frozen objects
    are still freed when nothing refers to them; only cycles among them would wait for
    the process to end, and what is built at start-up stays for the process's life anyway."""
    gc.collect()
    gc.freeze()


def _service_unavailable(request: Request, error: ServiceUnavailable) -> Response:
    headers = {"Retry-After": str(error.retry_after_seconds)}
    if _wants_page(request):
        return HTMLResponse(
            "<!doctype html><html lang=en><meta charset=utf-8><title>Unavailable · Milepost</title>"
            "<h1>Back in a moment</h1><p>Milepost cannot reach its database right now, so nothing was "
            f"changed. Try again in {error.retry_after_seconds} seconds.</p></html>",
            status_code=503,
            headers=headers,
        )
    return JSONResponse(error.to_dict(), status_code=503, headers=headers)


def _install_error_handlers(app: FastAPI) -> None:
    """Every refusal and failure in the error shape: JSON for the API, a page for the web app."""
    app.exception_handler(MilepostError)(_milepost_error)
    app.exception_handler(RequestValidationError)(_validation_error)
    app.exception_handler(StarletteHTTPException)(_http_error)
    app.exception_handler(Exception)(_unexpected)


async def _milepost_error(request: Request, error: MilepostError) -> Response:
    if isinstance(error, ServiceUnavailable):
        # Logged once per outage episode by the database (kit/db.py), not once per request.
        return _service_unavailable(request, error)
    if isinstance(error, OutcomeUnknown):
        log.warning(
            "outcome unknown: the database connection broke while committing",
            extra={
                "fields": {
                    "request_id": getattr(request.state, "request_id", None),
                    "path": request.url.path,
                    "idempotency_key": error.with_key,
                }
            },
        )
        if _wants_page(request):  # a web form: a page a person can read
            return HTMLResponse(
                "<!doctype html><html lang=en><meta charset=utf-8><title>Outcome unknown · "
                "Milepost</title><h1>We cannot tell whether that went through</h1><p>The "
                "connection to the database was lost while saving it, so it may or may not have "
                "been done. Look at the page it would have changed before you send it again.</p>"
                "</html>",
                status_code=500,
            )
    if not _is_api(request.url.path):
        # The web app's pages handle their services' refusals themselves; what reaches here was
        # refused before the page ran (a control character in a form field): a page, not JSON.
        from milepost.web.session import Web

        return Web(request).render(
            "error.html",
            status=error.status,
            title="Not accepted",
            message=f"{error.message} Nothing was changed; go back and try again.",
        )
    headers = {"WWW-Authenticate": "Bearer"} if error.status == 401 else None
    return JSONResponse(error.to_dict(), status_code=error.status, headers=headers)


async def _validation_error(_request: Request, error: RequestValidationError) -> Response:
    problems = list(error.errors())
    first = problems[0] if problems else {}
    if first.get("type") == "json_invalid":
        return error_response(InvalidRequest("The body is not valid JSON.", code="malformed_json"))
    location = [str(part) for part in first.get("loc", ()) if part not in ("body", "query", "path")]
    param = ".".join(location) or None
    if first.get("type") == "missing" and not location:
        return error_response(ValidationFailed("A JSON body is required.", code="missing"))
    code = {
        "missing": "missing",
        "extra_forbidden": "unknown_field",
        "date_out_of_range": "date_out_of_range",
    }.get(str(first.get("type")), "invalid_value")
    message = f"{param}: {first.get('msg')}" if param else str(first.get("msg"))
    # A query value that cannot be read or is not one the API knows (limit=ten, status=paid) is 400.
    # A well-formed value outside its bounds (limit=500, a date past kit.validate.LAST_DATE) is a
    # wrong value: 422 wherever it is sent, like the same value in a body.
    if first.get("loc", ("",))[0] == "query" and not (
        code == "date_out_of_range" or first.get("type") in _OUT_OF_BOUNDS
    ):
        return error_response(InvalidRequest(message, code=code, param=param))
    return error_response(ValidationFailed(message, code=code, param=param))


async def _http_error(request: Request, error: StarletteHTTPException) -> Response:
    if error.status_code == 404:
        if _wants_page(request):
            from milepost.web.common import not_found
            from milepost.web.session import Web

            return not_found(Web(request))
        return error_response(NotFound("No such endpoint."))
    if error.status_code == 405:
        return error_json(405, "invalid_request", "method_not_allowed", "Method not allowed here.")
    return error_json(error.status_code, "invalid_request", "invalid_request", str(error.detail))


async def _unexpected(request: Request, error: Exception) -> Response:
    request_id = getattr(request.state, "request_id", None)
    if is_unreachable(error):  # a database call outside a unit of work: still an outage, not a bug
        request.app.state.db.outage.failed(error)
        response = _service_unavailable(request, ServiceUnavailable())
        if request_id:
            response.headers["X-Request-Id"] = request_id
        return response
    log.error(
        "unhandled error",
        exc_info=error,
        extra={"fields": {"request_id": request_id, "path": request.url.path}},
    )
    response = internal_error(request_id)
    # This handler answers from outside every middleware, so the request id is added here.
    if request_id:
        response.headers["X-Request-Id"] = request_id
    return response


# Pydantic's error types for a value that was read but lies outside the declared bounds.
_OUT_OF_BOUNDS = frozenset(
    {
        "greater_than",
        "greater_than_equal",
        "less_than",
        "less_than_equal",
        "too_short",
        "too_long",
        "string_too_short",
        "string_too_long",
    }
)


def _is_api(path: str) -> bool:
    return path == "/v1" or path.startswith("/v1/")


def _wants_page(request: Request) -> bool:
    """A browser asking for a page of the web app (not the API) gets HTML errors."""
    return not _is_api(request.url.path) and "text/html" in request.headers.get("accept", "")


def error_response(error: MilepostError) -> JSONResponse:
    return JSONResponse(error.to_dict(), status_code=error.status)
