"""The thin layer every endpoint goes through: authenticate, honour idempotency, run one service call in
one unit of work, render. Endpoints hold no business rules: they parse, call ``Api.write``/``Api.read``
with a service function, and say how to render its result."""

from __future__ import annotations

import hashlib
import json
import logging
import re
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass
from typing import Annotated, Any, TypeVar

from fastapi import Depends, Request
from fastapi.responses import JSONResponse, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel
from sqlalchemy.orm import Session

from milepost.kit import idempotency, validate
from milepost.kit.context import Context
from milepost.kit.db import Database
from milepost.kit.errors import AuthenticationFailed, MilepostError, OutcomeUnknown
from milepost.kit.headers import DOCUMENT_CSP
from milepost.kit.proxies import client_address
from milepost.kit.time import utcnow
from milepost.settings import Settings
from milepost.users.models import User

log = logging.getLogger("milepost.http")

T = TypeVar("T")
Render = Callable[[T], Any]


def to_json(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if isinstance(value, list):
        return [to_json(item) for item in value]
    return value


class Api:
    """Per request: the database, settings, and who is calling."""

    def __init__(self, request: Request) -> None:
        self.request = request
        self.db: Database = request.app.state.db
        self.settings: Settings = request.app.state.settings
        self._keyed_actor: User | None = None  # a keyed write's caller, read before its claim

    def _token(self) -> str | None:
        header = self.request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return None
        return token.strip()

    def _actor(self, session: Session, *, required: bool) -> User | None:
        """The token's user, read in ``session`` (one query), or None when no token was sent."""
        from milepost.auth.service import user_for_token

        token = self._token()
        if token is None:
            if required:
                raise AuthenticationFailed(
                    "Send a token: Authorization: Bearer <token> (get one from POST /v1/tokens).",
                    code="missing_token",
                )
            return None
        user = user_for_token(Context(session, None, settings=self.settings), token)
        self.request.state.user_id = user.id
        return user

    @property
    def token(self) -> str | None:
        return self._token()

    @property
    def client_address(self) -> str | None:
        return client_address(self.request)

    def read(
        self,
        action: Callable[[Context], T],
        render: Render[T],
        *,
        auth: bool = True,
        snapshot: bool = False,
    ) -> Response:
        """Run a read-only service call; ``snapshot``: in one transaction (see ``Database.read_only``)."""
        with self.db.read_only(autocommit=not snapshot) as session:
            actor = self._actor(session, required=auth)
            rendered = render(action(Context(session, actor, settings=self.settings)))
            if isinstance(rendered, Response):  # a document or a file rather than JSON
                return rendered
            body = to_json(rendered)
        return JSONResponse(body)

    async def write(
        self,
        action: Callable[[Context], T],
        render: Render[T] | None,
        *,
        status: int = 200,
        auth: bool = True,
        idempotent: bool = True,
    ) -> Response:
        """Run a state-changing service call; ``render=None`` answers 204 with no body.

        ``idempotent=False``: the Idempotency-Key header is accepted but not honoured, because the response
        must never be stored (it holds a secret shown once, such as a new bearer token).
        """
        body_bytes = await self._fingerprint_input()
        return await _run_in_threadpool(
            self._write_sync, action, render, status, auth, idempotent, body_bytes
        )

    async def _fingerprint_input(self) -> bytes:
        """What the idempotency fingerprint covers: the body; for a multipart upload, its fields with each
        file as its name and SHA-256, so the same file sent again (with a new random boundary) matches."""
        body = await self.request.body()
        if not self.request.headers.get("content-type", "").startswith("multipart/form-data"):
            return body
        from starlette.datastructures import UploadFile

        try:
            form = await self.request.form()  # parsed once per request and cached by Starlette
        except Exception:  # a malformed form: its endpoint refuses it; the raw bytes will do here
            return body
        fields: list[tuple[str, str | tuple[str, str]]] = []
        for name, value in form.multi_items():
            if isinstance(value, UploadFile):
                digest = hashlib.sha256()
                stream = value.file
                stream.seek(0)
                while chunk := stream.read(1 << 16):
                    digest.update(chunk)
                stream.seek(0)
                fields.append((name, (value.filename or "", digest.hexdigest())))
            else:
                fields.append((name, value))
        return idempotency.form_canonical(fields)

    def _write_sync(
        self,
        action: Callable[[Context], T],
        render: Render[T] | None,
        status: int,
        auth: bool,
        idempotent: bool,
        body_bytes: bytes,
    ) -> Response:
        key = self.request.headers.get("idempotency-key") if idempotent else None
        if key is None:
            return self._run(action, render, status, auth, None, None, None)
        request_hash = idempotency.fingerprint(
            self.request.method, self.request.url.path, body_bytes
        )
        with ExitStack() as claim:
            # The key is scoped to the caller, so who it is must be known before the claim: the token is
            # read and a new key claimed on one connection (on PostgreSQL each statement commits on its
            # own), while this request is marked as running with the key before its claim is made.
            with self.db.autocommit() as session:
                user = self._actor(session, required=auth)
                user_id = user.id if user is not None else None
                scope_key = idempotency.scope(user_id, key)
                claim.enter_context(idempotency.running(self.db, scope_key))
                claimed = idempotency.claim_new(self.db, session, scope_key, request_hash, utcnow())
            self._keyed_actor = user
            if not claimed:
                stored = idempotency.claim_taken(self.db, scope_key, request_hash, utcnow())
                if stored is not None:
                    return _response(stored.status, stored.body, replayed=True)
            return self._run(action, render, status, auth, key, scope_key, user_id)

    def _run(
        self,
        action: Callable[[Context], T],
        render: Render[T] | None,
        status: int,
        auth: bool,
        key: str | None,
        scope_key: str | None,
        user_id: str | None,
    ) -> Response:
        try:
            with self.db.unit_of_work() as session:
                # Without an idempotency key the token is read in this same transaction.
                actor = (
                    # As read a moment ago, without reading it again (nothing locks a user row).
                    session.merge(self._keyed_actor, load=False)
                    if key is not None and self._keyed_actor is not None
                    else self._actor(session, required=auth)
                )
                result = action(Context(session, actor, settings=self.settings))
                body = None if render is None else to_json(render(result))
                if scope_key is not None:
                    idempotency.store(session, scope_key, status, body)
        except OutcomeUnknown as error:
            if scope_key is not None:
                self._settle(scope_key, error)
            # Said to the client as it applies to them: with a key, retrying is the way to find out.
            raise OutcomeUnknown(
                with_key=scope_key is not None,
                request_id=getattr(self.request.state, "request_id", None),
            ) from error
        except MilepostError as error:
            if scope_key is not None:
                self._settle(scope_key, error)
            raise
        except Exception:
            if scope_key is not None:
                self._settle(scope_key, None)
            raise
        return _response(status, body, replayed=False)

    def _settle(self, scope_key: str, error: MilepostError | None) -> None:
        """Store the refusal or release the claim; if even that cannot reach the database, the request's
        own error is still the one to answer with (the claim is then free once this request is over: see
        kit/liveness.py)."""
        try:
            idempotency.settle_failure(self.db, scope_key, error)
        except Exception as failure:
            log.warning(
                "could not settle an idempotency claim",
                extra={"fields": {"error": type(failure).__name__}},
            )


@dataclass(frozen=True)
class Document:
    """What a read endpoint answers with instead of JSON (CSV, HTML, PDF): render it with ``.response``."""

    content: bytes
    media_type: str
    filename: str | None = None  # offered as the name to save it under, when set

    def response(self) -> Response:
        headers = {}
        if self.media_type.startswith("text/html"):
            # A standalone document that styles itself inline (a receipt); the other security headers
            # come from middleware.SecurityHeadersMiddleware.
            headers["Content-Security-Policy"] = DOCUMENT_CSP
        if self.filename is not None:
            headers["Content-Disposition"] = f'inline; filename="{self.filename}"'
        return Response(self.content, media_type=self.media_type, headers=headers)


def _response(status: int, body: Any, *, replayed: bool) -> Response:
    headers = {"Idempotent-Replayed": "true"} if replayed else None
    if status == 204:
        return Response(status_code=204, headers=headers)
    return JSONResponse(body, status_code=status, headers=headers)


async def _run_in_threadpool(function: Callable[..., Response], *args: Any) -> Response:
    from starlette.concurrency import run_in_threadpool

    return await run_in_threadpool(function, *args)


async def refuse_control_characters(request: Request) -> None:
    """Every route's first dependency (the API's and the web app's routers): refuse text that holds a
    control character (``kit.validate.CONTROL_CHARACTERS``: NUL, which PostgreSQL cannot store, and the
    like) in a path parameter, a query parameter, a JSON body or a web form, with 422 naming it, before
    the endpoint or any service sees it. One place, so that no endpoint can forget it."""
    for name, value in request.path_params.items():
        validate.refuse_control_characters(value, name)
    for name, value in request.query_params.multi_items():
        validate.refuse_control_characters(name, name)
        validate.refuse_control_characters(value, name)
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type == "application/json" or content_type.endswith("+json"):
        body = await request.body()
        if body and _may_hold_control_characters(body):
            try:
                decoded = json.loads(body)
            except ValueError:
                return  # malformed JSON is the endpoint's to refuse (400), if it takes a body
            validate.refuse_control_characters(decoded, "")
    elif content_type in ("application/x-www-form-urlencoded", "multipart/form-data") and not (
        request.url.path.startswith("/v1/")
    ):
        # Web forms; FastAPI has already parsed them for the page (so this reads the cached form). The
        # API's only multipart endpoint (/v1/files) parses its upload itself, after authenticating, and
        # keeps only printable characters of the file name.
        form = await request.form()
        for name, item in form.multi_items():
            validate.refuse_control_characters(item if isinstance(item, str) else "", name)


# What a JSON body must contain for its decoded text to hold a control character: a \u escape (the only way
# to write NUL, a C0 control or a lone surrogate in valid JSON), or a raw C0 control, DEL or a C1 control in
# UTF-8 (\xc2\x80-\xc2\x9f). A body with none of them (nearly every request) is not decoded a second time.
_CONTROL_BYTES = re.compile(rb"\\u|[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]|\xc2[\x80-\x9f]")


def _may_hold_control_characters(body: bytes) -> bool:
    return _CONTROL_BYTES.search(body) is not None


# The API's one security scheme, as the OpenAPI document declares it. It only documents: ``Api`` reads the
# header itself, and whether a missing token is refused is the endpoint's ``auth`` (so ``auto_error`` is off
# and the scheme changes no response).
BEARER = HTTPBearer(
    scheme_name="bearer",
    bearerFormat="opaque",
    description=(
        "A token from `POST /v1/tokens` (sign in with e-mail and password), sent as "
        "`Authorization: Bearer <token>`. Tokens expire and can be revoked "
        "(`DELETE /v1/tokens/current`); an unknown, expired or revoked token gets 401."
    ),
    auto_error=False,
)


# The dependencies that make an ``Api`` (or a ``Web``) are ``async``: they only build an object, and FastAPI
# would run a plain function in the threadpool, a hand-off to another thread and back for every request.
async def get_api(
    request: Request, _bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(BEARER)]
) -> Api:
    """For operations that need a signed-in user: the OpenAPI document lists the bearer scheme on every
    operation that depends on this."""
    return Api(request)


async def get_public_api(request: Request) -> Api:
    """For the operations anyone may call (sign-up, sign-in): no security scheme in the document. Such an
    endpoint passes ``auth=False`` to ``Api.read``/``Api.write``."""
    return Api(request)


ApiDep = Annotated[Api, Depends(get_api)]
PublicApiDep = Annotated[Api, Depends(get_public_api)]
