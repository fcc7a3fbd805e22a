"""Browser sessions and CSRF for the web pages, and the units of work the pages run service calls in.

A session is an ordinary API token of kind ``web`` (issued by ``auth.service.sign_in``, stored only
hashed, revocable, expiring after ``MILEPOST_WEB_SESSION_HOURS``) carried in the ``milepost_session``
cookie: HttpOnly, SameSite=Lax, Secure over https, and kept by the browser no longer than the session
lives.

CSRF: every form carries a token that is an HMAC-SHA256, under the server's secret key, of what ties it to
the browser: the session token once signed in, else a random value in the ``milepost_csrf`` cookie (the
sign-up and log-in forms). A cross-site page can read neither cookie, so it cannot make the token.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Callable, Mapping
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, TypeVar
from urllib.parse import urlsplit

from fastapi import Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from jinja2 import pass_context

from milepost.auth.service import user_for_token
from milepost.kit.context import Context
from milepost.kit.db import Database
from milepost.kit.errors import AuthenticationFailed, MilepostError, NotFound
from milepost.kit.proxies import client_address
from milepost.kit.time import local_time
from milepost.money import format_money
from milepost.notifications.service import unread_count
from milepost.settings import Settings
from milepost.users.models import User

T = TypeVar("T")

SESSION_COOKIE = "milepost_session"
PRE_SESSION_COOKIE = "milepost_csrf"
CSRF_FIELD = "csrf_token"

templates = Jinja2Templates(directory=str(Path(__file__).parent / "templates"))


@pass_context
def _when(context: Any, moment: datetime | None) -> str:
    """An instant in the viewer's time zone (the ``time_zone`` the page renders with)."""
    return local_time(moment, context.get("time_zone"))


templates.env.filters["money"] = format_money
templates.env.filters["when"] = _when


class SignedOut(Exception):
    """The page needs a signed-in user and the request has no live session."""


class Web:
    """Per request: the database, settings, the session cookie and CSRF tokens."""

    def __init__(self, request: Request) -> None:
        self.request = request
        self.db: Database = request.app.state.db
        self.settings: Settings = request.app.state.settings
        # Set when a page makes a fresh pre-session value; the response must then carry it as a cookie.
        self._new_pre_session: str | None = None
        # The signed-in user and their unread notifications, once a read has loaded them; every page's
        # header shows both.
        self.viewer: User | None = None
        self.unread = 0

    # Sessions ------------------------------------------------------------------------------------------

    @property
    def session_token(self) -> str | None:
        return self.request.cookies.get(SESSION_COOKIE) or None

    @property
    def client_address(self) -> str | None:
        return client_address(self.request)

    def _actor(self, ctx: Context) -> User:
        token = self.session_token
        if token is None:
            raise SignedOut
        try:
            user = user_for_token(ctx, token)
        except AuthenticationFailed:
            raise SignedOut from None
        self.request.state.user_id = user.id
        return user

    def read(self, action: Callable[[Context], T], *, signed_in: bool = True) -> T:
        """Run a service call in a read-only unit of work, as the session's user."""
        with self.db.read_only() as session:
            ctx = Context(session, None, settings=self.settings)
            if signed_in:
                ctx.actor = self.viewer = self._actor(ctx)
                self.unread = unread_count(ctx)
            return action(ctx)

    def write(self, action: Callable[[Context], T], *, signed_in: bool = True) -> T:
        """Run a state-changing service call in one unit of work: committed, or rolled back if it raises."""
        with self.db.unit_of_work() as session:
            ctx = Context(session, None, settings=self.settings)
            if signed_in:
                ctx.actor = self._actor(ctx)
            return action(ctx)

    def rehearse(self, action: Callable[[Context], T]) -> T:
        """Run a state-changing call as ``write`` does, then roll it all back (``Database.rehearsal``):
        what it would do, without doing it. ``action`` must return plain values: what it loaded is
        expired by the rollback. The header's viewer is then loaded as for any page."""
        with self.db.rehearsal() as session:
            ctx = Context(session, None, settings=self.settings)
            ctx.actor = self._actor(ctx)
            result = action(ctx)
        self.read(lambda ctx: None)
        return result

    def start_session(self, response: Response, token: str) -> None:
        response.set_cookie(
            SESSION_COOKIE,
            token,
            max_age=self.settings.web_session_hours * 3600,
            httponly=True,
            samesite="lax",
            secure=self._secure,
            path="/",
        )
        response.delete_cookie(PRE_SESSION_COOKIE, path="/")

    def end_session(self, response: Response) -> None:
        response.delete_cookie(
            SESSION_COOKIE, path="/", httponly=True, samesite="lax", secure=self._secure
        )

    @property
    def _secure(self) -> bool:
        return self.request.url.scheme == "https"

    # CSRF ----------------------------------------------------------------------------------------------

    def _sign(self, binding: str) -> str:
        key = self.settings.secret_key.get_secret_value().encode()
        return hmac.new(key, ("csrf:" + binding).encode(), hashlib.sha256).hexdigest()

    def csrf_token(self, *, pre_session: bool = False) -> str:
        """The token for this browser's forms: tied to the session, or (sign-up and log-in forms, and
        whenever there is no session) to the pre-session cookie."""
        token = self.session_token
        if token is not None and not pre_session:
            return self._sign("session:" + token)
        cookie = self.request.cookies.get(PRE_SESSION_COOKIE) or self._new_pre_session
        if cookie is None:
            cookie = self._new_pre_session = secrets.token_urlsafe(32)
        return self._sign("pre:" + cookie)

    def csrf_ok(self, sent: str, *, signed_in: bool) -> bool:
        if signed_in:
            token = self.session_token
            binding = None if token is None else "session:" + token
        else:
            cookie = self.request.cookies.get(PRE_SESSION_COOKIE)
            binding = None if cookie is None else "pre:" + cookie
        if binding is None or not sent:
            return False
        return hmac.compare_digest(self._sign(binding), sent)

    # Rendering -----------------------------------------------------------------------------------------

    def render(
        self, template: str, *, status: int = 200, pre_session: bool = False, **values: Any
    ) -> HTMLResponse:
        context = {
            "csrf_token": self.csrf_token(pre_session=pre_session),
            "csrf_field": CSRF_FIELD,
            # Times show in the viewer's zone; before signing in, in UTC.
            "time_zone": getattr(values.get("viewer", self.viewer), "time_zone", None) or "UTC",
            "viewer": self.viewer,
            "unread": self.unread,
            **values,
        }
        response = templates.TemplateResponse(
            self.request,
            template,
            context,
            status_code=status,
        )
        # The security headers (no caching, no framing, CSP) come from middleware.SecurityHeadersMiddleware.
        if self._new_pre_session is not None:
            response.set_cookie(
                PRE_SESSION_COOKIE,
                self._new_pre_session,
                httponly=True,
                samesite="lax",
                secure=self._secure,
                path="/",
            )
        return response

    # The two shapes of every page -----------------------------------------------------------------------

    def page(
        self,
        template: str,
        load: Callable[[Context], object],
        *,
        status: int = 200,
        hidden: tuple[type[Exception], ...] = (NotFound,),
        **values: Any,
    ) -> Response:
        """A signed-in page: its read model loaded as the viewer and rendered as ``page``. Signed out: the
        log-in page; what ``hidden`` names (not theirs to see): the 404 page."""
        try:
            page = self.read(load)
        except SignedOut:
            return self.to_login()
        except hidden:
            return self.not_found()
        return self.render(template, status=status, page=page, **values)

    def act(
        self,
        csrf_token: str,
        action: Callable[[Context], T],
        *,
        done: Callable[[T], str],
        refused: Callable[[MilepostError], Response],
        hidden: tuple[type[Exception], ...] = (NotFound,),
        rehearsed: Callable[[T], Response] | None = None,
        typed: Mapping[str, Any] | None = None,
    ) -> Response:
        """One form's service call in one unit of work: a redirect to ``done(result)`` when it is taken;
        when the service refuses, ``refused(error)`` (the page again, the message by the form). With
        ``rehearsed``, the call is only rehearsed (``rehearse``) and ``rehearsed(result)`` answers."""
        if not self.csrf_ok(csrf_token, signed_in=True):
            return self.forbidden(typed)
        try:
            result = self.write(action) if rehearsed is None else self.rehearse(action)
        except SignedOut:
            return self.to_login()
        except hidden:
            return self.not_found()
        except MilepostError as error:
            if error.status >= 500:  # not a refusal of the form: an outage, or an unknown outcome
                raise
            return refused(error)
        return self.redirect(done(result)) if rehearsed is None else rehearsed(result)

    def not_found(self) -> HTMLResponse:
        return self.render(
            "error.html",
            status=404,
            title="Not found",
            message="There is no such page, or it is not yours to see.",
        )

    def redirect(self, path: str) -> RedirectResponse:
        # 303: the browser follows a POST's answer with a GET, so reloading does not post again.
        return RedirectResponse(path, status_code=303)

    def to_login(self) -> RedirectResponse:
        response = self.redirect("/login")
        if self.session_token is not None:
            self.end_session(response)  # a revoked or unknown session: drop the dead cookie
        return response

    def forbidden(self, typed: Mapping[str, Any] | None = None) -> HTMLResponse:
        """A form whose CSRF token does not hold (sent from another site, or expired: the session ended
        in another tab, or the server's secret key changed): nothing was done. What was typed in it is
        shown back to copy, passwords never; it is not offered to send again, since the form may not have
        been the person's own."""
        shown = [
            (name, value)
            for name, value in (typed or {}).items()
            if isinstance(value, str) and value.strip() and "password" not in name
        ]
        return self.render(
            "expired.html",
            status=403,
            typed=shown,
            back=self._same_site_referer() or "/",
        )

    def _same_site_referer(self) -> str | None:
        """The path of the page the form was on, when it is a page of this site."""
        referer = self.request.headers.get("referer", "")
        parsed = urlsplit(referer)
        if parsed.netloc != self.request.url.netloc or not parsed.path.startswith("/"):
            return None
        return parsed.path + (f"?{parsed.query}" if parsed.query else "")


async def get_web(request: Request) -> Web:
    """Only builds the object: ``async``, so FastAPI does not hand it to the threadpool (kit/http.py)."""
    return Web(request)


WebDep = Annotated[Web, Depends(get_web)]
