"""The ASGI middlewares around the app: request ids and request logs, security headers on every page, and
body limits. ``app.create_app`` decides their order; each of them answers on its own (no FastAPI inside),
so that what they refuse or log is the same whichever route, page or error handler made the response."""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi.responses import HTMLResponse, JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from milepost.kit.errors import ServiceUnavailable
from milepost.kit.headers import HTML_HEADERS
from milepost.kit.logs import REQUEST_LOGGER

log = logging.getLogger(REQUEST_LOGGER)


def error_json(
    status: int, type_: str, code: str, message: str, param: str | None = None
) -> JSONResponse:
    """An answer in the API's error shape, for what is refused outside any service (no MilepostError)."""
    return JSONResponse(
        {"error": {"type": type_, "code": code, "message": message, "param": param}},
        status_code=status,
    )


def internal_error(request_id: str | None) -> JSONResponse:
    # Only failures before COMMIT get here (the unit of work rolled back); a failure while committing is
    # OutcomeUnknown, whose message says that the outcome is unknown.
    return error_json(
        500,
        "api_error",
        "internal_error",
        f"Something went wrong on our side; nothing was changed. Request id: {request_id}.",
    )


class RequestLogMiddleware:
    """Gives every request an id (X-Request-Id) and logs one JSON line when it ends."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = "req_" + secrets.token_hex(8)
        scope.setdefault("state", {})["request_id"] = request_id
        started = time.perf_counter()
        status = 500
        response_started = False

        async def send_with_id(message: Message) -> None:
            nonlocal status, response_started
            if message["type"] == "http.response.start":
                status = message["status"]
                response_started = True
                headers = message.setdefault("headers", [])
                headers.append((b"x-request-id", request_id.encode()))
                # Every 503 says when to come back, also a page that rendered the outage itself.
                if status == 503 and not any(name.lower() == b"retry-after" for name, _ in headers):
                    retry_after = str(ServiceUnavailable.retry_after_seconds).encode()
                    headers.append((b"retry-after", retry_after))
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception as error:
            if response_started:
                raise
            # Answer the 500 here rather than letting the exception reach Starlette's outermost handler:
            # that one re-raises after answering, and the server then drops the connection, so a client
            # could see a connection reset instead of the error.
            log.error(
                "unhandled error",
                exc_info=error,
                extra={"fields": {"request_id": request_id, "path": scope["path"]}},
            )
            await internal_error(request_id)(scope, receive, send_with_id)
        finally:
            state: dict[str, Any] = scope.get("state", {})
            log.info(
                "request",
                extra={
                    "fields": {
                        "request_id": request_id,
                        "method": scope["method"],
                        "path": scope["path"],
                        "client": (scope.get("client") or (None,))[0],
                        "status": status,
                        "user_id": state.get("user_id"),
                        "duration_ms": round((time.perf_counter() - started) * 1000, 2),
                    }
                },
            )


class SecurityHeadersMiddleware:
    """Adds ``kit.headers.HTML_HEADERS`` to every text/html response that does not set them itself."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers: list[tuple[bytes, bytes]] = list(message.get("headers", []))
                present = {name.lower() for name, _ in headers}
                content_type = next(
                    (value for name, value in headers if name.lower() == b"content-type"), b""
                )
                if content_type.lower().startswith(b"text/html"):
                    for name, value in HTML_HEADERS.items():
                        if name.lower().encode() not in present:
                            headers.append((name.lower().encode(), value.encode()))
                    message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)


class BodyLimitMiddleware:
    """Refuses bodies over the limit (JSON 1 MiB by default; uploads 25 MiB) with 413 in the error shape."""

    def __init__(self, app: ASGIApp, *, json_limit: int, file_limit: int) -> None:
        self.app = app
        self.json_limit = json_limit
        self.file_limit = file_limit

    def _limit(self, method: str, path: str) -> int:
        """The upload limit for file uploads (the API's /v1/files and the web app's delivery form,
        multipart with files), the JSON limit for everything else."""
        is_upload = path == "/v1/files" or (
            method == "POST" and path.startswith("/milestones/") and path.endswith("/submit")
        )
        # Multipart framing adds a little to the file itself.
        return self.file_limit + 64 * 1024 if is_upload else self.json_limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope["path"].rstrip("/")
        limit = self._limit(scope["method"], path)
        page = not (path == "/v1" or path.startswith("/v1/"))
        headers = dict(scope.get("headers", []))
        declared = headers.get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            await _too_large(limit, page=page)(scope, receive, send)
            return
        body = _CountedBody(receive, send, limit)
        try:
            await self.app(scope, body.receive, body.send)
        except Exception:
            if not body.held_back:
                raise
        if body.held_back:
            await _too_large(limit, page=page)(scope, receive, send)


class _CountedBody:
    """The request body counted as the app reads it: past the limit the read fails, and whatever the app
    then makes of the interrupted read (FastAPI turns it into "400 error parsing the body") is held back,
    so that the middleware answers 413 instead."""

    def __init__(self, receive: Receive, send: Send, limit: int) -> None:
        self._receive = receive
        self._send = send
        self.limit = limit
        self.received = 0
        self.too_large = False
        self.started = False

    @property
    def held_back(self) -> bool:
        """The body was too large and no answer has started: the 413 is still to be sent."""
        return self.too_large and not self.started

    async def receive(self) -> Message:
        message = await self._receive()
        if message["type"] == "http.request":
            self.received += len(message.get("body", b""))
            if self.received > self.limit:
                self.too_large = True
                raise _BodyTooLarge
        return message

    async def send(self, message: Message) -> None:
        if self.held_back:
            return
        if message["type"] == "http.response.start":
            self.started = True
        await self._send(message)


class _BodyTooLarge(Exception):
    pass


def _too_large(limit: int, *, page: bool) -> Callable[[Scope, Receive, Send], Awaitable[None]]:
    if page:  # a web form: a page a person can read, not the API's JSON
        return HTMLResponse(
            "<!doctype html><html lang=en><meta charset=utf-8><title>Too large · Milepost</title>"
            f"<h1>Too large</h1><p>What you sent is larger than {limit:,} bytes, so nothing was "
            "changed. Go back and send less (smaller or fewer files).</p></html>",
            status_code=413,
        )
    return error_json(
        413, "invalid_request", "body_too_large", f"The request body is larger than {limit} bytes."
    )
